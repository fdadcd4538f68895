"""``qmask``: the front door.

``qmask ask|batch|models|export|import|bench ...`` run headless (``engine.commands.cli``) and never
import Qt; anything else opens the desktop app. Qt is imported only when a window opens.
"""

from __future__ import annotations

import argparse
import sys

from engine import __version__
from engine.commands import cli as engine_cli
from engine.runtime.cpu_tuning import configure_openmp_wait, keep_freed_memory

# How idle OpenMP threads wait: read once, when torch loads, so before anything imports it
# (nothing above does; engine.commands.cli has already made this call; see engine.runtime.cpu_tuning).
configure_openmp_wait()

EPILOG = """\
headless commands (qmask COMMAND --help for each):
""" + "\n".join(f"  {name:<8} {help_text}" for name, (_, help_text) in engine_cli.COMMANDS.items())


def build_app_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qmask",
        description="Question-guided segmentation and annotation. Without a command, opens the app.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qmask {__version__}")
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files or folders to open")
    parser.add_argument("--question", "-q", help="question to ask about the first image")
    parser.add_argument("--models", metavar="DIR", help="folder holding itm/, caption/, qa/, efficient_sam/ "
                        "(default: $QMASK_MODELS_DIR, then the folder last chosen in Engine > Models…, "
                        "then the Hugging Face cache)")
    parser.add_argument("--preset", choices=["base", "large", "3b"], default="base",
                        help="PNP-VQA preset: size of the UnifiedQA answer model (default: base)")
    parser.add_argument("--sam", choices=["vitt", "vits"], default="vitt",
                        help="EfficientSAM variant (default: vitt)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--dtype", default="auto",
                        help="auto (float32 on CPU, float16 on CUDA), float32, float16 or bfloat16")
    parser.add_argument("--project", metavar="FILE", help="open or create a project (.qmask; an older .qmask.json is converted once)")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="open the first image, ask --question, wait for all results, save a screenshot "
                             "of the window and quit (works with QT_QPA_PLATFORM=offscreen)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in engine_cli.COMMANDS:
        return engine_cli.main(argv)
    args = build_app_parser().parse_args(argv)
    keep_freed_memory()  # process-wide allocator setting, see engine.runtime.cpu_tuning
    from gui.app import run_app  # Qt is imported here, not before

    return run_app(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
