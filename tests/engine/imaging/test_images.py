"""Robust image loading (engine.imaging.images); every test image is made on the fly."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.errors import ImageError, InputError
from engine.imaging.images import (IMAGE_EXTENSIONS, LoadedImage, image_from_array, list_images,
                           load_image, max_pixels_default)


def _check_rgb(img: LoadedImage, h: int, w: int) -> None:
    assert img.rgb.dtype == np.uint8 and img.rgb.shape == (h, w, 3)
    assert img.rgb.flags.c_contiguous
    assert img.size == (w, h)


def _gradient(h: int = 30, w: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_png_roundtrip_and_id(tmp_path):
    rgb = _gradient()
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    img = load_image(path)
    _check_rgb(img, 30, 40)
    np.testing.assert_array_equal(img.rgb, rgb)
    assert img.original_mode == "RGB" and img.original_size == (40, 30) and not img.exif_rotated
    assert img.image_id == hashlib.sha1(path.read_bytes()).hexdigest()[:16]
    assert img.path == path
    # Same bytes elsewhere -> same id; different bytes -> different id.
    copy = tmp_path / "b.png"
    copy.write_bytes(path.read_bytes())
    assert load_image(copy).image_id == img.image_id
    Image.fromarray(rgb[::-1].copy()).save(tmp_path / "c.png")
    assert load_image(tmp_path / "c.png").image_id != img.image_id


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grey_and_bilevel(tmp_path, mode):
    gray = (np.arange(30 * 40).reshape(30, 40) % 256).astype(np.uint8)
    im = Image.fromarray(gray).convert(mode)
    path = tmp_path / f"g_{mode}.png"
    im.save(path)
    img = load_image(path)
    _check_rgb(img, 30, 40)
    assert img.original_mode == mode
    expected = np.asarray(im.convert("L"))
    for c in range(3):
        np.testing.assert_array_equal(img.rgb[..., c], expected)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 200  # red everywhere...
    rgba[:, :6, 3] = 255  # ...opaque on the left
    rgba[:, 6:, 3] = 0  # transparent on the right (hidden red must not show)
    rgba[0, 0, 3] = 128  # half transparent
    path = tmp_path / "t.png"
    Image.fromarray(rgba, "RGBA").save(path)
    img = load_image(path)
    assert img.original_mode == "RGBA"
    np.testing.assert_array_equal(img.rgb[5, 2], [200, 0, 0])
    np.testing.assert_array_equal(img.rgb[5, 9], [255, 255, 255])
    np.testing.assert_allclose(img.rgb[0, 0].astype(int), [228, 127, 127], atol=1)


def test_la_and_palette_with_transparency(tmp_path):
    la = np.zeros((8, 8, 2), np.uint8)
    la[..., 0] = 10
    la[:4, :, 1] = 255
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    assert img.original_mode == "LA"
    np.testing.assert_array_equal(img.rgb[0, 0], [10, 10, 10])
    np.testing.assert_array_equal(img.rgb[7, 7], [255, 255, 255])

    p = Image.new("P", (8, 8), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    p.paste(1, (0, 0, 4, 8))  # left half red (index 1), right half index 0 = transparent
    p.info["transparency"] = 0
    p.save(tmp_path / "p.png", transparency=0)
    img = load_image(tmp_path / "p.png")
    assert img.original_mode == "P"
    np.testing.assert_array_equal(img.rgb[3, 1], [255, 0, 0])
    np.testing.assert_array_equal(img.rgb[3, 6], [255, 255, 255])  # not black


def test_palette_without_transparency(tmp_path):
    im = Image.fromarray(_gradient()).convert("P")
    im.save(tmp_path / "p.gif")
    img = load_image(tmp_path / "p.gif")
    np.testing.assert_array_equal(img.rgb, np.asarray(im.convert("RGB")))


def test_cmyk_jpeg(tmp_path):
    im = Image.new("CMYK", (16, 12), (0, 255, 255, 0))  # pure red in CMYK
    im.save(tmp_path / "c.jpg", quality=95)
    img = load_image(tmp_path / "c.jpg")
    assert img.original_mode == "CMYK"
    _check_rgb(img, 12, 16)
    r, g, b = img.rgb[6, 8].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 32768, 65535], [1000, 4000, 60000, 12345]], np.uint16)
    path = tmp_path / "d16.png"
    assert cv2.imwrite(str(path), values)
    img = load_image(path)
    assert img.original_mode.startswith("I")
    expected = np.round(values / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(img.rgb[..., 0], expected)
    np.testing.assert_array_equal(img.rgb[..., 2], expected)
    assert img.rgb[0, 3, 0] == 255 and img.rgb[0, 1, 0] == 100  # clipping would give 255 for both


def test_32bit_int_and_float_tiffs(tmp_path):
    ints = np.array([[-5, 0], [100, 995]], np.int32)  # outside 16-bit: min-max stretch
    Image.fromarray(ints, "I").save(tmp_path / "i.tif")
    img = load_image(tmp_path / "i.tif")
    assert img.original_mode == "I"
    np.testing.assert_array_equal(img.rgb[..., 1], [[0, 1], [27, 255]])

    unit = np.array([[0.0, 0.5], [0.25, 1.0]], np.float32)
    Image.fromarray(unit, "F").save(tmp_path / "f.tif")
    img = load_image(tmp_path / "f.tif")
    assert img.original_mode == "F"
    np.testing.assert_array_equal(img.rgb[..., 0], [[0, 128], [64, 255]])

    wide = np.array([[-2.0, 0.0], [2.0, 6.0]], np.float32)
    Image.fromarray(wide, "F").save(tmp_path / "w.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "w.tif").rgb[..., 0], [[0, 64], [128, 255]])


@pytest.mark.parametrize("orientation, expect_corner", [
    (1, "top_left"), (3, "bottom_right"), (6, "top_right"), (8, "bottom_left")])
def test_exif_orientation_is_applied(tmp_path, orientation, expect_corner):
    h, w = 40, 60
    arr = np.full((h, w, 3), 128, np.uint8)
    arr[:10, :10] = (255, 0, 0)  # a red marker at the stored top-left
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    im.save(path, exif=exif, quality=95)
    img = load_image(path)
    rotated = orientation in (6, 8)
    dh, dw = (w, h) if rotated else (h, w)
    _check_rgb(img, dh, dw)
    assert img.exif_rotated == (orientation != 1)
    assert img.original_size == (w, h)
    corners = {"top_left": img.rgb[2, 2], "top_right": img.rgb[2, dw - 3],
               "bottom_left": img.rgb[dh - 3, 2], "bottom_right": img.rgb[dh - 3, dw - 3]}
    for name, px in corners.items():
        is_red = px[0] > 200 and px[1] < 60
        assert is_red == (name == expect_corner), (name, px)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="not found.*nope.png"):
        load_image(tmp_path / "nope.png")


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg is empty \(0 bytes\)"):
        load_image(path)


def test_random_bytes_are_not_an_image(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError, match="noise.png is not an image"):
        load_image(path)


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("hello, not a jpeg\n")
    with pytest.raises(ImageError, match="notes.jpg"):
        load_image(path)


@pytest.mark.parametrize("fmt, ext", [("JPEG", "jpg"), ("PNG", "png")])
def test_truncated_files(tmp_path, fmt, ext):
    buf = io.BytesIO()
    Image.fromarray(_gradient(200, 300)).save(buf, format=fmt)
    data = buf.getvalue()
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=f"cut.{ext}.*(truncated|corrupt|not)"):
        load_image(path)


def test_too_many_pixels_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(_gradient(100, 120)).save(path)
    with pytest.raises(ImageError, match=r"120 x 100 = 12,000 pixels.*limit of 11,999"):
        load_image(path, max_pixels=11_999)
    assert load_image(path, max_pixels=12_000).size == (120, 100)
    monkeypatch.setenv("QMASK_MAX_PIXELS", "5000")
    assert max_pixels_default() == 5000
    with pytest.raises(ImageError, match="QMASK_MAX_PIXELS"):
        load_image(path)
    monkeypatch.setenv("QMASK_MAX_PIXELS", "lots")
    with pytest.raises(InputError, match="QMASK_MAX_PIXELS"):
        load_image(path)
    monkeypatch.delenv("QMASK_MAX_PIXELS")
    assert max_pixels_default() == 100_000_000


def test_huge_header_is_refused_without_allocating(tmp_path):
    # A real PNG header claiming 200,000 x 200,000 pixels (4e10), over PIL's own bomb limit too.
    path = tmp_path / "bomb.png"
    Image.new("1", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = struct.pack(">IIBBBBB", 200_000, 200_000, 1, 0, 0, 0, 0)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="200000 x 200000 = 40,000,000,000 pixels"):
        load_image(path)


def test_multi_frame_gif_takes_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    img = load_image(tmp_path / "anim.gif")
    r, g, b = img.rgb[4, 4].astype(int)
    assert r > 200 and b < 60


def test_image_from_array():
    rgb = _gradient(5, 7)
    img = image_from_array(rgb)
    np.testing.assert_array_equal(img.rgb, rgb)
    assert img.path is None and img.original_size == (7, 5) and len(img.image_id) == 16
    assert image_from_array(rgb.copy()).image_id == img.image_id
    assert image_from_array(rgb, image_id="x").image_id == "x"
    gray = image_from_array(rgb[..., 0])
    assert gray.rgb.shape == (5, 7, 3) and gray.original_mode == "L"
    assert gray.image_id != img.image_id
    rgba = np.dstack([rgb, np.zeros((5, 7), np.uint8)])
    np.testing.assert_array_equal(image_from_array(rgba).rgb, 255)
    with pytest.raises(InputError):
        image_from_array(rgb.astype(np.float32))
    with pytest.raises(InputError):
        image_from_array(np.zeros((5, 7, 2), np.uint8))


def test_list_images_natural_order_and_filters(tmp_path):
    names = ["img10.png", "img2.JPG", "img1.jpeg", "b.webp", "a.tif", "notes.txt", ".hidden.png",
             "._img3.png", "c.bmp", "d.tiff"]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "img0.png").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "z.png").write_bytes(b"x")
    got = [p.name for p in list_images(tmp_path)]
    assert got == ["a.tif", "b.webp", "c.bmp", "d.tiff", "img1.jpeg", "img2.JPG", "img10.png"]
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert "sub/img0.png" in got and ".cache/z.png" not in got
    # Explicit files are kept whatever their extension; duplicates dropped; missing -> error.
    got = list_images([tmp_path / "notes.txt", tmp_path / "img2.JPG", str(tmp_path / "img2.JPG")])
    assert [p.name for p in got] == ["img2.JPG", "notes.txt"]
    with pytest.raises(ImageError, match="No such file or folder"):
        list_images([tmp_path / "missing.png"])
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} == set(IMAGE_EXTENSIONS)
