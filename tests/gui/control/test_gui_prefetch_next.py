"""The image after the shown one is read and encoded while the engine is idle (gui/control/prefetch.py,
EncodeNext in gui/engine_thread/worker.py), so D finds its encoders cached; that work gives way to a click."""

from __future__ import annotations

import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from engine.annotation.prompts import PromptState
from engine.prompts import Point
from engine.results import PrepareResult
from gui.engine_thread.engine_client import EngineClient
from gui.engine_thread.requests import Cancelled, EncodeImage, EncodeNext, Finished, LoadModels, Reply, Segment
from support.gui import WAIT_MS, fast_settings, harness_fixture, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


@pytest.fixture
def harness(qtbot, tmp_path, tiny_models_dir):
    yield from harness_fixture(qtbot, tmp_path, tiny_models_dir)


def _encoded_on_show(app) -> dict[str, tuple]:
    """The encoders each shown image's own EncodeImage had to run, by key (empty: all cached)."""
    seen: dict[str, tuple] = {}

    def on_reply(reply: Reply) -> None:
        if isinstance(reply.request, EncodeImage) and isinstance(reply.payload, PrepareResult):
            seen[reply.request.image.key] = reply.payload.encoded
    app.client.reply.connect(on_reply)
    return seen


def test_the_next_image_is_encoded_ahead_and_d_finds_it_cached(harness, qtbot, tmp_path):
    paths = [write_photo(tmp_path / f"{i}.png", seed=10 + i) for i in range(3)]
    app = harness.build(paths)
    w, pipe, prefetch = app.window, app.client.worker.pipeline, app.controller.prefetch
    on_show = _encoded_on_show(app)
    # The first image on screen is encoded, then (the engine idle) the second one, not the third.
    qtbot.waitUntil(lambda: pipe.encode_count == {"itm": 2, "caption": 2, "efficient_sam": 2}
                    and prefetch.sent_ahead == 1 and not app.client.busy, timeout=WAIT_MS)
    second = app.workspace.session_for(app.workspace.ids[1])
    assert second is None or second.image is None  # its pixels are in no session: one image's worth, in the engine
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_D)
    qtbot.waitUntil(lambda: str(paths[1]) in on_show, timeout=WAIT_MS)
    assert app.workspace.current.path == paths[1]
    assert on_show[str(paths[1])] == ()  # D: every encoder was cached already
    qtbot.waitUntil(lambda: prefetch.sent_ahead == 2 and pipe.encode_count["itm"] == 3 and not app.client.busy,
                    timeout=WAIT_MS)
    QTest.keyClick(w.canvas, QtCore.Qt.Key.Key_D)
    qtbot.waitUntil(lambda: str(paths[2]) in on_show, timeout=WAIT_MS)
    assert on_show[str(paths[2])] == () and pipe.encode_count == {"itm": 3, "caption": 3, "efficient_sam": 3}
    assert not [m for m in w.messages.history if "encod" in str(m).lower()]  # background work says nothing


@pytest.fixture
def client(qtbot):
    c = EngineClient()
    yield c
    assert c.shutdown(20_000)


def test_encoding_ahead_gives_way_to_a_click_on_the_shown_image(client, qtbot, tmp_path, tiny_models_dir):
    from engine.imaging.images import load_image
    from gui.engine_thread.requests import ImageRef

    ended: dict[int, object] = {}
    order: list[str] = []  # in the engine thread's order
    for signal in (client.finished, client.cancelled, client.failed):
        signal.connect(lambda m: ended.setdefault(m.request.request_id, m))
    client.worker.reply.connect(lambda r: order.append(type(r.payload).__name__),
                                QtCore.Qt.ConnectionType.DirectConnection)
    load = client.submit(LoadModels(settings=fast_settings(), models_dir=str(tiny_models_dir)))
    shown_file = write_photo(tmp_path / "shown.png", seed=1)
    loaded = load_image(shown_file)
    shown = ImageRef(str(shown_file), loaded.rgb, loaded.image_id)
    enc = client.submit(EncodeImage(image=shown))
    qtbot.waitUntil(lambda: isinstance(ended.get(enc.request_id), Finished), timeout=WAIT_MS)
    assert isinstance(ended[load.request_id], Finished)
    pipe = client.worker.pipeline
    click = Segment(image=shown, prompts=PromptState((Point(30, 30),)), generation=1, request_id=10**6)
    layers = pipe.manager.itm().model.vision_model.encoder.layers
    order.clear()
    # The user clicks on the shown image while the next one's ITM encoder runs.
    hook = layers[0].register_forward_hook(lambda m, a, o: client.worker.post_segment(click))
    try:
        ahead_file = write_photo(tmp_path / "next.png", seed=2)
        ahead = client.submit(EncodeNext(key=str(ahead_file), path=str(ahead_file)))
        qtbot.waitUntil(lambda: ahead.request_id in ended and "SegmentationResult" in order, timeout=WAIT_MS)
    finally:
        hook.remove()
    gave_way = ended[ahead.request_id]
    assert isinstance(gave_way, Cancelled) and gave_way.superseded  # stopped, and nothing to tell the user
    assert order == ["SegmentationResult"]  # the click was decoded; the next image's encoders did not finish
    assert pipe.encode_count["efficient_sam"] == 2 and pipe.encode_count["itm"] == 1  # its SAM part is kept
