"""``qmask`` commands run in this process exactly as the command line runs them."""

from __future__ import annotations

import argparse

from engine.commands import ask
from engine.commands.cli import run_parsed


def qmask_ask(*argv: str) -> int:
    """Parse and run exactly as ``qmask ask ...`` does (same error handling as engine.commands.cli)."""
    parser = argparse.ArgumentParser(prog="qmask ask")
    ask.add_arguments(parser)
    parser.set_defaults(_command=ask, command="ask")
    return run_parsed(parser.parse_args(list(argv)))
