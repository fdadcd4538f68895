"""Overlay rendering for exports and the CLI (the GUI draws its own live layers).

All inputs are in the displayed image frame: ``rgb`` ``[H, W, 3]`` uint8, ``mask`` ``[H, W]``
bool, points and box in ``(x, y)`` pixels (pixel centres at ``+0.5``, see
:mod:`engine.prompts`). The heat map is a ``[Gh, Gw]`` grid over the whole image (stretched to
``W x H``, as BLIP squashed the image). Colours are RGB.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..runtime.atomic import atomic_write_bytes
from ..errors import ExportError, InputError
from .fusion import normalise
from .images import check_rgb
from ..prompts import POSITIVE, Box, Point

POSITIVE_COLOR = (0, 200, 0)
NEGATIVE_COLOR = (230, 30, 30)
BORDER_COLOR = (255, 255, 255)
BOX_COLOR = (255, 215, 0)
_SHIFT = 4  # cv2 sub-pixel drawing: coordinates in 1/16 pixel
_ONE = 1 << _SHIFT


def _scale(h: int, w: int) -> float:
    """Drawing unit: ~1 px for a 600 px image side, growing with the image."""
    return max(1.0, min(h, w) / 600.0)


def _fixed(x: float, y: float) -> tuple[int, int]:
    # (x, y) pixel frame -> cv2 frame (integer coordinates at pixel centres), in 1/16 px.
    return int(round((x - 0.5) * _ONE)), int(round((y - 0.5) * _ONE))


def heat_colors(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[Gh, Gw]`` map -> ``[H, W, 3]`` uint8 RGB turbo colours, bilinear upsampling of the
    min-max normalised map to ``size = (W, H)``."""
    h01 = normalise(heat).astype(np.float32)
    w, h = size
    up = cv2.resize(h01, (int(w), int(h)), interpolation=cv2.INTER_LINEAR)
    u8 = cv2.convertScaleAbs(up, alpha=255.0)  # rounds and saturates to uint8, fast
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)


def render_overlay(rgb: np.ndarray, heat: np.ndarray | None = None, mask: np.ndarray | None = None,
                   points: Sequence[Point] = (), heat_opacity: float = 0.45,
                   mask_color: tuple[int, int, int] = (30, 144, 255), box: Box | None = None,
                   mask_opacity: float = 0.4) -> np.ndarray:
    """Image with heat map, mask, box and points drawn on it; returns a new ``[H, W, 3]`` uint8.

    heat: ``[Gh, Gw]`` (any scale; min-max normalised, upsampled bilinearly, turbo colour map,
        blended uniformly at ``heat_opacity``).
    mask: ``[H, W]`` bool; translucent ``mask_color`` fill at ``mask_opacity`` plus an outline of
        every contour (holes included).
    points: positives as green discs, negatives as red discs with a white x, both with a white
        border and numbered from 1 in the given order. box: yellow rectangle.
    Line widths, radii and text scale grow with the image size. ``rgb`` is not modified.
    """
    img = check_rgb(rgb, InputError)
    h, w = img.shape[:2]
    for name, value in (("heat_opacity", heat_opacity), ("mask_opacity", mask_opacity)):
        if not (0.0 <= float(value) <= 1.0):
            raise InputError(f"{name} must be between 0 and 1, not {value!r}.")
    color = tuple(int(c) for c in np.asarray(mask_color).reshape(-1))
    if len(color) != 3 or not all(0 <= c <= 255 for c in color):
        raise InputError(f"mask_color must be three values 0-255 (R, G, B), not {mask_color!r}.")
    m = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != (h, w):
            raise InputError(f"The mask has shape {m.shape} but the image is {h} rows x {w} columns.")
        m = np.ascontiguousarray(m.astype(bool, copy=False))
    # uint8 blends with cv2.addWeighted (rounded, saturated): ~10x faster than float numpy on
    # a 12 MP photo.
    canvas = np.array(img, dtype=np.uint8, order="C", copy=True)
    if heat is not None:
        canvas = cv2.addWeighted(canvas, 1.0 - heat_opacity, heat_colors(heat, (w, h)), heat_opacity, 0.0)
    unit = _scale(h, w)
    if m is not None and m.any():
        solid = np.empty_like(canvas)
        solid[:] = color
        tinted = cv2.addWeighted(canvas, 1.0 - mask_opacity, solid, mask_opacity, 0.0)
        m8 = m.view(np.uint8)  # bool -> 0/1 bytes without a copy
        canvas = cv2.copyTo(tinted, m8, canvas)
        contours, _ = cv2.findContours(m8, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, color,
                         thickness=max(1, round(1.5 * unit)), lineType=cv2.LINE_AA)
    if box is not None:
        cv2.rectangle(canvas, _fixed(box.x0, box.y0), _fixed(box.x1, box.y1), BOX_COLOR,
                      thickness=max(1, round(2 * unit)), lineType=cv2.LINE_AA, shift=_SHIFT)
    radius = max(3.0, 6.0 * unit)
    for i, pt in enumerate(points, start=1):
        _draw_point(canvas, pt, i, radius, unit)
    return canvas


def _draw_point(canvas: np.ndarray, pt: Point, number: int, radius: float, unit: float) -> None:
    centre = _fixed(pt.x, pt.y)
    r = int(round(radius * _ONE))
    border = int(round((radius + max(1.0, 1.5 * unit)) * _ONE))
    color = POSITIVE_COLOR if pt.label == POSITIVE else NEGATIVE_COLOR
    cv2.circle(canvas, centre, border, BORDER_COLOR, thickness=-1, lineType=cv2.LINE_AA, shift=_SHIFT)
    cv2.circle(canvas, centre, r, color, thickness=-1, lineType=cv2.LINE_AA, shift=_SHIFT)
    if pt.label != POSITIVE:
        d = int(round(radius * 0.55 * _ONE))
        cx, cy = centre
        t = max(1, round(unit))
        cv2.line(canvas, (cx - d, cy - d), (cx + d, cy + d), BORDER_COLOR, t, cv2.LINE_AA, _SHIFT)
        cv2.line(canvas, (cx - d, cy + d), (cx + d, cy - d), BORDER_COLOR, t, cv2.LINE_AA, _SHIFT)
    text = str(number)
    font_scale = 0.45 * unit
    thick = max(1, round(unit))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick + 2)
    h, w = canvas.shape[:2]
    gap = radius + 2 * unit
    x = pt.x + gap if pt.x + gap + tw <= w else pt.x - gap - tw  # keep the number on the image
    y = pt.y - radius if pt.y - radius - th >= 0 else pt.y + radius + th
    org = (int(round(x)), int(round(y)))
    # Dark halo then white text: readable on any background.
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, BORDER_COLOR, thick, cv2.LINE_AA)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a PNG atomically: encode in memory first, then :func:`engine.runtime.atomic.atomic_write_bytes`
    (temp file in the same folder, fsync, ``os.replace``). A failure, in encoding or writing,
    leaves any existing file untouched and no temp file behind.

    image: ``[H, W, 3]`` uint8 RGB, ``[H, W, 4]`` uint8 RGBA, or ``[H, W]`` uint8/uint16 grey.
    Returns the path. Raises InputError for a bad array, ExportError when it cannot be written.
    """
    p = Path(path)
    data = png_bytes(image, p.name)
    try:
        atomic_write_bytes(p, data)
    except OSError as e:
        raise ExportError(f"Could not write {p}: {e.strerror or e}.") from e
    return p


def png_bytes(image: np.ndarray, name: str = "the image") -> bytes:
    """The PNG file's bytes of ``image`` (see :func:`save_png` for the arrays taken)."""
    a = np.asarray(image)
    ok_dtype = a.dtype == np.uint8 or (a.dtype == np.uint16 and a.ndim == 2)
    if not ok_dtype or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or 0 in a.shape:
        raise InputError(f"A PNG must be an [H, W], [H, W, 3] or [H, W, 4] uint8 array (or [H, W] uint16), "
                         f"not {a.dtype} {a.shape}.")
    if a.ndim == 3:
        a = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2BGR if a.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    try:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(a))
    except cv2.error as e:
        raise ExportError(f"Could not encode {name} as PNG: {e}") from e
    if not ok:
        raise ExportError(f"Could not encode {name} as PNG.")
    return buf.tobytes()
