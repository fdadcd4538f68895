"""Brush, eraser and clean-up without Qt: the pure stroke and clean-up functions, each object's add
and erase layers over the model's mask, their edits with do and undo, "accepted" cleared by a
mask change, and the layers and corrected mask in the project file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from support.annotation import Decoding, add_object, ask, brush_reference, open_annotation, stored_object
from engine.annotation import History, ProjectStore, PromptState, SetAccepted, SetPrompts
from engine.annotation.corrections import ClearStrokes, Corrections, PaintStroke, ReplaceMask
from engine.annotation.edits import ChooseCandidate
from engine.errors import InputError
from engine.imaging.images import image_from_array
from engine.imaging.paint import fill_holes, keep_largest, remove_islands, stroke_patch
from engine.project import Project
from engine.project.interchange import convert_json_project, write_json_project
from engine.prompts import Point
from support.fakes import fake_segmentation

H, W = 30, 40


def under_brush(points, radius, shape=(H, W)) -> np.ndarray:
    return brush_reference(points, radius, shape)


def full(hit, shape=(H, W)) -> np.ndarray:
    out = np.zeros(shape, bool)
    if hit is not None:
        y0, x0, patch = hit
        out[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]] = patch
    return out


# ------------------------------------------------------------------ pure functions

@pytest.mark.parametrize("points, radius", [
    ([(10.5, 10.5)], 3), ([(0.2, 0.1)], 4.5), ([(5, 5), (30, 22), (38, 3)], 2.5),
    ([(-3, 15), (45, 15)], 1), ([(20, 15), (20.4, 15.2)], 7)])
def test_a_stroke_covers_exactly_the_pixels_under_the_brush(points, radius):
    hit = stroke_patch(points, radius, (H, W))
    assert np.array_equal(full(hit), under_brush(points, radius))
    y0, x0, patch = hit
    assert patch.shape[0] < H or patch.shape[1] < W or len(points) > 1  # a window, not the image


def test_random_strokes_cover_exactly_the_pixels_under_the_brush():
    rng = np.random.default_rng(7)
    for _ in range(40):
        points = rng.uniform(-5, 45, (int(rng.integers(1, 6)), 2))
        radius = float(rng.uniform(0.5, 9))
        assert np.array_equal(full(stroke_patch(points, radius, (H, W))), under_brush(points, radius))


def test_a_stroke_off_the_image_and_bad_strokes():
    assert stroke_patch([(-50, -50)], 3, (H, W)) is None
    with pytest.raises(InputError, match="radius"):
        stroke_patch([(1, 1)], 0, (H, W))
    with pytest.raises(InputError, match="at least one point"):
        stroke_patch([], 2, (H, W))
    with pytest.raises(InputError, match="finite"):
        stroke_patch([(np.nan, 1)], 2, (H, W))


def test_clean_up_functions():
    m = np.zeros((12, 14), bool)
    m[1:8, 1:8] = True
    m[3:5, 3:5] = False  # a hole
    m[2, 11] = True  # a 1-pixel island
    m[9:11, 10:13] = True  # a 6-pixel island
    filled = fill_holes(m)
    assert filled[3:5, 3:5].all() and (filled ^ m).sum() == 4
    assert np.array_equal(remove_islands(m, 2), m & ~np.pad(np.eye(1, dtype=bool), ((2, 9), (11, 2))))
    assert remove_islands(m, 7).sum() == m[1:8, 1:8].sum()
    assert np.array_equal(keep_largest(m), np.pad(m[1:8, 1:8], ((1, 4), (1, 6))))
    assert not keep_largest(np.zeros((3, 3), bool)).any()
    ring = np.zeros((5, 5), bool)  # a diagonal-only gap still encloses the centre (8-connected ring)
    ring[[0, 1, 1, 2, 2, 3, 3, 4], [2, 1, 3, 0, 4, 1, 3, 2]] = True
    assert fill_holes(ring)[2, 2] and fill_holes(ring).sum() == 13
    with pytest.raises(InputError, match="at least 1 pixel"):
        remove_islands(m, 0)
    with pytest.raises(InputError, match="2-D"):
        fill_holes(np.zeros((2, 2, 2)))


def test_layers_apply_over_any_model_mask():
    model = np.zeros((H, W), bool)
    model[5:15, 5:15] = True
    c = Corrections()
    assert c.apply(model) is model and c.empty
    add, erase = c.window(0, 0, H, W)
    add[20:25, 20:25], erase[5:8, 5:8] = True, True
    c.put((H, W), 0, 0, add, erase)
    assert np.array_equal(c.apply(model), (model | add) & ~erase)
    other = np.zeros((H, W), bool)
    other[0:3] = True
    assert np.array_equal(c.apply(other), (other | add) & ~erase)
    assert np.array_equal(c.apply(None), add & ~erase)
    again = Corrections.from_rles(*c.to_rles())
    assert np.array_equal(again.add, c.add) and np.array_equal(again.erase, c.erase)


# ------------------------------------------------------------------ edits on an image
# ------------------------------------------------------------------ edits on an object

@pytest.fixture
def image(tmp_path):
    """An image asked "what is it?": one proposal from the automatic point (10, 10), selected."""
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    project = Project.create(tmp_path / "p.qmask")
    ann = open_annotation(project, path, Decoding)
    ask(ann, "what is it?", points=(Point(10, 10, source="auto"),))
    yield ann, project, History(), ann.selected
    project.close()


def stored(project, ann, uid):
    return stored_object(project, ann.path, uid)  # as another process reads it


def test_brush_and_eraser_change_exactly_the_pixels_under_the_brush(image):
    ann, project, history, uid = image
    model = ann.model_mask.copy()
    brush = [(20, 20), (34, 24)]
    history.push(PaintStroke(ann, uid, brush, 3))
    assert np.array_equal(ann.mask, model | under_brush(brush, 3))
    eraser = [(10, 5), (10, 16)]
    history.push(PaintStroke(ann, uid, eraser, 2, erase=True))
    expected = (model | under_brush(brush, 3)) & ~under_brush(eraser, 2)
    assert np.array_equal(ann.mask, expected)
    assert history.undo_text == "Erase"
    rec = stored(project, ann, uid)
    assert np.array_equal(rec.mask(), expected) and rec.mask_source == "user" and not rec.proposal
    with Project.open(project.path) as other:
        edits = other.edits(other.find_image(ann.path).id)
    assert {("stroke", uid), ("erase", uid)} <= {(e.action, e.object_uid) for e in edits}

    history.undo()
    assert np.array_equal(ann.mask, model | under_brush(brush, 3))
    history.undo()
    assert np.array_equal(ann.mask, model) and np.array_equal(stored(project, ann, uid).mask(), model)
    history.redo()
    history.redo()
    assert np.array_equal(ann.mask, expected)


def test_strokes_belong_to_their_object(image):
    ann, project, history, uid = image
    first = ann.mask.copy()
    other = add_object(ann, history, [Point(30, 20)])
    history.push(PaintStroke(ann, other, [(30, 5), (30, 25)], 2))
    assert np.array_equal(ann.objects[uid].mask, first) and ann.objects[uid].corrections.empty
    assert np.array_equal(stored(project, ann, uid).mask(), first)
    history.push(PaintStroke(ann, uid, [(5, 25)], 2))  # undone or done, a stroke selects its object
    assert ann.selected == uid
    history.undo()
    history.undo()
    assert ann.selected == other and ann.objects[other].corrections.empty and ann.objects[uid].corrections.empty


def test_strokes_survive_a_later_point_edit(image):
    ann, project, history, uid = image
    brush, eraser = [(35, 5)], [(11, 11)]
    history.push(PaintStroke(ann, uid, brush, 2))
    history.push(PaintStroke(ann, uid, eraser, 1.5, erase=True))
    moved = PromptState((Point(10, 10), Point(25, 20)))
    history.push(SetPrompts(ann, uid, ann.prompts, moved, "Add"))
    model = fake_segmentation(moved).candidates[0].mask
    assert np.array_equal(ann.model_mask, model)
    expected = (model | under_brush(brush, 2)) & ~under_brush(eraser, 1.5)
    assert np.array_equal(ann.mask, expected) and np.array_equal(stored(project, ann, uid).mask(), expected)
    history.push(ClearStrokes(ann, uid))
    assert np.array_equal(ann.mask, model)
    history.undo()
    assert np.array_equal(ann.mask, expected)


def test_replace_mask_gives_the_target_and_keeps_agreeing_strokes(image):
    ann, project, history, uid = image
    history.push(PaintStroke(ann, uid, [(35, 5)], 2))
    target = fill_holes(ann.mask)
    target[0:2, :] = True
    target[10, 10] = False
    edit = ReplaceMask(ann, uid, target, "Fill holes", "cleanup")
    assert edit.prepare()
    history.push(edit)
    assert np.array_equal(ann.mask, target) and np.array_equal(stored(project, ann, uid).mask(), target)
    assert edit._change.before[0].shape[0] < H  # only the changed rows are kept for undo
    assert not ReplaceMask(ann, uid, target, "again").prepare()  # nothing to change: nothing to push
    add, erase = ann.corrections.add.copy(), ann.corrections.erase.copy()
    moved = PromptState((Point(30, 20),))
    history.push(SetPrompts(ann, uid, ann.prompts, moved, "Move"))
    model = fake_segmentation(moved).candidates[0].mask
    assert np.array_equal(ann.mask, (model | add) & ~erase)
    assert ann.mask[0:2].all() and not ann.mask[10, 10] and ann.mask[5, 35]  # the edits still hold
    history.undo()
    history.undo()
    assert np.array_equal(ann.mask, fake_segmentation(PromptState((Point(10, 10),))).candidates[0].mask
                          | under_brush([(35, 5)], 2))
    with pytest.raises(InputError, match="8 x 6 pixels; the image is 40 x 30"):
        ReplaceMask(ann, uid, np.zeros((6, 8), bool), "bad").prepare()


def test_replace_mask_of_a_window_changes_only_that_window(image):
    ann, project, history, uid = image
    history.push(PaintStroke(ann, uid, [(35, 5)], 2))
    before = ann.mask.copy()
    target = before.copy()
    target[12:20, 20:30] = ~target[12:20, 20:30]
    edit = ReplaceMask(ann, uid, target[10:22, 18:33], "Move polygon vertex", "polygon", at=(10, 18))
    assert edit.prepare()
    history.push(edit)
    assert np.array_equal(ann.mask, target) and np.array_equal(stored(project, ann, uid).mask(), target)
    assert (edit._change.y0, edit._change.x0) == (12, 20)  # the changed rectangle, in image rows/columns
    history.undo()
    assert np.array_equal(ann.mask, before)
    with pytest.raises(InputError, match="at row 25, column 35; the image is 40 x 30"):
        ReplaceMask(ann, uid, np.zeros((6, 8), bool), "bad", at=(25, 35)).prepare()


def test_a_mask_change_clears_accepted_in_the_same_undo_step(image):
    ann, project, history, uid = image
    two = PromptState((Point(10, 10), Point(30, 20)))
    edits = [lambda: SetPrompts(ann, uid, ann.prompts, two, "Add"), lambda: ChooseCandidate(ann, uid, ann.chosen, 1),
             lambda: PaintStroke(ann, uid, [(5, 25)], 2), lambda: ReplaceMask(ann, uid, ~ann.mask, "Invert"),
             lambda: ClearStrokes(ann, uid)]
    for make in edits:
        history.push(SetAccepted(ann, uid, True))
        steps = len(history)
        edit = make()
        history.push(edit)
        assert not ann.accepted and len(history) == steps + 1, edit.text
        assert not stored(project, ann, uid).accepted
        history.undo()
        assert ann.accepted and stored(project, ann, uid).accepted, edit.text
        history.redo()
        assert not ann.accepted
    history.push(PaintStroke(ann, uid, [(5, 25)], 2))  # not accepted: stays not accepted, undo too
    history.undo()
    assert not ann.accepted


def test_an_image_no_longer_shown_keeps_its_strokes_packed(image):
    ann, project, history, uid = image
    model = ann.model_mask.copy()
    history.push(PaintStroke(ann, uid, [(35, 5), (35, 25)], 2))
    history.push(PaintStroke(ann, uid, [(10, 10)], 2, erase=True))
    final, add = ann.mask.copy(), ann.corrections.add.copy()
    ann.release_memory()
    assert ann.corrections._add is None and ann.corrections._erase is None  # no arrays held
    assert not ann.corrections.empty and ann.corrections.shape == (H, W)
    ann.release_memory()  # again: still packed, nothing decoded
    assert ann.corrections._add is None
    assert np.array_equal(ann.mask, final) and np.array_equal(ann.corrections.add, add)
    ann.set_image(image_from_array(np.zeros((H, W, 3), np.uint8)))
    history.undo()  # before the decoder runs again: the model's mask under the strokes was kept
    assert np.array_equal(ann.mask, model | add)
    assert np.array_equal(stored(project, ann, uid).mask(), model | add)
    assert ann.needs_segmentation(uid)  # shown again: the decoder runs for its prompts, and agrees
    ann.accept_segmentation(ann.prompts, ann.generation, fake_segmentation(ann.prompts), uid=uid)
    assert np.array_equal(ann.mask, model | add)
    history.undo()
    assert np.array_equal(ann.mask, model)


def test_a_stroke_undone_after_another_object_was_selected_gives_its_pixels_back(image):
    """Selecting another object releases the first one's decoded masks; undoing a stroke (or
    clearing the strokes) on it afterwards must give back the model's pixels under the stroke,
    not keep them from the corrected mask."""
    ann, project, history, uid = image
    model = ann.model_mask.copy()
    eraser, brush = [(10, 8), (10, 12)], [(30, 25)]
    history.push(PaintStroke(ann, uid, eraser, 2, erase=True))
    history.push(PaintStroke(ann, uid, brush, 3))
    assert (model & under_brush(eraser, 2)).any()  # the eraser took some of the model's pixels
    other = add_object(ann, history, [Point(30, 20)])
    assert ann.selected == other
    history.undo()
    history.undo()  # the other object is gone; the next undo selects the first one again
    history.undo()
    assert ann.selected == uid and np.array_equal(ann.mask, model & ~under_brush(eraser, 2))
    assert other not in ann.objects
    history.undo()
    assert np.array_equal(ann.mask, model) and np.array_equal(stored(project, ann, uid).mask(), model)
    history.redo()
    history.redo()
    ann.select(None)  # released again, its strokes back on it
    history.push(ClearStrokes(ann, uid))
    assert np.array_equal(ann.mask, model) and np.array_equal(stored(project, ann, uid).mask(), model)


def test_strokes_come_back_with_the_project_and_its_json(image, tmp_path):
    ann, project, history, uid = image
    history.push(PaintStroke(ann, uid, [(35, 5), (35, 25)], 2))
    history.push(PaintStroke(ann, uid, [(10, 10)], 2, erase=True))
    final, add, erase = ann.mask.copy(), ann.corrections.add.copy(), ann.corrections.erase.copy()
    project.close()
    with Project.open(project.path) as reopened:
        again = Decoding(ProjectStore(reopened), ann.path, ann.image_id)
        again.select(uid)
        assert np.array_equal(again.mask, final)
        assert np.array_equal(again.corrections.add, add) and np.array_equal(again.corrections.erase, erase)
        again.set_image(image_from_array(np.zeros((H, W, 3), np.uint8)))
        moved = PromptState((Point(25, 20),))
        again.apply_prompts(again, uid, moved, 0)  # a point edit after reopening: the strokes still apply
        model = fake_segmentation(moved).candidates[0].mask
        assert np.array_equal(again.mask, (model | add) & ~erase)
        out = write_json_project(reopened, tmp_path / "p.qmask.json")
    doc = json.loads(out.read_text())
    assert doc["images"][0]["objects"][0]["strokes"]["add"]["size"] == [H, W]
    (tmp_path / "p.qmask").rename(tmp_path / "old.qmask")
    with convert_json_project(out) as converted:
        rec = converted.find_image(ann.path).find_object(uid)
        layers = Corrections.from_rles(rec.stroke_add_rle, rec.stroke_erase_rle)
        assert np.array_equal(layers.add, add) and np.array_equal(layers.erase, erase)


def test_damaged_stroke_layers_are_refused_with_a_message(image, tmp_path):
    import sqlite3

    from engine.errors import ProjectError
    from engine.project.codec import object_from_json

    ann, project, history, uid = image
    history.push(PaintStroke(ann, uid, [(35, 5)], 2))
    project.close()
    with sqlite3.connect(project.path) as con:  # another program wrote a list where a layer belongs
        extra = json.loads(con.execute("SELECT extra FROM objects").fetchone()[0])
        extra["strokes"]["add"] = [1, 2, 3]
        con.execute("UPDATE objects SET extra = ?", (json.dumps(extra),))
    con.close()
    with Project.open(project.path) as damaged, \
            pytest.raises(ProjectError, match=r"object of the project is damaged \(object\.strokes\.add"):
        damaged.find_image(ann.path)
    doc = {"uid": "a1", "strokes": {"add": {"size": [2, 2], "counts": "zz"}}}
    with pytest.raises(ProjectError, match=r"o\[0\]\.strokes\.add"):
        object_from_json(doc, "o[0]")


class QueuedStore(ProjectStore):
    """Keeps the writes, to be run later on another thread, as the app's store thread does."""

    def __init__(self, project: Project) -> None:
        super().__init__(project)
        self.queue: list = []

    def write(self, change) -> bool:
        self.queue.append(change)
        return True


def test_a_stroke_is_encoded_by_the_project_write_not_by_the_edit(tmp_path):
    # The window's thread does the edit; the final mask's and the layers' RLE are made by the
    # store's write, once, shared by the written snapshot and the live record.
    import threading

    from engine.imaging.masks import decode_rle
    from engine.project import ObjectRecord

    path = tmp_path / "a.png"
    path.write_bytes(b"")
    project = Project.create(tmp_path / "p.qmask")
    store = QueuedStore(project)
    ann = open_annotation(project, path, Decoding, store=store)
    history = History()
    uid = add_object(ann, history, [Point(10, 10)])
    history.push(PaintStroke(ann, uid, [(35, 5), (35, 25)], 2))
    rec, final = ann.record, ann.mask
    fields = {name: ObjectRecord.__dict__[name] for name in ("mask_rle", "stroke_add_rle")}
    assert all(f.pending_mask(rec) is not None for f in fields.values())  # not encoded by the edit
    assert rec.mask() is fields["mask_rle"].pending_mask(rec) and np.array_equal(rec.mask(), final)
    writer = threading.Thread(target=lambda: [change(project) for change in store.queue])
    writer.start()
    writer.join()
    assert all(f.pending_mask(rec) is None for f in fields.values())  # the write encoded them
    np.testing.assert_array_equal(decode_rle(rec.mask_rle), final)
    np.testing.assert_array_equal(decode_rle(rec.stroke_add_rle), ann.corrections.add)
    written = stored(project, ann, uid)
    assert written.mask_rle == rec.mask_rle and written.stroke_add_rle == rec.stroke_add_rle
    project.close()
