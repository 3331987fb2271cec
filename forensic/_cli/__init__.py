"""CLI subcommands. Each module: ``add_parser(subparsers, name)`` sets ``run`` as the default."""
