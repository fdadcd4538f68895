"""One image of a batch, the work both the local loop (:mod:`engine.annotation.batch`) and a Ray
worker (:mod:`engine.annotation.batch_ray`) do: read and hash it, run the chain for each question,
and the project writes of what it made (:class:`ImageResult`, small enough to send from a worker
to the driver, which writes it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ImageError, ProjectError, ResourceError
from ..project import ObjectRecord, Project, QuestionRun, file_sha256, proposals_from_chain
from .pipeline_protocol import PipelineProtocol
from .settings import PipelineSettings

if TYPE_CHECKING:
    from .batch import BatchQuestion

__all__ = ["RunFound", "ImageResult", "load_and_hash", "image_seed", "base_seed", "process_image", "write_chain",
           "write_failure", "write_image"]


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


def base_seed(pipeline: PipelineProtocol | None, settings: PipelineSettings | None) -> int | None:
    """The batch's seed: the given pipeline's, else the settings' (default 0)."""
    if pipeline is not None:
        return pipeline.settings.seed
    return (settings or PipelineSettings()).seed


def process_image(path: Path | str, todo: list[int], questions: list[BatchQuestion],
                  get_pipeline: Callable[[], PipelineProtocol], *, stored_sha: str | None = None, seed: int | None = 0,
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
    if seed is not None:
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
