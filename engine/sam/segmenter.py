"""Interactive EfficientSAM: encode an image once, decode on every prompt change.

In the spirit of segment-anything's ``SamPredictor``::

    seg = Segmenter(load_efficient_sam(path))          # device "auto", float32
    seg.set_image(rgb, image_id="photo.jpg")            # the expensive encoder, cached (LRU)
    result = seg.predict([Point(120, 80)])              # decoder only: tens of milliseconds
    result.best.mask                                    # [H, W] bool, full image size

Prompt rules (the model takes at most ``decoder_max_num_input_points`` = 6 prompt slots):

- point labels are exactly 1 (foreground) or 0 (background), never heat-map scores;
- a box takes two slots (its corners, labels 2 and 3);
- with more points than free slots, the most recent ones are kept (by ``Point.created``, ties
  in the order given) and ``SegmentationResult.dropped_points`` says how many were left out;
- a point outside the image (x outside [0, W] or y outside [0, H]) is refused with
  ``PromptError``: it says nothing about the image and is almost always a frame mix-up;
- a box reaching past the image is clipped to it (dragging past the border means "up to the
  edge"); a box wholly outside is refused.

Full-size masks: the published model bicubic-scales three float logit maps to the image size
(about a third of a second on a CPU at 12 megapixels). On the CPU, each 256x256 logit map is
quantised to int16 with a per-mask scale and bicubic-resized by OpenCV (same kernel and
pixel-centre convention as torch's ``bicubic``), then thresholded at 0: the same mask edge,
smooth, in a few milliseconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..runtime.accelerate import accelerate
from ..runtime.devices import out_of_memory_as_resource_error, resolve_device, resolve_dtype
from .model import EfficientSam, ImageContext
from .decoder import LABEL_BOX_BOTTOM_RIGHT, LABEL_BOX_TOP_LEFT
from ..errors import ImageError, InputError, PromptError
from ..imaging.images import check_rgb
from ..prompts import NEGATIVE, POSITIVE, Box, Point
from ..results import MaskCandidate, SegmentationResult

__all__ = ["Segmenter", "logits_to_masks", "select_points", "image_to_tensor"]


@dataclass(frozen=True)
class _Encoded:
    embeddings: torch.Tensor  # [1, C, 64, 64] on the segmenter's device and dtype
    height: int
    width: int


class Segmenter:
    """EfficientSAM predictor with an LRU cache of image embeddings.

    ``device``: None or ``"auto"`` picks CUDA when present, else the CPU; ``dtype``: None means
    float32 (the reference numerics), ``"auto"`` float16 on CUDA, or an explicit name (see
    :mod:`engine.runtime.devices`). The model is moved to that device and dtype (in place) and put in
    eval mode. Not thread-safe: one thread owns a Segmenter.
    """

    def __init__(self, model: EfficientSam, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, cache_size: int = 8) -> None:
        if not isinstance(model, EfficientSam):
            raise InputError(f"Segmenter needs an EfficientSam model, not {type(model).__name__}.")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise InputError(f"The image cache holds at least one image; cache_size {cache_size!r} is not valid.")
        self.device = resolve_device(device if device is not None else "auto")
        self.dtype = torch.float32 if dtype is None else resolve_dtype(dtype, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        # Packed image-encoder layers (fp32 on the CPU) and the decoder's fast path.
        accelerate(self.model, "efficient_sam", self.device, self.dtype)
        self.cache_size = cache_size
        self.encode_count = 0  # encoder runs so far (a cache hit does not count)
        self.last_encode_seconds = 0.0
        self._cache: OrderedDict[str, _Encoded] = OrderedDict()
        self._current: str | None = None
        # Decoder work that depends on the current image only (see EfficientSam.prepare_decoder).
        self._context: tuple[_Encoded, ImageContext] | None = None

    # --- images ----------------------------------------------------------------------------

    @property
    def max_prompts(self) -> int:
        return self.model.decoder_max_num_input_points

    @property
    def image_id(self) -> str | None:
        """The image that ``predict`` works on (None before the first ``set_image``)."""
        return self._current

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(W, H) of the current image."""
        entry = self._cache.get(self._current) if self._current is not None else None
        return (entry.width, entry.height) if entry is not None else None

    def is_cached(self, image_id: str) -> bool:
        return image_id in self._cache

    def set_image(self, image: np.ndarray, image_id: str) -> bool:
        """Make ``image`` (``[H, W, 3]`` uint8 RGB) current; returns True if the encoder ran.

        ``image_id`` names the image's *content* (a path plus modification time, or a hash):
        an id seen recently, with the same size, reuses its embeddings without encoding.
        """
        if not isinstance(image_id, str) or not image_id:
            raise InputError("set_image needs a non-empty image_id string naming the image.")
        rgb = _rgb_of(image)
        h, w = rgb.shape[:2]
        entry = self._cache.get(image_id)
        if entry is not None and (entry.height, entry.width) == (h, w):
            self._cache.move_to_end(image_id)
            self._current = image_id
            return False
        start = time.perf_counter()
        with torch.inference_mode(), out_of_memory_as_resource_error(self.device, "encoding the image"):
            pixels = image_to_tensor(rgb, self.device, self.dtype, self.model.img_size)
            embeddings = self.model.get_image_embeddings(pixels)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        self.encode_count += 1
        self.last_encode_seconds = time.perf_counter() - start
        self._cache[image_id] = _Encoded(embeddings, h, w)
        self._cache.move_to_end(image_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self._current = image_id
        return True

    # --- prompts -> masks ------------------------------------------------------------------

    def predict(self, points: Sequence[Point] = (), box: Box | None = None,
                multimask: bool = True) -> SegmentationResult:
        """Masks for the current image from points and/or a box (decoder only).

        Returns candidates sorted by predicted IoU, best first: 3 with ``multimask``, else 1.
        """
        start = time.perf_counter()
        if self._current is None:
            raise InputError("No image to segment: call set_image first.")
        entry = self._cache[self._current]
        h, w = entry.height, entry.width
        points = tuple(points)
        for p in points:
            if not isinstance(p, Point):
                raise PromptError(f"Prompt points must be engine.prompts.Point objects, not {type(p).__name__}.")
            if p.label not in (POSITIVE, NEGATIVE):  # Point checks this too; labels must never be scores
                raise PromptError(f"A point label must be 1 or 0, not {p.label!r}.")
            if not (np.isfinite(p.x) and np.isfinite(p.y) and 0 <= p.x <= w and 0 <= p.y <= h):
                raise PromptError(f"The point ({p.x:g}, {p.y:g}) lies outside the {w}x{h} image; "
                                  "points are (x, y) pixels of the image as displayed.")
        if box is not None:
            box = _clip_box(box, w, h)
        if not points and box is None:
            raise PromptError("Nothing to segment from: add at least one point (click on the object) or draw a box.")

        slots = self.max_prompts - (2 if box is not None else 0)
        kept, dropped = select_points(points, slots)
        coords = [(p.x, p.y) for p in kept]
        labels = [int(p.label) for p in kept]
        if box is not None:
            coords += [(box.x0, box.y0), (box.x1, box.y1)]
            labels += [LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT]

        with torch.inference_mode(), out_of_memory_as_resource_error(self.device, "predicting the mask"):
            if self._context is None or self._context[0] is not entry:
                self._context = (entry, self.model.prepare_decoder(entry.embeddings))
            pts = torch.tensor(coords, dtype=torch.float32, device=self.device).reshape(1, 1, -1, 2)
            lab = torch.tensor(labels, dtype=torch.int64, device=self.device).reshape(1, 1, -1)
            low_res_t, iou_t = self.model.predict_masks(entry.embeddings, pts, lab, multimask_output=multimask,
                                                        input_h=h, input_w=w, image_context=self._context[1])
            iou = iou_t[0, 0].float().cpu().numpy()  # [K]
            order = np.argsort(-iou, kind="stable")
            low_res = low_res_t[0, 0].float().cpu().numpy()[order]  # [K, 256, 256]
            iou = iou[order]
        # On the CPU even with a GPU at hand: bringing three 12-megapixel boolean masks back from
        # the GPU took longer (H100: 36 ms) than making them here from the small logits (23 ms).
        masks = logits_to_masks(low_res, h, w)
        candidates = tuple(MaskCandidate(mask=masks[i], low_res_logits=low_res[i], iou=float(iou[i]))
                           for i in range(len(order)))
        return SegmentationResult(candidates=candidates, points=kept, dropped_points=dropped, box=box,
                                  seconds=time.perf_counter() - start)


# --- helpers (pure, tested on their own) ---------------------------------------------------------

def select_points(points: Sequence[Point], slots: int) -> tuple[tuple[Point, ...], int]:
    """Keep the ``slots`` most recent points (by ``created``; ties: later in ``points`` is newer),
    in their given order; returns (kept, number dropped)."""
    points = tuple(points)
    if len(points) <= slots:
        return points, 0
    by_age = sorted(range(len(points)), key=lambda i: (points[i].created, i))
    keep = sorted(by_age[len(points) - slots:]) if slots > 0 else []
    return tuple(points[i] for i in keep), len(points) - len(keep)


def logits_to_masks(low_res: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[K, h, w]`` float mask logits -> ``[K, height, width]`` bool masks (logit > 0).

    Equivalent to the published ``F.interpolate(..., mode="bicubic") > 0`` (same kernel,
    a = -0.75, half-pixel centres, replicated border), computed on int16 copies scaled per mask
    so that OpenCV's fast fixed-point path applies; the quantisation step is max|logit|/32000.
    """
    low_res = np.asarray(low_res, dtype=np.float32)
    if low_res.ndim != 3:
        raise InputError(f"mask logits must be [K, h, w], not {low_res.shape}")
    out = np.empty((low_res.shape[0], height, width), dtype=bool)
    for k, logits in enumerate(low_res):
        logits = np.nan_to_num(logits, nan=0.0, posinf=1e4, neginf=-1e4)
        peak = float(np.abs(logits).max())
        if peak == 0.0:
            out[k] = False
            continue
        # Headroom below 32767: the cubic kernel overshoots by up to ~1.25x between samples
        # (cv2 saturates, which would keep the sign anyway).
        q = np.rint(logits * (25000.0 / peak)).astype(np.int16)
        if q.shape != (height, width):
            q = cv2.resize(q, (width, height), interpolation=cv2.INTER_CUBIC)
        np.greater(q, 0, out=out[k])
    return out


def image_to_tensor(rgb: np.ndarray, device: torch.device, dtype: torch.dtype, size: int | None = None) -> torch.Tensor:
    """``[H, W, 3]`` uint8 -> ``[1, 3, H', W']`` in [0, 1] on ``device`` (not yet normalised).

    With ``size`` on the CPU, the image is already resized to ``size x size`` here, by OpenCV's
    bilinear resize on float32 (the same two-tap, half-pixel-centre interpolation as the
    published ``F.interpolate(..., "bilinear")``, to ~1e-7, at a third of its time on a
    12-megapixel photo). On a GPU the uint8 image travels (a quarter of the bytes) and the
    model's ``preprocess`` resizes it there.
    """
    rgb = np.ascontiguousarray(rgb)
    if size is not None and device.type == "cpu" and rgb.shape[:2] != (size, size):
        small = cv2.resize(rgb.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
        t = torch.from_numpy(small).permute(2, 0, 1)[None].div(255.0)
    else:
        if not rgb.flags.writeable:  # torch.from_numpy warns on read-only arrays
            rgb = rgb.copy()
        t = torch.from_numpy(rgb).to(device).permute(2, 0, 1)[None].to(torch.float32).div_(255.0)
    return t if dtype == torch.float32 else t.to(dtype)


def _rgb_of(image: object) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` (``check_rgb``); grey ``[H, W]`` and RGBA (alpha dropped) are taken too."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"The image must be a numpy array (H x W x 3, uint8 RGB), not {type(image).__name__}.")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return check_rgb(image)


def _clip_box(box: Box, width: int, height: int) -> Box:
    if not isinstance(box, Box):
        raise PromptError(f"A box prompt must be an engine.prompts.Box, not {type(box).__name__}.")
    x0, x1 = min(max(box.x0, 0.0), width), min(max(box.x1, 0.0), width)
    y0, y1 = min(max(box.y0, 0.0), height), min(max(box.y1, 0.0), height)
    if not (x1 > x0 and y1 > y0):
        raise PromptError(f"The box ({box.x0:g}, {box.y0:g})-({box.x1:g}, {box.y1:g}) lies outside the "
                          f"{width}x{height} image.")
    if (x0, y0, x1, y1) == (box.x0, box.y0, box.x1, box.y1):
        return box
    return Box(x0, y0, x1, y1)
