"""Battery (issue 15, items 5 and 6) in the app: a segmentation model that cannot be loaded
leaves the heat map and the answer, with a banner saying why; a question longer than the
tokenizer takes is answered on its first part, with a message saying which part."""

from __future__ import annotations

import shutil

import pytest

from support.gui import ask_and_wait, harness_fixture, write_photo, wait_shown
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


@pytest.fixture
def broken_sam_models(tmp_path, tiny_models_dir):
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    ckpt = models / "efficient_sam" / "efficient_sam_vitt.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:20_000])  # a download cut short
    return models


def test_broken_segmentation_model_keeps_heat_map_and_answer(harness, qtbot, tmp_path, broken_sam_models):
    img = write_photo(tmp_path / "photo.png")
    app = harness.build([img], models_dir=broken_sam_models)
    messages = app.window.messages
    assert any("segmentation model could not be loaded, so there will be no masks" in text
               for _level, text in messages.history), messages.history
    wait_shown(qtbot, app)
    session = ask_and_wait(qtbot, app, "what is the yellow thing?")
    assert session.question_map is not None and session.answer is not None  # kept
    assert session.mask is None
    banners = [text for level, text in messages.history if level == "error"]  # the chain's one failure policy
    assert any(text.startswith("A mask was asked for but cannot be made.")
               and "The heat map and the answer were made without it." in text and "Engine > Models" in text
               and "efficient_sam_vitt.pt" in text and "incomplete or damaged" in text for text in banners), banners
    assert app.window.canvas.heat_layer.grid is not None


def test_long_question_is_answered_and_the_used_part_is_shown(harness, qtbot, tmp_path):
    img = write_photo(tmp_path / "photo.png")
    app = harness.build([img])
    wait_shown(qtbot, app)
    question = "what is the yellow thing in the middle of the picture " * 8
    session = ask_and_wait(qtbot, app, question)
    assert session.answer is not None
    notes = [text for level, text in app.window.messages.history if "longer than the heat-map model reads" in text]
    assert len(notes) == 1, app.window.messages.history
    assert '"what is the yellow thing in the middle of the picture what is' in notes[0]
    assert "Ask a shorter question to use all of it." in notes[0]
    # a question that fits says nothing
    ask_and_wait(qtbot, app, "what is the yellow thing?")
    assert len([t for _l, t in app.window.messages.history if "longer than" in t]) == 1
