"""Batch pre-annotation: awkward image files, resume without duplicates (one run per image and
question, its proposals as objects), review order, export.

Most tests drive the batch with a small stand-in pipeline (the whole
``engine.annotation.pipeline_protocol.PipelineProtocol``, tests/support/fakes.py) whose mask is "the bright
pixels", so alignment with the displayed image can be checked exactly. One test runs the real chain on the
tiny random models.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from engine.annotation.batch import BatchQuestion, read_questions_csv, run_batch
from engine.errors import InputError
from engine.project import Project, normalise_question
from engine.results import (
    AnswerResult, CaptionsResult, ChainResult, FusionResult, HeatmapResult, MaskCandidate,
    SegmentationResult,
)
from engine.prompts import Point
from support.fakes import PipelineStandIn
from support.commands import run_qmask


class StandInPipeline(PipelineStandIn):
    """Mask = bright pixels of the image it was given; counts calls; can fail on demand."""

    def __init__(self, fail_at_call: int | None = None):
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self.instances: list[str] = []  # what each call asked for: "one", "several" or "auto"
        self.fail_at_call = fail_at_call

    def set_image(self, rgb, image_id=None):
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        self.rgb, self.image_id = rgb, image_id

    def run(self, question, points=None, box=None, alpha=None, segment=None, progress=None, cancel=None,
            instances="auto"):
        if self.fail_at_call is not None and len(self.calls) == self.fail_at_call:
            raise RuntimeError("injected failure")
        self.calls.append((self.image_id, question))
        self.instances.append(instances)
        h, w = self.rgb.shape[:2]
        mask = self.rgb.mean(axis=2) > 128
        heat = np.zeros((4, 4), np.float32)
        heat[0, 0] = 1.0
        pts = (Point(w / 2, h / 2, score=1.0, source="auto"),)
        cand = MaskCandidate(mask=mask, low_res_logits=np.zeros((256, 256), np.float32), iou=0.5)
        proposals = ()
        if instances == "several":  # one proposal per bright region, as the chain makes one per hot region
            import cv2

            n, labels = cv2.connectedComponents(mask.astype(np.uint8))
            proposals = tuple(SegmentationResult(candidates=(MaskCandidate(labels == k, np.zeros((4, 4), np.float32),
                                                                           0.6),), points=pts) for k in range(1, n))
        return ChainResult(
            image_id=self.image_id, image_size=(w, h), question=normalise_question(question),
            heatmap=HeatmapResult(question=question, question_map=heat, token_maps=heat[None],
                                  tokens=("x",), itm_probability=0.5),
            points=pts, segmentation=SegmentationResult(candidates=(cand,), points=pts), chosen=0,
            fusion=FusionResult(fused_map=heat, alpha=0.5),
            captions=CaptionsResult(captions=("a thing",), rounds=1, complete=True),
            answer=AnswerResult(answer="thing"), models={"itm": "stand-in"}, random_weights=True,
            proposals=proposals, instances="several" if proposals else "one")


def _bright_square(h, w, y0, x0, size):
    a = np.full((h, w, 3), 20, np.uint8)
    a[y0:y0 + size, x0:x0 + size] = 240
    return a


def make_folder(root):
    """Good: rgb, gray, rgba, 16-bit, EXIF-rotated JPEG. Bad: corrupt, empty, too large."""
    root.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_bright_square(30, 40, 5, 5, 10)).save(root / "01_rgb.png")
    Image.fromarray(_bright_square(30, 40, 10, 20, 8)[..., 0]).save(root / "02_gray.png")
    rgba = np.dstack([_bright_square(24, 32, 2, 2, 6), np.full((24, 32), 255, np.uint8)])
    Image.fromarray(rgba).save(root / "03_rgba.png")
    deep = (_bright_square(20, 26, 4, 4, 5)[..., 0].astype(np.uint16) * 257)
    Image.fromarray(deep).save(root / "04_deep16.png")
    with Image.open(root / "04_deep16.png") as im:
        assert im.mode.startswith("I")
    # stored 32 rows x 48 cols, bright square near the stored top-left; EXIF 6 = rotate 90 CW
    stored = _bright_square(32, 48, 2, 4, 10)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(root / "05_rotated.jpg", exif=exif.tobytes(), quality=95)
    (root / "06_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(200)))
    (root / "07_empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(root / "08_large.png")
    return root


MAX_PIXELS = 10_000  # 08_large.png (40,000 px) is "too large"; the others fit


def test_awkward_files(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    pipe = StandInPipeline()
    report = run_batch(folder, ["what is bright?"], tmp_path / "p.qmask", pipeline=pipe,
                       max_pixels=MAX_PIXELS, show_progress=False)
    assert report.images == 8 and report.processed == 5 and report.annotations == 5 and report.ok
    failed = dict(report.failed)
    assert set(failed) == {"imgs/06_corrupt.jpg", "imgs/07_empty.png", "imgs/08_large.png"}
    assert "0 bytes" in failed["imgs/07_empty.png"] and "limit" in failed["imgs/08_large.png"]
    project = Project.open(tmp_path / "p.qmask")
    assert project.summary()["failed"] == 3 and project.summary()["ok"] == 5
    for rel, reason in failed.items():
        img = project.find_image(rel)
        assert img.status == "failed" and img.error == reason and not img.runs and not img.objects
    rot = project.find_image("imgs/05_rotated.jpg")
    assert (rot.width, rot.height) == (32, 48)  # as displayed: the EXIF rotation swaps the sides
    with Image.open(folder / "05_rotated.jpg") as im:
        shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    mask = rot.objects[0].mask()
    assert mask.shape == shown.shape[:2]
    np.testing.assert_array_equal(mask, shown.mean(axis=2) > 128)  # lines up with the displayed image
    assert mask.any()
    deep = project.find_image("imgs/04_deep16.png").objects[0].mask()
    assert deep.sum() == 25  # the 16-bit image was scaled, not clipped to white
    for img in project.iter_images():
        if img.status == "ok":
            assert img.sha256 and len(img.runs) == 1 and len(img.objects) == 1
            obj = img.objects[0]
            assert (obj.source, obj.question, obj.proposal, img.runs[0].object_uids) == \
                ("batch", "what is bright?", True, [obj.uid])
    assert set(pipe.instances) == {"auto"}  # a plain question: the chain decides how many

def test_interrupt_and_resume_without_duplicates(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    questions = [BatchQuestion("what is bright?"), BatchQuestion("where is it?", label="thing")]
    broken = StandInPipeline(fail_at_call=5)  # dies on the 3rd image's 2nd question
    with pytest.raises(RuntimeError, match="injected"):
        run_batch(folder, questions, tmp_path / "p.qmask", pipeline=broken,
                  max_pixels=MAX_PIXELS, show_progress=False)
    saved = Project.open(tmp_path / "p.qmask")
    done = {img.path: [r.question for r in img.runs] for img in saved.iter_images() if img.status == "ok"}
    assert all([o.question for o in img.objects] == done[img.path] for img in saved.iter_images() if img.status == "ok")
    # every chain result is committed as it comes: the 3rd image keeps its first question
    assert done == {"imgs/01_rgb.png": ["what is bright?", "where is it?"],
                    "imgs/02_gray.png": ["what is bright?", "where is it?"],
                    "imgs/03_rgba.png": ["what is bright?"]}
    assert saved.count_images() == 8  # all listed from the start
    assert [e.action for e in saved.edits(saved.find_image("imgs/01_rgb.png").id)] == ["chain", "chain"]
    saved.close()

    pipe = StandInPipeline()
    report = run_batch(folder, questions, tmp_path / "p.qmask", pipeline=pipe,
                       max_pixels=MAX_PIXELS, show_progress=False)
    assert report.already_done == 5 and report.processed == 3 and report.annotations == 5
    assert len(pipe.calls) == 5  # only what is left: 03's 2nd question, then 2 good images x 2 questions
    assert [q for _, q in pipe.calls] == ["where is it?"] + ["what is bright?", "where is it?"] * 2
    project = Project.open(tmp_path / "p.qmask")
    for img in project.iter_images():
        if img.status == "ok":
            assert sorted(r.question for r in img.runs) == ["what is bright?", "where is it?"]
            assert sorted(o.question for o in img.objects) == ["what is bright?", "where is it?"]
            assert [o.category for o in img.objects if o.question == "where is it?"] == ["thing"]
    assert project.category("thing") is not None
    # a third run has nothing left to do (failed images are retried and fail again)
    again = StandInPipeline()
    report = run_batch(folder, questions, tmp_path / "p.qmask", pipeline=again,
                       max_pixels=MAX_PIXELS, show_progress=False)
    assert again.calls == [] and report.processed == 0 and report.already_done == 10 and len(report.failed) == 3


def test_a_question_about_several_things_writes_one_object_each(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    a = np.full((30, 40, 3), 20, np.uint8)
    for y, x in ((2, 2), (2, 25), (18, 10)):
        a[y:y + 6, x:x + 6] = 240
    Image.fromarray(a).save(folder / "three.png")
    pipe = StandInPipeline()
    question = BatchQuestion("where are the squares?", label="square", instances="several")
    report = run_batch(folder, [question], tmp_path / "p.qmask", pipeline=pipe, show_progress=False)
    assert pipe.instances == ["several"] and report.annotations == 3 and "3 object(s) written" in str(report)
    with Project.open(tmp_path / "p.qmask") as project:
        img = project.find_image("imgs/three.png")
        assert len(img.runs) == 1 and img.runs[0].instances == "several"
        assert img.runs[0].object_uids == [o.uid for o in img.objects] and len(img.objects) == 3
        assert {o.category for o in img.objects} == {"square"} and all(o.mask().sum() == 36 for o in img.objects)
        union = np.logical_or.reduce([o.mask() for o in img.objects])
        np.testing.assert_array_equal(union, a.mean(axis=2) > 128)
    again = run_batch(folder, [question], tmp_path / "p.qmask", pipeline=StandInPipeline(), show_progress=False)
    assert again.already_done == 1 and again.annotations == 0


def test_cancel_and_progress_callback(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    seen = []
    report = run_batch(folder, ["q?"], tmp_path / "p.qmask", pipeline=StandInPipeline(),
                       max_pixels=MAX_PIXELS, show_progress=False,
                       cancel=lambda: len(seen) >= 2, on_image_done=lambda p, d, t: seen.append((p.name, d, t)))
    assert report.cancelled and report.processed == 2 and "run the same command again" in str(report)
    assert seen == [("01_rgb.png", 1, 8), ("02_gray.png", 2, 8)]
    assert Project.open(tmp_path / "p.qmask").summary()["ok"] == 2


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(_bright_square(10, 10, 1, 1, 3)).save(folder / "a.png")
    run_batch(folder, ["q?"], tmp_path / "p.qmask", pipeline=StandInPipeline(), show_progress=True)
    captured = capsys.readouterr()
    assert "qmask batch" in captured.err and "1/1" in captured.err and captured.out == ""


def test_questions_csv(tmp_path):
    f = tmp_path / "q.csv"
    f.write_text("label,question\ncat,where is the cat?\n,what colour?\ncat,where is the cat?\n\n")
    assert read_questions_csv(f) == [BatchQuestion("where is the cat?", "cat"), BatchQuestion("what colour?")]
    g = tmp_path / "plain.csv"
    g.write_text("is it day?\n\"a, b?\"\n")
    assert [q.question for q in read_questions_csv(g)] == ["is it day?", "a, b?"]
    (tmp_path / "empty.csv").write_text("question\n")
    with pytest.raises(InputError, match="no questions"):
        read_questions_csv(tmp_path / "empty.csv")


def test_nothing_readable(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"")
    report = run_batch(folder, ["q?"], tmp_path / "p.qmask", pipeline=StandInPipeline(), show_progress=False)
    assert not report.ok and len(report.failed) == 1
    with pytest.raises(InputError, match="at least one question"):
        run_batch(folder, ["  "], tmp_path / "p2.qmask", pipeline=StandInPipeline())
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match="No images"):
        run_batch(tmp_path / "none", ["q?"], tmp_path / "p3.qmask", pipeline=StandInPipeline())


@pytest.mark.slow
def test_tiny_models_end_to_end(tmp_path, tiny_models_dir, capsys):
    """The real chain (random tiny models) over the awkward folder via the CLI, interrupted and
    resumed; the result opens, sorts by review need and exports to COCO that pycocotools reads."""
    from pycocotools.coco import COCO

    from engine.export import export_project
    from engine.annotation.pipeline import Pipeline
    from engine.annotation.settings import PipelineSettings

    folder = make_folder(tmp_path / "imgs")
    for name in ("02_gray.png", "03_rgba.png"):  # keep the real-model run short
        (folder / name).unlink()
    project_path = tmp_path / "p.qmask"
    pipe = Pipeline.from_settings(PipelineSettings(num_captions=3, device="cpu", seed=0), models_dir=tiny_models_dir)
    stop_after = []
    report = run_batch(folder, ["what is bright?"], project_path, pipeline=pipe, max_pixels=MAX_PIXELS,
                       show_progress=False, cancel=lambda: len(stop_after) >= 1,
                       on_image_done=lambda *a: stop_after.append(a))
    assert report.cancelled and report.processed == 1

    rc = run_qmask("batch", [str(folder), "--question", "what is bright?", "--project", str(project_path),
               "--models", str(tiny_models_dir), "--device", "cpu", "--num-captions", "3",
               "--max-pixels", str(MAX_PIXELS), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "skipped imgs/06_corrupt.jpg" in captured.err and "1 already done" in captured.out

    project = Project.open(project_path)
    ok = [img for img in project.iter_images() if img.status == "ok"]
    assert len(ok) == 3 and project.summary()["failed"] == 3
    for img in ok:
        assert len(img.runs) == 1
        run = img.runs[0]
        assert run.random_weights and run.models and run.answer is not None and len(run.captions) <= 3
        assert run.heatmap is not None and run.itm_probability is not None and run.instances == "one"
        assert [o.uid for o in img.objects] == run.object_uids
        for o in img.objects:
            assert o.mask().shape == (img.height, img.width) and o.question == "what is bright?"
    rot = project.find_image("imgs/05_rotated.jpg")
    assert (rot.width, rot.height) == (32, 48)
    ids = project.image_ids("review")
    rows = project.image_rows(ids)
    assert [rows[i].status for i in ids][-3:] == ["failed"] * 3

    # the tiny models (seed 0) give non-empty masks; the export must read back pixel-exact
    assert all(len(img.objects) == 1 and img.objects[0].mask().any() for img in ok)
    out = export_project(project, "coco", tmp_path / "coco.json")
    coco = COCO(str(out.out))
    by_name = {img.name: img for img in ok}
    assert len(coco.dataset["annotations"]) == 3
    for ann in coco.dataset["annotations"]:
        img = by_name[coco.imgs[ann["image_id"]]["file_name"]]
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), img.objects[0].mask())
    assert json.loads(out.sidecar.read_text())["random_weights"] is True


def test_an_image_the_models_cannot_take_is_recorded_and_the_batch_goes_on(tmp_path):
    from engine.errors import ResourceError

    folder = make_folder(tmp_path / "imgs")

    class OutOfMemoryOnGray(StandInPipeline):
        def run(self, question, points=None, box=None, alpha=None, segment=None, progress=None, cancel=None,
                instances="auto"):
            if self.rgb.shape == (30, 40, 3) and self.rgb[12, 22, 0] == self.rgb[12, 22, 1] and len(self.calls) == 1:
                raise ResourceError("Out of GPU memory on this image.")
            return super().run(question, cancel=cancel, instances=instances)

    report = run_batch(folder, ["q?"], tmp_path / "p.qmask", pipeline=OutOfMemoryOnGray(),
                       max_pixels=MAX_PIXELS, show_progress=False)
    assert dict(report.failed)["imgs/02_gray.png"] == "Out of GPU memory on this image."
    assert report.processed == 4
    assert Project.open(tmp_path / "p.qmask").find_image("imgs/02_gray.png").status == "failed"
