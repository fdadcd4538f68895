"""One module per ``qmask`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int``."""
