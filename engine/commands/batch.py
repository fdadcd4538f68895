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
    parser.add_argument("--label", help="label (category) for the masks of --question")
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


def run(args: argparse.Namespace) -> int:
    from ..batch import BatchQuestion, read_questions_csv, run_batch
    from ..errors import InputError
    from ..pipeline import PipelineSettings
    from ..project import Project

    if args.questions:
        questions = read_questions_csv(args.questions)
    else:
        questions = [BatchQuestion(q, args.label) for q in args.question]
    settings = PipelineSettings(preset=args.preset, sam_variant=args.sam, device=args.device, dtype=args.dtype,
                                seed=args.seed, segment=not args.no_segment)
    if args.num_captions is not None:
        if args.num_captions < 1:
            raise InputError("--num-captions must be at least 1.")
        settings.num_captions = args.num_captions
    project = Project.open_or_create(args.project, writer="batch")
    try:
        if project.notice:
            print(f"qmask batch: {project.notice}", file=sys.stderr)
        report = run_batch(args.images, questions, project, settings=settings, models_dir=args.models,
                           max_pixels=args.max_pixels, recursive=args.recursive,
                           show_progress=not args.no_progress)
        for note in report.notes:
            print(f"qmask batch: {note}", file=sys.stderr)
        for rel, reason in report.failed:
            print(f"qmask batch: skipped {rel}: {reason}", file=sys.stderr)
        print(report)
        print(f"Project: {project.path} ({project.summary()['ok']} image(s) with results). "
              "Open it in the app to review, most doubtful first.")
    finally:
        project.close()  # the last connection out folds the journal back into the file
    return 0 if report.ok else 1
