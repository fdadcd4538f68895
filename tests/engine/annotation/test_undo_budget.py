"""The memory an image's undo history keeps for its objects' stroke-layer edits is bounded, without Qt:
each edit's before/after windows kept packed 8 pixels a byte, and a byte budget per history past
which the oldest steps are dropped; undo and redo still give back exact pixels."""

from __future__ import annotations

import numpy as np
import pytest

from engine.annotation import History, ImageAnnotation, ProjectStore, new_object
from engine.annotation.corrections import ClearStrokes, PaintStroke, ReplaceMask
from engine.annotation.edits import steps_over_budget
from engine.annotation.layer_change import LayerChange
from engine.imaging.images import image_from_array
from engine.imaging.paint import fill_holes, remove_islands
from engine.project import Project

H, W = 240, 320


@pytest.fixture
def ann(tmp_path):
    """An image with one new, empty object (drawn by brush and clean-up only), selected."""
    path = tmp_path / "a.png"
    path.write_bytes(b"")
    with Project.create(tmp_path / "p.qmask") as project:
        annotation = ImageAnnotation(ProjectStore(project), path, project.add_image(path).id)
        annotation.set_image(image_from_array(np.zeros((H, W, 3), np.uint8)))
        state = new_object(annotation)
        annotation.add_objects([state], select=state.uid)
        yield annotation


def _mask(a: ImageAnnotation) -> np.ndarray:
    return np.zeros((H, W), bool) if a.mask is None else a.mask.copy()


def test_a_layer_window_is_kept_packed_and_read_back_exactly():
    rng = np.random.default_rng(1)
    before, after = (tuple(rng.random((37, 53)) < 0.5 for _ in range(2)) for _ in range(2))
    change = LayerChange((100, 100), 3, 4, before, after)
    for got, want in zip(change.before + change.after, before + after):
        assert got.dtype == bool and np.array_equal(got, want)
    assert change.nbytes == 4 * -(-37 * 53 // 8)  # a bit a pixel, not a byte
    assert change.changed and not LayerChange((100, 100), 0, 0, before, before).changed


def test_undo_and_redo_give_back_exact_pixels_through_strokes_and_clean_ups(ann):
    rng = np.random.default_rng(7)
    history = History()
    masks = [_mask(ann)]
    for i in range(12):
        if i % 4 == 3:  # a whole-image change: its hole filled, its specks removed, a band toggled
            target = remove_islands(fill_holes(ann.mask), 20) if ann.mask is not None else np.zeros((H, W), bool)
            target[:, i * 10:i * 10 + 7] ^= True
            edit = ReplaceMask(ann, ann.selected, target, "Clean-up", "cleanup")
        else:
            points = rng.uniform((0, 0), (W, H), size=(int(rng.integers(1, 5)), 2))
            edit = PaintStroke(ann, ann.selected, points, float(rng.uniform(2, 30)), erase=bool(i % 3 == 2))
        history.push(edit)
        masks.append(_mask(ann))
    history.push(ClearStrokes(ann, ann.selected))
    masks.append(_mask(ann))
    assert not masks[-1].any() and len(history) == 13 and history.dropped == 0
    for want in reversed(masks[:-1]):
        assert history.undo() and np.array_equal(_mask(ann), want)
    for want in masks[1:]:
        assert history.redo() and np.array_equal(_mask(ann), want)
    # the windows are kept packed: at most a bit for each pixel of each of the four windows
    assert history.nbytes <= 13 * 4 * H * W / 8


def test_past_its_byte_budget_the_history_drops_its_oldest_steps(ann):
    whole = 4 * H * W // 8  # a step that changes every pixel: both layers' windows, before and after
    history = History(budget=3 * whole + 10)
    masks = [_mask(ann)]
    for i in range(3):
        history.push(ReplaceMask(ann, ann.selected, ~_mask(ann), f"Invert {i}"))
        masks.append(_mask(ann))
    assert len(history) == 3 and history.dropped == 0 and history.nbytes == 3 * whole
    history.push(ReplaceMask(ann, ann.selected, ~_mask(ann), "Invert 3"))  # over the budget: down to 3/4 of it
    masks.append(_mask(ann))
    assert history.dropped == 2 and len(history) == 2 and history.nbytes <= history.budget * 3 // 4
    assert history.undo_text == "Invert 3"
    for want in (masks[3], masks[2]):
        assert history.undo() and np.array_equal(_mask(ann), want)
    assert not history.can_undo  # the oldest two are gone; nothing undoes past them
    assert history.redo() and history.redo() and np.array_equal(_mask(ann), masks[4])


def test_a_clean_up_keeps_no_image_sized_array_for_undo(ann):
    history = History()
    history.push(PaintStroke(ann, ann.selected, [(20, 20)], 8))
    target = _mask(ann)
    target[200:210, 300:310] = True
    edit = ReplaceMask(ann, ann.selected, target, "Clean-up", "cleanup")
    history.push(edit)
    assert edit.target_mask is None and edit.nbytes == 4 * -(-10 * 10 // 8)  # the changed 10 x 10 window, packed


@pytest.mark.parametrize("sizes, budget, dropped", [
    ([], 10, 0), ([5, 5], None, 0), ([5, 5], 10, 0), ([5, 5, 1], 10, 1), ([50], 10, 0), ([4, 4, 4, 50], 10, 3),
    ([0, 0, 6, 6], 10, 3)])
def test_steps_over_budget(sizes, budget, dropped):
    assert steps_over_budget(sizes, budget) == dropped
