"""Pre-annotate a folder of images into a project: heat map, points, mask, captions and answer
for every image and question, resumably (run it again to continue; nothing is duplicated).

Unreadable images are listed and recorded in the project as failed; the exit status is 0 when
at least one image has results. Open the project in the app to review, most doubtful first.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", help="folder of images (or one image file)")
    q = parser.add_mutually_exclusive_group(required=True)
    q.add_argument("--question", "-q", action="append", help="a question (repeat for several)")
    q.add_argument("--questions", help="CSV file of questions (a 'question' column, optional 'label')")
    parser.add_argument("--project", "-p", required=True,
                        help="project to create or continue (*.qmask; a *.qmask.json is converted once). "
                             "Several batches, imports and the app may write one project at once")
    parser.add_argument("--label", help="class of the objects --question proposes (default: the class of the "
                                        "project's class list the question's noun names, if any)")
    parser.add_argument("--instances", choices=("auto", "one", "several"), default="auto",
                        help="objects per question: 'one', 'several' (one per separate hot region of the heat "
                             "map: 'where are the dogs?'), or 'auto' (several when the question asks for several "
                             "things; default)")
    parser.add_argument("--models", help="models folder (default: QMASK_MODELS_DIR or the Hugging Face cache)")
    parser.add_argument("--preset", default="base", choices=("base", "large", "3b"), help="UnifiedQA size")
    parser.add_argument("--sam", choices=("vitt", "vits"), default="vitt", help="EfficientSAM variant (default: vitt)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, fp16 on CUDA), float32, float16, bfloat16")
    parser.add_argument("--no-segment", action="store_true",
                        help="skip EfficientSAM (no masks); captions follow the heat map")
    parser.add_argument("--num-captions", type=int, default=None, help="captions per question (default: the pipeline's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for caption sampling")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="refuse images larger than this many pixels (default: QMASK_MAX_PIXELS or 100 MP)")
    parser.add_argument("--recursive", "-r", action="store_true", help="include sub-folders")
    parser.add_argument("--no-progress", action="store_true", help="no progress output at all (ours or any library's)")
    cluster = parser.add_argument_group("cluster (Ray; pip install 'qmask[cluster]')")
    cluster.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                         help="run the chains on Ray workers: without ADDRESS as ray.init() does, the cluster "
                              "RAY_ADDRESS names or one 'ray start' runs on this machine (joined, and said), "
                              "else a private local Ray instance; 'auto' the running cluster (ray start); "
                              "'ray://HOST:10001' through Ray Client. Images and --models must be at the same "
                              "path on every node")
    cluster.add_argument("--workers", metavar="N|MIN-MAX",
                         help="Ray workers (each loads the models once); MIN-MAX to autoscale (default: as many "
                              "as the cluster's GPUs, or its CPUs, allow)")
    cluster.add_argument("--gpus-per-worker", type=float, default=None,
                         help="GPUs per worker, fractions allowed (0.5: two per GPU; default: 1 when the cluster "
                              "has GPUs, else 0)")
    cluster.add_argument("--cpus-per-worker", type=float, default=None,
                         help="CPUs (and torch threads) per worker (default: 1 with GPUs, else half the CPUs, 1-4)")


def run(args: argparse.Namespace) -> int:
    from ..annotation.batch import BatchQuestion, read_questions_csv, run_batch
    from ..errors import InputError
    from ..annotation.settings import PipelineSettings
    from ..project import Project

    if args.questions:
        questions = [BatchQuestion(q.question, q.label, args.instances) for q in read_questions_csv(args.questions)]
    else:
        questions = [BatchQuestion(q, args.label, args.instances) for q in args.question]
    settings = PipelineSettings(preset=args.preset, sam_variant=args.sam, device=args.device, dtype=args.dtype,
                                seed=args.seed, segment=not args.no_segment)
    if args.num_captions is not None:
        if args.num_captions < 1:
            raise InputError("--num-captions must be at least 1.")
        settings.num_captions = args.num_captions
    cluster = _cluster_options(args)
    project = Project.open_or_create(args.project, writer="batch")
    try:
        if project.notice:
            print(f"qmask batch: {project.notice}", file=sys.stderr)
        report = run_batch(args.images, questions, project, settings=settings, models_dir=args.models,
                           max_pixels=args.max_pixels, recursive=args.recursive,
                           show_progress=not args.no_progress, cluster=cluster)
        for note in report.notes:
            print(f"qmask batch: {note}", file=sys.stderr)
        for rel, reason in report.failed:
            print(f"qmask batch: skipped {rel}: {reason}", file=sys.stderr)
        print(report)
        print(f"Project: {project.path} ({project.summary()['ok']} image(s) with results). "
              "Open it in the app to review, most doubtful first.")
    finally:
        project.close()  # the last connection out folds the journal back into the file
    if cluster is not None and report.cancelled:
        return 130  # Ctrl-C (the local batch gets there through KeyboardInterrupt)
    return 0 if report.ok else 1


def _cluster_options(args: argparse.Namespace):
    """ClusterOptions for --ray (None without it); Ray is imported only for --ray."""
    from ..errors import InputError

    extra = [name for name in ("workers", "gpus_per_worker", "cpus_per_worker") if getattr(args, name) is not None]
    if args.ray is None:
        if extra:
            raise InputError(f"--{extra[0].replace('_', '-')} needs --ray.")
        return None
    from ..annotation.batch_ray import ClusterOptions, import_ray, parse_workers

    address = args.ray
    if address != "local" and address != "auto" and not address.startswith("ray://") and ":" not in address:
        raise InputError(f"--ray takes no value, 'auto', 'ray://HOST:10001' or HOST:PORT, not {address!r} "
                         "(give the images folder before --ray).")
    import_ray()  # says which extra to install, before the project is opened
    return ClusterOptions(address=None if address == "local" else address, workers=parse_workers(args.workers),
                          gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker)
