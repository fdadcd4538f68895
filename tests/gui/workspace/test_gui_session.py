"""Per-image session state and undo commands, without models (segmentations are made up here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.annotation import ChooseCandidate, SetAccepted, SetAlpha, SetCategory, SetPrompts, new_object
from engine.annotation.prompts import PromptState
from engine.imaging.images import image_from_array
from engine.project import Project
from engine.prompts import NEGATIVE, Box, Point
from engine.results import AnswerResult
from support.fakes import fake_segmentation
from gui.workspace.data_paths import default_project_path
from engine.annotation.state import SEG_CACHE_SIZE
from gui.workspace.workspace import Workspace
from gui.workspace.undo import QtEdit
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


class Target:
    """The controller's EditTarget, with a synchronous fake decoder."""

    def __init__(self) -> None:
        self.decoded = 0

    def apply_prompts(self, session, uid, prompts, chosen):
        session.set_prompts(prompts, chosen, uid=uid)
        if session.needs_segmentation(uid):
            self.decoded += 1
            session.accept_segmentation(prompts, session.objects[uid].generation, fake_segmentation(prompts), uid=uid)

    def apply_choice(self, session, uid, index):
        session.set_chosen(index, uid=uid)

    def apply_alpha(self, session, run_key, alpha):
        session.set_alpha(alpha, run_key=run_key)

    def apply_accepted(self, session, uid, accepted):
        session.set_accepted(accepted, uid=uid)


@pytest.fixture
def workspace(qtbot, tmp_path):
    project = Project.create(tmp_path / "p.qmask")
    ws = Workspace(project)
    yield ws
    ws.close()


def open_session(ws: Workspace, tmp_path: Path, name: str = "a.png", question: str | None = "what is it?"):
    """A session on a blank 40 x 30 image with one (empty, selected) object and, unless
    ``question`` is None, a run of that question shown (the fusion alpha belongs to it)."""
    path = tmp_path / name
    path.write_bytes(b"")  # never read here: the image is given as an array
    session, = ws.add_paths([path])
    ws.set_index(ws.sessions.index(session))
    session.set_image(image_from_array(np.zeros((30, 40, 3), np.uint8)))
    if question is not None:
        session.asks.start(question)
        session.asks.finish()
    state = new_object(session)
    session.add_objects([state], select=state.uid)
    return session


def test_prompt_state_key_ignores_time_and_score():
    a = PromptState((Point(1.0, 2.0, score=0.5, source="auto"),))
    b = PromptState((Point(1.0, 2.0, score=None, source="user"),))
    assert a.key() == b.key()
    assert a.with_box(Box(0, 0, 5, 5)).key() != a.key()
    moved = a.with_point_moved(0, 3, 4)
    assert moved.points[0].source == "user" and (moved.points[0].x, moved.points[0].y) == (3.0, 4.0)
    assert a.without_point(0).empty


def test_undo_redo_of_points_choice_and_alpha(workspace, tmp_path):
    session = open_session(workspace, tmp_path)
    target = Target()
    stack = session.listener.undo_stack
    uid, key = session.selected, session.run_key
    s1 = PromptState((Point(10, 10),))
    stack.push(QtEdit(SetPrompts(session, uid, session.prompts, s1, "Add positive point", target=target)))
    m1 = session.mask.copy()
    s2 = s1.with_points(s1.points + (Point(30, 20, NEGATIVE),))
    stack.push(QtEdit(SetPrompts(session, uid, s1, s2, "Add negative point", target=target)))
    stack.push(QtEdit(ChooseCandidate(session, uid, 0, 2, target=target)))
    assert session.chosen == 2
    stack.push(QtEdit(SetAlpha(session, key, 0.5, 0.4, gesture=1, target=target)))
    stack.push(QtEdit(SetAlpha(session, key, 0.4, 0.3, gesture=1, target=target)))  # same drag: merged
    stack.push(QtEdit(SetAlpha(session, key, 0.3, 0.9, gesture=2, target=target)))
    assert stack.count() == 5 and session.alpha == 0.9
    stack.undo()
    stack.undo()
    assert session.alpha == 0.5
    stack.undo()
    assert session.chosen == 0
    decoded = target.decoded
    stack.undo()
    assert session.prompts.key() == s1.key() and np.array_equal(session.mask, m1)
    assert target.decoded == decoded, "undo shows the cached mask without decoding"
    stack.undo()
    assert session.prompts.empty and session.mask is None
    for _ in range(5):
        stack.redo()
    assert session.chosen == 2 and session.alpha == 0.9 and len(session.prompts.points) == 2


def test_closing_the_workspace_deletes_the_undo_commands(tmp_path, qapp):
    # A command references its session, so a closed window's sessions are reference cycles. Left
    # to Python's cyclic collector, shiboken 6.11's tp_clear hands a command's wrapper ownership
    # of the C++ command while its QUndoStack still holds it: deleted twice, a corrupted heap.
    # Workspace.close deletes the commands itself, in Qt's order, while everything is alive.
    ws = Workspace(Project.create(tmp_path / "p.qmask"))
    session = open_session(ws, tmp_path)
    target = Target()
    session.listener.undo_stack.push(QtEdit(SetPrompts(session, session.selected, session.prompts, PromptState((Point(5, 5),)),
                                              "Add", target=target)))
    session.listener.undo_stack.push(QtEdit(SetAlpha(session, session.run_key, 0.5, 0.3, gesture=1, target=target)))
    assert session.listener.undo_stack.count() == 2
    assert ws.close()
    assert session.listener.undo_stack.count() == 0
    assert Project.open(tmp_path / "p.qmask").find_image(session.path) is not None  # saved first


def test_a_reply_after_the_window_closed_is_dropped_not_raised(tmp_path, qapp):
    # An engine reply still in Qt's queue when the window closed (a decoder's mask for points
    # already saved) must not raise "cannot schedule new futures after shutdown".
    ws = Workspace(Project.create(tmp_path / "p.qmask"))
    session = open_session(ws, tmp_path)
    prompts = PromptState((Point(5, 5),))
    session.set_prompts(prompts)
    assert ws.close()
    assert ws.write(lambda p: p.checkpoint()) is False
    assert session.accept_segmentation(prompts, session.generation, fake_segmentation(prompts))
    assert session.mask[5, 5]  # shown (nothing to show it on now), just not written


def test_stale_decoder_replies_are_cached_not_shown(workspace, tmp_path):
    session = open_session(workspace, tmp_path)
    old = PromptState((Point(5, 5),))
    session.set_prompts(old)
    gen_old = session.generation
    new = PromptState((Point(20, 20),))
    session.set_prompts(new)
    assert not session.accept_segmentation(old, gen_old, fake_segmentation(old))
    assert session.mask is None and session.selected_object.cached_segmentation(old) is not None
    assert session.accept_segmentation(new, session.generation, fake_segmentation(new))
    assert session.mask[20, 20]


def test_segmentation_cache_is_bounded(workspace, tmp_path):
    session = open_session(workspace, tmp_path)
    states = [PromptState((Point(float(i % 40), 1.0 + i // 40),)) for i in range(SEG_CACHE_SIZE + 5)]
    obj = session.selected_object  # each object keeps its own
    for s in states:
        obj.cache_segmentation(s, fake_segmentation(s))
    assert obj.cached_segmentation(states[0]) is None
    assert obj.cached_segmentation(states[-1]) is not None


def test_session_writes_the_project_record_at_once(workspace, tmp_path):
    session = open_session(workspace, tmp_path, question=None)
    target = Target()
    uid = session.selected  # the object made by hand
    session.asks.start("what is it?")  # (it proposes nothing here: no decoder)
    session.asks.take(AnswerResult("a box"))
    session.select(uid)
    p = PromptState((Point(10, 10),))
    session.listener.undo_stack.push(QtEdit(SetPrompts(session, uid, session.prompts, p, "Add positive point", target=target)))
    session.listener.undo_stack.push(QtEdit(SetAccepted(session, uid, True, target=target)))
    workspace.drain()  # the writes go through the store's own thread, in order
    saved = Project.open(workspace.project.path)
    stored = saved.find_image(session.path)
    assert stored.find_run("what is it?").answer == "a box"
    obj = stored.find_object(uid)
    assert obj.accepted and obj.category is None  # never the answer's text
    assert obj.mask_source == "user" and np.array_equal(obj.mask(), session.mask)
    assert saved.categories == []
    session.listener.undo_stack.push(QtEdit(SetCategory(session, uid, None, "carton")))
    workspace.drain()
    again = Project.open(workspace.project.path)
    assert again.find_image(session.path).find_object(uid).category == "carton"
    assert [c.name for c in again.categories] == ["carton"]


def test_default_project_path_is_per_folder_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("QMASK_DATA_DIR", str(tmp_path / "data"))
    a = default_project_path(tmp_path / "photos" / "x.jpg")
    b = default_project_path(tmp_path / "photos" / "y.jpg")
    c = default_project_path(tmp_path / "other" / "x.jpg")
    assert a == b != c
    assert a.parent == tmp_path / "data" / "projects" and a.name.startswith("photos-")
    assert a.name.endswith(".qmask")


def test_a_broken_project_file_is_left_alone(tmp_path, qapp):
    from gui.app import open_project

    broken = tmp_path / "work.qmask"
    broken.write_text("{ not json")
    project, note = open_project(str(broken), None)
    assert broken.read_text() == "{ not json"
    assert project.path != broken and project.path.name.startswith("work-recovered")
    assert "not a QMask project" in note and str(project.path) in note


def test_only_recent_images_keep_their_pixels(workspace, tmp_path):
    from gui.workspace.workspace import IMAGES_IN_MEMORY

    target = Target()
    paths = []
    for i in range(IMAGES_IN_MEMORY + 2):
        paths.append(tmp_path / f"img{i}.png")
        paths[-1].write_bytes(b"")
    sessions = workspace.add_paths(paths)

    def show(i):  # what the controller does: switch, and read the image if it is not in memory
        workspace.set_index(i)
        if sessions[i].image is None:
            sessions[i].set_image(image_from_array(np.full((30, 40, 3), i, np.uint8)))

    show(0)
    first = sessions[0]
    state = new_object(first)
    first.add_objects([state], select=state.uid)
    p = PromptState((Point(10, 10),))
    first.listener.undo_stack.push(QtEdit(SetPrompts(first, state.uid, first.prompts, p, "Add positive point", target=target)))
    first.set_chosen(1)
    mask = first.mask.copy()
    for i in range(1, len(sessions)):
        show(i)
    assert first.image is None and sessions[-1].image is not None
    assert sum(s.image is not None for s in sessions) == IMAGES_IN_MEMORY
    assert np.array_equal(first.mask, mask) and first.prompts.key() == p.key()  # the user's work stays
    assert first.selected_object.segmentation is None  # its decoded candidates went with the pixels
    show(0)
    assert first.image is not None and np.array_equal(first.mask, mask)


def test_an_undo_stack_put_back_does_and_undoes_nothing_and_keeps_its_redo_steps(tmp_path, qapp):
    """StackHistory.restore (a cancelled ask's history): the stack's steps and index as they were,
    no edit run while it is rebuilt, then undo and redo walk it as before, the redo step included."""
    ws = Workspace(Project.create(tmp_path / "p.qmask"))
    session = open_session(ws, tmp_path)
    stack, target = session.listener.undo_stack, Target()
    key = session.run_key
    for gesture, (before, after) in enumerate([(0.5, 0.1), (0.1, 0.2), (0.2, 0.3)]):
        stack.push(QtEdit(SetAlpha(session, key, before, after, gesture=gesture, target=target)))
    stack.undo()
    snapshot = session.history.snapshot()
    stack.push(QtEdit(SetAlpha(session, key, 0.2, 0.7, gesture=9, target=target)))  # drops the redo step
    assert stack.count() == 3 and session.alpha == 0.7
    session.history.restore(snapshot)
    assert stack.count() == 3 and stack.index() == 2 and session.alpha == 0.7  # bookkeeping only
    assert stack.redoText() == "Fusion alpha 0.30"
    stack.redo()
    assert session.alpha == 0.3 and not stack.canRedo()
    stack.push(QtEdit(SetAlpha(session, key, 0.3, 0.35, gesture=2, target=target)))  # the same drag: merges, as before
    assert stack.count() == 3 and session.alpha == 0.35
    for alpha in (0.2, 0.1, 0.5):
        stack.undo()
        assert session.alpha == alpha
    assert ws.close()


def test_an_undo_stack_past_its_byte_budget_drops_its_oldest_steps_and_runs_none(tmp_path, qapp):
    from engine.annotation import Edit
    from gui.workspace.undo import keep_within_budget

    class Sized(Edit):
        def __init__(self, n: int) -> None:
            super().__init__(None)
            self.text, self.nbytes, self.runs = f"step {n}", 100, []

        def do(self):
            self.runs.append("do")

        def undo(self):
            self.runs.append("undo")

    ws = Workspace(Project.create(tmp_path / "p.qmask"))
    stack = open_session(ws, tmp_path).listener.undo_stack
    edits = [Sized(n) for n in range(5)]
    for edit in edits:
        stack.push(QtEdit(edit))
    assert keep_within_budget(stack, 500) == 0 and stack.count() == 5
    assert keep_within_budget(stack, 450) == 2  # over: down to 3/4 of the budget
    assert [stack.command(i).text() for i in range(stack.count())] == ["step 2", "step 3", "step 4"]
    assert all(edit.runs == ["do"] for edit in edits) and stack.index() == 3  # nothing done or undone again
    stack.undo()
    stack.undo()
    stack.undo()
    assert not stack.canUndo() and [e.runs for e in edits[2:]] == [["do", "undo"]] * 3
    assert ws.close()
