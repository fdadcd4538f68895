"""The engine thread on tiny random models: typed requests, stage-by-stage replies, cancel,
latest-wins decoding, errors as messages, and a clean stop."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from engine.imaging.images import image_from_array
from engine.prompts import NEGATIVE, Point
from engine.annotation.chain import AutoPoints
from engine.results import AnswerResult, CaptionsResult, FusionResult, HeatmapResult, ProposalsResult, SegmentationResult
from engine.annotation.prompts import PromptState
from gui.engine_thread.requests import (Answer, Ask, Cancelled, Failed, Finished, ImageRef, LoadModels, ModelsInfo,
                          OpenImage, Segment)
from gui.engine_thread.engine_client import EngineClient
from gui.engine_thread.worker import EngineWorker
from support.gui import WAIT_MS, fast_settings, write_photo
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


def image_ref(seed: int = 0, key: str = "img") -> ImageRef:
    rng = np.random.default_rng(seed)
    loaded = image_from_array(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8))
    return ImageRef(key, loaded.rgb, loaded.image_id)


class Recorder:
    """Everything a client emits, in order."""

    def __init__(self, client: EngineClient) -> None:
        self.events = []
        for name in ("progress", "reply", "finished", "failed", "cancelled"):
            getattr(client, name).connect(lambda msg, name=name: self.events.append((name, msg)))

    def payloads(self, request_id: int):
        return [m.payload for n, m in self.events if n == "reply" and m.request.request_id == request_id]

    def ended(self, request_id: int):
        return [m for n, m in self.events if n in ("finished", "failed", "cancelled")
                and m.request.request_id == request_id]


@pytest.fixture
def client(qtbot):
    c = EngineClient()
    yield c
    assert c.shutdown(20_000)
    assert not c.thread.isRunning()


def wait_end(qtbot, rec: Recorder, request_id: int):
    qtbot.waitUntil(lambda: bool(rec.ended(request_id)), timeout=WAIT_MS)
    return rec.ended(request_id)[0]


def test_ask_replies_stage_by_stage_then_finishes(client, qtbot, tiny_models_dir):
    rec = Recorder(client)
    load = client.submit(LoadModels(settings=fast_settings(), models_dir=str(tiny_models_dir)))
    ask = client.submit(Ask(image=image_ref(), question="what is this?", alpha=0.5))
    assert ask.request_id > load.request_id and client.busy
    assert isinstance(wait_end(qtbot, rec, load.request_id), Finished)
    info, = rec.payloads(load.request_id)
    assert isinstance(info, ModelsInfo) and info.random_weights and info.device == "cpu"
    assert set(info.models) >= {"itm", "caption", "qa", "efficient_sam"}
    assert isinstance(wait_end(qtbot, rec, ask.request_id), Finished)
    kinds = [type(p) for p in rec.payloads(ask.request_id)]
    assert kinds == [HeatmapResult, AutoPoints, ProposalsResult, FusionResult, CaptionsResult, AnswerResult]
    stages = {m.stage for n, m in rec.events if n == "progress" and m.request_id == ask.request_id}
    assert {"heat map", "captions", "answer"} <= stages
    qtbot.waitUntil(lambda: not client.busy, timeout=2000)


def test_cancel_stops_captions_and_the_thread_keeps_working(client, qtbot, tiny_models_dir):
    rec = Recorder(client)
    slow = fast_settings(num_captions=400, max_caption_rounds=200, caption_batch_size=2)
    client.submit(LoadModels(settings=slow, models_dir=str(tiny_models_dir)))
    ask = client.submit(Ask(image=image_ref(), question="what is this?"))
    client.progress.connect(lambda p: client.cancel() if p.stage == "captions" else None)
    end = wait_end(qtbot, rec, ask.request_id)
    assert isinstance(end, Cancelled)
    kinds = [type(p) for p in rec.payloads(ask.request_id)]
    assert HeatmapResult in kinds and AnswerResult not in kinds  # results so far were delivered
    caps = [p for p in rec.payloads(ask.request_id) if isinstance(p, CaptionsResult)]
    assert not caps or caps[0].cancelled
    # a request sent after the cancel runs normally
    client.progress.disconnect()
    seg = client.submit(Segment(image=image_ref(), prompts=PromptState((Point(40, 30),)), generation=1))
    assert isinstance(wait_end(qtbot, rec, seg.request_id), Finished)
    assert isinstance(rec.payloads(seg.request_id)[0], SegmentationResult)


def test_mailbox_decodes_only_the_newest_edit(tiny_models_dir):
    """Synchronous (no thread): five edits posted before the worker looks -> one decode, the last."""
    worker = EngineWorker()
    replies, failures = [], []
    worker.reply.connect(replies.append)
    worker.failed.connect(failures.append)
    worker.handle(LoadModels(settings=fast_settings(), models_dir=str(tiny_models_dir), request_id=1))
    assert not failures, failures
    ref = image_ref()
    for gen in range(1, 6):
        worker.post_segment(Segment(image=ref, prompts=PromptState((Point(10.0 * gen, 20),)), generation=gen,
                                    request_id=10 + gen))
    replies.clear()
    worker.service_mailbox()
    worker.service_mailbox()  # nothing left
    assert [r.request.generation for r in replies] == [5]
    assert replies[0].payload.points[0].x == 50.0
    worker.release()


def test_errors_come_back_as_messages(client, qtbot, tmp_path, tiny_models_dir):
    rec = Recorder(client)
    ask = client.submit(Ask(image=image_ref(), question="what?"))
    fail = wait_end(qtbot, rec, ask.request_id)
    assert isinstance(fail, Failed) and fail.kind == "ModelMissingError" and "models" in fail.message.lower()

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 20)
    opened = client.submit(OpenImage(key=str(bad), path=str(bad)))
    fail = wait_end(qtbot, rec, opened.request_id)
    assert isinstance(fail, Failed) and fail.kind == "ImageError" and "broken.png" in fail.message

    empty = tmp_path / "no-models"
    empty.mkdir()
    load = client.submit(LoadModels(settings=fast_settings(), models_dir=str(empty)))
    fail = wait_end(qtbot, rec, load.request_id)
    assert isinstance(fail, Failed) and fail.kind == "ModelMissingError" and fail.role is not None
    assert "qmask models download" in fail.message

    good = write_photo(tmp_path / "ok.png")
    opened = client.submit(OpenImage(key=str(good), path=str(good)))
    assert isinstance(wait_end(qtbot, rec, opened.request_id), Finished)  # the thread survived all of it
    assert rec.payloads(opened.request_id)[0].size == (160, 120)


def test_answer_request_and_box_prompt(client, qtbot, tiny_models_dir):
    rec = Recorder(client)
    client.submit(LoadModels(settings=fast_settings(), models_dir=str(tiny_models_dir)))
    ref = image_ref(3)
    fused = np.random.default_rng(0).random((6, 6)).astype(np.float32)
    ans = client.submit(Answer(image=ref, question="what colour?", fused_map=fused))
    assert isinstance(wait_end(qtbot, rec, ans.request_id), Finished)
    assert [type(p) for p in rec.payloads(ans.request_id)] == [CaptionsResult, AnswerResult]
    from engine.prompts import Box

    prompts = PromptState((Point(20, 20), Point(60, 40, NEGATIVE)), Box(5, 5, 80, 60))
    seg = client.submit(Segment(image=ref, prompts=prompts, generation=1))
    assert isinstance(wait_end(qtbot, rec, seg.request_id), Finished)
    result = rec.payloads(seg.request_id)[0]
    assert result.box is not None and len(result.candidates) == 3
    assert result.candidates[0].mask.shape == (72, 96)


def test_shutdown_with_a_long_job_running(qtbot, tiny_models_dir):
    c = EngineClient()
    slow = fast_settings(num_captions=400, max_caption_rounds=200, caption_batch_size=2)
    c.submit(LoadModels(settings=slow, models_dir=str(tiny_models_dir)))
    started = []
    c.progress.connect(lambda p: started.append(p.stage))
    c.submit(Ask(image=image_ref(), question="what is this?"))
    qtbot.waitUntil(lambda: "captions" in started, timeout=WAIT_MS)
    assert c.shutdown(30_000), "cancel must reach the captions loop"
    assert not c.thread.isRunning()
    QtCore.QCoreApplication.processEvents()


def test_edits_are_decoded_while_captions_are_written(client, qtbot, tiny_models_dir):
    """The mask follows the user's clicks even while a long ask of the same image runs."""
    rec = Recorder(client)
    slow = fast_settings(num_captions=400, max_caption_rounds=200, caption_batch_size=2)
    client.submit(LoadModels(settings=slow, models_dir=str(tiny_models_dir)))
    ref = image_ref()
    ask = client.submit(Ask(image=ref, question="what is this?"))
    posted = []

    def on_progress(p):
        if p.stage == "captions" and not posted:
            posted.append(client.submit_segment(Segment(image=ref, prompts=PromptState((Point(30, 30),)),
                                                        generation=7)))

    client.progress.connect(on_progress)
    qtbot.waitUntil(lambda: bool(posted) and bool(rec.payloads(posted[0].request_id)), timeout=WAIT_MS)
    assert not rec.ended(ask.request_id), "the segment came back while the ask was still running"
    client.cancel()
    assert isinstance(wait_end(qtbot, rec, ask.request_id), Cancelled)


# ------------------------------------------------------------------ background encoding
def test_encode_image_runs_the_encoders_once_and_the_question_reuses_them(client, qtbot, tiny_models_dir):
    from engine.results import PrepareResult
    from gui.engine_thread.requests import EncodeImage

    rec = Recorder(client)
    client.submit(LoadModels(settings=fast_settings(), models_dir=str(tiny_models_dir)))
    ref = image_ref(3, "a")
    enc = client.submit(EncodeImage(image=ref))
    assert isinstance(wait_end(qtbot, rec, enc.request_id), Finished)
    (result,) = rec.payloads(enc.request_id)
    assert isinstance(result, PrepareResult) and result.image_id == ref.image_id
    assert result.encoded == ("efficient_sam", "itm", "caption")
    stages = [m.stage for n, m in rec.events if n == "progress" and m.request_id == enc.request_id]
    assert any("segmentation model" in s for s in stages) and stages[-1] == "image encoded"
    counts = dict(client.worker.pipeline.encode_count)
    ask = client.submit(Ask(image=ref, question="what is this?", alpha=0.5))
    assert isinstance(wait_end(qtbot, rec, ask.request_id), Finished)
    assert client.worker.pipeline.encode_count == counts  # the question found every encoder's output cached


def test_encode_image_gives_way_to_a_request_about_another_image(client, qtbot, tiny_models_dir):
    from gui.engine_thread.requests import EncodeImage

    rec = Recorder(client)
    client.submit(LoadModels(settings=fast_settings(), models_dir=str(tiny_models_dir)))
    # Both queue behind the model loading: by the time the worker reaches the encoding, the
    # user has moved on to another image, so it does not even start.
    enc = client.submit(EncodeImage(image=image_ref(4, "a")))
    other = client.submit(Ask(image=image_ref(5, "b"), question="and this?", alpha=0.5))
    ended = wait_end(qtbot, rec, enc.request_id)
    assert isinstance(ended, Cancelled) and ended.superseded
    assert isinstance(wait_end(qtbot, rec, other.request_id), Finished)
    # A question about the same image goes first (the user's requests before background work):
    # it encodes the image itself, and the encoding queued before it then finds everything cached.
    same = image_ref(6, "c")
    enc2 = client.submit(EncodeImage(image=same))
    ask2 = client.submit(Ask(image=same, question="what is here?", alpha=0.5))
    assert isinstance(wait_end(qtbot, rec, ask2.request_id), Finished)
    end2 = wait_end(qtbot, rec, enc2.request_id)  # it gave way at its first check, or never started before
    if isinstance(end2, Cancelled):
        assert end2.superseded
    else:  # it ran after the question, and found everything cached
        assert rec.events.index(("finished", rec.ended(ask2.request_id)[0])) < rec.events.index(("finished", end2))
        assert rec.payloads(enc2.request_id)[0].encoded == ()


def test_encode_image_stops_between_blocks_when_the_user_moves_on(client, qtbot, tiny_models_dir):
    from dataclasses import replace

    from gui.engine_thread.requests import EncodeImage

    rec = Recorder(client)
    load = client.submit(LoadModels(settings=fast_settings(), models_dir=str(tiny_models_dir)))
    wait_end(qtbot, rec, load.request_id)
    pipe = client.worker.pipeline
    blocks = pipe.manager.sam().model.image_encoder.blocks
    later = replace(OpenImage(key="b", path="elsewhere.png"), request_id=10**9)
    # While EfficientSAM's encoder runs (in the engine thread), the user opens another image.
    hook = blocks[0].register_forward_hook(lambda m, a, o: client.worker.note_sent(later))
    try:
        enc = client.submit(EncodeImage(image=image_ref(7, "a")))
        ended = wait_end(qtbot, rec, enc.request_id)
    finally:
        hook.remove()
    assert isinstance(ended, Cancelled) and ended.superseded
    assert pipe.encode_count == {"itm": 0, "caption": 0, "efficient_sam": 0}  # stopped inside the first encoder


def test_cancel_stops_a_question_inside_the_image_encoder(client, qtbot, tiny_models_dir):
    rec = Recorder(client)
    load = client.submit(LoadModels(settings=fast_settings(), models_dir=str(tiny_models_dir)))
    wait_end(qtbot, rec, load.request_id)
    pipe = client.worker.pipeline
    layers = pipe.manager.itm().model.vision_model.encoder.layers
    # The user presses Cancel while the heat-map model's vision encoder runs.
    hook = layers[0].register_forward_hook(lambda m, a, o: client.worker.cancel_up_to(10**9))
    try:
        ask = client.submit(Ask(image=image_ref(8), question="what is this?", alpha=0.5))
        ended = wait_end(qtbot, rec, ask.request_id)
    finally:
        hook.remove()
    assert isinstance(ended, Cancelled) and not ended.superseded
    assert rec.payloads(ask.request_id) == [] and pipe.encode_count["itm"] == 0  # stopped before its end


def test_a_click_is_served_between_encoder_blocks(client, qtbot, tiny_models_dir):
    from gui.engine_thread.requests import EncodeImage

    rec = Recorder(client)
    load = client.submit(LoadModels(settings=fast_settings(), models_dir=str(tiny_models_dir)))
    wait_end(qtbot, rec, load.request_id)
    layers = client.worker.pipeline.manager.itm().model.vision_model.encoder.layers
    ref = image_ref(9, "a")
    order = []  # appended in the engine thread, in the order things happen there
    click = Segment(image=ref, prompts=PromptState((Point(30, 30),)), generation=1, request_id=10**6)
    client.worker.reply.connect(lambda r: order.append(type(r.payload).__name__),
                                QtCore.Qt.ConnectionType.DirectConnection)
    hooks = [layers[0].register_forward_hook(lambda m, a, o: client.worker.post_segment(click)),
             layers[-1].register_forward_hook(lambda m, a, o: order.append("ITM encoder done"))]
    try:
        # EfficientSAM is encoded first; the user clicks while BLIP's ITM encoder runs.
        enc = client.submit(EncodeImage(image=ref))
        assert isinstance(wait_end(qtbot, rec, enc.request_id), Finished)
    finally:
        for h in hooks:
            h.remove()
    assert order == ["SegmentationResult", "ITM encoder done", "PrepareResult"]


def test_a_long_job_waits_while_the_gui_holds_and_still_decodes_the_users_edits(client, qtbot, tiny_models_dir):
    """gui.engine_thread.input_priority in the real engine thread: between caption steps the job waits while
    the GUI thread has priority, decoding a click meanwhile, and goes on when it ends."""
    rec = Recorder(client)
    slow = fast_settings(num_captions=400, max_caption_rounds=200, caption_batch_size=2)
    client.submit(LoadModels(settings=slow, models_dir=str(tiny_models_dir)))
    ref = image_ref()
    ask = client.submit(Ask(image=ref, question="what is this?"))

    def caption_steps() -> int:
        return sum(1 for n, m in rec.events if n == "progress" and m.request_id == ask.request_id
                   and m.stage == "captions")

    qtbot.waitUntil(lambda: caption_steps() > 0, timeout=WAIT_MS)
    p = client.priority
    p.max_wait_s = p.max_awake_wait_s = 120.0
    p.hold(120.0)
    qtbot.waitUntil(lambda: p.waiting, timeout=WAIT_MS)
    qtbot.wait(50)  # progress already queued to this thread arrives
    steps = caption_steps()
    seg = client.submit_segment(Segment(image=ref, prompts=PromptState((Point(30, 30),)), generation=1))
    qtbot.waitUntil(lambda: bool(rec.payloads(seg.request_id)), timeout=WAIT_MS)
    qtbot.wait(100)
    assert p.waiting and caption_steps() == steps  # the click was decoded; no caption step ran
    p.max_wait_s = p.max_awake_wait_s = 0.0  # no more waiting: the job goes on
    p.enabled = False
    p.wake()
    qtbot.waitUntil(lambda: not p.waiting, timeout=WAIT_MS)
    p.enabled = True
    qtbot.waitUntil(lambda: caption_steps() > steps, timeout=WAIT_MS)
    assert not rec.ended(ask.request_id)
    client.cancel()
    assert isinstance(wait_end(qtbot, rec, ask.request_id), Cancelled)
