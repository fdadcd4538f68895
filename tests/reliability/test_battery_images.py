"""Battery (issue 15, item 4): special files and oversized headers, as a user gives them to
``qmask ask`` and ``qmask batch`` (real processes), and PIL's own guard left on in the process."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import ImageError
from engine.imaging.images import list_images, load_image

ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(os.name != "posix", reason="devices and named pipes are POSIX")


def _limit_memory() -> None:  # a reader that does not stop at the header fails, not the machine
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def qmask(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gui.main", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_limit_memory if os.name == "posix" else None)


def load_in_child(path: Path | str) -> str:
    """``load_image(path)`` in a child process with limited memory: the ImageError's message."""
    code = ("import sys\n"
            "from engine.errors import ImageError\n"
            "from engine.imaging.images import load_image\n"
            "try:\n"
            "    load_image(sys.argv[1])\n"
            "except ImageError as err:\n"
            "    print(err)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, preexec_fn=_limit_memory)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def huge_header_png(path: Path, width: int, height: int, padding: int = 0) -> Path:
    """A valid 1x1 PNG whose IHDR then claims ``width x height``, with ``padding`` zero bytes
    after it (a sparse file: it takes no disk space)."""
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    if padding:
        with open(path, "r+b") as f:
            f.truncate(len(data) + padding)
    return path


@posix_only
@pytest.mark.parametrize("special, kind", [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_devices_are_refused_by_ask(special, kind):
    result = qmask("ask", special, "what is it?", timeout=60)
    assert result.returncode == 1
    assert f"{special} is {kind}, not an image file" in result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr


@posix_only
def test_named_pipe_is_refused_at_once_not_waited_on(tmp_path):
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    result = qmask("ask", str(fifo), "what is it?", timeout=60)  # the old code blocked here for ever
    assert result.returncode == 1
    assert "is a named pipe (FIFO), not an image file" in result.stderr
    assert "is a named pipe (FIFO)" in load_in_child(fifo)


@posix_only
def test_link_to_a_device_and_a_folder_are_refused(tmp_path):
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    assert "zero.png is a character device, not an image file" in load_in_child(link)
    with pytest.raises(ImageError, match="is a folder, not an image file"):
        load_image(tmp_path)
    result = qmask("ask", str(tmp_path), "what is it?", timeout=60)
    assert result.returncode == 1 and "is a folder, not an image file" in result.stderr


@posix_only
def test_batch_lists_say_what_a_special_file_is(tmp_path):
    with pytest.raises(ImageError, match="/dev/zero is a character device, not an image file or a folder"):
        list_images("/dev/zero")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="pipe.png is a named pipe"):
        list_images([fifo])  # only stat: nothing is opened
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    assert [p.name for p in list_images(tmp_path)] == ["ok.png"]  # the pipe in a folder is passed over


def test_oversized_header_is_refused_before_the_file_is_read(tmp_path):
    # 2 GB of (sparse) data behind a header claiming 50,000 x 50,000 pixels; the child process may
    # not map more than 1 GB, so reading the file before the pixel check fails with MemoryError.
    bomb = huge_header_png(tmp_path / "bomb.png", 50_000, 50_000, padding=2 << 30)
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from engine.errors import ImageError\n"
            "from engine.imaging.images import load_image\n"
            "try:\n"
            "    load_image(sys.argv[1])\n"
            "except ImageError as err:\n"
            "    print(err)\n")
    if not hasattr(__import__("os"), "fork"):
        pytest.skip("needs resource limits (POSIX)")
    result = subprocess.run([sys.executable, "-c", code, str(bomb)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "50000 x 50000 = 2,500,000,000 pixels, more than the limit of 100,000,000" in result.stdout


def test_pil_guard_stays_on_for_the_rest_of_the_process(tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((120, 100), dtype=np.uint8)).save(big)
    code = ("import sys, warnings\n"
            "from PIL import Image\n"
            "default = Image.MAX_IMAGE_PIXELS\n"
            "import engine.imaging.images\n"
            "assert Image.MAX_IMAGE_PIXELS == default, Image.MAX_IMAGE_PIXELS\n"
            "Image.MAX_IMAGE_PIXELS = 5000  # this process's own, stricter guard\n"
            "with warnings.catch_warnings():\n"
            "    warnings.simplefilter('error')\n"
            "    img = engine.imaging.images.load_image(sys.argv[1])  # QMask's limit applies to QMask's reads\n"
            "assert img.size == (100, 120)\n"
            "assert Image.MAX_IMAGE_PIXELS == 5000\n"
            "try:\n"
            "    Image.open(sys.argv[1])\n"
            "except Image.DecompressionBombError:\n"
            "    print('guarded')\n")
    result = subprocess.run([sys.executable, "-c", code, str(big)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "guarded"


def test_raised_qmask_limit_above_pils_own_is_honoured(tmp_path, monkeypatch):
    # PIL refuses above twice its MAX_IMAGE_PIXELS; a QMask limit above that must still work.
    from PIL import Image as PILImage

    path = tmp_path / "wide.png"
    Image.fromarray(np.full((60, 50), 7, dtype=np.uint8)).save(path)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setenv("QMASK_MAX_PIXELS", "5000")
    img = load_image(path)
    assert img.size == (50, 60) and int(img.rgb[0, 0, 0]) == 7
    assert PILImage.MAX_IMAGE_PIXELS == 1000
    monkeypatch.setenv("QMASK_MAX_PIXELS", "2000")
    with pytest.raises(ImageError, match="50 x 60 = 3,000 pixels, more than the limit of 2,000"):
        load_image(path)


def test_empty_and_truncated_files_still_say_so(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="is empty"):
        load_image(empty)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(cut)
    # the content hash is still that of the whole file
    import hashlib

    assert load_image(good).image_id == hashlib.sha1(good.read_bytes()).hexdigest()[:16]
