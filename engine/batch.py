"""Headless pre-annotation of a folder: every image x every question -> the project, resumably.

    report = run_batch("photos/", [BatchQuestion("what animal is this?")], "photos.qmask",
                       settings=PipelineSettings(num_captions=20), models_dir="models/")

- One annotation per (image, question): the key is the image's path relative to the project
  plus the question (whitespace-normalised). Running the same batch again skips what is done
  and retries images that failed, so an interrupted batch resumes without duplicates.
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

from .errors import CancelledError, ImageError, InputError, ProjectError, ResourceError
from .project import Project, clean_label, file_sha256, normalise_question

__all__ = ["BatchQuestion", "BatchReport", "read_questions_csv", "run_batch", "pending_work"]


@dataclass(frozen=True)
class BatchQuestion:
    question: str
    label: str | None = None  # category for the resulting masks


@dataclass
class BatchReport:
    images: int = 0  # images considered
    processed: int = 0  # images run through the chain this time
    annotations: int = 0  # question records written this time
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
        text = (f"{self.processed} image(s) processed, {self.annotations} annotation(s) written, "
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


def _load(path: Path, max_pixels: int | None) -> tuple[Any, str] | ImageError | ResourceError:
    from .images import load_image

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
              on_image_done: Callable[[Path, int, int], None] | None = None) -> BatchReport:
    """Run the chain over ``images`` (a folder, or files) for every question; see the module doc.

    ``project``: a Project, or a path (loaded when it exists, else created). ``pipeline``: an
    object with ``set_image(rgb, image_id=...)`` and ``run(question) -> ChainResult`` (default:
    ``Pipeline.from_settings(settings, models_dir=models_dir)``, built lazily on the first image
    that needs it). ``on_image_done(path, done, total)`` is called after each image is committed.
    """
    from .images import list_images

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
    qs = [BatchQuestion(q.question, clean_label(q.label) or None if q.label else None) for q in qs]
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

    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(work), file=sys.stderr, unit="image", dynamic_ncols=True, desc="qmask batch")

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmask-batch-load")
    futures: dict[int, Future] = {}

    def prefetch(i: int) -> None:
        if i < len(work) and i not in futures:
            futures[i] = pool.submit(_load, work[i][0], max_pixels)

    try:
        prefetch(0)
        for i, (path, todo) in enumerate(work):
            if cancel is not None and cancel():
                report.cancelled = True
                break
            loaded = futures.pop(i).result()
            prefetch(i + 1)
            record = project.find_image(path, questions=False)
            if bar is not None:
                bar.set_postfix_str(path.name[-40:], refresh=False)
            if isinstance(loaded, Exception):
                record.mark_failed(str(loaded))
                project.update_image(record)
                report.failed.append((record.path, str(loaded)))
                if bar is not None:
                    bar.update(1)
                continue
            image, sha = loaded
            w, h = image.size
            if record.sha256 and record.sha256 != sha:
                # The file changed since its annotations were made: they no longer fit it.
                project.clear_questions(record, reason="the image file changed")
                todo = list(qs)
            record.sha256 = sha
            record.mark_ok(w, h)
            if pipeline is None:
                pipeline = _default_pipeline(settings, models_dir)
                pipeline.check_models()  # missing models: stop now, naming the download command
            try:
                pipeline.set_image(image.rgb, image_id=image.image_id)
                for q in todo:
                    if cancel is not None and cancel():
                        report.cancelled = True
                        break
                    chain = pipeline.run(q.question, cancel=cancel)
                    if tuple(chain.image_size) != (w, h):
                        raise ProjectError(f"The pipeline returned a {chain.image_size} result for the "
                                           f"{w}x{h} image {path}; refusing to store misaligned masks.")
                    project.record_chain(path, chain, label=q.label, sha256=sha)
                    report.annotations += 1
            except (ImageError, ResourceError) as err:
                # This image only (e.g. out of memory on a huge one): record it, go on.
                record.mark_failed(str(err))
                project.update_image(record)
                report.failed.append((record.path, str(err)))
                if bar is not None:
                    bar.update(1)
                continue
            report.processed += 1
            if bar is not None:
                bar.update(1)
            if on_image_done is not None:
                on_image_done(path, i + 1, len(work))
            if report.cancelled:
                break
    except CancelledError:
        report.cancelled = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - t0
    return report


def _default_pipeline(settings: Any, models_dir: Any) -> Any:
    from .pipeline import Pipeline, PipelineSettings

    return Pipeline.from_settings(settings or PipelineSettings(), models_dir=models_dir)
