"""Per-image state of the window, kept while navigating, stored in an ``engine.project`` Project.

:class:`ImageSession` holds what one image shows: its pixels (once read), the question being
worked on, the live stage results (heat map, candidates, fusion, captions, answer), the prompt
points, the chosen candidate, alpha, the label and whether the mask is accepted, plus the
image's own undo stack. Everything a person makes is mirrored into the project's
:class:`~engine.project.QuestionRecord` at once, so the autosaved project file (shared with
``qmask batch``) always holds it. Arrays from the engine are never modified here.

:class:`Workspace` is the list of sessions (the image list), the project and its autosaver.
An image whose file is not where the project says is kept in the list as *missing* (never
marked failed in the project): :meth:`Workspace.relocate` points the project at the folder it
moved to and the sessions follow.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui

from engine import fusion
from engine.images import LoadedImage
from engine.pipeline import word_maps
from engine.project import Project, ProjectAutosaver, QuestionRecord, RelocateReport
from engine.prompts import Point
from engine.results import AnswerResult, CaptionsResult, HeatmapResult, SegmentationResult

from .prompt_state import PromptState

SEG_CACHE_SIZE = 16  # segmentations kept per image, so undo/redo shows a mask at once
IMAGES_IN_MEMORY = 4  # pixels and cached masks kept for the most recently shown images only


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

    def __init__(self, workspace: "Workspace", path: Path) -> None:
        super().__init__()
        self.workspace = workspace
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
        record.mark_ok(*image.size)
        if self._restored_mask is not None and self._restored_mask.shape != image.rgb.shape[:2]:
            self._restored_mask = None  # the file changed since the project was saved
        self.workspace.touch()
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
        self.workspace.image_record(self).mark_failed(message)
        self.workspace.touch()
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
        record.upsert_question(self.record)
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
        self.workspace.touch()
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
        self.workspace.touch()
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
            self.workspace.image_record(self).upsert_question(self.record)
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
        self.workspace.touch()
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
        self.workspace.touch()
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
        elif self.record is not None and self.segmentation is None and self.prompts.empty:
            self.record.set_mask(None, source="user")
        self.workspace.touch()
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
            self.workspace.project.ensure_category(self.record.label)

    def set_label(self, label: str) -> None:
        self.label = label.strip()
        if self.record is not None:
            self._sync_label()
            self.record.touch()
        self.workspace.touch()
        self.changed.emit("label")

    def set_accepted(self, accepted: bool) -> None:
        self.accepted = bool(accepted)
        if self.record is not None:
            self.record.accepted = self.accepted
            self._sync_label()
            self.record.touch()
        self.workspace.touch()
        self.changed.emit("accepted")

    # ------------------------------------------------------------------ project
    def _restore_from_project(self) -> None:
        """Take up the most recently updated question of this image, if the project has one."""
        img = self.workspace.project.find_image(self.path)
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
    nothing is written next to the user's images unasked.
    """
    if data_dir is None:
        data_dir = data_folder()
    folder = (first_image.parent if first_image is not None else Path.cwd()).resolve()
    digest = hashlib.sha1(str(folder).encode("utf-8")).hexdigest()[:8]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in folder.name) or "images"
    return data_dir / "projects" / f"{name}-{digest}.qmask.json"


class Workspace(QtCore.QObject):
    """The images of the window (in list order), the current one, and the autosaved project."""

    current_changed = QtCore.Signal(object)  # ImageSession or None
    sessions_changed = QtCore.Signal()
    save_failed = QtCore.Signal(str)

    def __init__(self, project: Project, default_alpha: float = 0.5, autosave_interval_s: float = 1.0) -> None:
        super().__init__()
        self.project = project
        self.default_alpha = default_alpha
        self.sessions: list[ImageSession] = []
        self.index = -1
        self._recent: list[ImageSession] = []  # most recently shown last
        self.autosaver = ProjectAutosaver(project, min_interval_s=autosave_interval_s)
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(int(autosave_interval_s * 1000))
        self._timer.timeout.connect(self.flush)
        self._timer.start()
        self.undo_group = QtGui.QUndoGroup(self)

    @property
    def current(self) -> ImageSession | None:
        return self.sessions[self.index] if 0 <= self.index < len(self.sessions) else None

    def image_record(self, session: ImageSession):
        return self.project.add_image(session.path)

    def add_paths(self, paths: list[Path]) -> list[ImageSession]:
        """Add images (already present ones are skipped); returns the new sessions."""
        known = {s.path.resolve() for s in self.sessions}
        added = []
        for p in paths:
            p = Path(p)
            if p.resolve() in known:
                continue
            known.add(p.resolve())
            session = ImageSession(self, p)
            session.missing = not p.is_file()
            self.project.add_image(p)
            self.undo_group.addStack(session.undo_stack)
            self.sessions.append(session)
            added.append(session)
        if added:
            self.touch()
            self.sessions_changed.emit()
        return added

    def add_project_images(self) -> None:
        """Sessions for every image of the project, most in need of review first."""
        ordered = self.project.images_by_review_need()
        self.add_paths([self.project.abs_path(img) for img in ordered])

    def missing_sessions(self, recheck: bool = False) -> list[ImageSession]:
        """Sessions whose file is not where it was; ``recheck`` looks at the disk again."""
        if recheck:
            for session in self.sessions:
                if session.image is None:
                    session.set_missing(not session.path.is_file())
        return [s for s in self.sessions if s.missing]

    def relocate(self, folder: str | os.PathLike[str]) -> tuple[RelocateReport, list[tuple[ImageSession, str]]]:
        """Find the missing images under ``folder`` (by their old relative path, then by name; a
        recorded SHA-256 must match), update the project and the sessions, and save.

        Returns the project's report and ``(session, old key)`` for every session that moved.
        Raises ProjectError when ``folder`` is not a folder or the project cannot be saved.
        """
        records = [(s, r, r.path) for s in self.missing_sessions(recheck=True)
                   if (r := self.project.find_image(s.path)) is not None]
        report = self.project.relocate(folder)
        moved: list[tuple[ImageSession, str]] = []
        for session, record, old_path in records:
            if record.path != old_path:
                old_key = session.key
                session.move_to(self.project.abs_path(record))
                moved.append((session, old_key))
        self.missing_sessions(recheck=True)
        err = self.autosaver.changed() or self.autosaver.flush()  # atomic save (engine.project)
        if err is not None:
            raise err
        if moved:
            self.sessions_changed.emit()
        return report, moved

    def find(self, path: Path) -> int:
        target = Path(path).resolve()
        for i, s in enumerate(self.sessions):
            if s.path.resolve() == target:
                return i
        return -1

    def set_index(self, index: int) -> ImageSession | None:
        if not self.sessions:
            return None
        index = max(0, min(index, len(self.sessions) - 1))
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

    # ------------------------------------------------------------------ saving
    def touch(self) -> None:
        err = self.autosaver.changed()
        if err is not None:
            self.save_failed.emit(str(err))

    def flush(self) -> bool:
        err = self.autosaver.flush()
        if err is not None:
            self.save_failed.emit(str(err))
            return False
        return True

    def close(self) -> bool:
        """Stop autosaving, save, and drop the undo histories (see below); returns the save's success."""
        self._timer.stop()
        saved = self.flush()
        # The undo commands reference their session: reference cycles, left to Python's cyclic
        # collector once the window is gone. Its tp_clear (shiboken 6.11) hands a command's wrapper
        # ownership of the C++ command while the QUndoStack still holds it, so the command is
        # deleted twice: a corrupted heap. Qt deletes them here instead, while all is alive.
        for session in self.sessions:
            session.undo_stack.clear()
        return saved
