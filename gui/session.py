"""Per-image state of the window, kept while navigating, stored in an ``engine.project`` Project.

:class:`ImageSession` holds what one image shows: its pixels (once read), the question being
worked on, the live stage results (heat map, candidates, fusion, captions, answer), the prompt
points, the chosen candidate, alpha, the label and whether the mask is accepted, plus the
image's own undo stack. Everything a person makes is written to the project at once, one
transaction per change (the project file is shared with ``qmask batch`` and other writers).
Arrays from the engine are never modified here.

:class:`Workspace` is the image list over the project (ids and paths only: a session, and the
image's records, are made when the image is shown), the current image, and the watch for
changes made by other processes. An image whose file is not where the project says is kept
in the list as *missing* (never marked failed in the project): :meth:`Workspace.relocate`
points the project at the folder it moved to and the sessions follow.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui

from engine import fusion
from engine.images import LoadedImage
from engine.pipeline import word_maps
from engine.errors import ProjectError
from engine.project import ImageRecord, Project, QuestionRecord, RelocateReport
from engine.prompts import Point
from engine.results import AnswerResult, CaptionsResult, HeatmapResult, SegmentationResult

from .prompt_state import PromptState

SEG_CACHE_SIZE = 16  # segmentations kept per image, so undo/redo shows a mask at once
IMAGES_IN_MEMORY = 4  # pixels and cached masks kept for the most recently shown images only
CHECK_ALL_MISSING = 2000  # up to this many images, every file is looked for when a project opens


@dataclass(frozen=True)
class AnswerView:
    """An answer as shown: the text, the captions it came from, and the map settings behind it."""

    answer: str
    captions: tuple[str, ...]
    alpha: float
    edited_points: bool


class ImageSession(QtCore.QObject):
    """One image of the list. ``changed(aspect)`` says what changed (see ASPECTS)."""

    ASPECTS = ("image", "question", "heatmap", "prompts", "segmentation", "choice", "alpha", "fusion",
               "captions", "answer", "label", "accepted", "status")
    changed = QtCore.Signal(str)

    def __init__(self, workspace: "Workspace", path: Path, image_id: int) -> None:
        super().__init__()
        self.workspace = workspace
        self.image_id = int(image_id)
        self.path = Path(path)
        self.key = str(self.path)
        self.image: LoadedImage | None = None
        self.error: str | None = None
        self.missing = False  # the file is not at ``path`` (moved or deleted); see Workspace.relocate
        self.loading = False
        self.undo_stack = QtGui.QUndoStack(self)
        self.question = ""
        self.heatmap: HeatmapResult | None = None
        self.question_map: np.ndarray | None = None  # [G, G]; also restored from the project
        self.word_maps: tuple[tuple[str, np.ndarray], ...] = ()  # (word, [G, G]) per question word
        self.auto_points: tuple[Point, ...] = ()
        self.prompts = PromptState()
        self.segmentation: SegmentationResult | None = None
        self.chosen = 0
        self.alpha = workspace.default_alpha
        self.fused_map: np.ndarray | None = None
        self.captions: tuple[str, ...] = ()
        self.answer: AnswerView | None = None
        self.previous_answer: AnswerView | None = None
        self.answer_stale = False  # the map changed since the answer was written
        self.label = ""
        self.accepted = False
        self.generation = 0  # bumped on every prompt change; stale decoder replies are dropped
        self._seg_cache: OrderedDict[tuple, SegmentationResult] = OrderedDict()
        self._restored_mask: np.ndarray | None = None  # from the project, until the next segmentation
        self.record: QuestionRecord | None = None
        self._restore_from_project()

    # ------------------------------------------------------------------ derived
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def image_size(self) -> tuple[int, int] | None:
        return None if self.image is None else self.image.size

    @property
    def mask(self) -> np.ndarray | None:
        """The chosen mask, [H, W] bool, or None."""
        if self.segmentation is not None and self.segmentation.candidates:
            index = min(self.chosen, len(self.segmentation.candidates) - 1)
            return self.segmentation.candidates[index].mask
        return self._restored_mask

    @property
    def edited(self) -> bool:
        """The prompts differ from the automatic points, or a non-default candidate is chosen."""
        auto = PromptState(self.auto_points)
        return self.prompts.key() != auto.key() or self.chosen != 0

    @property
    def status(self) -> str:
        """For the image list: missing, failed, accepted, edited, answered, asked, new."""
        if self.missing:
            return "missing"
        if self.error:
            return "failed"
        if self.accepted:
            return "accepted"
        if self.record is not None and self.record.mask_source == "user":
            return "edited"
        if self.answer is not None:
            return "answered"
        if self.question_map is not None:
            return "asked"
        return "new"

    # ------------------------------------------------------------------ image
    def set_image(self, image: LoadedImage) -> None:
        self.image, self.error, self.loading = image, None, False
        record = self.workspace.image_record(self)
        if (record.status, record.width, record.height) != ("ok", *image.size):
            record.mark_ok(*image.size)
            self.workspace.write(lambda p: p.update_image(record))
        if self._restored_mask is not None and self._restored_mask.shape != image.rgb.shape[:2]:
            self._restored_mask = None  # the file changed since the project was saved
        self.changed.emit("image")

    def release_memory(self) -> None:
        """Drop the pixels and cached candidates (a long folder must not fill the memory).

        What the user made stays: prompts, the chosen mask, answers, undo history. The image
        is read again when shown.
        """
        if self.image is None:
            return
        keep = self.mask
        self.image = None
        self._seg_cache.clear()
        if self.segmentation is not None:
            self._restored_mask = keep
            self.segmentation = None

    def set_missing(self, missing: bool) -> bool:
        """Mark the file as not found (or found again); True when that changed. Not saved: a
        missing file is a fact about this machine, not about the image."""
        missing = bool(missing)
        if missing == self.missing:
            return False
        self.missing = missing
        self.changed.emit("status")
        return True

    def move_to(self, path: Path) -> None:
        """The file was found at ``path`` (after a relocation): the session follows it."""
        self.path = Path(path)
        self.key = str(self.path)
        self.missing = not self.path.is_file()
        if not self.missing and self.image is None:
            self.error = None  # an earlier "cannot read" may have been the missing file
        self.changed.emit("status")

    def set_failed(self, message: str) -> None:
        self.error, self.loading = message, False
        record = self.workspace.image_record(self)
        record.mark_failed(message)
        self.workspace.write(lambda p: p.update_image(record))
        self.changed.emit("status")

    # ------------------------------------------------------------------ asking
    def start_question(self, question: str) -> None:
        """A new ask: earlier results of this image are cleared (the project keeps old questions)."""
        self.question = question.strip()
        self.heatmap = None
        self.question_map = None
        self.word_maps = ()
        self.auto_points = ()
        self.segmentation = None
        self._restored_mask = None
        self.chosen = 0
        self.fused_map = None
        self.captions = ()
        self.previous_answer = None
        self.answer = None
        self.answer_stale = False
        record = self.workspace.image_record(self)
        existing = record.find_question(self.question)
        typed = typed_label(existing) if existing is not None else ""
        self.record = QuestionRecord(question=self.question, alpha=self.alpha, label=typed or None, accepted=False)
        self.label = typed
        self.accepted = False
        self.save("ask")
        for aspect in ("question", "heatmap", "segmentation", "fusion", "answer", "label", "accepted"):
            self.changed.emit(aspect)

    def set_heatmap(self, heat: HeatmapResult) -> None:
        self.heatmap = heat
        self.question_map = heat.question_map
        self.word_maps = word_maps(heat)
        if self.record is not None:
            self.record.heatmap = np.asarray(heat.question_map, dtype=np.float32)
            self.record.itm_probability = float(heat.itm_probability)
            self.record.touch()
            self.save("heatmap", source="chain")
        self.changed.emit("heatmap")

    def set_auto_points(self, points: tuple[Point, ...]) -> None:
        self.auto_points = tuple(points)
        if self.record is not None:
            self.record.auto_points = list(points)

    def set_models(self, models: dict[str, str], random_weights: bool) -> None:
        if self.record is not None:
            self.record.models = dict(models)
            self.record.random_weights = bool(random_weights)

    def set_captions(self, captions: CaptionsResult) -> None:
        self.captions = tuple(captions.captions)
        self.changed.emit("captions")

    def set_answer(self, answer: AnswerResult, captions: tuple[str, ...] | None = None) -> None:
        if self.answer is not None:
            self.previous_answer = self.answer
        self.answer = AnswerView(answer.answer, tuple(self.captions if captions is None else captions),
                                 self.alpha, self.edited)
        self.answer_stale = False
        if self.record is not None:
            self.record.answer = answer.answer
            self.record.captions = list(self.answer.captions)
            self._sync_label()
            self.record.touch()
            self.save("answer", source="chain")
        self.changed.emit("answer")

    # ------------------------------------------------------------------ prompts and masks
    def cached_segmentation(self, prompts: PromptState) -> SegmentationResult | None:
        result = self._seg_cache.get(prompts.key())
        if result is not None:
            self._seg_cache.move_to_end(prompts.key())
        return result

    def cache_segmentation(self, prompts: PromptState, result: SegmentationResult) -> None:
        self._seg_cache[prompts.key()] = result
        self._seg_cache.move_to_end(prompts.key())
        while len(self._seg_cache) > SEG_CACHE_SIZE:
            self._seg_cache.popitem(last=False)

    def ensure_record(self) -> QuestionRecord:
        """The project record edits go to; created (for the current question, maybe empty) on the first edit."""
        if self.record is None:
            self.record = QuestionRecord(question=self.question, alpha=self.alpha)
        return self.record

    def set_prompts(self, prompts: PromptState, chosen: int = 0) -> None:
        """New prompt state (an edit, undo or redo). The caller arranges for segmentation."""
        self.ensure_record()
        self.prompts = prompts
        self.generation += 1
        self.chosen = chosen
        if self.record is not None:
            self.record.points = list(prompts.points)
            self.record.touch()
            self.save("points")
        self.changed.emit("prompts")
        cached = self.cached_segmentation(prompts)
        if prompts.empty:
            self._apply_segmentation(None)
        elif cached is not None:
            self._apply_segmentation(cached)

    def preview_prompts(self, prompts: PromptState) -> None:
        """A drag in progress: shown and segmented, not an undo step, not yet saved."""
        self.prompts = prompts
        self.generation += 1
        self.changed.emit("prompts")
        cached = self.cached_segmentation(prompts)
        if cached is not None:
            self._apply_segmentation(cached)

    def accept_segmentation(self, prompts: PromptState, generation: int, result: SegmentationResult) -> bool:
        """A decoder reply; applied only if it is for the current prompts (latest wins)."""
        self.cache_segmentation(prompts, result)
        if generation != self.generation or prompts.key() != self.prompts.key():
            return False
        self._apply_segmentation(result)
        return True

    def needs_segmentation(self) -> bool:
        return not self.prompts.empty and self.cached_segmentation(self.prompts) is None

    def _apply_segmentation(self, result: SegmentationResult | None) -> None:
        self.segmentation = result
        self._restored_mask = None
        if result is not None:
            self.chosen = min(self.chosen, len(result.candidates) - 1)
        self._mask_changed()
        self.changed.emit("segmentation")

    def set_chosen(self, index: int) -> None:
        self.chosen = int(index)
        self._mask_changed()
        self.changed.emit("choice")

    def set_alpha(self, alpha: float) -> None:
        self.alpha = float(np.clip(alpha, 0.0, 1.0))
        if self.record is not None:
            self.record.alpha = self.alpha
            self.record.touch()
            self.save("alpha")
        self.changed.emit("alpha")
        self.refuse()

    def _mask_changed(self) -> None:
        mask = self.mask
        if self.record is not None and self.segmentation is not None:
            score = None
            if self.segmentation.candidates:
                score = self.segmentation.candidates[min(self.chosen, len(self.segmentation.candidates) - 1)].iou
            self.record.set_mask(mask, source="user" if self.edited else "auto", score=score)
            if not self.edited and mask is not None:
                self.record.auto_mask_rle = dict(self.record.mask_rle)
            self.save("mask", source="user" if self.edited else "chain")
        elif self.record is not None and self.segmentation is None and self.prompts.empty:
            self.record.set_mask(None, source="user")
            self.save("mask")
        self.refuse()

    def refuse(self) -> None:
        """Fuse the heat map with the chosen mask at the current alpha (pure numpy, 24 x 24)."""
        if self.question_map is None:
            return
        old = self.fused_map
        self.fused_map = fusion.fuse(self.question_map, self.mask, alpha=self.alpha)
        if old is not None and self.answer is not None and not np.allclose(old, self.fused_map):
            self.answer_stale = True
        self.changed.emit("fusion")

    def set_fused(self, fused_map: np.ndarray) -> None:
        self.fused_map = fused_map
        self.changed.emit("fusion")

    # ------------------------------------------------------------------ label and acceptance
    def _sync_label(self) -> None:
        """The record's category: what the user typed, else the answer (the default the issue asks for)."""
        if self.record is None:
            return
        answer = self.answer.answer.strip() if self.answer is not None else ""
        self.record.label = self.label or answer or None
        if self.record.label and (self.label or self.accepted):
            label = self.record.label
            self.workspace.write(lambda p: p.ensure_category(label))

    def set_label(self, label: str) -> None:
        self.label = label.strip()
        if self.record is not None:
            self._sync_label()
            self.record.touch()
            self.save("label")
        self.changed.emit("label")

    def set_accepted(self, accepted: bool) -> None:
        self.accepted = bool(accepted)
        if self.record is not None:
            self.record.accepted = self.accepted
            self._sync_label()
            self.record.touch()
            self.save("accept" if self.accepted else "unaccept")
        self.changed.emit("accepted")

    # ------------------------------------------------------------------ project
    def save(self, action: str, source: str = "user") -> None:
        """Write this image's current record to the project: one transaction, one edit-log entry."""
        if self.record is None:
            return
        record, image = self.record, self.workspace.image_record(self)
        self.workspace.write(lambda p: p.put_question(image, record, source=source, action=action))

    def reload_from_project(self) -> None:
        """Another process wrote this image's records (the later write wins): show them."""
        if self.record is not None and self.workspace.current is self and self.heatmap is not None \
                and self.answer is None:
            return  # a question of ours is still running here; its results will be written over theirs
        self.question, self.record, self.heatmap, self.question_map = "", None, None, None
        self.word_maps, self.auto_points, self.prompts = (), (), PromptState()
        self.segmentation, self._restored_mask, self.chosen = None, None, 0
        self.fused_map, self.captions, self.answer, self.previous_answer = None, (), None, None
        self.label, self.accepted, self.error = "", False, None if self.image is not None else self.error
        self._seg_cache.clear()
        self._restore_from_project()
        for aspect in self.ASPECTS[1:]:
            self.changed.emit(aspect)

    def _restore_from_project(self) -> None:
        """Take up the most recently updated question of this image, if the project has one."""
        img = self.workspace.image_record(self, refresh=True)
        if img is None:
            return
        if img.status == "failed" and img.error:
            self.error = img.error
        if not img.questions:
            return
        record = max(img.questions, key=lambda q: q.updated)
        self.record = record
        self.question = record.question
        self.question_map = record.heatmap
        self.auto_points = tuple(record.auto_points)
        self.prompts = PromptState(tuple(record.points))
        self._restored_mask = record.mask()
        self.alpha = float(record.alpha)
        self.label = typed_label(record)
        self.accepted = bool(record.accepted)
        if record.answer is not None:
            self.captions = tuple(record.captions)
            self.answer = AnswerView(record.answer, self.captions, self.alpha, record.mask_source == "user")
        if self.question_map is not None:
            self.fused_map = fusion.fuse(self.question_map, self._restored_mask, alpha=self.alpha)


def typed_label(record: QuestionRecord) -> str:
    """The label a person typed: the record's label unless it is just the answer (the default)."""
    label = (record.label or "").strip()
    return "" if label == (record.answer or "").strip() else label


def data_folder() -> Path:
    """QMask's per-user data folder (default projects, preferences): ``$QMASK_DATA_DIR``, else
    Qt's per-user app data folder, else ``~/.qmask``. Not created here."""
    env = os.environ.get("QMASK_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    loc = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.AppDataLocation)
    return Path(loc or Path.home() / ".qmask")


def default_project_path(first_image: Path | None, data_dir: Path | None = None) -> Path:
    """Where the app keeps its project when ``--project`` is not given.

    In QMask's data folder (:func:`data_folder`), named after the folder of the first image plus
    a short hash of its full path, so opening the same folder again resumes its work, and
    nothing is written next to the user's images unasked. (A ``.qmask.json`` kept there by an
    older QMask is converted on first use.)
    """
    if data_dir is None:
        data_dir = data_folder()
    folder = (first_image.parent if first_image is not None else Path.cwd()).resolve()
    digest = hashlib.sha1(str(folder).encode("utf-8")).hexdigest()[:8]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in folder.name) or "images"
    path = data_dir / "projects" / f"{name}-{digest}.qmask"
    old = path.with_name(path.name + ".json")
    return old if old.exists() and not path.exists() else path


class SessionList(Sequence):
    """The workspace's images as sessions, made on first access (a list of 100,000 images makes
    none until they are shown). Iterating makes every session: only for small lists and tests."""

    def __init__(self, workspace: "Workspace") -> None:
        self._ws = workspace

    def __len__(self) -> int:
        return len(self._ws.ids)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._ws.session_at(index)

    def index(self, session, start: int = 0, stop: int | None = None) -> int:  # type: ignore[override]
        row = self._ws.row_of_id.get(getattr(session, "image_id", -1), -1)
        if row < 0:
            raise ValueError("not in the workspace")
        return row


class Workspace(QtCore.QObject):
    """The images of the window (in list order), the current one, and the project they live in.

    Holds ``(id, path)`` for every image of the list and makes a session when an image is shown.
    Every change is written at once (``write``); a timer looks for changes made by other
    processes (``external_changed`` with the rows that changed).
    """

    current_changed = QtCore.Signal(object)  # ImageSession or None
    sessions_changed = QtCore.Signal()
    rows_changed = QtCore.Signal(list)  # list rows whose data changed (another process wrote them, files gone)
    save_failed = QtCore.Signal(str)

    def __init__(self, project: Project, default_alpha: float = 0.5, watch_interval_s: float = 1.0) -> None:
        super().__init__()
        self.project = project
        self.default_alpha = default_alpha
        self.ids: list[int] = []
        self.paths: list[Path] = []
        self.row_of_id: dict[int, int] = {}
        self._row_of_path: dict[str, int] = {}
        self._sessions: dict[int, ImageSession] = {}
        self._records: dict[int, ImageRecord] = {}  # image rows (without questions) of made sessions
        self.sessions = SessionList(self)
        self.index = -1
        self._recent: list[ImageSession] = []  # most recently shown last
        self.undo_group = QtGui.QUndoGroup(self)
        self._seen_version = self._read(project.data_version, -1)
        self._seen_seq = self._read(project.last_seq, 0)
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(int(watch_interval_s * 1000))
        self._timer.timeout.connect(self.check_external)
        self._timer.start()

    @property
    def current(self) -> ImageSession | None:
        return self.session_at(self.index) if 0 <= self.index < len(self.ids) else None

    def session_at(self, index: int) -> ImageSession:
        image_id = self.ids[index]
        session = self._sessions.get(image_id)
        if session is None:
            session = ImageSession(self, self.paths[index], image_id)
            session.missing = not session.path.is_file()
            self._sessions[image_id] = session
            self.undo_group.addStack(session.undo_stack)
        return session

    def made_sessions(self) -> list[ImageSession]:
        """The sessions made so far (images shown or worked on), in no particular order."""
        return list(self._sessions.values())

    def session_for(self, image_id: int) -> ImageSession | None:
        return self._sessions.get(image_id)

    def image_record(self, session: ImageSession, refresh: bool = False) -> ImageRecord:
        """The project's record of a session's image (with its questions when ``refresh``)."""
        record = self._records.get(session.image_id)
        if record is None or refresh:
            record = self._read(lambda: self.project.get_image(session.image_id, questions=refresh), None)
            if record is None:
                record = ImageRecord(path=self.project.rel_path(session.path), id=session.image_id)
            self._records[session.image_id] = record
        return record

    # ------------------------------------------------------------------ the list
    def _append(self, image_id: int, path: Path) -> None:
        self.row_of_id[image_id] = len(self.ids)
        self._row_of_path[str(path)] = len(self.ids)
        self.ids.append(image_id)
        self.paths.append(path)

    def add_paths(self, paths: list[Path]) -> list[ImageSession]:
        """Add images (already listed ones are skipped); returns the new sessions."""
        fresh = [Path(p) for p in dict.fromkeys(Path(p) for p in paths) if self.find(Path(p)) < 0]
        if not fresh:
            return []
        self.write(lambda p: p.add_images(fresh))
        index = dict(self._read(lambda: self.project.image_index("added"), []))
        by_rel = {rel: i for i, rel in index.items()}
        added = []
        for p in fresh:
            image_id = by_rel.get(self.project.rel_path(p))
            if image_id is None or image_id in self.row_of_id:
                continue
            self._append(image_id, self.project.abs_path(index[image_id]))
            added.append(self.session_at(len(self.ids) - 1))
        if added:
            self.sessions_changed.emit()
        return added

    def add_project_images(self) -> None:
        """Every image of the project, most in need of review first (ids and paths only)."""
        for image_id, rel in self._read(lambda: self.project.image_index("review"), []):
            if image_id not in self.row_of_id:
                self._append(image_id, self.project.abs_path(rel))
        self.sessions_changed.emit()

    def missing_sessions(self, recheck: bool = False) -> list[ImageSession]:
        """Sessions whose file is not where it was; ``recheck`` looks at the disk again.

        A list of up to :data:`CHECK_ALL_MISSING` images is checked whole (so the banner can say
        how many moved); a longer one only where images were shown (the list greys the others
        as it shows them)."""
        if recheck:
            changed = []
            for row, path in enumerate(self.paths):
                session = self._sessions.get(self.ids[row])
                if session is None and len(self.paths) <= CHECK_ALL_MISSING and not path.is_file():
                    self.session_at(row)  # made missing, at once
                    changed.append(row)
                elif session is not None and session.image is None and session.set_missing(not path.is_file()):
                    changed.append(row)
            if changed:
                self.rows_changed.emit(changed)
        return [self._sessions[i] for i in self.ids if i in self._sessions and self._sessions[i].missing]

    def relocate(self, folder: str | os.PathLike[str]) -> tuple[RelocateReport, list[tuple[ImageSession, str]]]:
        """Find the missing images under ``folder`` (by their old relative path, then by name; a
        recorded SHA-256 must match), update the project (one transaction) and the sessions.

        Returns the project's report and ``(session, old key)`` for every session that moved.
        Raises ProjectError when ``folder`` is not a folder or the project cannot be written.
        """
        report = self.project.relocate(folder)
        moved: list[tuple[ImageSession, str]] = []
        for image_id, rel in self.project.image_index("added"):
            row = self.row_of_id.get(image_id)
            if row is None:
                continue
            new = self.project.abs_path(rel)
            if new != self.paths[row]:
                self._row_of_path.pop(str(self.paths[row]), None)
                self.paths[row] = new
                self._row_of_path[str(new)] = row
                self._records.pop(image_id, None)
                session = self._sessions.get(image_id)
                if session is not None:
                    old_key = session.key
                    session.move_to(new)
                    moved.append((session, old_key))
        self.missing_sessions(recheck=True)
        if report.found:
            self.sessions_changed.emit()
        return report, moved

    def find(self, path: Path) -> int:
        row = self._row_of_path.get(str(Path(path)), -1)
        if row < 0:  # another spelling of the same file (relative, with "..")
            row = self._row_of_path.get(str(self.project.abs_path(self.project.rel_path(path))), -1)
        return row

    def set_index(self, index: int) -> ImageSession | None:
        if not self.ids:
            return None
        index = max(0, min(index, len(self.ids) - 1))
        if index == self.index:
            return self.current
        self.index = index
        current = self.current
        if current in self._recent:
            self._recent.remove(current)
        self._recent.append(current)
        for old in self._recent[:-IMAGES_IN_MEMORY]:
            old.release_memory()
        self._recent = self._recent[-IMAGES_IN_MEMORY:]
        self.undo_group.setActiveStack(current.undo_stack)
        self.current_changed.emit(current)
        return current

    def step(self, delta: int) -> ImageSession | None:
        return self.set_index(self.index + delta)

    # ------------------------------------------------------------------ the project
    def write(self, change) -> bool:
        """Run one write of the project (``change(project)``); a failure is reported, not raised."""
        try:
            change(self.project)
        except ProjectError as err:
            self.save_failed.emit(str(err))
            return False
        return True

    def _read(self, read, default):
        try:
            return read()
        except ProjectError as err:
            self.save_failed.emit(str(err))
            return default

    def check_external(self) -> list[int]:
        """Pick up what other processes wrote since the last look: new images join the list,
        changed rows are announced, a shown image's records are read again. Returns the rows."""
        version = self._read(self.project.data_version, self._seen_version)
        if version == self._seen_version:
            return []
        self._seen_version = version
        rows, self._seen_seq = self._read(lambda: self.project.changed_since(self._seen_seq), ([], self._seen_seq))
        changed, grew = [], False
        for r in rows:
            if self.project.own_seq.get(r.id) == r.seq:
                continue  # our own write
            if r.id not in self.row_of_id:
                self._append(r.id, self.project.abs_path(r.path))
                grew = True
                continue
            changed.append(self.row_of_id[r.id])
            self._records.pop(r.id, None)
            session = self._sessions.get(r.id)
            if session is not None:
                session.reload_from_project()
        if grew:
            self.sessions_changed.emit()
        if changed:
            self.rows_changed.emit(changed)
        return changed

    def flush(self) -> bool:
        """Every change is already written; kept for "Save": checkpoints the journal into the file."""
        return self.write(lambda p: p.checkpoint())

    def close(self) -> bool:
        """Stop watching, drop the undo histories (see below) and close the project."""
        self._timer.stop()
        # The undo commands reference their session: reference cycles, left to Python's cyclic
        # collector once the window is gone. Its tp_clear (shiboken 6.11) hands a command's wrapper
        # ownership of the C++ command while the QUndoStack still holds it, so the command is
        # deleted twice: a corrupted heap. Qt deletes them here instead, while all is alive.
        for session in self.made_sessions():
            session.undo_stack.clear()
        self.project.close()
        return True
