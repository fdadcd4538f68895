"""Benchmark segmentation (``qmask bench segment``), the whole pipeline (``qmask bench pipeline``)
the exports' contour extraction (``qmask bench masks``), the project store at scale
(``qmask bench project``), batches on Ray workers (``qmask bench batch``) or images holding many
objects (``qmask bench objects``).

``segment`` times the EfficientSAM encoder and click-to-mask latency on random weights (nothing
to download). ``pipeline`` times every stage of the chain on the models you have (or on tiny
random ones with ``--size tiny``). ``masks`` times outlines and keyhole polygons (YOLO, COCO
polygons, LabelMe) of a 12-megapixel mask with 5,000 holes. ``project`` builds a synthetic
project of N realistic records and times opening, editing, batch bookkeeping and export.
"""

from __future__ import annotations

import argparse
import importlib


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.bench import segment as bench_segment  # light: heavy imports happen when it runs

    sub = parser.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    segment = sub.add_parser("segment", help="EfficientSAM encoder and click-to-mask latency (random weights)",
                             description=(bench_segment.__doc__ or "").strip(),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_segment.add_arguments(segment)

    from engine.bench import pipeline as bench_pipeline

    pipeline = sub.add_parser("pipeline", help="time every stage of the question-to-answer chain",
                              description=(bench_pipeline.__doc__ or "").strip(),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_pipeline.add_arguments(pipeline)

    from engine.bench import masks as bench_masks

    masks = sub.add_parser("masks", help="contour and keyhole-polygon time of a mask with many holes (exports)",
                           description=(bench_masks.__doc__ or "").strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_masks.add_arguments(masks)

    from engine.bench import project as bench_project

    project = sub.add_parser("project", help="the project store at scale: build, open, edit, batch bookkeeping, export",
                             description=(bench_project.__doc__ or "").strip(),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_project.add_arguments(project)

    from engine.bench import batch as bench_batch

    batch = sub.add_parser("batch", help="images/s of qmask batch --ray per worker count, against the local batch",
                           description=(bench_batch.__doc__ or "").strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_batch.add_arguments(batch)

    from engine.bench import objects as bench_objects

    objects = sub.add_parser("objects", help="GUI-thread time per action on an image holding 1,000 objects; "
                                             "opening a project of 100,000 images x 10 objects",
                             description=(bench_objects.__doc__ or "").strip(),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_objects.add_arguments(objects)


# sub-subcommand -> module with main(args) -> int, imported only when it runs
TARGETS = {"segment": "engine.bench.segment", "pipeline": "engine.bench.pipeline", "masks": "engine.bench.masks",
           "project": "engine.bench.project", "batch": "engine.bench.batch", "objects": "engine.bench.objects"}


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(TARGETS[args.bench_command]).main(args) or 0)
