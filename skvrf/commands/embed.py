"""``skvrf embed``: embed an ImageFolder tree into one ``.npz``, resumably.

The images are split into shards of fixed boundaries (``--shard-size`` rows of
the sorted file list). Each finished shard is written atomically (temporary
file, then ``os.replace``) into ``OUT.parts/``, next to a manifest of the run
(file list hash, model, pretrained tag, weights sha256, precision, shard size).
A rerun after an interruption checks the manifest, skips finished shards and
embeds the rest; the merged file is written atomically at the end and the parts
folder removed. A file at ``OUT`` therefore always holds a complete run.

The output holds ``features`` (n, d) float32, ``labels`` (n,) indices into
``classes`` (the sorted class folder names), ``paths`` (relative to the image
folder), ``model``, ``pretrained``, ``sha256`` and ``manifest`` (JSON).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import zipfile

import numpy as np

from ..io import list_image_folder
from ._common import UsageError, atomic_file, atomic_savez, report_errors

__all__ = ["configure_parser", "main"]


def model_load_error(exc: RuntimeError, model: str, pretrained: str) -> UsageError:
    """A usage error for open_clip's RuntimeError on an unknown model or tag.

    open_clip raises RuntimeError for an architecture it does not know, a
    pretrained tag it does not know, and weights it cannot download (offline).
    """
    text = str(exc).split(" Available:")[0].rstrip(".")  # not the list of ~150
    if "not found in built-ins" in text:
        text += " (open_clip.list_models() lists the built-in ones)"
    return UsageError(
        f"open_clip cannot load {model!r} with --pretrained {pretrained!r}: {text}. "
        "Offline, give --pretrained a local weights file (state dict, checkpoint "
        "or safetensors) and, for an architecture open_clip does not ship, its "
        "JSON config with --model-config."
    )


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``embed`` arguments to ``parser``.

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
    >>> from skvrf.commands.embed import configure_parser
    >>> p = configure_parser(argparse.ArgumentParser(prog="skvrf embed"))
    >>> a = p.parse_args(["--model", "ViT-B-32", "--pretrained", "openai",
    ...                   "--images", "train", "--out", "train.npz"])
    >>> a.shard_size, a.device
    (4096, 'auto')
    """
    parser.description = "Embed an ImageFolder tree with an open_clip model."
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
        "--images", required=True, help="folder with one sub-folder per class"
    )
    parser.add_argument("--out", required=True, help="output .npz file")
    parser.add_argument("--device", default="auto", help="torch device (default auto)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument(
        "--shard-size",
        type=int,
        default=4096,
        help="images per resumable shard (default 4096)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output made with other settings",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def _embed_shard(embedder, paths: list[str]) -> np.ndarray:
    """Embed one shard (a seam for tests that need a slow run)."""
    return embedder.transform(paths)


def _manifest(args, embedder, classes, paths, labels) -> dict:
    listing = hashlib.sha256(
        json.dumps([classes, paths, labels.tolist()]).encode("utf-8")
    ).hexdigest()
    is_file = os.path.isfile(args.pretrained)
    return {
        "format": 1,
        "model": args.model,
        "model_config": _read_json(args.model_config) if args.model_config else None,
        "weights": embedder.weights_sha256_ if is_file else args.pretrained,
        "sha256": embedder.weights_sha256_,
        "precision": args.precision,
        "normalize": True,
        "n_images": len(paths),
        "listing_sha256": listing,
        "shard_size": args.shard_size,
    }


def _read_json(path):
    if not os.path.isfile(path):
        raise UsageError(f"model config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _differences(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _run(args) -> int:
    # Check the user's arguments first: a wrong path is reported as such even
    # where torch is not installed.
    if args.shard_size < 1 or args.batch_size < 1:
        raise UsageError("--shard-size and --batch-size must be positive.")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    classes, paths, labels = list_image_folder(args.images)
    if args.model_config:
        _read_json(args.model_config)
    if not (os.path.isfile(args.pretrained) or os.sep not in args.pretrained):
        raise UsageError(f"weights file not found: {args.pretrained}")

    from ..clip._deps import require_clip_deps

    require_clip_deps()
    from ..clip._embedders import OpenCLIPImageEmbedder

    try:
        embedder = OpenCLIPImageEmbedder(
            args.model,
            args.pretrained,
            device=args.device,
            batch_size=args.batch_size,
            precision=args.precision,
            num_workers=args.num_workers,
            model_config=args.model_config,
        ).fit()
    except RuntimeError as exc:
        raise model_load_error(exc, args.model, args.pretrained) from exc
    manifest = _manifest(args, embedder, classes, paths, labels)
    out = os.fspath(args.out)
    if os.path.exists(out):
        try:
            with np.load(out) as done:
                previous = (
                    json.loads(str(done["manifest"])) if "manifest" in done else {}
                )
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            if not args.overwrite:
                raise UsageError(
                    f"{out} exists but cannot be read as an .npz file ({exc}); "
                    "delete it, pass --overwrite, or choose another --out."
                ) from exc
            previous = {}
        if previous == manifest:
            shutil.rmtree(out + ".parts", ignore_errors=True)
            say(f"{out} is already complete; nothing to do.")
            return 0
        if not args.overwrite:
            raise UsageError(
                f"{out} exists and was made with other settings (differ: "
                f"{_differences(previous, manifest)}); pass --overwrite or "
                "choose another --out."
            )
    parts = out + ".parts"
    manifest_path = os.path.join(parts, "manifest.json")
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous != manifest:
            if not args.overwrite:
                raise UsageError(
                    f"{parts} holds an unfinished run with other settings (differ: "
                    f"{_differences(previous, manifest)}); delete it, pass "
                    "--overwrite, or choose another --out."
                )
            shutil.rmtree(parts)
    os.makedirs(parts, exist_ok=True)
    with atomic_file(manifest_path, ".json", "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, sort_keys=True))
    root = os.path.abspath(args.images)
    n_shards = -(-len(paths) // args.shard_size)
    chunks = []
    for i in range(n_shards):
        start, stop = i * args.shard_size, min((i + 1) * args.shard_size, len(paths))
        shard = os.path.join(parts, f"shard-{i:06d}.npz")
        if os.path.exists(shard):
            with np.load(shard) as z:
                if (int(z["start"]), int(z["stop"])) == (start, stop):
                    chunks.append(z["features"])
                    say(f"shard {i + 1}/{n_shards}: done earlier, skipped")
                    continue
        feats = _embed_shard(
            embedder, [os.path.join(root, p) for p in paths[start:stop]]
        )
        atomic_savez(shard, features=feats, start=start, stop=stop)
        chunks.append(feats)
        say(f"shard {i + 1}/{n_shards}: embedded {stop - start} images")
    atomic_savez(
        out,
        features=np.concatenate(chunks),
        labels=labels,
        classes=np.asarray(classes),
        paths=np.asarray(paths),
        model=np.asarray(args.model),
        pretrained=np.asarray(args.pretrained),
        sha256=np.asarray(embedder.weights_sha256_ or ""),
        manifest=np.asarray(json.dumps(manifest, sort_keys=True)),
    )
    shutil.rmtree(parts, ignore_errors=True)
    say(f"wrote {out}: {len(paths)} images, {len(classes)} classes")
    return 0


def main(args: argparse.Namespace) -> int:
    """Run ``skvrf embed`` with parsed arguments.

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
    return report_errors("embed", _run, args)


if __name__ == "__main__":
    _parser = configure_parser(argparse.ArgumentParser(prog="skvrf embed"))
    sys.exit(main(_parser.parse_args()))
