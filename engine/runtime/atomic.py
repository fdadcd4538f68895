"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

The data goes to a temporary file in the destination's folder (same file system, so the final
``os.replace`` is an atomic rename), is flushed and fsync'ed, then replaces the destination.
With ``backup=True`` the previous version is kept as ``<name>.bak``: it is hard-linked before
the rename (cheap, and the link keeps the old content while the new file takes the name),
falling back to a copy on file systems without hard links.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["atomic_writer", "atomic_write_files", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "backup_path"]


def backup_path(path: str | os.PathLike[str]) -> Path:
    """Where ``backup=True`` keeps the previous version of ``path``."""
    p = Path(path)
    return p.with_name(p.name + ".bak")


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _keep_backup(path: Path) -> None:
    if not path.exists():
        return
    bak = backup_path(path)
    tmp_link = path.with_name(f".{path.name}.bak-{os.getpid()}.tmp")
    try:
        if tmp_link.exists():
            tmp_link.unlink()
        os.link(path, tmp_link)
    except OSError:
        shutil.copy2(path, tmp_link)
    try:
        os.replace(tmp_link, bak)
    except BaseException:
        try:
            tmp_link.unlink()
        except OSError:
            pass
        raise


@contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "w", *, encoding: str = "utf-8",
                  backup: bool = False) -> Iterator[IO[Any]]:
    """A file to stream into (``mode`` "w" text or "wb" bytes) that replaces ``path`` only when
    the ``with`` block ends without an error; on any error nothing new remains.

    Raises ``OSError`` (disk full, permission denied, ...) with the destination left untouched.
    """
    dest = Path(path)
    folder = dest.parent if str(dest.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": encoding, "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if dest.exists():
            # mkstemp makes 0600 files; keep the permissions the user gave the old file.
            try:
                shutil.copymode(dest, tmp)
            except OSError:
                pass
        else:
            os.chmod(tmp, 0o666 & ~_UMASK)
        if backup:
            _keep_backup(dest)
        os.replace(tmp, dest)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def atomic_write_files(files: dict[str | os.PathLike[str], bytes]) -> list[Path]:
    """Write several files all or nothing: each to a temporary sibling first (flushed), then all
    renamed into place. A failure while writing (disk full, file too large) removes every
    temporary file and leaves no new file; earlier files at those paths stay as they were."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            dest = Path(path)
            folder = dest.parent if str(dest.parent) else Path(".")
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
            staged.append((Path(tmp_name), dest))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp_name, 0o666 & ~_UMASK)
    except BaseException:
        for tmp, _dest in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, dest in staged:
        os.replace(tmp, dest)
    for folder in {dest.parent for _tmp, dest in staged}:
        _fsync_dir(folder if str(folder) else Path("."))
    return [dest for _tmp, dest in staged]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, backup: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; the parent folder must exist."""
    with atomic_writer(path, "wb", backup=backup) as f:
        f.write(data)


def _read_umask() -> int:
    # os.umask can only be read by setting it; do it once at import, not while threads run.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8",
                      backup: bool = False) -> None:
    """Write ``text`` atomically (newlines written as given, no platform translation)."""
    atomic_write_bytes(path, text.encode(encoding), backup=backup)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 1,
                      backup: bool = False) -> None:
    """Serialise ``obj`` as UTF-8 JSON and write it atomically (serialisation happens first,
    so an unserialisable object never touches the destination)."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n", backup=backup)
