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
  (:func:`image_seed`): the same image gets the same captions in any order, on any worker.
- ``cluster=ClusterOptions(...)`` runs the same per-image code (:func:`process_image`) on Ray
  workers (``engine.annotation.batch_ray``); this process writes their results as they come.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import CancelledError, ImageError, InputError, ProjectError, ResourceError
from ..project import (ObjectRecord, Project, QuestionRun, clean_label, file_sha256, normalise_question,
                       proposals_from_chain)

__all__ = ["BatchQuestion", "BatchReport", "ImageResult", "read_questions_csv", "run_batch", "pending_work",
           "process_image", "write_image", "image_seed"]


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


def load_and_hash(path: Path, max_pixels: int | None) -> tuple[Any, str] | ImageError | ResourceError:
    """The image (as displayed) and its file's SHA-256, or the error that says why it cannot be read."""
    from ..imaging.images import load_image

    try:
        loaded = load_image(path, max_pixels=max_pixels)
        return loaded, file_sha256(path)
    except (ImageError, ResourceError) as err:
        return err
    except OSError as err:  # e.g. the file vanished between listing and hashing
        return ImageError(f"Could not read {path}: {err.strerror or err}.")


def run_batch(images: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
              questions: list[BatchQuestion] | list[str],
              project: Project | str | os.PathLike[str], *,
              pipeline: Any = None, settings: Any = None, models_dir: str | os.PathLike[str] | None = None,
              max_pixels: int | None = None, recursive: bool = False, show_progress: bool = True,
              cancel: Callable[[], bool] | None = None,
              on_image_done: Callable[[Path, int, int], None] | None = None,
              cluster: Any = None) -> BatchReport:
    """Run the chain over ``images`` (a folder, or files) for every question; see the module doc.

    ``project``: a Project, or a path (loaded when it exists, else created). ``pipeline``: an
    object with ``set_image(rgb, image_id=...)`` and ``run(question) -> ChainResult`` (default:
    ``Pipeline.from_settings(settings, models_dir=models_dir)``, built lazily on the first image
    that needs it). ``on_image_done(path, done, total)`` is called after each image is committed.
    ``cluster``: an ``engine.annotation.batch_ray.ClusterOptions`` to run the chains on Ray workers instead
    (the same per-image code, :func:`process_image`; the results are written here).
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
    report = BatchReport(images=len(files), already_done=done, notes=notes)
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

    def get_pipeline() -> Any:
        nonlocal pipeline
        if pipeline is None:
            pipeline = _default_pipeline(settings, models_dir)
            pipeline.check_models()  # missing models: stop now, naming the download command
        return pipeline

    def on_chain(result: ImageResult, found: "RunFound") -> None:
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
        if getattr(pipeline, "settings", None) is not None:
            pipeline.settings.seed = seed  # the caller's settings as they were given
    report.seconds = time.perf_counter() - t0
    return report


# -- one image: the work both the local loop and a Ray worker (engine.annotation.batch_ray) do ---------

@dataclass
class RunFound:
    """One question's run and the objects it proposed (:func:`engine.project.proposals_from_chain`)."""

    run: QuestionRun
    objects: list[ObjectRecord]


@dataclass
class ImageResult:
    """What the chain made of one image, as the project stores it (RLE masks, no logits): small
    enough to send from a worker to the driver, which writes it (:func:`write_chain`, :func:`write_failure`)."""

    path: str  # the image file, as the batch listed it (absolute on a cluster)
    sha256: str | None = None  # None: the file could not be read
    size: tuple[int, int] | None = None  # (W, H) as displayed
    changed: bool = False  # the file changed since its annotations were made: they are replaced
    records: list["RunFound"] = field(default_factory=list)  # one per question run
    failure: str | None = None  # why this image failed (it is recorded as failed, the batch goes on)
    cancelled: bool = False
    fatal: BaseException | None = None  # a Ray worker's error that stops the batch (models missing)
    written: int = 0  # chains written so far (by the driver)
    worker: str = ""  # HOST:PID of the Ray worker that made it ("" locally)


def image_seed(seed: int | None, sha256: str) -> int | None:
    """The caption sampling seed of one image: from the batch's seed and the image's content, so
    that it does not depend on the order, the worker or the machine (None stays unseeded)."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"{int(seed)}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def base_seed(pipeline: Any, settings: Any) -> int | None:
    """The batch's seed: the given pipeline's, else the settings' (default 0)."""
    owner = getattr(pipeline, "settings", None) if pipeline is not None else settings
    if owner is None and pipeline is None:
        from .settings import PipelineSettings

        owner = PipelineSettings()
    return getattr(owner, "seed", None)


def process_image(path: Path | str, todo: list[int], questions: list[BatchQuestion],
                  get_pipeline: Callable[[], Any], *, stored_sha: str | None = None, seed: int | None = 0,
                  max_pixels: int | None = None, cancel: Callable[[], bool] | None = None,
                  loaded: Any = None, on_chain: Callable[[ImageResult, RunFound], None] | None = None,
                  classes: list[str] | tuple[str, ...] = ()) -> ImageResult:
    """Load and hash one image, make it current, run the chain for each question in ``todo``
    (indices into ``questions``); errors of this image only become ``failure``.

    ``get_pipeline()`` is called once the image is read (a folder of unreadable files needs no
    models). ``loaded``: the image already read by :func:`load_and_hash` (the local loop reads
    the next image while the models work). ``on_chain(result, found)`` after each question.
    ``classes``: the project's class list (a question's objects take the class its noun names).
    """
    loaded = load_and_hash(Path(path), max_pixels) if loaded is None else loaded
    if isinstance(loaded, Exception):
        return ImageResult(str(path), failure=str(loaded))
    image, sha = loaded
    result = ImageResult(str(path), sha256=sha, size=tuple(image.size))
    if stored_sha and stored_sha != sha:
        result.changed = True  # its annotations no longer fit it: every question again
        todo = list(range(len(questions)))
    pipeline = get_pipeline()
    if getattr(pipeline, "settings", None) is not None and seed is not None:
        pipeline.settings.seed = image_seed(seed, sha)
    try:
        pipeline.set_image(image.rgb, image_id=image.image_id)
        for qi in todo:
            if cancel is not None and cancel():
                result.cancelled = True
                break
            q = questions[qi]
            chain = pipeline.run(q.question, cancel=cancel, instances=q.instances)  # the chain, in one place
            if tuple(chain.image_size) != result.size:
                raise ProjectError(f"The pipeline returned a {chain.image_size} result for the "
                                   f"{result.size[0]}x{result.size[1]} image {path}; refusing to store "
                                   "misaligned masks.")
            run, objects = proposals_from_chain(chain, category=q.label or match_class_of(q.question, chain, list(classes)),
                                                source="batch")
            result.records.append(RunFound(run, objects))
            if on_chain is not None:
                on_chain(result, result.records[-1])
    except (ImageError, ResourceError) as err:
        result.failure = str(err)  # this image only (e.g. out of memory on a huge one)
    return result


def match_class_of(question: str, chain: Any, classes: list[str]) -> str | None:
    """The class a batch question's objects get when the batch names none: the one its noun (or
    its answer's) names in the project's class list; None (unlabelled) otherwise."""
    from .class_match import match_class

    answer = chain.answer.answer if getattr(chain, "answer", None) is not None else ""
    return match_class(question, answer, classes) if classes else None


def write_chain(project: Project, result: ImageResult, found: RunFound) -> None:
    """Commit one question's run and objects of ``result`` (one transaction)."""
    if result.changed and result.written == 0:
        _clear(project, result)
    project.record_run(result.path, found.run, found.objects, result.size, sha256=result.sha256)
    result.written += 1


def write_failure(project: Project, result: ImageResult) -> None:
    """Record the image as failed, with the reason (the chains it finished stay)."""
    if result.changed and result.written == 0:
        _clear(project, result)
    record = project.find_image(result.path, records=False)
    if result.sha256:
        record.sha256 = result.sha256
    record.mark_failed(str(result.failure))
    project.update_image(record)


def write_image(project: Project, result: ImageResult) -> None:
    """Commit a whole :class:`ImageResult` (a Ray worker's): each record, then any failure."""
    for found in result.records:
        write_chain(project, result, found)
    if result.failure is not None:
        write_failure(project, result)


def _clear(project: Project, result: ImageResult) -> None:
    record = project.find_image(result.path, records=False)
    project.clear_annotations(record, reason="the image file changed")


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


def _default_pipeline(settings: Any, models_dir: Any) -> Any:
    from .pipeline import Pipeline
    from .settings import PipelineSettings

    return Pipeline.from_settings(settings or PipelineSettings(), models_dir=models_dir)
