"""Overlay rendering and atomic PNG saves (engine.imaging.overlay)."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

import engine.imaging.overlay as overlay
from engine.errors import ExportError, InputError
from engine.imaging.overlay import (NEGATIVE_COLOR, POSITIVE_COLOR, heat_colors, render_overlay,
                            save_png)
from engine.prompts import Box, Point


def _image(h=120, w=160):
    return np.full((h, w, 3), 100, np.uint8)


def test_plain_image_is_returned_unchanged_as_a_copy():
    rgb = _image()
    out = render_overlay(rgb)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    np.testing.assert_array_equal(out, rgb)
    assert out is not rgb


def test_heat_map_tints_hot_regions_differently():
    rgb = _image(96, 96)
    heat = np.zeros((24, 24))
    heat[:12, :12] = 1e-3  # top-left quarter hot (tiny Grad-CAM scale)
    out = render_overlay(rgb, heat=heat)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert not np.array_equal(out[10, 10], out[80, 80])
    colors = heat_colors(heat, (96, 96))
    assert colors.shape == (96, 96, 3)
    # Hot end of turbo is red-ish, cold end blue-ish.
    assert colors[10, 10, 0] > colors[10, 10, 2] and colors[80, 80, 2] > colors[80, 80, 0]
    # Opacity 0 leaves the image as it was; opacity 1 shows only the colour map.
    np.testing.assert_array_equal(render_overlay(rgb, heat=heat, heat_opacity=0.0), rgb)
    np.testing.assert_array_equal(render_overlay(rgb, heat=heat, heat_opacity=1.0), colors)


def test_heat_map_non_square_grid_and_image():
    out = render_overlay(_image(50, 200), heat=np.random.default_rng(0).random((6, 30)))
    assert out.shape == (50, 200, 3)


def test_mask_changes_pixels_inside_only():
    rgb = _image()
    mask = np.zeros(rgb.shape[:2], bool)
    mask[30:90, 40:120] = True
    out = render_overlay(rgb, mask=mask, mask_color=(30, 144, 255))
    inside, outside = out[60, 80].astype(int), out[5, 5].astype(int)
    np.testing.assert_array_equal(outside, rgb[5, 5])
    assert not np.array_equal(inside, rgb[60, 80])
    assert inside[2] > inside[0]  # tinted towards the blue mask colour
    # Outline: the border pixels are more saturated than the fill.
    assert abs(int(out[30, 80, 2]) - 255) < abs(int(inside[2]) - 255)
    # Empty mask: nothing drawn.
    np.testing.assert_array_equal(render_overlay(rgb, mask=np.zeros_like(mask)), rgb)


def test_mask_with_the_wrong_shape():
    with pytest.raises(InputError, match="mask has shape"):
        render_overlay(_image(), mask=np.zeros((10, 10), bool))


def test_points_are_drawn_in_their_colours_at_their_place():
    rgb = _image(300, 400)
    pts = [Point(100.5, 80.5, label=1), Point(300.5, 200.5, label=0)]
    out = render_overlay(rgb, points=pts)
    np.testing.assert_array_equal(out[80, 100], POSITIVE_COLOR)
    # The negative point's centre is under its white x; just off the diagonals it is red.
    np.testing.assert_array_equal(out[200 - 4, 300], NEGATIVE_COLOR)
    assert np.all(out[200, 300] > 200)  # white cross at the centre
    # White border ring around the positive disc (radius 6 at this size, border to ~7.5).
    assert np.all(out[80, 100 - 7] > 200)
    # Far from the points the image is untouched.
    np.testing.assert_array_equal(out[290, 10], rgb[290, 10])
    # A number is written next to each point (some pixels change right of the disc).
    right = out[65:85, 110:130]
    assert np.any(right != 100)


def test_point_size_scales_with_the_image():
    small = render_overlay(_image(200, 200), points=[Point(100.5, 100.5)])
    big = render_overlay(_image(2400, 2400), points=[Point(1200.5, 1200.5)])
    green_small = np.all(small == POSITIVE_COLOR, axis=2).sum()
    green_big = np.all(big == POSITIVE_COLOR, axis=2).sum()
    assert green_big > 10 * green_small


def test_box_is_drawn():
    rgb = _image()
    out = render_overlay(rgb, box=Box(20, 20, 100, 80))
    assert not np.array_equal(out[20, 60], rgb[20, 60])
    np.testing.assert_array_equal(out[50, 60], rgb[50, 60])


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                                 np.zeros((4, 4, 4), np.uint8)])
def test_bad_image(bad):
    with pytest.raises(InputError):
        render_overlay(bad)


def test_bad_opacity_and_colour():
    with pytest.raises(InputError, match="heat_opacity"):
        render_overlay(_image(), heat=np.eye(3), heat_opacity=1.5)
    with pytest.raises(InputError, match="mask_color"):
        render_overlay(_image(), mask_color=(300, 0, 0))


def test_input_is_not_modified():
    rgb = _image()
    before = rgb.copy()
    mask = np.zeros(rgb.shape[:2], bool)
    mask[10:20, 10:20] = True
    mask_before = mask.copy()
    render_overlay(rgb, heat=np.eye(4), mask=mask, points=[Point(5, 5)], box=Box(1, 1, 50, 50))
    np.testing.assert_array_equal(rgb, before)
    np.testing.assert_array_equal(mask, mask_before)


def test_save_png_roundtrip_and_no_temp_left(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = save_png(tmp_path / "o.png", rgb)
    assert os.listdir(tmp_path) == ["o.png"]
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, rgb)
    gray16 = np.arange(600, dtype=np.uint16).reshape(20, 30) * 100
    save_png(tmp_path / "g.png", gray16)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED), gray16)
    # Usual permissions (umask), not a private temp file's 0600.
    if os.name == "posix":
        umask = os.umask(0)
        os.umask(umask)
        assert (os.stat(path).st_mode & 0o777) == (0o666 & ~umask)


def test_failed_encoding_leaves_old_file_and_no_partial(tmp_path, monkeypatch):
    path = tmp_path / "o.png"
    path.write_bytes(b"old contents")

    def broken(*a, **k):
        raise cv2.error("boom")

    monkeypatch.setattr(overlay.cv2, "imencode", broken)
    with pytest.raises(ExportError, match="o.png"):
        save_png(path, _image())
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["o.png"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "o.png"
    path.write_bytes(b"old contents")

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(overlay.os, "fsync", failing_fsync)
    with pytest.raises(ExportError, match="No space left"):
        save_png(path, _image())
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["o.png"]


def test_save_png_bad_array_and_missing_folder(tmp_path):
    with pytest.raises(InputError):
        save_png(tmp_path / "x.png", np.zeros((4, 4, 3), np.float64))
    with pytest.raises(ExportError, match="Could not write"):
        save_png(tmp_path / "no" / "such" / "x.png", _image())
    assert os.listdir(tmp_path) == []
