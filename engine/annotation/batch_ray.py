"""``qmask batch --ray``: the batch's chains on a Ray cluster, written into the project here.

    run_batch("photos/", questions, "photos.qmask", settings=..., cluster=ClusterOptions("auto", workers=8))

- Ray Data reads the list of images still to do (one row per image: its path, the questions
  it lacks, its stored hash) and maps it through a pool of :class:`ChainWorker` actors. Each
  actor is a process that loads the models once and runs
  :func:`engine.annotation.batch_image.process_image`, the same per-image code as the local batch;
  it sends back a pickled :class:`engine.annotation.batch_image.ImageResult`.
- This process (the driver) takes results as they come and writes each image into the project
  (one transaction per chain); nothing waits for the end, so Ctrl-C keeps everything written
  and a rerun skips it. The driver writes each image once: a result that arrives twice (Ray
  redoes the work of a worker that died, killed or out of memory) is dropped.
- A worker that cannot load the models (none on its node, a broken checkpoint) sends the error
  back for every image it is given: the driver stops at the first with that message.
- Images and ``--models DIR`` must be at the same path on every node (shared storage), or the
  models in each node's Hugging Face cache; see the README's "Cluster" section.

Ray is optional: ``pip install 'qmask[cluster]'``.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError, QMaskError
from .batch import BatchProgress, BatchQuestion, BatchReport
from .batch_image import ImageResult, base_seed, process_image, write_image
from .pipeline_protocol import PipelineProtocol

__all__ = ["ClusterOptions", "ChainWorker", "parse_workers", "import_ray", "plan_workers", "run_on_ray"]

INSTALL_HINT = ("Ray is not installed: install the cluster extra with pip install 'qmask[cluster]' "
                "(from a checkout: pip install -e '.[cluster]').")
CPU_SHARE = 0.95  # of --cpus-per-worker asked of Ray, so Ray Data's own tasks always find a CPU
MAX_BLOCKS = 20_000  # one image per block up to this many (a dead worker's block is redone whole)


@dataclass
class ClusterOptions:
    """Where and how ``qmask batch --ray`` runs (see :func:`plan_workers` for the defaults)."""

    address: str | None = None  # None: a local Ray instance; "auto": the running cluster; "ray://HOST:10001"
    workers: int | tuple[int, int] | None = None  # N, or (MIN, MAX) to autoscale; None: fill the cluster
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs, else 0
    cpus_per_worker: float | None = None  # None: 1 with GPUs, else up to 4 (half the CPUs, at least 1)
    # Builds a worker's pipeline from (settings, models_dir); None: Pipeline.from_settings. Tests
    # give one that dies on purpose.
    pipeline_factory: Callable[[Any, Any], PipelineProtocol] | None = None


@dataclass(frozen=True)
class WorkerPlan:
    min_workers: int
    max_workers: int
    cpus: float  # asked of Ray per worker
    gpus: float
    threads: int  # torch threads per worker

    def describe(self) -> str:
        n = str(self.max_workers) if self.min_workers == self.max_workers else f"{self.min_workers}-{self.max_workers}"
        gpu = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"{n} Ray worker(s) of {self.threads} CPU thread(s){gpu} each"


def parse_workers(text: str | int | None) -> int | tuple[int, int] | None:
    """``--workers``: ``N`` or ``MIN-MAX``."""
    if text is None or isinstance(text, int):
        return text
    parts = str(text).strip().split("-")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 1 or (len(values) == 2 and values[0] > values[1]):
        raise InputError(f"--workers takes a number of workers (e.g. 4) or a range MIN-MAX (e.g. 2-8), "
                         f"not {text!r}.")
    return values[0] if len(values) == 1 else (values[0], values[1])


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise InputError(INSTALL_HINT) from err
    return ray


def plan_workers(options: ClusterOptions, resources: dict[str, float], images: int) -> WorkerPlan:
    """Worker count and resources from the options and what the cluster has (``ray.cluster_resources()``)."""
    cpus_total, gpus_total = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    gpus = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus_total >= 1 else 0.0)
    cpus = options.cpus_per_worker
    if cpus is None:
        cpus = 1.0 if gpus else float(min(4, max(1, int(cpus_total // 2))))
    if gpus < 0 or cpus <= 0:
        raise InputError("--gpus-per-worker must be 0 or more and --cpus-per-worker more than 0.")
    if gpus > gpus_total and options.workers is None:
        raise InputError(f"Each worker asks for {gpus:g} GPU but the Ray cluster has {gpus_total:g}: add GPU "
                         "nodes, or give --gpus-per-worker 0 to run on CPUs.")
    if options.workers is None:
        fit = int(cpus_total // cpus) if not gpus else int(min(gpus_total // gpus, cpus_total // cpus))
        low = high = max(1, fit)
    elif isinstance(options.workers, tuple):
        low, high = options.workers
    else:
        low = high = int(options.workers)
    high = max(1, min(high, images))  # never more workers than images
    low = max(1, min(low, high))
    return WorkerPlan(low, high, cpus * CPU_SHARE, gpus, max(1, round(cpus)))


class ChainWorker:
    """One Ray actor: loads the models once, then runs :func:`process_image` per row."""

    def __init__(self, questions: list[BatchQuestion], settings: Any, models_dir: str | None,
                 max_pixels: int | None, seed: int | None, threads: int,
                 factory: Callable[[Any, Any], PipelineProtocol] | None = None, classes: tuple[str, ...] = ()) -> None:
        from ..runtime.cpu_tuning import configure_openmp_wait, keep_freed_memory

        configure_openmp_wait()
        keep_freed_memory()
        import torch

        torch.set_num_threads(threads)  # each actor is a process: as many threads as its CPUs
        self.questions, self.max_pixels, self.seed, self.classes = questions, max_pixels, seed, tuple(classes)
        self.node = socket.gethostname()
        self.fatal: BaseException | None = None
        self.pipeline: PipelineProtocol | None = None
        try:
            self.pipeline = (factory or _default_factory)(settings, models_dir)
            self.pipeline.check_models()
            self.pipeline.load()  # once per actor, not on the first image
        except QMaskError as err:  # models missing or broken on this node: say so for every row
            self.fatal = type(err)(f"On the Ray node {self.node}: {err}")
            if hasattr(err, "role"):
                self.fatal.role = err.role  # type: ignore[attr-defined]

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out = []
        for path, todo, sha in zip(batch["path"], batch["todo"], batch["sha"]):
            if self.fatal is not None:
                result = ImageResult(str(path), fatal=self.fatal)
            else:
                try:
                    result = process_image(str(path), [int(t) for t in str(todo).split(",") if t], self.questions,
                                           lambda: self.pipeline, stored_sha=str(sha) or None, seed=self.seed,
                                           max_pixels=self.max_pixels, classes=self.classes)
                except Exception as err:  # stops the batch, as it would locally: sent, not lost in a log
                    if not isinstance(err, QMaskError) and hasattr(err, "add_note"):
                        err.add_note(f"On the Ray node {self.node}:\n{traceback.format_exc()}")
                    result = ImageResult(str(path), fatal=err)
            result.worker = f"{self.node}:{os.getpid()}"
            out.append(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        return {"index": np.asarray(batch["index"]), "result": np.array(out, dtype=object)}


def _default_factory(settings: Any, models_dir: Any) -> PipelineProtocol:
    from .pipeline import Pipeline

    return Pipeline.from_settings(settings, models_dir=models_dir)


def running_cluster() -> str | None:
    """The cluster ``ray.init()`` joins when given no address: RAY_ADDRESS, else the last ``ray start`` here."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env:
        return None if env == "local" else env
    try:
        from ray._private.utils import read_ray_address
    except ImportError:
        return None
    return read_ray_address() or None


def connect(ray: Any, address: str | None, say: Callable[[str], None] | None = None) -> bool:
    """Join or start Ray; True when this call connected (and should disconnect, or shut down what it started).

    Without an address, as ``ray.init()``: the running cluster :func:`running_cluster` names is
    joined (and ``say`` is told), else a private instance starts here."""
    if ray.is_initialized():
        return False
    import logging

    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    joins = running_cluster() if address is None else None
    starts = address is None and joins is None
    notice = _AuthNotice()
    if starts:
        # Lean: no dashboard (its head process and UI); workers' logs stay in their files. Only
        # for a new instance: a joined cluster runs its own processes already.
        kwargs["include_dashboard"] = False
        logging.getLogger(_AUTH_LOGGER).addFilter(notice)
    elif joins is not None and say is not None:
        say(f"joining the Ray cluster running at {joins} (RAY_ADDRESS or 'ray start' on this machine); "
            "unset RAY_ADDRESS or run 'ray stop' for a private instance.")
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = ("a local Ray instance" if starts else
                 f"the Ray cluster at {joins!r} (RAY_ADDRESS or 'ray start')" if joins else
                 f"the Ray cluster at {address!r}")
        cause = f" ({err.__cause__})" if err.__cause__ is not None else ""
        hint = (" Start one with 'ray start --head' (and 'ray start --address=HEAD:6379' on the other machines)."
                if address == "auto" else "")
        raise InputError(f"Could not start or reach {where}: {err}{cause}.{hint}") from err
    finally:
        logging.getLogger(_AUTH_LOGGER).removeFilter(notice)
    if starts:
        private_token_file()
    return True


def private_token_file(path: Path | None = None) -> None:
    """Ray writes its authentication token (``~/.ray/auth_token``) with the umask, often readable
    by every user here: make it this user's only. Never fails the run."""
    import logging

    path = path or Path.home() / ".ray" / "auth_token"
    try:
        st = path.stat()
        if hasattr(os, "getuid") and st.st_uid == os.getuid() and st.st_mode & 0o077:
            path.chmod(st.st_mode & 0o700)
    except OSError as err:
        logging.getLogger(__name__).debug("Could not make %s readable by its owner only: %s", path, err)


_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


class _AuthNotice:
    """Drops Ray's notice that a new local instance uses token authentication (its default since
    2.5x, kept: the instance listens on this machine's address). Only the notice is dropped, and
    only for an instance started here: a warning that authentication is off, or anything about a
    cluster joined by address, still shows."""

    def filter(self, record: Any) -> bool:
        return not str(record.getMessage()).startswith("Token authentication is enabled")


def run_on_ray(project: Any, qs: list[BatchQuestion], work: list[tuple[Path, list[BatchQuestion]]],
               report: BatchReport, options: ClusterOptions, *, settings: Any, models_dir: Any,
               max_pixels: int | None, show_progress: bool, cancel: Callable[[], bool] | None,
               on_image_done: Callable[[Path, int, int], None] | None, started: float) -> BatchReport:
    """The Ray half of :func:`engine.annotation.batch.run_batch`: ``work`` is what is still to do."""
    from .settings import PipelineSettings

    ray = import_ray()
    settings = replace(settings) if settings is not None else PipelineSettings()
    seed = base_seed(None, settings)
    models = None if models_dir is None else str(Path(models_dir).expanduser().absolute())
    stored = {img.path: img.sha256 or "" for img in project.iter_images(records=False)}
    rows = [{"index": i, "path": str(Path(path).absolute()), "todo": ",".join(str(qs.index(q)) for q in todo),
             "sha": stored.get(project.rel_path(path), "")} for i, (path, todo) in enumerate(work)]
    owns = connect(ray, options.address, say=lambda text: print(f"qmask batch: {text}", file=sys.stderr, flush=True))
    progress: BatchProgress | None = None
    rows_iter: Any = None
    try:
        plan = plan_workers(options, ray.cluster_resources(), len(rows))
        if show_progress:
            print(f"qmask batch: {len(rows)} image(s) on {plan.describe()}.", file=sys.stderr, flush=True)
        import logging

        logging.getLogger("ray.data").setLevel(logging.ERROR)  # our own progress bar says it
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        if hasattr(ctx, "print_on_execution_start"):
            ctx.print_on_execution_start = False
        ctx.execution_options.preserve_order = False  # results in the order they are ready
        if hasattr(ctx, "memory_usage_poll_interval_s"):
            ctx.memory_usage_poll_interval_s = None  # else a thread per image polls the worker's memory
        strategy = (ray.data.ActorPoolStrategy(size=plan.max_workers) if plan.min_workers == plan.max_workers
                    else ray.data.ActorPoolStrategy(min_size=plan.min_workers, max_size=plan.max_workers))
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS))
        ds = ds.map_batches(ChainWorker, batch_size=1, batch_format="numpy", compute=strategy,
                            num_cpus=plan.cpus, num_gpus=plan.gpus or None,
                            fn_constructor_kwargs={"questions": qs, "settings": settings, "models_dir": models,
                                                   "max_pixels": max_pixels, "seed": seed, "threads": plan.threads,
                                                   "factory": options.pipeline_factory,
                                                   "classes": tuple(c.name for c in project.categories)})
        progress = BatchProgress(len(rows), show_progress)
        written: set[int] = set()
        rows_iter = iter(ds.iter_rows())
        for row in rows_iter:
            result: ImageResult = pickle.loads(row["result"])
            if result.fatal is not None:
                raise result.fatal
            index = int(row["index"])
            if index in written:
                continue  # redone after a worker died: it is in the project already
            write_image(project, result)
            written.add(index)
            report.annotations += sum(len(found.objects) for found in result.records)
            name = Path(result.path).name
            if result.failure is not None:
                report.failed.append((project.rel_path(result.path), result.failure))
                progress.update(failed=1, name=name)
            else:
                report.processed += 1
                progress.update(name=name)
                if on_image_done is not None:
                    on_image_done(Path(result.path), len(written), len(rows))
            if cancel is not None and cancel():
                report.cancelled = True
                break
    except KeyboardInterrupt:  # Ctrl-C: what is written stays; a rerun does the rest
        report.cancelled = True
    finally:
        if rows_iter is not None and hasattr(rows_iter, "close"):
            rows_iter.close()  # stops the pool: nothing more runs for this batch
        if progress is not None:
            progress.close()
        if owns:
            ray.shutdown()
    report.seconds = time.perf_counter() - started
    return report

