"""Reading images robustly into the one form the engine uses: RGB uint8, as displayed.

Every image becomes ``rgb``: ``[H, W, 3]`` uint8, C-contiguous, with the EXIF orientation
applied, so masks, points and exports line up with the image as a viewer shows it.

Mode handling (PIL modes):
- ``1``, ``L``: grey copied to the three channels.
- ``LA``, ``RGBA``, ``PA``, ``P`` with transparency: composited on **white**. Dropping alpha
  would expose whatever colour the encoder left under transparent pixels (often black or
  noise), which then looks like content to BLIP and EfficientSAM; white is what most viewers
  and document pages show behind a transparent image.
- ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: PIL's conversion to RGB.
- ``I;16*`` (16-bit grey, e.g. 16-bit PNG): scaled to 8 bits over the full 16-bit range
  (``round(v / 257)``), not clipped, so a 16-bit image looks as it does in a viewer.
- ``I`` (32-bit int): as 16-bit when all values lie in [0, 65535] (PIL reads some 16-bit files
  this way), else min-max stretched.
- ``F`` (float): ``v * 255`` when all values lie in [0, 1], else min-max stretched.
Multi-frame files (GIF, TIFF): the first frame.

Only regular files are read: a folder, a device (``/dev/zero``), a named pipe or a socket is
refused from its ``stat``, before anything is read (a pipe is opened non-blocking, so it never
hangs). Size limit: ``max_pixels`` (default 100,000,000; the ``QMASK_MAX_PIXELS`` environment
variable overrides the default) is checked on the header, before any pixel is decoded and
before the rest of the file is read (the content hash comes after the check). PIL's own
decompression-bomb limit stays on for the rest of the process: QMask lifts it only while it
reads a header, which its own check follows, and raises it to QMask's limit while it decodes
(:func:`_pil_limit`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageError, InputError, ResourceError

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 100_000_000
MAX_PIXELS_ENV = "QMASK_MAX_PIXELS"
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for the engine.

    rgb: ``[H, W, 3]`` uint8, C-contiguous, EXIF orientation applied (the displayed frame).
    path: the file it came from (None for arrays).
    original_mode: the PIL mode of the file (``"RGB"``, ``"I;16"``, ``"P"`` ...).
    original_size: ``(W, H)`` as stored in the file, before EXIF rotation.
    exif_rotated: True when an EXIF orientation other than "normal" was applied.
    image_id: stable content hash (first 16 hex digits of the SHA-1 of the file bytes).
    """

    rgb: np.ndarray
    path: Path | None
    original_mode: str
    original_size: tuple[int, int]
    exif_rotated: bool
    image_id: str

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)`` as displayed."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


def check_rgb(image: np.ndarray, error: type[Exception] = ImageError) -> np.ndarray:
    """An ``[H, W, 3]`` uint8 RGB array (C-contiguous view where possible); ``error`` otherwise.

    The one RGB check: ImageError for an image as data, InputError where the array is a caller's
    argument (overlays), so each caller keeps the error it documents.
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise error(f"An image must be H x W x 3 RGB uint8, not {arr.dtype} {arr.shape}.")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise error(f"The image is empty (shape {arr.shape}).")
    return np.ascontiguousarray(arr)


def max_pixels_default() -> int:
    """The pixel limit: ``QMASK_MAX_PIXELS`` when set, else 100,000,000."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.replace("_", "").replace(",", ""))
    except ValueError:
        raise InputError(f"{MAX_PIXELS_ENV} must be a whole number of pixels, not {raw!r}.") from None
    if value < 1:
        raise InputError(f"{MAX_PIXELS_ENV} must be positive, not {raw!r}.")
    return value


def _to_uint8_gray(arr: np.ndarray, mode: str) -> np.ndarray:
    """16-bit / 32-bit / float grey -> uint8, scaled (never clipped)."""
    a = arr.astype(np.float64)
    if mode.startswith("I;16") or (mode == "I" and a.min() >= 0 and a.max() <= 65535):
        return np.round(a / 257.0).astype(np.uint8)
    if mode == "F" and a.min() >= 0 and a.max() <= 1:
        return np.round(a * 255.0).astype(np.uint8)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.uint8)
    return np.round((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _composite_on_white(rgba: Image.Image) -> np.ndarray:
    # Integer maths (fits uint16: 255 * 255) keeps memory at 2 bytes per channel on big images.
    a = np.asarray(rgba.convert("RGBA"))
    alpha = a[..., 3:4].astype(np.uint16)
    mixed = a[..., :3].astype(np.uint16) * alpha + 255 * (255 - alpha)
    return ((mixed + 127) // 255).astype(np.uint8)  # rounded division by 255


def _to_rgb(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        rgb = np.asarray(im)
    elif mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
            mode in ("P", "L", "RGB") and "transparency" in im.info):
        rgb = _composite_on_white(im)
    elif mode in ("1", "L", "P"):
        rgb = np.asarray(im.convert("RGB"))
    elif mode.startswith("I") or mode == "F":
        gray = _to_uint8_gray(np.asarray(im), mode)
        rgb = np.repeat(gray[..., None], 3, axis=2)
    else:  # CMYK, YCbCr, LAB, HSV, ...
        rgb = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(rgb, dtype=np.uint8)


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
               (stat.S_ISSOCK, "a socket"))
_PIL_LIMIT_LOCK = threading.Lock()


def file_kind(mode: int) -> str:
    """What a ``stat`` mode is, in words ("a folder", "a named pipe (FIFO)", ...)."""
    for test, name in _FILE_KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _open_regular(p: Path) -> tuple[Any, int]:
    """(binary file object, size in bytes) of a regular file; ImageError for anything else.

    Opened non-blocking (a named pipe without a writer would otherwise block the open) and
    checked with ``fstat`` on the open descriptor, so what is checked is what is read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise ImageError(f"Image not found: {p}") from None
    except IsADirectoryError:
        raise ImageError(f"{p} is a folder, not an image file.") from None
    except PermissionError:
        if p.is_dir():
            raise ImageError(f"{p} is a folder, not an image file.") from None
        raise ImageError(f"No permission to read {p}.") from None
    except OSError as e:
        raise ImageError(f"Could not read {p}: {e.strerror or e}.") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"{p} is {file_kind(info.st_mode)}, not an image file; "
                             "QMask reads images from regular files only.")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), int(info.st_size)
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def _pil_limit(header: bool, limit: int) -> Iterator[None]:
    """PIL's decompression-bomb check made to agree with QMask's own, for one image's read.

    PIL warns above ``Image.MAX_IMAGE_PIXELS`` and refuses above twice that, in ``Image.open``
    (with its own message, before QMask can name its limit, which may be higher) and in some
    decoders (GIF frames). For the header read (``header``) the check is lifted, since QMask's
    own check follows at once; while the pixels are decoded, PIL's limit is raised to ``limit``
    if that is higher. The global is changed under a lock and restored at once, so PIL's guard
    stays on, at its own value, for every other image the process opens.
    """
    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        if header or saved is not None:
            Image.MAX_IMAGE_PIXELS = None if header else max(int(saved), limit)  # type: ignore[arg-type]
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _sha1_of(f: Any) -> str:
    f.seek(0)
    digest = hashlib.sha1()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()[:16]


def load_image(path: str | os.PathLike, max_pixels: int | None = None) -> LoadedImage:
    """Read an image file as RGB uint8 in the displayed frame (see the module docstring).

    max_pixels: refuse images with more pixels than this (None: :func:`max_pixels_default`).
    Raises ImageError (message names the file) when the file is missing, not a regular file,
    empty, not an image, truncated/corrupt or too large; ResourceError when memory runs out.
    Only the header is read before the size check.
    """
    p = Path(path)
    limit = max_pixels_default() if max_pixels is None else int(max_pixels)
    if limit < 1:
        raise InputError(f"max_pixels must be positive, not {max_pixels!r}.")
    f, size = _open_regular(p)
    with f:
        if size == 0:
            raise ImageError(f"{p} is empty (0 bytes); it is not an image.")
        try:
            with _pil_limit(True, limit):
                im = Image.open(f)  # reads the header only
        except Image.UnidentifiedImageError:
            raise ImageError(f"{p} is not an image QMask can read (unknown or unsupported format).") from None
        except OSError as e:
            raise ImageError(f"Could not read {p}: {e.strerror or e}.") from e
        except Exception as e:  # PIL plugins raise many types on malformed headers
            raise ImageError(f"{p} is not a readable image: {e}") from e
        try:
            with _pil_limit(False, limit):
                return _decode(p, f, im, limit)
        finally:
            im.close()


def _decode(p: Path, f: Any, im: Image.Image, limit: int) -> LoadedImage:
    w, h = im.size
    if w * h > limit:
        raise ImageError(f"{p} is {w} x {h} = {w * h:,} pixels, more than the limit of {limit:,}. "
                         f"Downscale it, or raise the limit with the {MAX_PIXELS_ENV} environment variable.")
    if w < 1 or h < 1:
        raise ImageError(f"{p} has no pixels ({w} x {h}).")
    mode = im.mode
    try:
        im.load()  # decode now, so a truncated file fails here and not later
        try:
            orientation = int(im.getexif().get(_ORIENTATION_TAG, 1) or 1)
            shown = ImageOps.exif_transpose(im) if orientation in range(2, 9) else im
        except Exception as e:  # a broken EXIF block must not make the pixels unreadable
            log.warning("Ignoring unreadable EXIF orientation in %s: %s", p, e)
            shown, orientation = im, 1
        rgb = _to_rgb(shown)
    except MemoryError:
        raise ResourceError(f"Not enough memory to decode {p} ({w} x {h} pixels).") from None
    except Exception as e:  # truncated or corrupt data: OSError, SyntaxError, ValueError, ...
        raise ImageError(f"{p} is truncated or corrupt and cannot be decoded ({e}).") from e
    try:
        image_id = _sha1_of(f)
    except OSError as e:
        raise ImageError(f"Could not read {p}: {e.strerror or e}.") from e
    return LoadedImage(rgb=rgb, path=p, original_mode=mode, original_size=(w, h),
                       exif_rotated=orientation in range(2, 9), image_id=image_id)


def image_from_array(arr: np.ndarray, image_id: str | None = None) -> LoadedImage:
    """Wrap an array as a LoadedImage (tests, the GUI's clipboard paste).

    arr: ``[H, W, 3]`` uint8 RGB, ``[H, W]`` uint8 grey, or ``[H, W, 4]`` uint8 RGBA (composited
    on white). image_id: None = hash of the pixels and shape.
    """
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise InputError(f"An image array must be uint8, not {a.dtype}.")
    if a.ndim == 2:
        mode, rgb = "L", np.repeat(a[..., None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 3:
        mode, rgb = "RGB", a
    elif a.ndim == 3 and a.shape[2] == 4:
        mode, rgb = "RGBA", _composite_on_white(Image.fromarray(np.ascontiguousarray(a), "RGBA"))
    else:
        raise InputError(f"An image array must be [H, W], [H, W, 3] or [H, W, 4], not {a.shape}.")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"An image array needs at least one pixel, not shape {a.shape}.")
    rgb = np.ascontiguousarray(rgb)
    if image_id is None:
        digest = hashlib.sha1(repr(a.shape).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
        image_id = digest.hexdigest()[:16]
    return LoadedImage(rgb=rgb, path=None, original_mode=mode,
                       original_size=(int(a.shape[1]), int(a.shape[0])), exif_rotated=False,
                       image_id=str(image_id))


def _natural_key(path: Path) -> tuple:
    """Sort key: 'img2' before 'img10', case-insensitive, part by part."""
    return tuple(tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                       for t in re.split(r"(\d+)", part.lower()) if t)
                 for part in path.parts)


def _is_hidden(path: Path) -> bool:
    if path.name.startswith("."):
        return True
    attrs = getattr(path.stat(), "st_file_attributes", 0)  # Windows only
    return bool(attrs & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def list_images(folder_or_files: str | os.PathLike | Iterable[str | os.PathLike],
                recursive: bool = False) -> list[Path]:
    """Image files to process, in natural order ('2.png' before '10.png').

    folder_or_files: a folder, one file, or an iterable of files and/or folders.
    Folders contribute their files with an image extension (.png .jpg .jpeg .bmp .tif .tiff
    .webp, any case), skipping hidden ones (dot files, macOS '._' files, Windows hidden);
    with ``recursive`` their sub-folders too (hidden sub-folders skipped). Files named
    explicitly are kept whatever their extension (:func:`load_image` reports what it cannot
    read). Duplicates are dropped. Raises ImageError for a path that does not exist.
    """
    if isinstance(folder_or_files, (str, os.PathLike)):
        items = [Path(folder_or_files)]
    else:
        items = [Path(p) for p in folder_or_files]
    found: dict[Path, Path] = {}

    def add(p: Path) -> None:
        found.setdefault(p.resolve(), p)

    for item in items:
        if item.is_dir():
            walker = item.rglob("*") if recursive else item.iterdir()
            for p in walker:
                rel = p.relative_to(item).parts
                if any(part.startswith(".") for part in rel[:-1]):
                    continue  # inside a hidden sub-folder
                if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not _is_hidden(p):
                    add(p)
        elif item.is_file():
            add(item)
        elif item.exists():
            raise ImageError(f"{item} is {file_kind(item.stat().st_mode)}, not an image file or a folder.")
        else:
            raise ImageError(f"No such file or folder: {item}")
    return sorted(found.values(), key=_natural_key)
