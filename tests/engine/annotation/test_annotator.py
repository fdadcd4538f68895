"""The scriptable Annotator (engine/annotation/annotator.py) with a stand-in decoder: it decodes
the object an edit changed (or whose edit was undone), never the others, and writes nothing about
objects nobody touched."""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.annotation import Annotator
from engine.prompts import Point
from engine.project import ObjectRecord, Project
from engine.results import MaskCandidate, SegmentationResult
from support.fakes import PipelineStandIn

H, W = 60, 80


class CountingDecoder(PipelineStandIn):
    """A stand-in pipeline whose decoder gives a 12 x 12 square on the positive points' mean; counts calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def set_image(self, rgb, image_id=None) -> None:
        assert rgb.shape == (H, W, 3)
        super().set_image(rgb, image_id)

    def segment(self, points=(), box=None, multimask=True) -> SegmentationResult:
        self.calls.append(tuple(points))
        pos = [p for p in points if p.label == 1]
        x, y = int(np.mean([p.x for p in pos])), int(np.mean([p.y for p in pos]))
        mask = np.zeros((H, W), bool)
        mask[max(0, y - 6):y + 6, max(0, x - 6):x + 6] = True
        return SegmentationResult(candidates=(MaskCandidate(mask, np.zeros((4, 4), np.float32), 0.9),),
                                  points=tuple(points), box=box)


def _project(tmp_path):
    """A photo with three objects made earlier (each from one click, its mask in the project)."""
    photo = tmp_path / "a.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(photo)
    uids = []
    with Project.create(tmp_path / "p.qmask") as p:
        img = p.add_image(photo, width=W, height=H)
        for k, (x, y) in enumerate(((15, 15), (40, 30), (65, 45))):
            obj = ObjectRecord(source="manual", points=[Point(x, y)], order=k)
            obj.set_mask(CountingDecoder().segment((Point(x, y),)).best.mask, source="user")
            p.put_object(img, obj)
            uids.append(obj.uid)
    return tmp_path / "p.qmask", photo, uids


def test_only_the_object_an_edit_changed_is_decoded(tmp_path):
    project, photo, (one, two, three) = _project(tmp_path)
    decoder = CountingDecoder()
    with Annotator.open(project, photo, pipeline=decoder) as a:
        a.set_class(one, "box")  # no prompt changed: nothing to decode
        a.paint(two, [(40, 10)], radius=3)
        assert decoder.calls == []
        a.click(one, 20, 20)
        assert decoder.calls == [(Point(15, 15), Point(20, 20))]  # the edited object, once
        a.accept_all()  # selects each object in turn: none is decoded again
        a.undo()
        a.undo()  # the click: its object decoded for the prompts it is back to
        assert len(decoder.calls) == 2 and decoder.calls[-1] == (Point(15, 15),)
        a.undo()  # the stroke: no prompt changed
        assert len(decoder.calls) == 2
        assert np.array_equal(a.mask(two), CountingDecoder().segment((Point(40, 30),)).best.mask)
    with Project.open(project) as p:
        by_script = [e for e in p.edits() if e.object_uid == three and e.writer.startswith("script@")]
        assert [e.action for e in by_script] == ["accept", "unaccept"]  # accept all and its undo, nothing more
