"""``qmask [IMAGE] --question Q --screenshot OUT.png`` through the real front door (gui.main.main),
offscreen, on tiny random models: exit status, the file, and overlays visible in it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from engine.project import Project
from gui.canvas.layers import MASK_COLOUR
from gui.main import main
from gui.workspace.data_paths import data_folder
from support.gui import fast_settings, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse
from resources import SAMPLE_IMAGE, SAMPLE_QUESTION


@pytest.fixture
def fast_front_door(monkeypatch, tmp_path, qapp):
    """The CLI's settings, but with few captions (the flags are the user's; speed is the test's)."""
    from gui import app as app_module

    original = app_module.AppOptions.from_args.__func__

    def from_args(cls, args):
        opts = original(cls, args)
        return replace(opts, settings=fast_settings(preset=opts.settings.preset, device=opts.settings.device))

    monkeypatch.setattr(app_module.AppOptions, "from_args", classmethod(from_args))


def cyan_pixels(rgb: np.ndarray) -> int:
    return int((np.abs(rgb.astype(int) - np.array(MASK_COLOUR)).sum(axis=2) < 40).sum())


def test_screenshot_of_the_sample_photo(fast_front_door, tmp_path, tiny_models_dir, capsys):
    out = tmp_path / "shots" / "window.png"
    code = main(["--models", str(tiny_models_dir), "--device", "cpu", "--screenshot", str(out)])
    assert code == 0, capsys.readouterr().err
    shot = np.array(Image.open(out).convert("RGB"))
    assert shot.shape[0] >= 600 and shot.shape[1] >= 1000  # the whole window, not just the canvas
    # the mask outline and fill (our cyan) are on screen; the photo itself has none of it
    photo = np.array(Image.open(SAMPLE_IMAGE).convert("RGB"))
    assert cyan_pixels(photo) < 50
    assert cyan_pixels(shot) > 500
    # no image given: the sample photo was opened and asked the sample question (see the project)
    projects = list((data_folder() / "projects").glob("*.qmask"))
    assert len(projects) == 1
    project = Project.open(projects[0])
    record = project.find_image(SAMPLE_IMAGE)
    assert record is not None and record.status == "ok"
    run = record.find_run(SAMPLE_QUESTION)
    assert run is not None and run.answer is not None and run.random_weights
    proposed = [o for o in record.objects if o.question == run.question]
    assert proposed and all(o.mask() is not None for o in proposed)


def test_screenshot_of_a_given_image_and_question(fast_front_door, tmp_path, tiny_models_dir):
    img = write_photo(tmp_path / "photo.png", w=200, h=140)
    out = tmp_path / "shot.png"
    project = tmp_path / "p.qmask"
    code = main([str(img), "--question", "what is the yellow disc?", "--models", str(tiny_models_dir),
                 "--device", "cpu", "--project", str(project), "--screenshot", str(out)])
    assert code == 0 and out.is_file()
    record = Project.open(project).find_image(img)
    run = record.find_run("what is the yellow disc?")
    assert run is not None and run.answer is not None
    assert record.objects and all(len(o.points) > 0 for o in record.objects)


def test_screenshot_fails_cleanly_on_a_bad_image(fast_front_door, tmp_path, tiny_models_dir, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"definitely not a jpeg")
    out = tmp_path / "shot.png"
    code = main([str(bad), "--question", "what?", "--models", str(tiny_models_dir), "--device", "cpu",
                 "--project", str(tmp_path / "p.qmask"), "--screenshot", str(out)])
    assert code == 1 and not out.exists()
    assert "bad.jpg" in capsys.readouterr().err


def test_screenshot_without_models_says_how_to_get_them(fast_front_door, tmp_path, capsys):
    empty = tmp_path / "none"
    empty.mkdir()
    code = main([str(write_photo(tmp_path / "p.png")), "--models", str(empty), "--device", "cpu",
                 "--project", str(tmp_path / "p.qmask"), "--screenshot", str(tmp_path / "s.png")])
    assert code == 1
    assert "qmask models download" in capsys.readouterr().err


def test_offscreen_size_hint_warning_is_silenced(fast_front_door, tmp_path, tiny_models_dir, qtlog):
    # The offscreen platform says "This plugin does not support propagateSizeHints()" for each
    # window it shows; QMask's message filter (gui.app) drops exactly that message.
    img = write_photo(tmp_path / "photo.png", w=120, h=90)
    code = main([str(img), "--question", "what is it?", "--models", str(tiny_models_dir), "--device", "cpu",
                 "--project", str(tmp_path / "p.qmask"), "--screenshot", str(tmp_path / "s.png")])
    assert code == 0
    assert not [r for r in qtlog.records if "propagateSizeHints" in r.message]


def test_message_filter_drops_only_that_message(qapp):
    from PySide6 import QtCore

    from gui.app import QtMessageFilter, quiet_qt_messages

    seen: list[str] = []
    previous = QtCore.qInstallMessageHandler(lambda mode, ctx, msg: seen.append(msg))
    try:
        first = quiet_qt_messages()
        second = quiet_qt_messages()  # installing again keeps one filter, in front of the same handler
        assert isinstance(second, QtMessageFilter) and not isinstance(second.previous, QtMessageFilter)
        assert second.previous is first.previous
        QtCore.qWarning("This plugin does not support propagateSizeHints()")
        QtCore.qWarning("a message someone needs")
        QtCore.qWarning("This plugin does not support propagateSizeHints() and more")
        assert seen == ["a message someone needs", "This plugin does not support propagateSizeHints() and more"]
        assert second.dropped == 1
    finally:
        QtCore.qInstallMessageHandler(previous)
