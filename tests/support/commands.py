"""``qmask`` commands run in this process exactly as the command line runs them."""

from __future__ import annotations

import argparse
import importlib

from engine.commands.cli import COMMANDS, run_parsed


def run_qmask(name: str, argv) -> int:
    """``qmask NAME ARGV...``: parsed and run as ``engine.commands.cli`` does (its error handling
    and exit status)."""
    module = importlib.import_module(COMMANDS[name][0])  # (the command line's own table)
    parser = argparse.ArgumentParser(prog=f"qmask {name}")
    module.add_arguments(parser)
    parser.set_defaults(_command=module, command=name)
    return run_parsed(parser.parse_args([str(a) for a in argv]))


def qmask_ask(*argv: str) -> int:
    """``qmask ask ARGV...`` (see :func:`run_qmask`)."""
    return run_qmask("ask", argv)
