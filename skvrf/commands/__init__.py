"""The ``skvrf`` subcommands that work on feature files: evaluate, fit, predict.

One module per subcommand, each exposing ``configure_parser(parser)`` and
``main(args) -> int`` (see :mod:`skvrf.cli`); shared helpers in ``_common``.
"""
