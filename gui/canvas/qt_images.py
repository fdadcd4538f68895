"""numpy <-> QImage helpers (thumbnails of mask candidates, screenshots in tests)."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6 import QtGui

from gui.canvas.layers import MASK_COLOUR


def rgb_to_qimage(rgb: np.ndarray) -> QtGui.QImage:
    """[H, W, 3] uint8 -> QImage (a deep copy: the QImage owns its pixels)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


def qimage_to_rgb(image: QtGui.QImage) -> np.ndarray:
    """QImage -> [H, W, 3] uint8 (a copy)."""
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.bytesPerLine() * h)
    return buf.reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


_small_image: list = [None, None, None]  # (key, the scaled image, the array it came from: keeps id() unique)


def mask_thumbnail(rgb: np.ndarray, mask: np.ndarray | None, side: int = 96) -> QtGui.QPixmap:
    """The image scaled to fit ``side`` x ``side`` with ``mask`` tinted on it."""
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    key = (id(rgb), rgb.shape, size)
    if _small_image[0] != key:  # the image is scaled once; each candidate only scales its mask
        step = max(1, max(h, w) // (4 * side))  # every step-th pixel first: a thumbnail of a 12 MP photo took 20-30 ms
        source = np.ascontiguousarray(rgb[::step, ::step])
        _small_image[:] = [key, cv2.resize(source, size, interpolation=cv2.INTER_AREA).astype(np.float32), rgb]
    small = _small_image[1].copy()
    if mask is not None:
        # the bool mask's bytes as they are: no full-size copy (a 12-megapixel mask, each click)
        m = cv2.resize(np.asarray(mask, dtype=bool).view(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        small *= 0.55  # darken outside so the mask stands out at thumbnail size
        small[m] = small[m] / 0.55 * 0.4 + np.asarray(MASK_COLOUR, np.float32) * 0.6
    return QtGui.QPixmap.fromImage(rgb_to_qimage(np.clip(small, 0, 255).astype(np.uint8)))
