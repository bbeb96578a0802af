"""The ``skvrf`` subcommands: embed, zeroshot, evaluate, fit, predict, demo.

One module per subcommand, each exposing ``configure_parser(parser)`` and
``main(args) -> int`` (see :mod:`skvrf.cli`); shared helpers of the feature-file
commands in ``_common``. ``embed`` and ``zeroshot`` import torch and open_clip
(through ``skvrf.clip``) only when they run.
"""
