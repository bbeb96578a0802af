"""``skvrf zeroshot``: the zero-shot file from class names and prompt templates.

Each class embedding is the L2-normalised mean of the normalised text embeddings
of the class's prompts (``open_clip.build_zero_shot_classifier``, through
:func:`skvrf.clip.zeroshot_classifier`). The output is the ``--zeroshot`` file of
``skvrf evaluate``, ``skvrf fit`` and ``skvrf demo``: ``class_embeddings``
(n_classes, d) float32, ``classes`` (the label of each row, in the given order),
``logit_scale`` (the model's), and provenance: ``classnames`` and ``templates``
(the prompt texts used), ``model``, ``pretrained``, ``sha256``, ``skvrf_version``
and ``manifest`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections import Counter

import numpy as np

from ._common import UsageError, atomic_savez, report_errors
from .embed import _read_json, model_load_error

__all__ = ["configure_parser", "main"]

#: Class-name sets shipped with open_clip, by the name ``--classnames`` takes.
CLASSNAME_SETS = {"imagenet": "IMAGENET_CLASSNAMES"}

_DESCRIPTION = """\
Write the zero-shot file ('--zeroshot' of 'skvrf evaluate', 'skvrf fit' and
'skvrf demo') of an open_clip model: one text embedding per class, the
L2-normalised mean of the normalised embeddings of the class's prompts (each
template with the class name in place of '{}'), computed by open_clip's own
build_zero_shot_classifier.

The output .npz holds 'class_embeddings' (n_classes, d) float32, 'classes' (the
label of each row, in the order given), 'logit_scale' (the model's), and the
provenance: 'classnames' and 'templates' (the prompt texts used), 'model',
'pretrained', 'sha256' (of a weights file), 'skvrf_version' and 'manifest'
(JSON).

Use the model (and weights) whose image embeddings the zero-shot component
reads: the features of 'skvrf embed --model M --pretrained P' go with
'skvrf zeroshot --model M --pretrained P'.

Class names: a text file with one class name per line (blank lines skipped), or
a set open_clip ships: 'imagenet' (its 1000 ImageNet class names, in ImageNet's
index order). The labels ('classes') are the class names themselves, or the
lines of --classes FILE (e.g. the folder names 'skvrf embed' used, such as
ImageNet's wnids) when the names you prompt with differ from your labels. The
'imagenet' set without --classes writes no 'classes': row i is then the class of
label index i of the training file (its classes[i], i.e. ImageNet's index order
for an ImageFolder of the wnid folders).

Templates: a text file with one prompt template per line, '{}' marking the class
name (e.g. 'a photo of a {}.'), or a set open_clip ships: 'openai_imagenet' (80
templates) or 'simple_imagenet' (7).

Offline: give a local weights file to --pretrained (a state dict, a training
checkpoint or a safetensors file; nothing is downloaded) and, for an
architecture open_clip does not know, its JSON config to --model-config.
"""


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``zeroshot`` arguments to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The (sub)command parser.

    Returns
    -------
    parser : argparse.ArgumentParser
        The same parser.

    Examples
    --------
    >>> import argparse
    >>> from skvrf.commands.zeroshot import configure_parser
    >>> p = configure_parser(argparse.ArgumentParser(prog="skvrf zeroshot"))
    >>> a = p.parse_args(["--model", "ViT-B-32", "--pretrained", "openai",
    ...                   "--classnames", "imagenet", "--templates",
    ...                   "openai_imagenet", "--out", "zeroshot.npz"])
    >>> a.device, a.batch_size
    ('auto', 10)
    """
    parser.description = _DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="open_clip model name")
    parser.add_argument(
        "--model-config",
        default=None,
        help="JSON file of a custom open_clip architecture, registered as --model",
    )
    parser.add_argument(
        "--pretrained", required=True, help="open_clip pretrained tag or weights file"
    )
    parser.add_argument(
        "--classnames",
        required=True,
        help="text file, one class name per line, or a bundled set: "
        + ", ".join(CLASSNAME_SETS),
    )
    parser.add_argument(
        "--classes",
        default=None,
        help="text file, the label of each class name, one per line "
        "(default: the class names)",
    )
    parser.add_argument(
        "--templates",
        required=True,
        help="text file, one template per line with '{}' for the class name, or "
        "an open_clip set: openai_imagenet, simple_imagenet",
    )
    parser.add_argument("--out", required=True, help="output .npz file")
    parser.add_argument("--device", default="auto", help="torch device (default auto)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=10,
        help="classes per forward pass, each with all its templates (default 10)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def _read_lines(path: str, what: str) -> list[str]:
    """The non-blank lines of a UTF-8 text file, stripped; errors name ``what``."""
    if os.path.isdir(path):
        raise UsageError(f"{what}: {path} is a folder, not a text file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = [line.strip() for line in f]
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{what}: {path} is not a UTF-8 text file ({exc}); expected one entry "
            "per line."
        ) from exc
    lines = [line for line in lines if line]
    if not lines:
        raise UsageError(f"{what}: {path} is empty; expected one entry per line.")
    return lines


def _check_unique(values: list[str], what: str, source: str) -> None:
    dup = sorted(v for v, n in Counter(values).items() if n > 1)
    if dup:
        raise UsageError(
            f"{what} ({source}) must be unique; repeated: {dup[:10]}. Each row of "
            "the zero-shot file is one class, and a label names one class."
        )


def read_classnames(source: str) -> tuple[list[str], bool]:
    """Class names from a text file (one per line) or a bundled set's name.

    Parameters
    ----------
    source : str
        Path of a UTF-8 text file (blank lines skipped), or ``"imagenet"``
        (open_clip's ``IMAGENET_CLASSNAMES``, in ImageNet's index order). An
        existing file wins over a set of the same name.

    Returns
    -------
    names : list of str
        The class names, in order.
    bundled : bool
        Whether ``names`` came from a bundled set.

    Raises
    ------
    FileNotFoundError
        When ``source`` is neither a file nor a bundled set.
    ValueError
        When the file is empty, or (a file) repeats a class name.
    """
    if not os.path.isfile(source) and source.lower() in CLASSNAME_SETS:
        from ..clip._deps import require_clip_deps

        require_clip_deps()
        from open_clip import zero_shot_metadata

        attr = CLASSNAME_SETS[source.lower()]
        return [str(c) for c in getattr(zero_shot_metadata, attr)], True
    if not os.path.exists(source):
        raise FileNotFoundError(
            f"class names file not found: {source} (or give a bundled set: "
            f"{', '.join(CLASSNAME_SETS)})"
        )
    names = _read_lines(source, "--classnames")
    _check_unique(names, "class names", source)
    return names, False


def read_templates(source: str) -> list[str]:
    """Prompt templates from a text file (one per line) or an open_clip set's name.

    Parameters
    ----------
    source : str
        Path of a UTF-8 text file, one template per line with ``{}`` where the
        class name goes (blank lines skipped), or the name of a set open_clip
        ships (``"openai_imagenet"``, ``"simple_imagenet"``). An existing file
        wins over a set of the same name.

    Returns
    -------
    templates : list of str
        Format strings, each with one ``{}``.

    Raises
    ------
    FileNotFoundError
        When ``source`` is neither a file nor a template set.
    ValueError
        When the file is empty, or a template has no ``{}`` or other braces
        that ``str.format`` cannot fill.
    """
    if not os.path.exists(source):
        from ..clip._deps import require_clip_deps

        require_clip_deps()
        from ..clip._zeroshot import template_sets

        sets = template_sets()
        if source.lower() not in sets:
            raise FileNotFoundError(
                f"templates file not found: {source} (or give a template set "
                f"open_clip ships: {', '.join(sorted(sets))})"
            )
        # open_clip's sets are callables from class name to prompt
        return [t("{}") if callable(t) else str(t) for t in sets[source.lower()]]
    templates = _read_lines(source, "--templates")
    for number, template in enumerate(templates, start=1):
        problem = None
        if "{}" not in template:
            problem = "has no '{}' where the class name goes"
        else:
            try:
                template.format("x")
            except (IndexError, KeyError, ValueError) as exc:
                problem = (
                    f"cannot be filled with str.format ({type(exc).__name__}: "
                    f"{exc}); write a literal brace as '{{{{' or '}}}}'"
                )
        if problem:
            raise UsageError(
                f"--templates {source}, template {number} ({template!r}) {problem};"
                " e.g. 'a photo of a {}.'"
            )
    return templates


def _run(args) -> int:
    # Check the user's files first: a wrong path is reported as such even where
    # torch is not installed.
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    if args.batch_size < 1:
        raise UsageError("--batch-size must be positive.")
    out = os.fspath(args.out)
    if not out.endswith(".npz"):
        raise UsageError(f"--out {out}: the zero-shot file must end in .npz.")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise FileNotFoundError(f"output folder not found: {os.path.dirname(out)}")
    if args.model_config and not os.path.isfile(args.model_config):
        raise FileNotFoundError(f"model config file not found: {args.model_config}")
    if not (os.path.isfile(args.pretrained) or os.sep not in args.pretrained):
        raise FileNotFoundError(f"weights file not found: {args.pretrained}")
    classnames, bundled = read_classnames(args.classnames)
    classes = None if bundled else list(classnames)
    if args.classes is not None:
        classes = _read_lines(args.classes, "--classes")
        if len(classes) != len(classnames):
            raise UsageError(
                f"--classes {args.classes} has {len(classes)} labels but "
                f"--classnames {args.classnames} has {len(classnames)} class names; "
                "give one label per class name, in the same order."
            )
        _check_unique(classes, "class labels", args.classes)
    templates = read_templates(args.templates)

    from .. import __version__
    from ..clip import create_model, zeroshot_classifier
    from ..clip._deps import require_clip_deps
    from ..clip._embedders import _resolve_device

    torch, _ = require_clip_deps()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            loaded = create_model(
                args.model,
                args.pretrained,
                device=str(_resolve_device(args.device, torch)),
                model_config=args.model_config,
            )
        except RuntimeError as exc:
            raise model_load_error(exc, args.model, args.pretrained) from exc
    for w in caught:
        if "image-tower weights only" in str(w.message):
            raise UsageError(
                f"{args.pretrained} holds image-tower weights only, so {args.model!r}"
                " would embed the prompts with a random text tower. The zero-shot "
                "file needs the full CLIP weights (e.g. the pretrained ones the "
                "fine-tuning started from)."
            )
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    say(
        f"embedding {len(classnames)} classes x {len(templates)} templates with "
        f"{args.model} ({loaded.source})"
    )
    head = zeroshot_classifier(
        args.model,
        None,
        classnames,
        classes=classes,
        templates=templates,
        batch_size=args.batch_size,
        model=loaded.model,
        verbose=int(not args.quiet and len(classnames) > args.batch_size),
    )
    emb = np.asarray(head.class_embeddings, dtype=np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    manifest = {
        "format": 1,
        "model": args.model,
        "model_config": _read_json(args.model_config) if args.model_config else None,
        "pretrained": args.pretrained,
        "sha256": loaded.sha256,
        "n_classes": len(classnames),
        "classnames_source": args.classnames,
        "classes_source": args.classes,
        "templates_source": args.templates,
        "templates": templates,
        "logit_scale": head.logit_scale,
        "skvrf_version": __version__,
    }
    arrays = {
        "class_embeddings": emb.astype(np.float32),
        "logit_scale": np.float64(head.logit_scale),
        "classnames": np.asarray(classnames),
        "templates": np.asarray(templates),
        "model": np.asarray(args.model),
        "pretrained": np.asarray(args.pretrained),
        "sha256": np.asarray(loaded.sha256 or ""),
        "skvrf_version": np.asarray(__version__),
        "manifest": np.asarray(json.dumps(manifest, sort_keys=True)),
    }
    if classes is not None:
        arrays["classes"] = np.asarray(classes)
    atomic_savez(out, **arrays)
    note = "" if classes is not None else " (no 'classes': row i is label index i)"
    say(
        f"wrote {out}: {emb.shape[0]} classes x {emb.shape[1]} dimensions, "
        f"logit_scale {head.logit_scale:.4g}{note}"
    )
    return 0


def main(args: argparse.Namespace) -> int:
    """Run ``skvrf zeroshot`` with parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From a parser set up by :func:`configure_parser`.

    Returns
    -------
    status : int
        0 on success, 2 on a usage error or missing dependency (message on
        stderr).
    """
    return report_errors("zeroshot", _run, args)


if __name__ == "__main__":
    _parser = configure_parser(argparse.ArgumentParser(prog="skvrf zeroshot"))
    sys.exit(main(_parser.parse_args()))
