"""An annotation project: one ``*.qmask.json`` file holding images, questions, masks and edits.

Quick use (the GUI, ``qmask batch`` and ``qmask import`` all go through this)::

    project = Project.create("work/birds.qmask.json")      # or Project.load(path)
    image = project.add_image("work/images/a.jpg", width=640, height=480)  # path -> relative
    record = record_from_chain(chain)                      # QuestionRecord from a ChainResult
    image.upsert_question(record)                          # one record per (image, question)
    record.set_mask(edited_mask, source="user")             # after the user edits
    record.label = project.ensure_category("bird").name
    project.save()                                          # atomic; previous kept as .bak

File format (``"schema": "qmask.project"``, ``"version": 1``):

- Image paths are stored relative to the project file's folder, with ``/`` separators (an
  absolute path only when no relative path exists, e.g. another Windows drive).
- Width and height are the image *as displayed* (EXIF orientation applied); all masks, points
  and boxes are in that frame (see :mod:`engine.prompts`).
- Masks are COCO compressed RLE dicts (:mod:`engine.masks`). Heat maps are stored compactly as
  ``{"shape": [G, G], "scale": max, "f16": base64(float16 little-endian of map / max)}``.
- Times are Unix seconds (float).
- One image per line inside ``"images"`` (compact JSON per image), so saves are fast and diffs
  stay readable.

Loading validates the file and raises :class:`~engine.errors.ProjectError` with the JSON path
of the bad field. A file from a newer QMask (higher version) is refused with a clear message;
an older version goes through :data:`MIGRATIONS`. Missing image files never stop a load: see
:meth:`Project.missing_images` and :meth:`Project.relocate`.

Not thread-safe: one thread owns a Project (the GUI's main thread). ``save()`` serialises
first and then writes atomically, so a crash at any moment leaves either the previous file or
the new one, plus ``<file>.bak`` holding the version before the last save.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Literal, Mapping

import numpy as np

from . import masks as M
from .atomic import atomic_write_text, backup_path
from .errors import InputError, ProjectError
from .prompts import Point

__all__ = [
    "SCHEMA", "VERSION", "PROJECT_SUFFIX", "MIGRATIONS", "ImageStatus", "Category",
    "QuestionRecord", "ImageRecord", "Project", "RelocateReport", "ProjectAutosaver",
    "record_from_chain", "file_sha256", "displayed_size", "normalise_question",
    "point_to_json", "point_from_json", "heatmap_to_json", "heatmap_from_json",
]

SCHEMA = "qmask.project"
VERSION = 1
PROJECT_SUFFIX = ".qmask.json"

ImageStatus = Literal["pending", "ok", "failed"]
_STATUSES = ("pending", "ok", "failed")

# version -> function turning a document of that version into version + 1 (in place or new).
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


# ---------------------------------------------------------------------------------------------
# Small helpers


def normalise_question(question: str) -> str:
    """The key a question is matched by: whitespace collapsed, case kept (answers may differ)."""
    return " ".join(str(question).split())


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (identity check when images move)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def displayed_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(W, H) of an image as displayed (EXIF orientation 5-8 swap the sides); reads the header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                orientation = im.getexif().get(0x0112, 1)
            except Exception:  # a broken EXIF block is the loader's problem, not the size's
                orientation = 1
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        from .errors import ImageError

        raise ImageError(f"Cannot read the size of {path}: {err}") from err
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def point_to_json(p: Point) -> dict:
    d: dict[str, Any] = {"x": round(float(p.x), 3), "y": round(float(p.y), 3), "label": int(p.label),
                         "source": p.source, "created": round(float(p.created), 3)}
    if p.score is not None:
        d["score"] = float(p.score)
    return d


def point_from_json(d: Mapping[str, Any], where: str = "point") -> Point:
    _expect(d, Mapping, where)
    try:
        return Point(x=float(d["x"]), y=float(d["y"]), label=int(d.get("label", 1)),
                     score=None if d.get("score") is None else float(d["score"]),
                     source=d.get("source", "user"), created=float(d.get("created", 0.0)))
    except (KeyError, TypeError, ValueError) as err:
        raise ProjectError(f"{where}: not a valid point ({err}).") from err


def heatmap_to_json(heat: np.ndarray) -> dict:
    """``[G, G]`` float map -> ``{"shape", "scale", "f16"}`` (about 1.5 KB for 24x24)."""
    a = np.asarray(heat, dtype=np.float32)
    if a.ndim != 2:
        raise InputError(f"A heat map must be 2-D [G, G], not shape {a.shape}.")
    finite = np.isfinite(a)
    a = np.where(finite, a, 0.0).astype(np.float32)
    scale = float(np.abs(a).max()) if a.size else 0.0
    scaled = (a / scale) if scale > 0 else a
    data = scaled.astype("<f2").tobytes()
    return {"shape": [int(a.shape[0]), int(a.shape[1])], "scale": scale,
            "f16": base64.b64encode(data).decode("ascii")}


def heatmap_from_json(d: Mapping[str, Any], where: str = "heatmap") -> np.ndarray:
    _expect(d, Mapping, where)
    try:
        shape = [int(v) for v in d["shape"]]
        scale = float(d["scale"])
        raw = base64.b64decode(d["f16"], validate=True)
    except (KeyError, TypeError, ValueError) as err:
        raise ProjectError(f"{where}: not a valid heat map ({err}).") from err
    if len(shape) != 2 or min(shape) <= 0 or len(raw) != 2 * shape[0] * shape[1]:
        raise ProjectError(f"{where}: heat-map data does not match its shape {shape}.")
    return (np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape) * np.float32(scale))


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ProjectError(f"{where}: expected {names}, found {type(value).__name__}.")
    return value


def _get(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         default: Any = ..., nullable: bool = False) -> Any:
    """``d[key]`` checked against ``kind``; ``default`` when absent (required if not given)."""
    if key not in d:
        if default is ...:
            raise ProjectError(f"{where}: missing field '{key}'.")
        return default
    value = d[key]
    if value is None and nullable:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise ProjectError(f"{where}.{key}: must be a finite number.")
    return _expect(value, kind, f"{where}.{key}")


def _rle_from_json(value: Any, where: str) -> dict | None:
    if value is None:
        return None
    try:
        M.rle_counts(value)
    except InputError as err:
        raise ProjectError(f"{where}: {err}") from err
    counts = value["counts"]
    if isinstance(counts, (list, tuple)):  # keep memory compact: re-encode as a string
        return M.encode_rle(M.decode_rle(value))
    return {"size": [int(value["size"][0]), int(value["size"][1])],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else str(counts)}


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class Category:
    """A label. ``id`` is stable (COCO ``category_id``); names are unique, case-sensitive."""

    id: int
    name: str
    color: tuple[int, int, int] | None = None  # RGB for overlays; None = palette colour

    def to_json(self) -> dict:
        d: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.color is not None:
            d["color"] = list(self.color)
        return d

    @classmethod
    def from_json(cls, d: Any, where: str) -> "Category":
        _expect(d, Mapping, where)
        color = _get(d, "color", list, where, default=None, nullable=True)
        if color is not None and (len(color) != 3 or not all(isinstance(c, int) for c in color)):
            raise ProjectError(f"{where}.color: expected [R, G, B] integers.")
        name = _get(d, "name", str, where)
        if not name.strip():
            raise ProjectError(f"{where}.name: a category needs a name.")
        return cls(id=_get(d, "id", int, where), name=name,
                   color=tuple(color) if color is not None else None)


@dataclass
class QuestionRecord:
    """One question asked about one image, with everything needed to review and export it.

    ``mask_rle`` is the final mask (what is exported); ``auto_mask_rle`` the mask the chain
    produced from the automatic points, kept so the export can say how much a person changed
    it (:meth:`provenance_iou`). ``points`` are the prompt points as they are now (automatic
    ones keep ``source="auto"``, moved or added ones are ``"user"``); ``auto_points`` those
    the heat map gave. ``heatmap`` is the ``[G, G]`` Grad-CAM question map (float32).
    """

    question: str
    answer: str | None = None
    captions: list[str] = field(default_factory=list)
    itm_probability: float | None = None
    heatmap: np.ndarray | None = field(default=None, repr=False)
    auto_points: list[Point] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    mask_rle: dict | None = None
    auto_mask_rle: dict | None = None
    mask_score: float | None = None  # EfficientSAM's predicted IoU of the chosen candidate
    mask_source: Literal["auto", "user", "import"] = "auto"
    label: str | None = None  # a Category name; None = the project's default category
    alpha: float = 0.5
    models: dict[str, str] = field(default_factory=dict)  # role -> model id
    random_weights: bool = False
    accepted: bool = False
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # pipeline notes (e.g. "segmentation failed")
    _mask_cache: tuple[str, np.ndarray] | None = field(default=None, repr=False, compare=False)
    _priority_cache: tuple[Any, float] | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        return normalise_question(self.question)

    # masks --------------------------------------------------------------------------------
    def mask(self) -> np.ndarray | None:
        """The final mask, ``[H, W]`` bool, decoded once and cached.

        Read-only (the cache is shared): copy it to edit, then :meth:`set_mask` the copy.
        """
        if self.mask_rle is None:
            return None
        counts = self.mask_rle["counts"]
        if self._mask_cache is None or self._mask_cache[0] != counts:
            decoded = M.decode_rle(self.mask_rle)
            decoded.flags.writeable = False
            self._mask_cache = (counts, decoded)
        return self._mask_cache[1]

    def auto_mask(self) -> np.ndarray | None:
        return None if self.auto_mask_rle is None else M.decode_rle(self.auto_mask_rle)

    def set_mask(self, mask: np.ndarray | None, *, source: Literal["auto", "user", "import"] = "user",
                 score: float | None = None) -> None:
        """Replace the final mask (e.g. after the user's edit); marks the record updated."""
        self.mask_rle = None if mask is None else M.encode_rle(mask)
        self.mask_source = source
        self.mask_score = None if score is None else float(score)
        self.touch()

    def provenance_iou(self) -> float | None:
        """IoU between the automatic mask and the final one (1.0 = untouched); None if either is missing."""
        if self.mask_rle is None or self.auto_mask_rle is None:
            return None
        if self.mask_rle["counts"] == self.auto_mask_rle["counts"] and self.mask_rle["size"] == self.auto_mask_rle["size"]:
            return 1.0
        return M.mask_iou(self.auto_mask(), self.mask())

    @property
    def user_points(self) -> list[Point]:
        return [p for p in self.points if p.source == "user"]

    @property
    def edited(self) -> bool:
        """True when a person changed the points or the mask."""
        return bool(self.user_points) or self.mask_source == "user" or \
            [(_pkey(p)) for p in self.points if p.source == "auto"] != [_pkey(p) for p in self.auto_points]

    def touch(self) -> None:
        self.updated = time.time()

    # json ---------------------------------------------------------------------------------
    def to_json(self) -> dict:
        d: dict[str, Any] = {
            "question": self.question,
            "answer": self.answer,
            "captions": list(self.captions),
            "itm_probability": _num(self.itm_probability),
            "heatmap": None if self.heatmap is None else heatmap_to_json(self.heatmap),
            "auto_points": [point_to_json(p) for p in self.auto_points],
            "points": [point_to_json(p) for p in self.points],
            "mask": self.mask_rle,
            "auto_mask": self.auto_mask_rle,
            "mask_score": _num(self.mask_score),
            "mask_source": self.mask_source,
            "label": self.label,
            "alpha": float(self.alpha),
            "models": dict(self.models),
            "random_weights": bool(self.random_weights),
            "accepted": bool(self.accepted),
            "created": round(float(self.created), 3),
            "updated": round(float(self.updated), 3),
        }
        if self.timings:
            d["timings"] = {k: round(float(v), 4) for k, v in self.timings.items()}
        if self.notes:
            d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_json(cls, d: Any, where: str) -> "QuestionRecord":
        _expect(d, Mapping, where)
        question = _get(d, "question", str, where)
        captions = _get(d, "captions", list, where, default=[])
        if not all(isinstance(c, str) for c in captions):
            raise ProjectError(f"{where}.captions: expected a list of strings.")
        models = _get(d, "models", dict, where, default={})
        mask_source = _get(d, "mask_source", str, where, default="auto")
        if mask_source not in ("auto", "user", "import"):
            raise ProjectError(f"{where}.mask_source: expected auto, user or import, found {mask_source!r}.")
        heat = d.get("heatmap")
        alpha = _get(d, "alpha", float, where, default=0.5)
        if not 0.0 <= alpha <= 1.0:
            raise ProjectError(f"{where}.alpha: must be in [0, 1], found {alpha}.")
        mask_rle = _rle_from_json(d.get("mask"), f"{where}.mask")
        auto = d.get("auto_mask")
        if mask_rle is not None and isinstance(auto, Mapping) and auto.get("counts") == mask_rle["counts"] \
                and list(auto.get("size", [])) == mask_rle["size"]:
            auto_mask_rle = dict(mask_rle)  # untouched mask: validated once
        else:
            auto_mask_rle = _rle_from_json(auto, f"{where}.auto_mask")
        rec = cls(
            question=question,
            answer=_get(d, "answer", str, where, default=None, nullable=True),
            captions=list(captions),
            itm_probability=_get(d, "itm_probability", float, where, default=None, nullable=True),
            heatmap=None if heat is None else heatmap_from_json(heat, f"{where}.heatmap"),
            auto_points=[point_from_json(p, f"{where}.auto_points[{i}]")
                         for i, p in enumerate(_get(d, "auto_points", list, where, default=[]))],
            points=[point_from_json(p, f"{where}.points[{i}]")
                    for i, p in enumerate(_get(d, "points", list, where, default=[]))],
            mask_rle=mask_rle,
            auto_mask_rle=auto_mask_rle,
            mask_score=_get(d, "mask_score", float, where, default=None, nullable=True),
            mask_source=mask_source,  # type: ignore[arg-type]
            label=_get(d, "label", str, where, default=None, nullable=True),
            alpha=alpha,
            models={str(k): str(v) for k, v in models.items()},
            random_weights=_get(d, "random_weights", bool, where, default=False),
            accepted=_get(d, "accepted", bool, where, default=False),
            created=_get(d, "created", float, where, default=0.0),
            updated=_get(d, "updated", float, where, default=0.0),
            timings={str(k): float(v) for k, v in _get(d, "timings", dict, where, default={}).items()},
            notes=[str(n) for n in _get(d, "notes", list, where, default=[])],
        )
        return rec


def _pkey(p: Point) -> tuple:
    return (round(p.x, 3), round(p.y, 3), p.label)


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass
class ImageRecord:
    """One image of the project. ``path`` is relative to the project folder, ``/``-separated."""

    path: str
    width: int | None = None  # as displayed (EXIF applied); None until read
    height: int | None = None
    sha256: str | None = None
    status: ImageStatus = "pending"
    error: str | None = None  # why the image failed (user-facing sentence)
    questions: list[QuestionRecord] = field(default_factory=list)
    added: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def find_question(self, question: str) -> QuestionRecord | None:
        key = normalise_question(question)
        for q in self.questions:
            if q.key == key:
                return q
        return None

    def upsert_question(self, record: QuestionRecord) -> QuestionRecord:
        """Add ``record``, replacing the record of the same question if there is one."""
        for i, q in enumerate(self.questions):
            if q.key == record.key:
                self.questions[i] = record
                return record
        self.questions.append(record)
        return record

    def remove_question(self, question: str) -> bool:
        key = normalise_question(question)
        before = len(self.questions)
        self.questions = [q for q in self.questions if q.key != key]
        return len(self.questions) != before

    def mark_failed(self, error: str) -> None:
        self.status, self.error = "failed", str(error)

    def mark_ok(self, width: int, height: int) -> None:
        self.status, self.error = "ok", None
        self.width, self.height = int(width), int(height)

    def to_json(self) -> dict:
        return {"path": self.path, "width": self.width, "height": self.height, "sha256": self.sha256,
                "status": self.status, "error": self.error, "added": round(float(self.added), 3),
                "questions": [q.to_json() for q in self.questions]}

    @classmethod
    def from_json(cls, d: Any, where: str) -> "ImageRecord":
        _expect(d, Mapping, where)
        path = _get(d, "path", str, where)
        if not path:
            raise ProjectError(f"{where}.path: an image needs a path.")
        status = _get(d, "status", str, where, default="pending")
        if status not in _STATUSES:
            raise ProjectError(f"{where}.status: expected one of {', '.join(_STATUSES)}, found {status!r}.")
        width = _get(d, "width", int, where, default=None, nullable=True)
        height = _get(d, "height", int, where, default=None, nullable=True)
        questions = [QuestionRecord.from_json(q, f"{where}.questions[{i}]")
                     for i, q in enumerate(_get(d, "questions", list, where, default=[]))]
        for j, q in enumerate(questions):
            for name in ("mask_rle", "auto_mask_rle"):
                rle = getattr(q, name)
                if rle is not None and width is not None and height is not None \
                        and list(rle["size"]) != [height, width]:
                    raise ProjectError(f"{where}.questions[{j}]: mask size {rle['size']} does not "
                                       f"match the image ({height}x{width}, H x W).")
        return cls(path=path, width=width, height=height,
                   sha256=_get(d, "sha256", str, where, default=None, nullable=True),
                   status=status, error=_get(d, "error", str, where, default=None, nullable=True),  # type: ignore[arg-type]
                   questions=questions, added=_get(d, "added", float, where, default=0.0))


@dataclass
class RelocateReport:
    """What :meth:`Project.relocate` did: relative paths found, not found, or found with other content."""

    found: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    hash_mismatch: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{len(self.found)} image(s) found"]
        if self.not_found:
            parts.append(f"{len(self.not_found)} not found")
        if self.hash_mismatch:
            parts.append(f"{len(self.hash_mismatch)} with the same name but different content (left as they were)")
        return ", ".join(parts) + "."


# ---------------------------------------------------------------------------------------------
# Project


@dataclass
class Project:
    """The whole project; see the module docstring for the file format."""

    path: Path
    images: list[ImageRecord] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    meta: dict[str, str] = field(default_factory=dict)  # free-form app info (e.g. batch settings)
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._reindex()

    # -- files ------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], *, overwrite: bool = False) -> "Project":
        """A new, empty project, saved at once (so the path is known to work)."""
        p = Path(path).expanduser().absolute()
        if p.exists() and not overwrite:
            raise ProjectError(f"{p} already exists; open it instead, or choose another name.")
        if not p.parent.is_dir():
            raise ProjectError(f"The folder {p.parent} does not exist.")
        project = cls(path=p)
        project.save()
        return project

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Project":
        """Read and validate a project file (images need not exist)."""
        p = Path(path).expanduser().absolute()
        try:
            raw = p.read_bytes()
        except FileNotFoundError as err:
            raise ProjectError(f"No project file at {p}.") from err
        except OSError as err:
            raise ProjectError(f"Cannot read the project file {p}: {err.strerror or err}.") from err
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            hint = f" A backup of the previous save is at {backup_path(p)}." if backup_path(p).exists() else ""
            raise ProjectError(f"{p} is not a valid project file (broken JSON: {err}).{hint}") from err
        return cls.from_json(doc, p)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str]) -> "Project":
        p = Path(path)
        return cls.load(p) if p.exists() else cls.create(p)

    @classmethod
    def from_json(cls, doc: Any, path: Path) -> "Project":
        where = path.name
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise ProjectError(f"{path} is not a QMask project (no \"schema\": \"{SCHEMA}\").")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ProjectError(f"{path}: the project version must be a positive integer, found {version!r}.")
        if version > VERSION:
            raise ProjectError(f"{path} was written by a newer QMask (project version {version}; this "
                               f"QMask reads up to {VERSION}). Update QMask to open it.")
        while version < VERSION:
            migrate = MIGRATIONS.get(version)
            if migrate is None:
                raise ProjectError(f"{path}: no migration from project version {version}.")
            doc = migrate(doc)
            version += 1
            doc["version"] = version
        images = [ImageRecord.from_json(d, f"{where}: images[{i}]")
                  for i, d in enumerate(_get(doc, "images", list, where, default=[]))]
        categories = [Category.from_json(d, f"{where}: categories[{i}]")
                      for i, d in enumerate(_get(doc, "categories", list, where, default=[]))]
        names = [c.name for c in categories]
        ids = [c.id for c in categories]
        if len(set(names)) != len(names) or len(set(ids)) != len(ids):
            raise ProjectError(f"{path}: category names and ids must be unique.")
        meta = _get(doc, "meta", dict, where, default={})
        project = cls(path=path, images=images, categories=categories,
                      created=_get(doc, "created", float, where, default=0.0),
                      modified=_get(doc, "modified", float, where, default=0.0),
                      meta={str(k): str(v) for k, v in meta.items()})
        project._reindex()
        if len(project._index) != len(images):
            raise ProjectError(f"{path}: the same image is listed twice.")
        return project

    def to_text(self) -> str:
        """The file's text: a small header, then one compact JSON line per image."""
        header = {"schema": SCHEMA, "version": VERSION, "created": round(self.created, 3),
                  "modified": round(self.modified, 3), "meta": self.meta,
                  "categories": [c.to_json() for c in self.categories]}
        head = json.dumps(header, indent=1, ensure_ascii=False, allow_nan=False)
        enc = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        lines = [enc.encode(img.to_json()) for img in self.images]
        body = ',\n  '.join(lines)
        images = '"images": [\n  ' + body + '\n ]' if lines else '"images": []'
        return head[:-2] + ',\n ' + images + '\n}\n'

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the project atomically; the previous file is kept as ``<name>.bak``.

        ``path`` saves under a new name ("save as") and makes it the project's path; image
        paths are rewritten relative to the new folder.
        """
        if path is not None:
            new = Path(path).expanduser().absolute()
            absolute = [self.abs_path(img) for img in self.images]
            self.path = new
            for img, a in zip(self.images, absolute):
                img.path = self.rel_path(a)
            self._reindex()
        self.modified = time.time()
        text = self.to_text()
        try:
            atomic_write_text(self.path, text, backup=True)
        except OSError as err:
            raise ProjectError(f"Cannot save the project to {self.path}: {err.strerror or err}. "
                               "The previous version is unchanged.") from err

    @property
    def folder(self) -> Path:
        return self.path.parent

    # -- images -----------------------------------------------------------------------------
    def rel_path(self, image_path: str | os.PathLike[str]) -> str:
        """The stored form of an image path: relative to the project folder, ``/``-separated."""
        p = Path(image_path).expanduser()
        if not p.is_absolute():
            p = Path.cwd() / p
        p = Path(os.path.normpath(p))
        try:
            rel = os.path.relpath(p, os.path.normpath(self.folder))
        except ValueError:  # another drive on Windows
            return p.as_posix()
        return PurePosixPath(*Path(rel).parts).as_posix()

    def abs_path(self, image: ImageRecord | str) -> Path:
        rel = image.path if isinstance(image, ImageRecord) else image
        p = Path(rel)
        return p if p.is_absolute() else Path(os.path.normpath(self.folder / p))

    def _reindex(self) -> None:
        self._index = {img.path: i for i, img in enumerate(self.images)}

    def find_image(self, path: str | os.PathLike[str]) -> ImageRecord | None:
        """The record of an image given its path (absolute, cwd-relative or stored form)."""
        key = str(path) if str(path) in self._index else self.rel_path(path)
        i = self._index.get(key)
        return None if i is None else self.images[i]

    def add_image(self, path: str | os.PathLike[str], *, width: int | None = None,
                  height: int | None = None, sha256: str | None = None,
                  read_size: bool = False) -> ImageRecord:
        """Add an image (or return the existing record). ``read_size`` reads W x H from the file."""
        existing = self.find_image(path)
        if existing is not None:
            if width is not None and height is not None and existing.width is None:
                existing.width, existing.height = int(width), int(height)
            if sha256 and not existing.sha256:
                existing.sha256 = sha256
            return existing
        if read_size and (width is None or height is None):
            width, height = displayed_size(self.abs_path(self.rel_path(path)))
        record = ImageRecord(path=self.rel_path(path), width=None if width is None else int(width),
                             height=None if height is None else int(height), sha256=sha256)
        self.images.append(record)
        self._index[record.path] = len(self.images) - 1
        return record

    def remove_image(self, path: str | os.PathLike[str]) -> bool:
        record = self.find_image(path)
        if record is None:
            return False
        self.images.remove(record)
        self._reindex()
        return True

    def iter_questions(self) -> Iterator[tuple[ImageRecord, QuestionRecord]]:
        for img in self.images:
            for q in img.questions:
                yield img, q

    def record_chain(self, image_path: str | os.PathLike[str], chain: Any, *,
                     label: str | None = None, sha256: str | None = None) -> QuestionRecord:
        """Store a ChainResult for an image (added if new), replacing an older run of the same question."""
        w, h = chain.image_size
        img = self.add_image(image_path, width=w, height=h, sha256=sha256)
        img.mark_ok(w, h)
        record = record_from_chain(chain, label=label)
        if label is not None:
            self.ensure_category(label)
        return img.upsert_question(record)

    # -- categories -------------------------------------------------------------------------
    def ensure_category(self, name: str) -> Category:
        """The category called ``name``, created with the next free id if new."""
        name = str(name).strip()
        if not name:
            raise InputError("A label needs a name.")
        for c in self.categories:
            if c.name == name:
                return c
        cat = Category(id=max((c.id for c in self.categories), default=0) + 1, name=name)
        self.categories.append(cat)
        return cat

    def category(self, name: str | None) -> Category | None:
        for c in self.categories:
            if c.name == name:
                return c
        return None

    # -- moved images -----------------------------------------------------------------------
    def missing_images(self) -> list[ImageRecord]:
        """Records whose file is not where the project says (the app then asks for the folder)."""
        return [img for img in self.images if not self.abs_path(img).is_file()]

    def relocate(self, new_folder: str | os.PathLike[str], *, verify_hash: bool = True,
                 only_missing: bool = True) -> RelocateReport:
        """Point missing images at ``new_folder``: matched by relative path first, then by file
        name anywhere under it; a match whose SHA-256 differs from the recorded one is refused.
        Save afterwards to keep the new paths.
        """
        root = Path(new_folder).expanduser().absolute()
        if not root.is_dir():
            raise ProjectError(f"{root} is not a folder.")
        by_name: dict[str, list[Path]] = {}
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                by_name.setdefault(f, []).append(Path(dirpath) / f)
        report = RelocateReport()
        targets = self.missing_images() if only_missing else list(self.images)
        for img in targets:
            rel_parts = PurePosixPath(img.path).parts
            candidates: list[Path] = []
            # Longest trailing part of the old relative path that exists under the new folder.
            for k in range(len(rel_parts)):
                tail = [part for part in rel_parts[k:] if part not in ("..", "/")]
                if tail:
                    c = root.joinpath(*tail)
                    if c.is_file():
                        candidates.append(c)
                        break
            candidates += [c for c in sorted(by_name.get(img.name, [])) if c not in candidates]
            chosen = None
            mismatch = False
            for c in candidates:
                if verify_hash and img.sha256:
                    if file_sha256(c) != img.sha256:
                        mismatch = True
                        continue
                chosen = c
                break
            if chosen is None:
                (report.hash_mismatch if mismatch else report.not_found).append(img.path)
                continue
            old = img.path
            img.path = self.rel_path(chosen)
            report.found.append(old)
        self._reindex()
        return report

    # -- review ------------------------------------------------------------------------------
    def images_by_review_need(self) -> list[ImageRecord]:
        """Images sorted most-in-need-of-review first (see :func:`engine.project_review.review_priority`).

        Failed images come last (nothing to review until the file is fixed); ties keep order.
        """
        from .project_review import review_priority

        def key(item: tuple[int, ImageRecord]) -> tuple[int, float, int]:
            i, img = item
            return (1 if img.status == "failed" else 0, -review_priority(img), i)

        return [img for _, img in sorted(enumerate(self.images), key=key)]

    # -- counts ------------------------------------------------------------------------------
    def summary(self) -> dict[str, int]:
        n_q = sum(len(img.questions) for img in self.images)
        return {"images": len(self.images),
                "ok": sum(img.status == "ok" for img in self.images),
                "failed": sum(img.status == "failed" for img in self.images),
                "pending": sum(img.status == "pending" for img in self.images),
                "questions": n_q,
                "accepted": sum(q.accepted for _, q in self.iter_questions())}


# ---------------------------------------------------------------------------------------------
# From the pipeline


def record_from_chain(chain: Any, *, label: str | None = None, accepted: bool = False) -> QuestionRecord:
    """Build a QuestionRecord from an :class:`engine.results.ChainResult`.

    The chosen candidate becomes both the final and the automatic mask; points given to the
    decoder become ``points`` and the automatic ones ``auto_points``.
    """
    mask = chain.mask
    rle = None if mask is None else M.encode_rle(mask)
    seg = chain.segmentation
    score = None
    if seg is not None and seg.candidates:
        score = float(seg.candidates[chain.chosen].iou)
    points = list(seg.points) if seg is not None else list(chain.points)
    now = time.time()
    return QuestionRecord(
        question=chain.question,
        answer=chain.answer.answer if chain.answer is not None else None,
        captions=list(chain.captions.captions) if chain.captions is not None else [],
        itm_probability=float(chain.heatmap.itm_probability),
        heatmap=np.asarray(chain.heatmap.question_map, dtype=np.float32),
        auto_points=[p for p in chain.points if p.source == "auto"],
        points=points,
        mask_rle=rle,
        auto_mask_rle=None if rle is None else dict(rle),
        mask_score=score,
        mask_source="auto",
        label=label,
        alpha=float(chain.fusion.alpha) if chain.fusion is not None else 0.5,
        models=dict(chain.models),
        random_weights=bool(chain.random_weights),
        accepted=accepted,
        created=now,
        updated=now,
        timings=dict(chain.timings),
        notes=[str(n) for n in getattr(chain, "notes", ()) or ()],
    )


# ---------------------------------------------------------------------------------------------
# Autosave


class ProjectAutosaver:
    """Debounced saving for the GUI: call :meth:`changed` after every edit, :meth:`flush` from a
    timer (e.g. every second) and on close. Saves at most every ``min_interval_s``; errors are
    returned, not raised, so the app can show them and carry on.
    """

    def __init__(self, project: Project, min_interval_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.project = project
        self.min_interval_s = float(min_interval_s)
        self._clock = clock
        self._dirty = False
        self._last = -math.inf
        self.last_error: ProjectError | None = None

    @property
    def dirty(self) -> bool:
        return self._dirty

    def changed(self) -> ProjectError | None:
        """Note a change; saves now if the last save is old enough."""
        self._dirty = True
        if self._clock() - self._last >= self.min_interval_s:
            return self.flush()
        return None

    def flush(self) -> ProjectError | None:
        """Save now if anything changed since the last save."""
        if not self._dirty:
            return None
        try:
            self.project.save()
        except ProjectError as err:
            self.last_error = err
            return err
        self._dirty = False
        self._last = self._clock()
        self.last_error = None
        return None
