"""Plain HTTPS downloads with resume (``Range``) and cancel, for files not on the Hugging Face Hub
(EfficientSAM's checkpoints): the data goes to ``<name>.part`` and takes its final name only
when complete. Also the reachability check that fails fast when this computer is offline."""

from __future__ import annotations

import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from ..errors import CancelledError, DownloadError, InputError

USER_AGENT = "qmask-model-download"
_CHUNK = 1 << 20

CancelFn = Callable[[], bool]


def _check_cancel(cancel: CancelFn | None, what: str) -> None:
    if cancel is not None and cancel():
        raise CancelledError(f"Download of {what} cancelled; what was fetched is kept and the next "
                             "download resumes from there.")


def _content_range(header: str | None) -> tuple[int, int | None] | None:
    """(start, total) from ``Content-Range: bytes START-END/TOTAL`` (total None for ``*``)."""
    if not header:
        return None
    m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", header.strip())
    if not m:
        return None
    return int(m.group(1)), (None if m.group(3) == "*" else int(m.group(3)))


def download_file(url: str, dest: str | os.PathLike[str], *, progress: bool = True, timeout: float = 60.0,
                  desc: str | None = None, on_chunk: Callable[[int], None] | None = None,
                  cancel: CancelFn | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download.

    Bytes go to ``dest + ".part"``; when that exists, the request asks for the rest with
    ``Range: bytes=N-``. A server that answers 206 gets the rest appended; one that ignores
    the range (200) restarts the file from scratch. The size is checked against the server's
    ``Content-Length`` / ``Content-Range`` before ``.part`` is renamed to ``dest``.
    ``on_chunk(n)`` is called after each chunk (tests use it to interrupt a download).
    ``cancel()`` is checked before the request and after every chunk (1 MiB); when it returns
    True the bytes so far are flushed to ``.part`` and :class:`CancelledError` is raised.
    """
    validate_url(url)
    dest = Path(dest)
    _check_cancel(cancel, dest.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - https/http only, by caller
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            # "Range not satisfiable": the .part may already hold everything, or be longer than
            # the file now on the server. Start again rather than guess.
            part.unlink(missing_ok=True)
            return download_file(url, dest, progress=progress, timeout=timeout, desc=desc, on_chunk=on_chunk,
                                 cancel=cancel)
        raise DownloadError(f"Downloading {url} failed: HTTP {err.code} {err.reason}.") from err
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"Could not reach {url} ({getattr(err, 'reason', err)}). Check the network and run "
                            "the command again; a partial download is resumed.") from err
    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        if status == 206 and have:
            crange = _content_range(response.headers.get("Content-Range"))
            if crange is None or crange[0] != have:
                response.close()
                part.unlink(missing_ok=True)
                return download_file(url, dest, progress=progress, timeout=timeout, desc=desc, on_chunk=on_chunk,
                                     cancel=cancel)
            total = crange[1] if crange[1] is not None else (have + int(length) if length else None)
            mode = "ab"
        else:
            have = 0
            total = int(length) if length else None
            mode = "wb"
        bar = _progress_bar(total, have, desc or dest.name) if progress else None
        stopped = False
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as err:
                        raise DownloadError(f"The download of {url} was interrupted ({err}); run the command "
                                            "again to resume it.") from err
                    if not chunk:
                        break
                    out.write(chunk)
                    have += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                    if on_chunk is not None:
                        on_chunk(have)
                    if cancel is not None and cancel() and (total is None or have < total):
                        stopped = True
                        break
                out.flush()
                os.fsync(out.fileno())  # a cancelled or finished .part is on disk before we go on
        finally:
            if bar is not None:
                bar.close()
    if stopped:
        raise CancelledError(f"Download of {dest.name} cancelled at {have} bytes; the next download resumes "
                             "from there.")
    if total is not None and have != total:
        raise DownloadError(f"The download of {url} stopped at {have} of {total} bytes; run the command again "
                            "to resume it.")
    os.replace(part, dest)
    return dest


def _progress_bar(total: int | None, initial: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                file=sys.stderr, dynamic_ncols=True)


def require_reachable(url: str | None, timeout: float = 5.0) -> None:
    """DownloadError at once, naming ``--models DIR``, when ``url``'s host cannot be reached (no
    name resolution, connection refused): otherwise huggingface_hub retries for some 26 s,
    printing each retry, before it fails. Skipped behind a proxy (the proxy decides)."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url or "")
    if not parts.hostname or urllib.request.getproxies().get(parts.scheme):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as err:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise DownloadError(f"Cannot reach {parts.hostname} ({reason}), so nothing was downloaded: this computer "
                            "seems to be offline. Run `qmask models download --to DIR` on a computer that is "
                            "online, copy DIR here and give it to QMask with --models DIR (or set "
                            "QMASK_MODELS_DIR).") from None


def validate_url(url: str) -> str:
    if not re.match(r"^https?://", url):
        raise InputError(f"Only http(s) URLs can be downloaded, not {url!r}.")
    return url
