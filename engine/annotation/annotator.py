"""A scriptable annotation core: one image's objects, the pipeline and an undo history.

The app is a view of the same pieces (an :class:`~engine.annotation.state.ImageAnnotation` per
image, its edits, its asks); :class:`Annotator` drives them from a script or notebook, decoding
each object's mask right after the edit that needs it (the app does it on its engine thread)::

    with Annotator.open("pets.qmask", "photos/park.jpg", models_dir="models/") as a:
        run = a.ask("where are the dogs?")                  # one proposal per dog
        a.keep(run.object_uids[0])                          # it is yours now
        a.drop(run.object_uids[-1])                         # not a dog
        cat = a.new_object([Point(410, 220)], category="cat")   # EfficientSAM from one click
        a.paint(cat, [(400, 200), (430, 240)], radius=6)    # a brush stroke over its mask
        a.undo()                                            # the stroke is gone again
        a.accept_all()
    print([(o.category, o.accepted) for o in a.objects])

Every change is written to the project as it happens (one transaction each); there is no save.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from ..prompts import Box, Point
from ..project import ObjectRecord, Project, QuestionRun
from .candidates import prepare_candidates
from .chain import ChainRequest, run_chain
from .corrections import PaintStroke, ReplaceMask
from .edits import History, SetAccepted, SetCategory, SetPrompts
from .object_edits import AddObject, DeleteObjects, KeepProposal, accept_all, merge_objects, new_object
from .pipeline_protocol import PipelineProtocol
from .prompts import PromptState
from .state import ImageAnnotation
from .stores import ProjectStore

__all__ = ["Annotator"]

_ASK_IDS = itertools.count(1)


class Annotator:
    """One image of a project, annotated from code; see the module docstring.

    ``pipeline``: a :class:`~engine.annotation.pipeline_protocol.PipelineProtocol` (the
    :class:`~engine.annotation.pipeline.Pipeline`, or a test's stand-in); the image is set on it
    when the annotator opens. Objects are addressed by uid.
    """

    def __init__(self, project: Project, image_path: str | Path, pipeline: PipelineProtocol) -> None:
        from ..imaging.images import load_image

        self.project = project
        self.pipeline = pipeline
        self._own_project = False
        loaded = load_image(Path(image_path))
        record = project.find_image(image_path, records=False) or project.add_image(image_path)
        self.store = ProjectStore(project)
        self.image = ImageAnnotation(self.store, Path(image_path), int(record.id))
        self.history = History()
        self.image.history = self.history
        self.image.set_image(loaded)
        pipeline.set_image(loaded.rgb, image_id=loaded.image_id)
        self._made: dict[str, tuple] = {}  # uid -> the prompts its mask was made from
        self._seen()

    @classmethod
    def open(cls, project: str | Path, image_path: str | Path, *, models_dir: str | Path | None = None,
             settings: Any = None, pipeline: PipelineProtocol | None = None) -> "Annotator":
        """Open (or create) the project and the image; the models load on first use."""
        from .pipeline import Pipeline

        proj = Project.open_or_create(project, writer="script")
        pipe = pipeline if pipeline is not None else Pipeline.from_settings(settings, models_dir=models_dir)
        annotator = cls(proj, image_path, pipe)
        annotator._own_project = True
        return annotator

    def __enter__(self) -> "Annotator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._own_project:
            self.project.close()

    # ------------------------------------------------------------------ reading
    @property
    def objects(self) -> list[ObjectRecord]:
        """The image's objects, in drawing order (bottom first)."""
        return [o.record for o in self.image.ordered()]

    def object(self, uid: str) -> ObjectRecord:
        return self.image.object_state(uid).record

    def mask(self, uid: str) -> Any:
        """An object's final mask, ``[H, W]`` bool."""
        return self.image.object_state(uid).mask

    @property
    def runs(self) -> list[QuestionRun]:
        return [r.record for r in self.image.runs.values()]

    # ------------------------------------------------------------------ asking
    def ask(self, question: str, instances: str = "auto") -> QuestionRun:
        """Run the chain for ``question``: its heat map, proposals (one, or one per hot region with
        ``instances="several"``; "auto" decides from the question), captions and answer. Returns
        the run; its ``object_uids`` are the objects it proposed."""
        from .chain import instances_for

        request = ChainRequest(question.strip(), instances=instances)
        ask_id = next(_ASK_IDS)
        self.image.asks.start(request.question, instances_for(request), ask_id)
        try:
            run_chain(self.pipeline, request, on_result=lambda r: self.image.asks.take(r, ask_id),
                      prepare_candidates=prepare_candidates)
        except BaseException:
            self.image.asks.abandon(ask_id)
            self._seen()
            raise
        self.image.asks.finish(ask_id)
        self._seen()
        return self.image.runs[request.question and self.image.run_key].record  # type: ignore[index]

    # ------------------------------------------------------------------ objects
    def new_object(self, points: Sequence[Point] = (), box: Box | None = None,
                   category: str | None = None) -> str:
        """A manual object from clicks and/or a box (its mask from EfficientSAM); returns its uid."""
        state = new_object(self.image, category)
        self.push(AddObject(self.image, state))
        if points or box is not None:
            self.set_prompts(state.uid, points, box)
        return state.uid

    def set_prompts(self, uid: str, points: Sequence[Point] = (), box: Box | None = None) -> None:
        """Replace an object's prompts; its mask is decoded again."""
        obj = self.image.object_state(uid)
        after = PromptState(tuple(points), box)
        self.push(SetPrompts(self.image, uid, obj.prompts, after, "Set prompts", obj.chosen))

    def click(self, uid: str, x: float, y: float, positive: bool = True) -> None:
        """Add one point to an object's prompts (positive: foreground)."""
        obj = self.image.object_state(uid)
        point = Point(float(x), float(y), label=1 if positive else 0)
        self.set_prompts(uid, obj.prompts.points + (point,), obj.prompts.box)

    def paint(self, uid: str, points: Sequence[tuple[float, float]], radius: float, erase: bool = False) -> None:
        """A brush (or eraser) stroke through ``points`` ((x, y) pixels) over an object's mask."""
        self.push(PaintStroke(self.image, uid, points, radius, erase))

    def set_mask(self, uid: str, mask: Any, text: str = "Set mask") -> None:
        """Make an object's final mask ``mask`` ([H, W] bool), as a correction over the model's."""
        self.push(ReplaceMask(self.image, uid, mask, text))

    def set_class(self, uid: str, category: str | None) -> None:
        self.push(SetCategory(self.image, uid, self.object(uid).category, category))

    def keep(self, uid: str) -> None:
        """Keep a proposal (asking again leaves it alone)."""
        self.push(KeepProposal(self.image, uid))

    def drop(self, *uids: str) -> None:
        """Delete objects (proposals or not)."""
        self.push(DeleteObjects(self.image, list(uids)))

    def merge(self, *uids: str) -> str:
        """Merge objects into the first one (the union of their masks); returns its uid."""
        self.push(merge_objects(self.image, list(uids)))
        return uids[0]

    def accept(self, uid: str, accepted: bool = True) -> None:
        if self.object(uid).accepted != bool(accepted):
            self.push(SetAccepted(self.image, uid, bool(accepted)))

    def accept_all(self) -> None:
        edit = accept_all(self.image)
        if edit is not None:
            self.push(edit)

    # ------------------------------------------------------------------ history
    def push(self, edit: Any) -> None:
        """Apply an edit (:mod:`.edits`, :mod:`.object_edits`, :mod:`.corrections`) as one undo step."""
        prepare = getattr(edit, "prepare", None)
        if callable(prepare) and not prepare():
            return  # a layer edit that changes nothing
        self.history.push(edit)
        self._decode()

    def undo(self) -> bool:
        done = self.history.undo()
        self._decode()
        return done

    def redo(self) -> bool:
        done = self.history.redo()
        self._decode()
        return done

    def _seen(self) -> None:
        """Objects come with the mask of their prompts (opened, proposed by an ask)."""
        for obj in self.image.objects.values():
            self._made.setdefault(obj.uid, obj.prompts.key())

    def _decode(self) -> None:
        """Decode every object whose prompts changed since its mask was made (the one just edited,
        or whose edit was undone); an object whose decoded masks were only released (another one
        was selected) keeps its mask, and is neither decoded nor written again."""
        self._seen()
        for obj in list(self.image.objects.values()):
            key = obj.prompts.key()
            if self._made[obj.uid] == key:
                continue
            if obj.needs_segmentation():
                prompts, generation = obj.prompts, obj.generation
                if len(prompts.points) > 6:
                    raise InputError("EfficientSAM takes at most 6 points per object.")
                seg = self.pipeline.segment(prompts.points, box=prompts.box)
                grid = self.image.question_map.shape if self.image.question_map is not None else (24, 24)
                self.image.accept_segmentation(prompts, generation, prepare_candidates(seg, grid), uid=obj.uid)
            self._made[obj.uid] = key
