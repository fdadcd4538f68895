"""``qmask bench project``: the project store at scale, on a synthetic project.

Builds a project of N realistic images through the store's public API in a temporary folder
(per image: one question run with 100 captions of ~10 words and a 24 x 24 heat map, and
``--objects`` K objects, each with 5 points and a 1024 x 768 rectangle mask as RLE) and prints,
each with what it means for a user:

- build time per image (``import_records``, a chunk of images per transaction) and file size;
- open + first screen of the image list (ids in review order, 50 list rows) + the first
  image's records: what the app does before it shows anything;
- one edit committed (median of 100 ``put_object`` edits spread over the project);
- ``qmask batch`` bookkeeping per image (``find_image`` + ``record_chain``: the store work
  per image besides the models), at the start and at the end of the project, and on a
  1,000-image project for comparison;
- COCO export time and peak memory (a separate process, its ``ru_maxrss``);
- the old JSON format's whole-file save and load (``write_json_project`` /
  ``read_json_project``) at N <= 10,000 or with ``--json``; its size otherwise estimated
  from 1,000 images.

Goals (issue 13, at N = 100,000 on the 2-core reference CPU) are printed as met or missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import InputError

W, H, G = 1024, 768, 24
WORDS = ("a small brown dog sits on the grass near an old red wooden fence while two birds fly over "
         "the quiet river at sunset under clouds").split()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=10_000, metavar="N", help="images in the project (default 10,000)")
    parser.add_argument("--json", action="store_true", help="time the old JSON format's save/load at any N")
    parser.add_argument("--folder", help="build in this folder (kept) instead of a temporary one")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the synthetic records")
    parser.add_argument("--objects", type=int, default=1, metavar="K", help="objects per image (default 1)")


def _rectangles(rng: np.random.Generator, k: int = 32) -> list[dict]:
    from ..imaging.masks import encode_rle

    out = []
    for _ in range(k):
        m = np.zeros((H, W), bool)
        y, x = rng.integers(0, H // 2), rng.integers(0, W // 2)
        m[y:y + rng.integers(50, H // 2), x:x + rng.integers(50, W // 2)] = True
        out.append(encode_rle(m))
    return out


def _captions(rng: np.random.Generator) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=10)) for _ in range(100)]


def synthetic_image(i: int, rng: np.random.Generator, rects: list[dict], objects: int = 1):
    from ..project import ImageRecord, ObjectRecord, QuestionRun
    from ..prompts import Point

    question = "what animal is this?"
    run = QuestionRun(question=question, answer=str(rng.choice(WORDS)), captions=_captions(rng),
                      itm_probability=float(rng.random()), heatmap=rng.random((G, G)).astype(np.float32),
                      models={"itm": "blip-itm-large-coco"})
    objs = []
    for k in range(objects):
        pts = [Point(float(rng.uniform(0, W)), float(rng.uniform(0, H)), score=float(rng.random()), source="auto")
               for _ in range(5)]
        rle = rects[(i + k) % len(rects)]
        objs.append(ObjectRecord(category="animal", mask_rle=dict(rle), auto_mask_rle=dict(rle), points=list(pts),
                                 auto_points=pts, mask_score=float(rng.random()), source="batch", question=question,
                                 proposal=True, order=k))
    run.auto_points = objs[0].auto_points if objs else []
    run.object_uids = [o.uid for o in objs]
    return ImageRecord(path=f"images/{i // 1000:03d}/img{i:06d}.jpg", width=W, height=H, sha256="0" * 64,
                       status="ok", objects=objs, runs=[run])


def build(path: Path, n: int, seed: int = 0, chunk: int = 1000, objects: int = 1) -> float:
    """A project of ``n`` synthetic images at ``path``; returns the seconds spent in the store."""
    from ..project import Project

    rng = np.random.default_rng(seed)
    rects = _rectangles(rng)
    project = Project.create(path, writer="bench")
    project.ensure_category("animal")
    spent = 0.0
    for start in range(0, n, chunk):
        records = [synthetic_image(i, rng, rects, objects) for i in range(start, min(n, start + chunk))]
        t0 = time.perf_counter()
        project.import_records(records)
        spent += time.perf_counter() - t0
    project.close()
    return spent


def chain_for(mask_rle: dict, rng: np.random.Generator):
    """A ChainResult like the pipeline's (what ``qmask batch`` hands the store)."""
    from ..imaging.masks import decode_rle
    from ..prompts import Point
    from ..results import (AnswerResult, CaptionsResult, ChainResult, FusionResult, HeatmapResult,
                          MaskCandidate, SegmentationResult)

    mask = decode_rle(mask_rle)
    heat = rng.random((G, G)).astype(np.float32)
    pts = tuple(Point(float(rng.uniform(0, W)), float(rng.uniform(0, H)), score=0.5, source="auto") for _ in range(5))
    cand = MaskCandidate(mask=mask, low_res_logits=np.zeros((4, 4), np.float32), iou=0.8)
    return ChainResult(image_id=None, image_size=(W, H), question="what animal is this?",
                       heatmap=HeatmapResult(question="what animal is this?", question_map=heat,
                                             token_maps=heat[None], tokens=("animal",), itm_probability=0.6),
                       points=pts, segmentation=SegmentationResult(candidates=(cand,), points=pts), chosen=0,
                       fusion=FusionResult(fused_map=heat, alpha=0.5),
                       captions=CaptionsResult(captions=tuple(_captions(rng)), rounds=1, complete=True),
                       answer=AnswerResult(answer="dog"), models={"itm": "blip-itm-large-coco"})


def first_screen(path: Path) -> tuple[float, dict]:
    """Open + image ids in review order + 50 list rows + the first image's records."""
    from ..project import Project

    t0 = time.perf_counter()
    project = Project.open(path)
    ids = project.image_ids("review")
    rows = project.image_rows(ids[:50])
    first = project.get_image(ids[0])
    assert first is not None and len(rows) == min(50, len(ids))
    seconds = time.perf_counter() - t0
    reads = dict(project.reads)
    project.close()
    return seconds, reads


def edit_times(path: Path, rng: np.random.Generator, k: int = 100) -> list[float]:
    from ..prompts import Point
    from ..project import Project

    project = Project.open(path, writer="bench-edit")
    ids = project.image_ids("added")
    out = []
    for image_id in [ids[int(j)] for j in np.linspace(0, len(ids) - 1, min(k, len(ids)))]:
        img = project.get_image(image_id)
        rec = img.objects[0]
        rec.points.append(Point(float(rng.uniform(0, W)), float(rng.uniform(0, H)), label=0))
        rec.accepted = True
        rec.touch()
        t0 = time.perf_counter()
        project.put_object(img, rec, source="user")
        out.append(time.perf_counter() - t0)
    project.close()
    return out


def bookkeeping(path: Path, rng: np.random.Generator, where: str, k: int = 50) -> float:
    """Median seconds per image of ``find_image(records=False)`` + ``record_chain``."""
    from ..project import Project

    project = Project.open(path, writer="bench-batch")
    ids = project.image_ids("added")
    part = ids[:k] if where == "start" else ids[-k:]
    paths = [project.abs_path(r.path) for r in project.image_rows(part).values()]
    rle = project.get_image(part[0]).objects[0].mask_rle
    chains = [chain_for(rle, rng) for _ in range(4)]
    times = []
    for i, p in enumerate(paths):
        t0 = time.perf_counter()
        project.find_image(p, records=False)
        project.record_chain(p, chains[i % 4], category="animal", sha256="1" * 64)
        times.append(time.perf_counter() - t0)
    project.close()
    return statistics.median(times)


_EXPORT = ("import resource, sys, time\nfrom engine.export import export_project\nfrom engine.project import Project\n"
           "p = Project.open(sys.argv[1]); t0 = time.perf_counter()\n"
           "r = export_project(p, 'coco', sys.argv[2])\n"
           "print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, r.annotations)")


def coco_export(path: Path, out: Path) -> tuple[float, float, int]:
    """(seconds, peak resident MB of the exporting process, annotations)."""
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", _EXPORT, str(path), str(out)], cwd=root, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(root)))
    if r.returncode != 0:
        raise InputError(f"The COCO export failed: {r.stderr.strip()[-500:]}")
    seconds, kb, anns = r.stdout.split()[-3:]
    return float(seconds), int(kb) / 1024, int(anns)


def json_figures(path: Path, out: Path) -> tuple[float, float, int]:
    """The old format: a whole-file save (write) and load (read + validate) of the JSON."""
    from ..project import Project
    from ..project.interchange import read_json_project, write_json_project

    project = Project.open(path)
    t0 = time.perf_counter()
    write_json_project(project, out)
    save = time.perf_counter() - t0
    project.close()
    t0 = time.perf_counter()
    read_json_project(out)
    load = time.perf_counter() - t0
    return save, load, out.stat().st_size


def _goal(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(args: argparse.Namespace) -> int:
    n = int(args.images)
    if n < 1:
        raise InputError("--images must be at least 1.")
    rng = np.random.default_rng(args.seed + 1)
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="qmask-bench-project-"))
    folder.mkdir(parents=True, exist_ok=True)
    p = print
    try:
        path = folder / "bench.qmask"
        if path.exists():
            path.unlink()
        k = max(0, int(args.objects))
        p(f"qmask bench project: {n:,} synthetic images (1 question run: 100 captions, {G}x{G} heat map; {k} "
          f"object(s): 5 points, a {W}x{H} RLE mask each) in {folder}")
        built = build(path, n, args.seed, objects=k)
        size = path.stat().st_size
        p(f"build: {built / n * 1000:.2f} ms per image ({built:.1f} s in all; import_records, a chunk per transaction)")
        p(f"file size: {size / 1e6:.1f} MB ({size / n / 1024:.1f} KB per image)")
        opened, reads = first_screen(path)
        p(f"open + first screen (50 list rows) + first image's records: {opened * 1000:.0f} ms "
          f"(read: {reads['images']} image rows, {reads['objects']} objects, {reads['runs']} runs)")
        edits = edit_times(path, rng)
        edit = statistics.median(edits)
        p(f"one edit committed (put_object, median of {len(edits)} spread over the project): {edit * 1000:.2f} ms "
          f"(max {max(edits) * 1000:.2f} ms)")
        start = bookkeeping(path, rng, "start")
        end = bookkeeping(path, rng, "end")
        p(f"batch bookkeeping per image (find_image + record_chain): {start * 1000:.2f} ms at the start, "
          f"{end * 1000:.2f} ms at the end of the project")
        ref_n = min(n, 1000)
        ref = folder / "reference.qmask"
        build(ref, ref_n, args.seed, objects=k)
        ref_book = bookkeeping(ref, rng, "end")
        p(f"batch bookkeeping per image on a {ref_n:,}-image project: {ref_book * 1000:.2f} ms "
          f"(end of this project / that: {end / ref_book:.2f}x)")
        seconds, peak_mb, anns = coco_export(path, folder / "coco" / "annotations.json")
        p(f"COCO export: {seconds:.1f} s for {anns:,} annotations, peak memory {peak_mb:.0f} MB (whole process)")
        shutil.rmtree(folder / "coco", ignore_errors=True)
        if n <= 10_000 or args.json:
            save, load, json_size = json_figures(path, folder / "bench.qmask.json")
            p(f"old JSON format: {json_size / 1e6:.1f} MB, one save (whole file) {save:.2f} s, one load {load:.2f} s")
            (folder / "bench.qmask.json").unlink()
        else:
            _save, _load, ref_size = json_figures(ref, folder / "reference.qmask.json")
            json_size = int(ref_size / ref_n * n)
            p(f"old JSON format: about {json_size / 1e6:.1f} MB (estimated from {ref_n:,} images; --json to time it)")
        p("goals (issue 13, for N = 100,000 on the 2-core reference CPU)" + ("" if n == 100_000 else f"; this run: N = {n:,}") + ":")
        p(f"  open + first screen + first record <= 1 s: {_goal(opened <= 1.0)}")
        p(f"  one edit <= 10 ms: {_goal(edit <= 0.010)}")
        p(f"  batch bookkeeping <= 5 ms per image and within 20% of N = 1,000: "
          f"{_goal(end <= 0.005 and start <= 0.005 and end <= 1.2 * ref_book)}")
        p(f"  COCO export <= 2 min and <= 1 GB peak: {_goal(seconds <= 120 and peak_mb <= 1024)}")
        p(f"  file no larger than the JSON: {_goal(size <= json_size)}")
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    return 0
