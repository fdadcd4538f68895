"""Answer a question about an image: heat map, points, mask, captions and answer.

  qmask ask IMAGE QUESTION [--preset P] [--models DIR] [--device D] [--num-captions N]
            [--seed S] [--alpha A] [--no-segment] [--json OUT] [--overlay OUT.png]
  qmask ask --csv PAIRS.csv [--json OUT.jsonl] [--overlay DIR] [same options]

Prints the answer, the image-question match probability (BLIP ITM) and the first captions.
--json writes every result (maps, points, mask as COCO RLE, timings, model ids); with --csv
(columns image,question; image paths relative to the CSV) it writes JSON lines, one per pair,
and --overlay names a folder. Output files are written atomically, only when complete.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

RANDOM_BANNER = ("NOTE: random weights: these models were made by `qmask models make-random` for tests and "
                 "benchmarks; their answers, captions and maps mean nothing.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", help="image file")
    parser.add_argument("question", nargs="?", help="question about the image")
    parser.add_argument("--csv", metavar="PAIRS.csv", help="many pairs: a CSV with columns image,question")
    parser.add_argument("--preset", choices=("base", "large", "3b"), default="base",
                        help="UnifiedQA size, as in PNP-VQA (default: base)")
    parser.add_argument("--sam", choices=("vitt", "vits"), default="vitt", help="EfficientSAM variant (default: vitt)")
    parser.add_argument("--models", metavar="DIR", help="models folder (default: $QMASK_MODELS_DIR, then the caches)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, fp16 on CUDA), float32, float16, bfloat16")
    parser.add_argument("--num-captions", type=int, default=100, metavar="N", help="captions to sample (default: 100)")
    parser.add_argument("--num-points", type=int, default=5, metavar="N", help="automatic prompt points (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="caption sampling seed (default: 0)")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="share of the heat map in the fused map, 0..1 (default: 0.5)")
    parser.add_argument("--no-segment", action="store_true", help="skip EfficientSAM; captions follow the heat map")
    parser.add_argument("--instances", choices=("auto", "one", "several"), default="auto",
                        help="objects to propose: one, one per separate hot region of the heat map, or auto "
                             "(several for plural and counting questions; default)")
    parser.add_argument("--json", metavar="OUT", help="write the full result as JSON (JSON lines with --csv)")
    parser.add_argument("--overlay", metavar="OUT.png", help="write the image with heat map, points and mask "
                                                            "(a folder with --csv)")
    parser.add_argument("--show-captions", type=int, default=5, metavar="N", help="captions to print (default: 5)")


def _settings(args: argparse.Namespace) -> Any:
    from engine.errors import InputError
    from engine.annotation.settings import PipelineSettings

    if not (isinstance(args.alpha, float) and math.isfinite(args.alpha) and 0.0 <= args.alpha <= 1.0):
        raise InputError(f"--alpha must be between 0 and 1, not {args.alpha}.")
    if args.num_captions < 1:
        raise InputError(f"--num-captions must be at least 1, not {args.num_captions}.")
    if args.num_points < 0:
        raise InputError(f"--num-points cannot be negative ({args.num_points}).")
    return PipelineSettings(preset=args.preset, sam_variant=args.sam, device=args.device, dtype=args.dtype,
                            num_captions=args.num_captions, num_points=args.num_points, seed=args.seed,
                            alpha=args.alpha, segment=not args.no_segment).check()


def chain_record(chain: Any, image_path: str | None = None, device: str | None = None,
                 notes: tuple[str, ...] | list[str] = (), question_use: Any = None) -> dict[str, Any]:
    """A ``ChainResult`` as plain JSON data (the ``--json`` schema; ``qmask batch`` may reuse it).

    Points are (x, y) image pixels; masks are COCO compressed RLE at image size with ``counts``
    as a string (``objects``: one per proposed object, best first; ``mask``: the first one's);
    maps are G x G nested lists of floats. ``question_used`` is the part
    of the question the heat map followed (``question_truncated``: it is not all of it, or the
    answer model could not read it whole; see ``engine.vqa.question_use``).
    """
    from engine.imaging.masks import encode_rle

    seg = chain.segmentation
    mask = None
    if seg is not None:
        best = seg.candidates[chain.chosen]
        mask = {"rle": encode_rle(best.mask), "iou": float(best.iou), "area": int(best.mask.sum()),
                "candidates_iou": [float(c.iou) for c in seg.candidates], "dropped_points": seg.dropped_points}
    objects = [{"rle": encode_rle(p.best.mask), "iou": float(p.best.iou), "area": int(p.best.mask.sum()),
                "points": [{"x": float(q.x), "y": float(q.y), "label": int(q.label)} for q in p.points]}
               for p in getattr(chain, "proposals", ()) or () if p.candidates]
    heat = chain.heatmap
    return {
        "image": image_path,
        "image_id": chain.image_id,
        "image_size": list(chain.image_size),
        "question": chain.question,
        "question_used": question_use.used if question_use is not None else chain.question,
        "question_truncated": bool(question_use is not None and question_use.truncated),
        "answer": chain.answer.answer,
        "captions": list(chain.captions.captions),
        "captions_complete": bool(chain.captions.complete),
        "itm_probability": float(heat.itm_probability),
        "heatmap": _grid(heat.question_map),
        "tokens": list(heat.tokens),
        "fused_map": _grid(chain.fusion.fused_map),
        "alpha": float(chain.fusion.alpha),
        "points": [{"x": float(p.x), "y": float(p.y), "label": int(p.label),
                    "score": None if p.score is None else float(p.score), "source": p.source}
                   for p in chain.points],
        "mask": mask,
        "instances": getattr(chain, "instances", "one"),
        "objects": objects,
        "timings": {k: float(v) for k, v in chain.timings.items()},
        "models": dict(chain.models),
        "random_weights": bool(chain.random_weights),
        "device": device,
        "notes": list(getattr(chain, "notes", None) or notes),
    }


def _grid(arr: Any) -> list[list[float]]:
    import numpy as np

    return np.asarray(arr, dtype=np.float64).tolist()


def _print_result(chain: Any, show: int, out: Any = None) -> None:
    out = out or sys.stdout
    print(f"answer: {chain.answer.answer}", file=out)
    print(f"ITM match probability: {chain.heatmap.itm_probability:.3f}", file=out)
    caps = chain.captions.captions
    if show > 0 and caps:
        print(f"captions ({min(show, len(caps))} of {len(caps)}):", file=out)
        for i, cap in enumerate(caps[:show], 1):
            print(f"  {i}. {cap}", file=out)


def _overlay_image(chain: Any, rgb: Any) -> Any:
    from engine.imaging.overlay import render_overlay

    import numpy as np

    masks = [p.best.mask for p in getattr(chain, "proposals", ()) or () if p.candidates]
    mask = np.logical_or.reduce(masks) if masks else chain.mask
    return render_overlay(rgb, heat=chain.heatmap.question_map, mask=mask, points=chain.points)


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as tlog

        tlog.disable_progress_bar()
        tlog.set_verbosity_error()
    except Exception:  # pragma: no cover - cosmetic only
        pass


def _progress_printer() -> Any:
    if not sys.stderr.isatty():
        return None
    last = {"stage": ""}

    def show(stage: str, fraction: float) -> None:
        if stage != last["stage"]:
            last["stage"] = stage
            print(f"  {stage} ...", file=sys.stderr, flush=True)

    return show


def run(args: argparse.Namespace) -> int:
    from engine.errors import InputError

    if args.csv:
        if args.image or args.question:
            raise InputError("Give either IMAGE QUESTION or --csv PAIRS.csv, not both.")
        return _run_csv(args)
    if not args.image or args.question is None:
        raise InputError("Give an image and a question (qmask ask IMAGE QUESTION), or --csv PAIRS.csv.")
    return _run_one(args)


def _make_pipeline(args: argparse.Namespace) -> Any:
    from engine.annotation.pipeline import Pipeline

    settings = _settings(args)
    _quiet_transformers()
    pipe = Pipeline.from_settings(settings, models_dir=args.models)
    pipe.check_models()  # a missing model is reported before any work, naming the download command
    return pipe


def _run_one(args: argparse.Namespace) -> int:
    from engine.vqa.question import clean_question_text
    from engine.imaging.images import load_image
    from engine.imaging.overlay import png_bytes

    question = clean_question_text(args.question)
    _check_output_paths(args)
    image = load_image(args.image)
    pipe = _make_pipeline(args)
    if pipe.random_weights:
        print(RANDOM_BANNER)
    pipe.set_image(image.rgb, image.image_id)
    chain = pipe.run(question, progress=_progress_printer(), instances=args.instances)
    for note in pipe.last_notes:
        print(f"note: {note}", file=sys.stderr)
    _print_result(chain, args.show_captions)
    outputs: dict[str, bytes] = {}
    if args.json:
        record = chain_record(chain, str(args.image), pipe.device, pipe.last_notes, pipe.last_question_use)
        outputs[args.json] = (json.dumps(record, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode()
    if args.overlay:
        outputs[args.overlay] = png_bytes(_overlay_image(chain, image.rgb), Path(args.overlay).name)
    _write_outputs(outputs)
    return 0


def _write_outputs(outputs: dict[str, bytes]) -> None:
    """Every output file or none (a full disk or a file-size limit leaves nothing new)."""
    from engine.errors import ExportError
    from engine.runtime.atomic import atomic_write_files

    try:
        atomic_write_files(outputs)
    except OSError as err:
        raise ExportError(f"Could not write {', '.join(map(str, outputs))}: {err.strerror or err}. Nothing was "
                          "written.") from err


def _check_output_paths(args: argparse.Namespace) -> None:
    from engine.errors import InputError

    for flag, value in (("--json", args.json), ("--overlay", args.overlay)):
        if not value:
            continue
        path = Path(value)
        if args.csv and flag == "--overlay":
            if path.exists() and not path.is_dir():
                raise InputError(f"With --csv, --overlay names a folder; {path} is a file.")
            continue
        if path.is_dir():
            raise InputError(f"{flag} {path} is a folder; give a file name.")
        if not path.parent.exists() and str(path.parent):
            raise InputError(f"The folder for {flag} ({path.parent}) does not exist.")


def read_pairs(csv_path: str | Path) -> list[tuple[Path, str]]:
    """(image path, question) rows of a CSV with columns ``image,question``; paths are
    resolved relative to the CSV's folder."""
    from engine.errors import InputError

    path = Path(csv_path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [h.strip().lower() for h in (reader.fieldnames or [])]
            if "image" not in fields or "question" not in fields:
                raise InputError(f"{path} needs a header row with the columns image,question "
                                 f"(found: {', '.join(fields) or 'nothing'}).")
            rows = []
            for row in reader:
                norm = {(k or "").strip().lower(): (v or "") for k, v in row.items()}
                if not norm.get("image", "").strip() and not norm.get("question", "").strip():
                    continue  # blank line
                image = Path(norm["image"].strip())
                rows.append((image if image.is_absolute() else path.parent / image, norm["question"]))
    except FileNotFoundError:
        raise InputError(f"CSV file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"Could not read the CSV file {path}: {err}") from err
    if not rows:
        raise InputError(f"{path} has no image,question rows.")
    return rows


def _run_csv(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from engine.export.common import Staging
    from engine.runtime.atomic import atomic_write_text

    pairs = read_pairs(args.csv)
    _check_output_paths(args)
    pipe = _make_pipeline(args)
    if pipe.random_weights:
        print(RANDOM_BANNER)
    # Overlays go to a hidden folder beside the output and are moved in at the end: a run that
    # fails on the way (or whose JSON cannot be written) leaves no overlay behind.
    with (Staging(Path(args.overlay)) if args.overlay else nullcontext()) as staging:
        failures = _csv_rows(args, pipe, pairs, staging)
        if args.json:
            atomic_write_text(args.json, "\n".join(failures[1]) + "\n")
        if staging is not None:
            staging.commit()
    if failures[0]:
        print(f"{failures[0]} of {len(pairs)} pair(s) failed.", file=sys.stderr)
        return 1
    return 0


def _csv_rows(args: argparse.Namespace, pipe: Any, pairs: list, staging: Any) -> tuple[int, list[str]]:
    """Each pair through the chain; returns (failures, JSON lines). Overlays go into ``staging``."""
    from engine.vqa.question import clean_question_text
    from engine.errors import QMaskError
    from engine.imaging.images import load_image
    from engine.imaging.overlay import save_png

    lines: list[str] = []
    failures = 0
    for index, (image_path, question) in enumerate(pairs, 1):
        print(f"[{index}/{len(pairs)}] {image_path.name}: {question}")
        try:
            text = clean_question_text(question)
            image = load_image(image_path)
            pipe.set_image(image.rgb, image.image_id)
            chain = pipe.run(text, instances=args.instances)
        except QMaskError as err:
            from engine.errors import CheckpointError, ModelMissingError, ResourceError

            if isinstance(err, (CheckpointError, ModelMissingError, ResourceError)):
                raise  # no point going on with the next rows: every one would fail the same way
            failures += 1
            print(f"  error: {err}", file=sys.stderr)
            lines.append(json.dumps({"image": str(image_path), "question": question, "error": str(err)},
                                    ensure_ascii=False))
            continue
        for note in pipe.last_notes:
            print(f"  note: {note}", file=sys.stderr)
        _print_result(chain, min(args.show_captions, 3))
        lines.append(json.dumps(chain_record(chain, str(image_path), pipe.device, pipe.last_notes,
                                             pipe.last_question_use), ensure_ascii=False, allow_nan=False))
        if staging is not None:
            save_png(staging.root / f"{index:04d}_{image_path.stem}.png", _overlay_image(chain, image.rgb))
    return failures, lines
