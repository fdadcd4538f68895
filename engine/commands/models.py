"""List, download or make random models.

  qmask models list [--models DIR] [--preset P] [--sam vitt|vits]   (exit status 1 when one is missing)
  qmask models download [PRESET] [--sam vitt|vits] [--to DIR]
  qmask models make-random DIR [--size tiny|full] [--seed N] [--preset P] [--sam vitt|vits]

Models are looked for in --models DIR (or $QMASK_MODELS_DIR), then in the Hugging Face cache
(EfficientSAM: QMask's cache). Loading never uses the network; only `download` does.
"""

from __future__ import annotations

import argparse
import sys

PRESETS = ("base", "large", "3b")
SAMS = ("vitt", "vits")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    p_list = sub.add_parser("list", help="show where each model role was found, or how to fetch it "
                                               "(exit status 1 when one is missing)")
    p_list.add_argument("--models", metavar="DIR", help="models folder (default: $QMASK_MODELS_DIR)")
    p_list.add_argument("--preset", choices=PRESETS, default="base", help="UnifiedQA size (default: base)")
    p_list.add_argument("--sam", choices=SAMS, default="vitt", help="EfficientSAM variant (default: vitt)")

    p_dl = sub.add_parser("download", help="fetch the models that are missing (resumable)")
    p_dl.add_argument("preset", nargs="?", choices=PRESETS, default="base", help="UnifiedQA size (default: base)")
    p_dl.add_argument("--sam", choices=SAMS, default="vitt", help="EfficientSAM variant (default: vitt)")
    p_dl.add_argument("--to", metavar="DIR", help="put the models in DIR (itm/, caption/, qa/, efficient_sam/) "
                                                 "instead of the Hugging Face cache")

    p_rand = sub.add_parser("make-random", help="write random-weight models (tests, benchmarks)")
    p_rand.add_argument("dir", metavar="DIR", help="output models folder")
    p_rand.add_argument("--size", choices=("tiny", "full"), default="tiny",
                        help="tiny: seconds on a CPU; full: the published architectures (default: tiny)")
    p_rand.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p_rand.add_argument("--preset", choices=PRESETS, default="base", help="T5 size for --size full (default: base)")
    p_rand.add_argument("--sam", choices=SAMS, default="vitt",
                        help="EfficientSAM variant: vitt writes efficient_sam_vitt.pt, vits efficient_sam_vits.pt "
                             "(default: vitt)")


def run(args: argparse.Namespace) -> int:
    action = args.models_command
    if action == "list":
        return _list(args)
    if action == "download":
        return _download(args)
    return _make_random(args)


def _list(args: argparse.Namespace) -> int:
    from engine.models.manager import ROLES, fetch_command, format_size, locate, models_dir_from_env

    models_dir = models_dir_from_env(args.models)
    print(f"preset {args.preset}, EfficientSAM {args.sam}; models folder: {models_dir or '(none)'}")
    missing: list[str] = []
    any_random = False
    for role in ROLES:
        loc = locate(role, args.preset, args.sam, models_dir, use_env=False)
        if loc.found:
            tag = " [random weights]" if loc.random else ""
            any_random |= loc.random
            print(f"  {role:<14} {loc.model_id}{tag}\n  {'':<14} {loc.source}: {loc.path} ({format_size(loc.size_bytes)})")
        else:
            missing.append(role)
            note = f" ({loc.note})" if loc.note else ""
            print(f"  {role:<14} {loc.model_id}: MISSING{note}\n  {'':<14} fetch with: {loc.fetch_command()}")
    if any_random:
        print("Note: random weights are for tests and benchmarks; their answers mean nothing.")
    if missing:
        # Non-zero, so a script (or CI) that checks the models before a batch stops here.
        print(f"qmask models list: {len(missing)} of {len(ROLES)} model(s) missing ({', '.join(missing)}): "
              f"`{fetch_command(None, args.preset, args.sam)}` fetches them, or give a folder that holds them "
              "with --models DIR or $QMASK_MODELS_DIR (itm/, caption/, qa/, efficient_sam/).", file=sys.stderr)
        return 1
    return 0


def _download(args: argparse.Namespace) -> int:
    from engine.models.download import download_models

    outcomes = download_models(args.preset, args.sam, to=args.to)
    fetched = sum(o.action == "downloaded" for o in outcomes)
    print(f"done: {fetched} downloaded, {sum(o.action == 'present' for o in outcomes)} already present.")
    return 0


def _make_random(args: argparse.Namespace) -> int:
    import warnings

    from engine.models.random_models import make_random_models

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = make_random_models(args.dir, size=args.size, seed=args.seed, preset=args.preset,
                                  sam_variant=args.sam, progress=lambda m: print(m, file=sys.stderr))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"random weights ({info.size}, seed {info.seed}) written to {info.root}:")
    for role, path in info.roles.items():
        print(f"  {role:<14} {path}")
    print(f"use them with --models {info.root}")
    return 0
