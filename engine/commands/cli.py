"""Headless command line: ``qmask ask|batch|models|export|import|bench``.

Each subcommand lives in ``engine.commands.<name>`` and exposes ``add_arguments(parser)`` and
``run(args) -> int``. Heavy imports (torch, transformers) happen inside ``run`` so that
``qmask --help`` stays instant. The GUI front door (``gui.main``) hands these names to
:func:`main`; everything else opens the window.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from .. import __version__
from ..runtime.cpu_tuning import configure_openmp_wait, keep_freed_memory
from ..errors import QMaskError, describe_error

# How idle OpenMP threads wait: read once, when torch loads, so before anything imports it
# (nothing above does; see engine.runtime.cpu_tuning).
configure_openmp_wait()

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("engine.commands.ask", "answer a question about an image (heat map, points, mask, answer)"),
    "batch": ("engine.commands.batch", "pre-annotate a folder of images into a project, resumably"),
    "models": ("engine.commands.models", "list, download or make random models"),
    "export": ("engine.commands.export", "export a project as COCO, YOLO, LabelMe, PNG masks or overlay images"),
    "import": ("engine.commands.import_", "import a COCO, YOLO, LabelMe or PNG-mask dataset into a project for correction"),
    "classes": ("engine.commands.classes", "show or define a project's class list"),
    "bench": ("engine.commands.bench", "benchmark segmentation or the whole pipeline"),
}


def add_subcommands(subparsers: "argparse._SubParsersAction") -> None:
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(_command=module)


def build_parser(prog: str = "qmask") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="QMask headless commands.")
    parser.add_argument("--version", action="version", version=f"qmask {__version__}")
    add_subcommands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def run_parsed(args: argparse.Namespace) -> int:
    """Run a parsed subcommand. Errors become exit status 1 and the message the app would show
    (:func:`engine.errors.describe_error`); an unexpected one is preceded by its traceback."""
    keep_freed_memory()  # process-wide allocator setting, see engine.runtime.cpu_tuning
    try:
        return int(args._command.run(args) or 0)
    except BrokenPipeError:  # e.g. `qmask models list | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"qmask {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every error ends as one described line
        kind, message, _ = describe_error(err)
        if not isinstance(err, QMaskError) and kind == type(err).__name__:
            traceback.print_exc()  # not ours and not memory: the trace is what a report needs
        print(f"qmask {args.command}: error: {message}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_parsed(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
