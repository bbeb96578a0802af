"""The ``skvrf`` command line: argparse subcommands that call the library.

Each subcommand lives in the module named in ``_SUBCOMMANDS``; a module exposes
``configure_parser(parser)`` and ``main(args) -> int`` and is imported when
the parser is built; each keeps its heavy imports (torch, matplotlib) inside
``main``, so ``skvrf --version`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

# name -> (module, one-line help), in the order of a first run
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "embed": ("skvrf.commands.embed", "Embed an ImageFolder tree with open_clip."),
    "zeroshot": (
        "skvrf.commands.zeroshot",
        "Write the zero-shot file from class names and prompt templates (open_clip).",
    ),
    "evaluate": (
        "skvrf.commands.evaluate",
        "Tune on val and score every method on ID and OOD feature files.",
    ),
    "fit": ("skvrf.commands.fit", "Fit an ensemble on feature files; save it (skops)."),
    "predict": ("skvrf.commands.predict", "Predict a feature file with a saved model."),
    "demo": (
        "skvrf.commands.demo",
        "VRF vs its baselines on the embedded WordNet benchmark (or your features).",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``skvrf`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="skvrf",
        description="Variance Reduction Fine-tuning (VRF) for zero-shot models.",
    )
    parser.add_argument("--version", action="version", version=f"skvrf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in _SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_, description=help_)
        sub_parser.set_defaults(_module=module)
        importlib.import_module(module).configure_parser(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skvrf`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(importlib.import_module(args._module).main(args) or 0)
    except (FileNotFoundError, ValueError, KeyError, ImportError) as exc:
        print(f"skvrf {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
