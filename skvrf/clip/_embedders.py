"""scikit-learn transformers that embed images and texts with open_clip models."""

from __future__ import annotations

import json
import os
import uuid
import warnings
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory

from ._deps import require_clip_deps
from ._inputs import ImageDataset, as_sequence, content_hash, text_hash
from ._models import create_model

__all__ = ["OpenCLIPImageEmbedder", "OpenCLIPTextEmbedder"]

_AUTOCAST_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def _resolve_device(device: str, torch, *, fallback: bool = False):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if fallback and dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device={device!r} is not available here; loading on CPU.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    return dev


def _cached_embedding(model_key, content_key, embedding=None):
    """Identity function that joblib.Memory keys on (model, content)."""
    return embedding


class _OpenCLIPEmbedder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Shared machinery: model loading, lazy reload, caching, batching."""

    _kind = ""  # "image" or "text"
    _parameter_constraints: ClassVar[dict] = {
        "model_name": [str],
        "pretrained": [str, os.PathLike, None],
        "device": [str],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "precision": [StrOptions({"fp32", "fp16", "bf16"})],
        "normalize": ["boolean"],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "model_config": [None, dict, str, os.PathLike],
        "trust_pickle": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model_name,
        pretrained,
        *,
        device="auto",
        batch_size=64,
        precision="fp32",
        normalize=True,
        num_workers=0,
        memory=None,
        model_config=None,
        trust_pickle=False,
        verbose=0,
    ):
        self.model_name = model_name
        self.pretrained = pretrained
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.normalize = normalize
        self.num_workers = num_workers
        self.memory = memory
        self.model_config = model_config
        self.trust_pickle = trust_pickle
        self.verbose = verbose

    # -- loading -----------------------------------------------------------
    def _load(self, *, expected_sha256=None, fallback=False):
        torch, _ = require_clip_deps()
        device = _resolve_device(self.device, torch, fallback=fallback)
        loaded = create_model(
            self.model_name,
            self.pretrained,
            device="cpu",
            model_config=self.model_config,
            trust_pickle=self.trust_pickle,
            expected_sha256=expected_sha256,
        )
        state = self.__dict__.pop("_random_weights", None)
        if state is not None:
            loaded.model.load_state_dict(state)
        self.model_ = loaded.model.to(device)
        self.preprocess_ = loaded.preprocess
        self.device_ = device
        self._load_extra()
        return loaded

    def _load_extra(self):
        """Hook for the text embedder's tokenizer."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Load the model and its preprocessing; nothing is learned from X.

        Parameters
        ----------
        X : ignored
            Present for API consistency; the model is pretrained.
        y : ignored
            Present for API consistency.

        Returns
        -------
        self : object
            The fitted embedder.
        """
        if self.pretrained is None:
            warnings.warn(
                f"{type(self).__name__}: pretrained=None gives randomly "
                "initialised weights; pass an open_clip tag or a weights file for "
                "meaningful embeddings.",
                UserWarning,
                stacklevel=3,
            )
        loaded = self._load()
        self.weights_source_ = loaded.source
        self.weights_sha256_ = loaded.sha256
        self.embed_dim_ = int(self._probe_dim())
        if self.pretrained is None:
            self._run_id = uuid.uuid4().hex  # random weights: cache per instance
        return self

    def _probe_dim(self):
        proj = getattr(self.model_, "text_projection", None)
        visual_dim = getattr(self.model_.visual, "output_dim", None)
        if visual_dim is not None:
            return visual_dim
        return proj.shape[-1]  # pragma: no cover - exotic towers

    def _ensure_model(self):
        check_is_fitted(self, "embed_dim_")
        if "model_" not in self.__dict__:
            self._load(expected_sha256=self.weights_sha256_, fallback=True)

    @property
    def _n_features_out(self):
        return self.embed_dim_

    # -- pickling ----------------------------------------------------------
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: never touch __dict__
        model = state.pop("model_", None)
        for key in ("preprocess_", "tokenizer_", "device_"):
            state.pop(key, None)
        if model is not None and self.pretrained is None:
            # Random weights have no source to reload from: keep them.
            state["_random_weights"] = {
                k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            }
        return state

    # -- caching -----------------------------------------------------------
    def _model_key(self) -> str:
        return json.dumps(
            {
                "kind": self._kind,
                "model_name": self.model_name,
                "source": self.weights_source_,
                "sha256": self.weights_sha256_,
                "random": getattr(self, "_run_id", None),
                "model_config": self.model_config
                if not isinstance(self.model_config, os.PathLike)
                else os.fspath(self.model_config),
                "precision": self.precision,
                "normalize": bool(self.normalize),
                "preprocess": repr(self.preprocess_) if self._kind == "image" else "",
            },
            sort_keys=True,
            default=str,
        )

    def _hash(self, item, row):
        raise NotImplementedError

    def _encode_rows(self, items, rows):
        raise NotImplementedError

    def transform(self, X):
        """Embed each element of X.

        Parameters
        ----------
        X : sequence of length n_samples
            Inputs (see the class docstring).

        Returns
        -------
        embeddings : ndarray of shape (n_samples, `embed_dim_`), dtype float32
            One embedding per input, L2-normalised when ``normalize=True``.
        """
        self._ensure_model()
        items = as_sequence(X, type(self).__name__, self._kind + "s")
        out = np.empty((len(items), self.embed_dim_), dtype=np.float32)
        if not items:
            return out
        memory = check_memory(self.memory)
        if memory.location is None:
            out[:] = self._encode_rows(items, list(range(len(items))))
            return out
        cached = memory.cache(_cached_embedding, ignore=["embedding"])
        model_key = self._model_key()
        keys = [self._hash(item, row) for row, item in enumerate(items)]
        first_row = {}
        for row, key in enumerate(keys):
            first_row.setdefault(key, row)
        misses = [
            row
            for key, row in first_row.items()
            if not cached.check_call_in_cache(model_key, key)
        ]
        if misses:
            new = self._encode_rows(items, misses)
            for row, emb in zip(misses, new):
                cached(model_key, keys[row], embedding=emb)
        for row, key in enumerate(keys):
            out[row] = cached(model_key, key)
        return out

    def _run_batches(self, batches, n_batches, encode):
        torch, _ = require_clip_deps()
        from tqdm.auto import tqdm

        dtype = _AUTOCAST_DTYPES.get(self.precision)
        chunks = []
        with torch.inference_mode():
            for batch in tqdm(
                batches,
                total=n_batches,
                disable=not self.verbose,
                desc=f"{type(self).__name__}",
                unit="batch",
            ):
                batch = batch.to(self.device_)
                with torch.autocast(
                    device_type=self.device_.type,
                    dtype=getattr(torch, dtype) if dtype else None,
                    enabled=dtype is not None,
                ):
                    feats = encode(batch)
                feats = feats.float()
                if self.normalize:
                    feats = torch.nn.functional.normalize(feats, dim=-1)
                chunks.append(feats.cpu().numpy())
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags


_PARAMS_DOC = """
    model_name : str
        open_clip architecture name (e.g. ``"ViT-B-32"``).
    pretrained : str, path-like or None
        Required: an open_clip pretrained tag (e.g. ``"openai"``) or a local
        weights file (state dict, training checkpoint or safetensors; see
        :func:`skvrf.clip.create_model`). ``None`` gives random weights, with
        a warning.
    device : str, default="auto"
        Torch device; ``"auto"`` picks CUDA when available, else CPU.
    batch_size : int, default=64
        Inputs encoded per forward pass.
    precision : {"fp32", "fp16", "bf16"}, default="fp32"
        Autocast dtype of the forward pass (weights stay fp32); outputs are
        float32 either way.
    normalize : bool, default=True
        L2-normalise each embedding.
    num_workers : int, default=0
        DataLoader worker processes that read and preprocess inputs.
    memory : str, path-like, joblib.Memory or None, default=None
        Cache of embeddings keyed on each input's content hash and the model's
        identity (weights sha256, precision, preprocessing), so repeated calls
        (cross-validation folds, ZSF building, calibration) embed each input once.
    model_config : dict, path-like or None, default=None
        Registers a custom open_clip architecture under ``model_name``.
    trust_pickle : bool, default=False
        Allow weights files that need arbitrary unpickling (see
        :func:`skvrf.clip.load_checkpoint`).
    verbose : int, default=0
        Show a progress bar when positive.
"""

_ATTRS_DOC = """
    model_ : torch.nn.Module
        The open_clip model (dropped on pickling, reloaded lazily on CPU or the
        requested device after unpickling, after checking the weights' sha256).
    preprocess_ : callable
        The model's inference image transform.
    device_ : torch.device
        Device in use.
    embed_dim_ : int
        Embedding dimension.
    weights_source_ : str or None
        The pretrained tag or the absolute path of the weights file.
    weights_sha256_ : str or None
        SHA-256 of the weights file.
"""


class OpenCLIPImageEmbedder(_OpenCLIPEmbedder):
    __doc__ = f"""Embed images with an open_clip image encoder.

    X is a sequence of image file paths, PIL images or (H, W, 3) uint8 arrays
    (or an (n, H, W, 3) array). The model and preprocessing load in ``fit``.

    Parameters
    ----------{_PARAMS_DOC}
    Attributes
    ----------{_ATTRS_DOC}
    See Also
    --------
    OpenCLIPTextEmbedder : The same for strings.
    zeroshot_classifier : Zero-shot head over these embeddings.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.clip import OpenCLIPImageEmbedder, register_model_config
    >>> _ = register_model_config("doc-tiny", {{"embed_dim": 8,
    ...     "vision_cfg": {{"image_size": 32, "layers": 1, "width": 16,
    ...                    "patch_size": 16, "head_width": 8}},
    ...     "text_cfg": {{"context_length": 8, "vocab_size": 49408, "width": 16,
    ...                  "heads": 2, "layers": 1}}}})
    >>> emb = OpenCLIPImageEmbedder("doc-tiny", None, device="cpu")
    >>> images = np.zeros((3, 40, 40, 3), dtype=np.uint8)
    >>> emb.fit().transform(images).shape
    (3, 8)

    With real weights, e.g. ``OpenCLIPImageEmbedder("ViT-B-32", "openai")``.
    """

    _kind = "image"

    def _hash(self, item, row):
        try:
            return content_hash(item)
        except OSError as exc:
            raise ValueError(
                f"Cannot read image at row {row} ({item!r}): {exc}"
            ) from exc

    def _encode_rows(self, items, rows):
        torch, _ = require_clip_deps()
        loader = torch.utils.data.DataLoader(
            ImageDataset(items, rows, self.preprocess_),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.device_.type == "cuda",
        )
        return self._run_batches(
            loader,
            len(loader),
            lambda batch: self.model_.encode_image(batch),
        )


class OpenCLIPTextEmbedder(_OpenCLIPEmbedder):
    __doc__ = f"""Embed strings with an open_clip text encoder.

    X is a sequence of strings, tokenised with ``open_clip.get_tokenizer``.

    Parameters
    ----------{_PARAMS_DOC}
    Attributes
    ----------{_ATTRS_DOC}    tokenizer_ : callable
        The model's tokenizer.

    See Also
    --------
    OpenCLIPImageEmbedder : The same for images.

    Examples
    --------
    >>> from skvrf.clip import OpenCLIPTextEmbedder, register_model_config
    >>> _ = register_model_config("doc-tiny", {{"embed_dim": 8,
    ...     "vision_cfg": {{"image_size": 32, "layers": 1, "width": 16,
    ...                    "patch_size": 16, "head_width": 8}},
    ...     "text_cfg": {{"context_length": 8, "vocab_size": 49408, "width": 16,
    ...                  "heads": 2, "layers": 1}}}})
    >>> emb = OpenCLIPTextEmbedder("doc-tiny", None, device="cpu")
    >>> emb.fit().transform(["a cat", "a dog"]).shape
    (2, 8)
    """

    _kind = "text"

    def _load_extra(self):
        _, open_clip = require_clip_deps()
        self.tokenizer_ = open_clip.get_tokenizer(self.model_name)

    def _hash(self, item, row):
        if not isinstance(item, str):
            raise TypeError(
                f"{type(self).__name__}: row {row} is {type(item).__name__}, "
                "not a string."
            )
        return text_hash(item)

    def _encode_rows(self, items, rows):
        texts = [items[r] for r in rows]
        for r, t in zip(rows, texts):
            self._hash(t, r)
        starts = range(0, len(texts), self.batch_size)
        batches = (self.tokenizer_(texts[s : s + self.batch_size]) for s in starts)
        return self._run_batches(
            batches, len(starts), lambda tokens: self.model_.encode_text(tokens)
        )
