"""Command runners of `shoerecon <command>` that load checkpoints or experiment configs (the application
layer, above train):
each module has ``add_arguments(parser)`` and ``run(args) -> int``. Library code stays in the packages below."""
