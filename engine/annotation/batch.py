"""Headless pre-annotation of a folder: every image x every question -> the project, resumably.

    report = run_batch("photos/", [BatchQuestion("what animal is this?")], "photos.qmask",
                       settings=PipelineSettings(num_captions=20), models_dir="models/")

- One question run per (image, question), proposing one object (or one per hot region of the
  heat map, for questions about several things: ``instances``): the key is the image's path
  relative to the project plus the question (whitespace-normalised). Running the same batch
  again skips what is done and retries images that failed, so an interrupted batch resumes
  without duplicates.
- Each image's results are committed to the project (one transaction) as soon as they are
  ready; other processes (the app, another batch) may write the same project meanwhile.
- An unreadable image (corrupt, empty, too large, ...) is marked failed in the project with
  the reason and the batch goes on; the report lists them. Errors that would fail every image
  (missing models, a bad option) stop the batch.
- Throughput: the next image is decoded and hashed on a background thread while the models
  work on the current one; all questions of an image share one ``set_image`` (the vision
  encoders run once per image and are cached); within a question the pipeline batches the
  caption sampling. Images are not stacked into one forward pass across images: the
  Grad-CAM needs per-image gradients and SAM's encoder dominates on its own.
- ``cancel()`` is polled between questions; the work done so far is kept (already committed).
- Captions are sampled with a seed made from ``settings.seed`` and the image's SHA-256
  (:func:`~engine.annotation.batch_image.image_seed`): the same image gets the same captions in
  any order, on any worker.
- ``cluster=ClusterOptions(...)`` runs the same per-image code (:mod:`.batch_image`) on Ray
  workers (``engine.annotation.batch_ray``); this process writes their results as they come.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import CancelledError, InputError
from ..project import Project, clean_label, normalise_question
from .batch_image import ImageResult, RunFound, base_seed, load_and_hash, process_image, write_chain, write_failure
from .pipeline_protocol import PipelineProtocol
from .settings import PipelineSettings

__all__ = ["BatchQuestion", "BatchReport", "read_questions_csv", "run_batch", "pending_work", "BatchProgress"]


@dataclass(frozen=True)
class BatchQuestion:
    question: str
    label: str | None = None  # class of the objects it proposes (None: the class its noun names, if any)
    instances: str = "auto"  # "one", "several" or "auto" (see engine.annotation.chain.ChainRequest)


@dataclass
class BatchReport:
    images: int = 0  # images considered
    processed: int = 0  # images run through the chain this time
    annotations: int = 0  # objects written this time
    already_done: int = 0  # (image, question) pairs found in the project and skipped
    failed: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    notes: list[str] = field(default_factory=list)  # for the user, e.g. a label that was cleaned
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Exit status 0 when at least one image has results (this run or before)."""
        return self.processed > 0 or self.already_done > 0

    def __str__(self) -> str:
        text = (f"{self.processed} image(s) processed, {self.annotations} object(s) written, "
                f"{self.already_done} already done, {len(self.failed)} failed, "
                f"in {self.seconds:.1f} s.")
        if self.cancelled:
            text += " Stopped early; run the same command again to continue."
        return text


def read_questions_csv(path: str | os.PathLike[str]) -> list[BatchQuestion]:
    """Questions from a CSV: a ``question`` column (and optional ``label``) when there is a
    header naming it, else the first column of every row. Blank rows are skipped, duplicates
    dropped."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise InputError(f"Cannot read the questions file {p}: {err.strerror or err}.") from err
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"The questions file {p} holds no questions.")
    header = [c.strip().lower() for c in rows[0]]
    q_col, l_col = 0, None
    if "question" in header:
        q_col = header.index("question")
        l_col = header.index("label") if "label" in header else None
        rows = rows[1:]
    out: list[BatchQuestion] = []
    seen: set[str] = set()
    for r in rows:
        q = r[q_col].strip() if q_col < len(r) else ""
        if not q or normalise_question(q) in seen:
            continue
        seen.add(normalise_question(q))
        label = r[l_col].strip() if l_col is not None and l_col < len(r) and r[l_col].strip() else None
        out.append(BatchQuestion(q, label))
    if not out:
        raise InputError(f"The questions file {p} holds no questions.")
    return out


def pending_work(project: Project, images: list[Path],
                 questions: list[BatchQuestion]) -> tuple[list[tuple[Path, list[BatchQuestion]]], int]:
    """Per image, the questions not yet in the project; plus the number already done."""
    known = project.known_questions()
    work: list[tuple[Path, list[BatchQuestion]]] = []
    done = 0
    for path in images:
        rel = project.rel_path(path)
        todo = []
        for q in questions:
            if (rel, normalise_question(q.question)) in known:
                done += 1
            else:
                todo.append(q)
        if todo:
            work.append((path, todo))
    return work, done


def run_batch(images: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
              questions: list[BatchQuestion] | list[str],
              project: Project | str | os.PathLike[str], *,
              pipeline: PipelineProtocol | None = None, settings: PipelineSettings | None = None,
              models_dir: str | os.PathLike[str] | None = None,
              max_pixels: int | None = None, recursive: bool = False, show_progress: bool = True,
              cancel: Callable[[], bool] | None = None,
              on_image_done: Callable[[Path, int, int], None] | None = None,
              cluster: Any = None) -> BatchReport:
    """Run the chain over ``images`` (a folder, or files) for every question; see the module doc.

    ``project``: a Project, or a path (loaded when it exists, else created). ``pipeline``: a
    :class:`~engine.annotation.pipeline_protocol.PipelineProtocol` (default:
    ``Pipeline.from_settings(settings, models_dir=models_dir)``, built lazily on the first image
    that needs it). ``on_image_done(path, done, total)`` is called after each image is committed.
    ``cluster``: an ``engine.annotation.batch_ray.ClusterOptions`` to run the chains on Ray workers instead
    (the same per-image code, :func:`~engine.annotation.batch_image.process_image`; the results are written here).
    """
    from ..imaging.images import list_images

    t0 = time.perf_counter()
    qs = [q if isinstance(q, BatchQuestion) else BatchQuestion(str(q)) for q in questions]
    qs = [q for q in qs if q.question.strip()]
    if not qs:
        raise InputError("Give at least one question (--question or --questions FILE.csv).")
    if not isinstance(project, Project):
        project = Project.open_or_create(project, writer="batch")
    notes: list[str] = []
    files = list_images(images, recursive=recursive)
    if not files:
        raise InputError(f"No images found in {images}.")
    unnamed = project.unstorable(files)  # names that are not UTF-8: said and skipped, the rest goes on
    if unnamed:
        files = [f for f in files if not project.unstorable([f])]
    for q in qs:
        if q.label and clean_label(q.label) != q.label.strip():
            notes.append(f"The label {q.label!r} is stored as {clean_label(q.label)!r}: a label is one line of text, "
                         "without control characters.")
    qs = [BatchQuestion(q.question, clean_label(q.label) or None if q.label else None, q.instances) for q in qs]
    for q in qs:
        if q.label:
            project.ensure_category(q.label)
    project.add_images(files)  # every image is listed in the project, even before it is processed
    work, done = pending_work(project, files, qs)
    report = BatchReport(images=len(files), already_done=done, notes=notes, failed=list(unnamed))
    project.set_meta("batch_questions", " | ".join(q.question for q in qs))
    if not work:
        report.seconds = time.perf_counter() - t0
        return report

    if cluster is not None:  # the same work, on a Ray cluster (engine.annotation.batch_ray)
        from .batch_ray import run_on_ray

        return run_on_ray(project, qs, work, report, cluster, settings=settings, models_dir=models_dir,
                          max_pixels=max_pixels, show_progress=show_progress, cancel=cancel,
                          on_image_done=on_image_done, started=t0)

    seed = base_seed(pipeline, settings)
    classes = [c.name for c in project.categories]
    progress = BatchProgress(len(work), show_progress)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmask-batch-load")
    futures: dict[int, Future] = {}

    def prefetch(i: int) -> None:
        if i < len(work) and i not in futures:
            futures[i] = pool.submit(load_and_hash, work[i][0], max_pixels)

    def get_pipeline() -> PipelineProtocol:
        nonlocal pipeline
        if pipeline is None:
            pipeline = _default_pipeline(settings, models_dir)
            pipeline.check_models()  # missing models: stop now, naming the download command
        return pipeline

    def on_chain(result: ImageResult, found: RunFound) -> None:
        write_chain(project, result, found)  # committed as soon as it is made
        report.annotations += len(found.objects)

    try:
        prefetch(0)
        for i, (path, todo) in enumerate(work):
            if cancel is not None and cancel():
                report.cancelled = True
                break
            loaded = futures.pop(i).result()
            prefetch(i + 1)
            progress.show(path.name)
            record = project.find_image(path, records=False)
            result = process_image(path, [qs.index(q) for q in todo], qs, get_pipeline, stored_sha=record.sha256,
                                   seed=seed, max_pixels=max_pixels, cancel=cancel, loaded=loaded,
                                   on_chain=on_chain, classes=classes)
            if result.cancelled:
                report.cancelled = True
            if result.failure is not None:
                write_failure(project, result)
                report.failed.append((record.path, result.failure))
                progress.update(failed=1)
                continue
            report.processed += 1
            progress.update()
            if on_image_done is not None:
                on_image_done(path, i + 1, len(work))
            if report.cancelled:
                break
    except CancelledError:
        report.cancelled = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
        if pipeline is not None:
            pipeline.settings.seed = seed  # the caller's settings as they were given
    report.seconds = time.perf_counter() - t0
    return report


class BatchProgress:
    """The batch's progress bar on stderr (images done, images/s, ETA, failures), or nothing."""

    def __init__(self, total: int, show: bool) -> None:
        self.failed = 0
        self.bar = None
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=sys.stderr, unit="image", dynamic_ncols=True, desc="qmask batch")

    def show(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(name), refresh=False)

    def update(self, n: int = 1, failed: int = 0, name: str | None = None) -> None:
        self.failed += failed
        if self.bar is not None:
            if name is not None or failed:
                self.bar.set_postfix_str(self._postfix(name or ""), refresh=False)
            self.bar.update(n)

    def _postfix(self, name: str) -> str:
        return (f"{self.failed} failed, " if self.failed else "") + name[-40:]

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _default_pipeline(settings: PipelineSettings | None, models_dir: Any) -> PipelineProtocol:
    from .pipeline import Pipeline

    return Pipeline.from_settings(settings or PipelineSettings(), models_dir=models_dir)
