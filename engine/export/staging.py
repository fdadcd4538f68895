"""Where an export's files are written before they appear, and how long their names may be.

A folder export (YOLO, LabelMe, PNG masks, overlays) owns its output folder: it is written
whole into a fresh hidden folder beside it, which then takes the folder's place, so the
folder holds exactly the last export (a relabel or a smaller selection leaves no file of the
one before). A folder that holds anything else is refused unless the caller says to replace
it. A QMask export folder is known by its marker file (:data:`EXPORT_MARKER`), or, for exports
made before it existed, by its provenance sidecar.

A file export (a COCO ``.json`` and its sidecar, ``ask --overlay``) shares its folder with
whatever the user keeps there: its files are staged in a hidden folder inside and moved over
their old versions.

File names: :func:`short_name` keeps every name the exports make under :data:`MAX_NAME_BYTES`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ..errors import ExportError

__all__ = ["EXPORT_MARKER", "MAX_NAME_BYTES", "Staging", "short_name"]

EXPORT_MARKER = ".qmask_export"  # (unlike the staging folders, ".qmask-export-PID")
# File systems take 255 bytes a name; the atomic writers' temporary names add up to 15.
MAX_NAME_BYTES = 200
_SIDECAR_HEAD = b'"schema":"qmask.provenance"'


def short_name(stem: str, suffix: str = "", limit: int = MAX_NAME_BYTES) -> str:
    """``stem + suffix`` in at most ``limit`` bytes of UTF-8. A longer stem keeps its beginning
    and gains ``~`` and 10 hex digits of its SHA-1: the same name always shortens the same way,
    and two long names that begin alike stay apart."""
    name = stem + suffix
    encoded = stem.encode("utf-8", "surrogateescape")
    if len(name.encode("utf-8", "surrogateescape")) <= limit:
        return name
    tag = "~" + hashlib.sha1(encoded).hexdigest()[:10]
    room = max(1, limit - len(suffix.encode("utf-8", "surrogateescape")) - len(tag))
    head = encoded[:room].decode("utf-8", "ignore")  # never half a character
    return head + tag + suffix


def _is_export(folder: Path) -> bool:
    """``folder`` holds an earlier QMask export (its marker, or the provenance file of one: in
    ``provenance/`` since QMask writes it where no dataset reader looks, at the top before)."""
    if (folder / EXPORT_MARKER).is_file():
        return True
    for sidecar in (folder / "provenance" / "qmask-provenance.json", folder / "qmask_provenance.json"):
        try:
            with open(sidecar, "rb") as f:
                if _SIDECAR_HEAD in f.read(200):
                    return True
        except OSError:
            pass
    return False


def _stray(folder: Path) -> list[str]:
    """Entries of ``folder`` other than staging leftovers of an interrupted export."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith((".qmask-export-", EXPORT_MARKER)))


class Staging:
    """A hidden folder an export is written into (``root``); :meth:`commit` puts it in place.

    ``owns``: ``final_dir`` becomes exactly what was staged (see the module docstring);
    ``overwrite`` allows replacing a folder that holds other files. Without ``owns`` the
    staged files are moved over their old versions in ``final_dir``. An export that fails
    leaves nothing new behind, and an earlier export as it was."""

    def __init__(self, final_dir: Path, *, owns: bool = False, overwrite: bool = False,
                 fmt: str = "") -> None:
        final = Path(final_dir)
        self.final = final.resolve() if final.is_symlink() else final  # replace the target, not the link
        self.owns, self.overwrite, self.fmt = owns, overwrite, fmt
        name = f".qmask-export-{os.getpid()}"
        # Beside the output for a folder export (swapped in), or inside an existing output folder
        # (same file system); else beside it, renamed at the end.
        inside = self.final.is_dir() and not owns
        self.root = self.final / name if inside else self.final.parent / f".{self.final.name}{name}"
        self._inside = inside

    def __enter__(self) -> "Staging":
        if self.final.exists() and not self.final.is_dir():
            raise ExportError(f"{self.final} exists and is not a folder.")
        if self.owns and self.final.is_dir() and not self.overwrite and not _is_export(self.final):
            stray = _stray(self.final)
            if stray:
                shown = ", ".join(stray[:3]) + (", ..." if len(stray) > 3 else "")
                raise ExportError(f"{self.final} holds other files ({shown}) and is not an earlier QMask export. "
                                  "An export replaces everything in its folder: choose a new or empty folder, "
                                  "or replace the folder's contents (qmask export --force).")
        # folders this export creates above the output, removed again if it fails
        self._made = [d for d in [self.final.parent, *self.final.parent.parents] if not d.exists()]
        self._committed = False
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.root, ignore_errors=True)
            self.root.mkdir()
        except OSError as err:
            raise ExportError(f"Cannot create the folder {self.final}: {err.strerror or err}.") from err
        return self

    def commit(self) -> list[Path]:
        """Put the staged files in place; returns their final paths."""
        if self.owns:
            (self.root / EXPORT_MARKER).write_text(json.dumps({"qmask_export": self.fmt or "files"}) + "\n",
                                                   encoding="utf-8")
        staged = sorted(p for p in self.root.rglob("*") if (p.is_file() or p.is_symlink())
                        and p.name != EXPORT_MARKER)
        self._committed = True
        if not self.final.exists():
            os.rename(self.root, self.final)  # a new folder appears whole
            return [self.final / p.relative_to(self.root) for p in staged]
        if self.owns:
            old = self.final.parent / f".{self.final.name}.qmask-old-{os.getpid()}"
            os.rename(self.final, old)
            try:
                os.rename(self.root, self.final)
            except BaseException:
                os.rename(old, self.final)
                raise
            shutil.rmtree(old, ignore_errors=True)
            return [self.final / p.relative_to(self.root) for p in staged]
        moved = []
        for p in staged:
            dest = self.final / p.relative_to(self.root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
            moved.append(dest)
        return moved

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if not self._committed:
            for d in self._made:  # innermost first; only if still empty
                try:
                    d.rmdir()
                except OSError:
                    break
