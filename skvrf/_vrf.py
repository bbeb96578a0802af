"""``VRFEnsembleClassifier``: Variance Reduction Fine-tuning (Zhu, Cui & Zhang, 2024).

The estimator is thin: the shared base fits and calibrates the components, the
neighbour engine finds distances to the Zero-Shot Failure (ZSF) set, and the pure
functions of ``_weighting`` turn distances into weights and mix.
"""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import _num_samples, check_array, check_is_fitted

from ._base import _BaseComponentEnsemble, used_as_is
from ._calibration import component_logits
from ._weighting import WEIGHTINGS, mix, vrf_weights
from .neighbors import PreparedBank, kneighbors, kth_neighbor_distances
from .neighbors._weighted import weighted_kth_neighbor_distances
from .utils import normalize_rows
from .utils._tensors import (
    check_tensor,
    is_torch_tensor,
    normalize_tensor_rows,
    to_numpy,
)
from .utils._warnings import user_stacklevel

__all__ = ["VRFEnsembleClassifier"]

# Rows on which fit checks that the threshold lies among the observed distances.
_RANGE_ROWS = 5000


def _range_rows(n_samples):
    """Indices of the rows (at most ``_RANGE_ROWS``, a fixed draw) on which fit
    checks that the threshold lies among the observed distances."""
    rows = np.arange(n_samples)
    if rows.size > _RANGE_ROWS:
        rng = np.random.RandomState(0)
        rows = np.sort(rng.choice(rows, _RANGE_ROWS, replace=False))
    return rows


def _normalize_rows(E, dtype=np.float32):
    return normalize_rows(E, dtype)


def resolve_k(k, n_zsf, n_train):
    """The number of neighbours for a ZSF set of ``n_zsf`` rows out of ``n_train``.

    ``"auto"`` is the paper's rule, 0.1 % of the ZSF set: ``max(1, round(0.001 *
    n_zsf))``; ``"authors"`` is the authors' scripts' rule, ``round(1000 * n_zsf /
    n_train)`` (at least 1); an int is taken as is. The result is clipped to
    ``n_zsf`` with a warning. 0 when the ZSF set is empty. With sample weights
    the sizes are summed weights (an integer weight counts as that many rows),
    and a ``k`` above a fractional size is clipped to its integer part (at
    least 1).

    Parameters
    ----------
    k : int or {"auto", "authors"}
        The estimator's ``k``.
    n_zsf : int or float
        Size of the ZSF set (its summed sample weight).
    n_train : int or float
        Number of training rows (their summed sample weight).

    Returns
    -------
    k_ : int
        The k used.

    Examples
    --------
    >>> from skvrf._vrf import resolve_k
    >>> resolve_k("auto", 30_000, 1_281_167), resolve_k("authors", 30_000, 1_281_167)
    (30, 23)
    """
    if n_zsf == 0:
        return 0
    if k == "auto":
        k_ = max(1, round(0.001 * n_zsf))
    elif k == "authors":
        k_ = max(1, round(1000 * n_zsf / n_train))
    else:
        k_ = int(k)
    if k_ > n_zsf:
        size = int(n_zsf) if float(n_zsf).is_integer() else float(n_zsf)
        clipped = max(1, int(np.floor(n_zsf)))
        warnings.warn(
            f"k={k_} is larger than the Zero-Shot Failure set ({size:g} rows); "
            f"k is clipped to {clipped}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        k_ = clipped
    return k_


class _EmbeddingMixin:
    """The space of an ensemble's distances (VRF's bank, the selective scores).

    ``embedding="auto"``: a fine-tuned Pipeline's steps before the last (their
    output is computed once per chunk and fed on to its final step), else X
    itself; a transformer is cloned and fitted, unless used as it is.

    Torch tensors: the components (and a transformer embedding) get X as
    NumPy (:func:`~skvrf.utils._tensors.to_numpy`: a view of a CPU tensor, a
    host copy of one on another device), while a ``"passthrough"`` embedding
    keeps the tensor itself, so that the distances are computed on its device.

    The bank (the fitted attribute named by ``_bank_attribute``) is searched
    as a :class:`~skvrf.neighbors.PreparedBank` kept in ``_bank_cache``:
    validated once, its torch device copy made once per device. The cache is
    made again when the bank attribute is another object than the one it was
    made from (a refit, an edited model), is shared with the copies that
    ``with_params`` makes (they share the bank), and is left out of the state
    that pickle, ``copy.copy``, ``copy.deepcopy`` and skops read
    (``__getstate__``).
    """

    _fitted_space = "the ZSF bank was built"
    _bank_attribute = "zsf_embeddings_"

    def __getstate__(self):
        # object.__getstate__ returns the instance's own __dict__: copy it
        state = dict(super().__getstate__())
        state.pop("_bank_cache", None)
        return state

    def _prepared_bank(self):
        """The bank as a :class:`PreparedBank`, made on first use and again
        when the bank attribute was replaced."""
        bank = getattr(self, self._bank_attribute)
        cache = self.__dict__.get("_bank_cache")
        if cache is None or cache.source is not bank:
            cache = self._bank_cache = PreparedBank(bank)
        return cache

    def _reset_bank_cache(self, bank_ready=True):
        """At the end of fit: drop a previous fit's cache (and its device
        copies), and make the new one now, so that predict does not add it."""
        self.__dict__.pop("_bank_cache", None)
        if bank_ready:
            self._prepared_bank()

    def _fit_embedding(self, X, y):
        """Resolve ``embedding`` into ``embedding_`` (and the head that follows it)."""
        self._head = None
        if isinstance(self.embedding, str):  # "auto"
            ft = self.finetuned_estimator_
            inner = ft.estimator if isinstance(ft, FrozenEstimator) else ft
            if isinstance(inner, Pipeline) and len(inner.steps) > 1:
                self.embedding_, self._head = inner[:-1], inner[-1]
            else:
                self.embedding_ = "passthrough"
                try:
                    check_array(X, dtype=[np.float64, np.float32])
                except (ValueError, TypeError) as exc:
                    raise ValueError(
                        "embedding='auto' measures distances on X itself when the "
                        "fine-tuned component is not a Pipeline, but X is not a "
                        f"numeric 2-D array ({exc}). Make the fine-tuned component "
                        "a Pipeline whose last step is the classifier, or pass "
                        "embedding=<transformer>."
                    ) from exc
        elif used_as_is(self.embedding):  # FrozenEstimator, or needs no fit
            self.embedding_ = self.embedding
        else:
            try:
                check_is_fitted(self.embedding)
                fitted = True
            except NotFittedError:
                fitted = False
            if fitted:
                # skvrf 0.1.0.dev0 used a fitted embedding as it was.
                warnings.warn(
                    "A fitted `embedding` is used as it is for now, but this rule "
                    "is deprecated: pass FrozenEstimator(embedding) to keep it; an "
                    "unfrozen embedding will be cloned and fitted on X.",
                    FutureWarning,
                    stacklevel=3,
                )
                self.embedding_ = self.embedding
            else:
                self.embedding_ = clone(self.embedding).fit(X, y)

    def _outputs(self, X):
        X_np = to_numpy(X)  # the components read NumPy; X itself if it is
        outputs = {"zeroshot": component_logits(self.zeroshot_estimator_, X_np)}
        if self._head is not None:
            E = self.embedding_.transform(X_np)
            outputs["finetuned"] = component_logits(self._head, E)
        else:
            outputs["finetuned"] = component_logits(self.finetuned_estimator_, X_np)
            if isinstance(self.embedding_, str):  # a tensor stays on its device
                E = X
            else:
                E = self.embedding_.transform(X_np)
        outputs["embedding"] = E
        return outputs

    def _component_output(self, name, X):
        X = to_numpy(X)
        if name == "finetuned" and getattr(self, "_head", None) is not None:
            return component_logits(self._head, self.embedding_.transform(X))
        return super()._component_output(name, X)

    def _check_embedding(self, E, reset=False, keep_tensor=False):
        """The embedding checked: a 2-D float array, or with ``keep_tensor`` a
        torch tensor checked on its device (any other consumer gets NumPy)."""
        try:
            if keep_tensor and is_torch_tensor(E):
                E = check_tensor(E, "the embedding tensor")
            else:
                E = check_array(to_numpy(E), dtype=[np.float32, np.float64])
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"The embedding of X is not usable for distances: {exc}"
            ) from exc
        if reset:
            self._embedding_dim = E.shape[1]
        elif E.shape[1] != self._embedding_dim:
            raise ValueError(
                f"The embedding of X has {E.shape[1]} dimensions, but "
                f"{self._fitted_space} with {self._embedding_dim}."
            )
        return E


class VRFEnsembleClassifier(_EmbeddingMixin, _BaseComponentEnsemble):
    """Variance Reduction Fine-tuning: a per-sample mix of zero-shot and fine-tuned.

    VRF (Zhu, Cui & Zhang, NeurIPS 2024) weighs the fine-tuned model by how close a
    test sample lies to the training samples the zero-shot model gets wrong and the
    fine-tuned model gets right (the Zero-Shot Failure, ZSF, set):

    1. ``fit`` builds the ZSF set and keeps its L2-normalised embeddings (the bank).
    2. ``d(x)`` is the squared L2 distance from the normalised embedding of ``x``
       to its ``k``-th nearest bank row (``2 - 2 cos``, in [0, 4], as in the
       published results).
    3. ``w(x) = sigmoid(-(d(x) - threshold) / temperature)`` and
       ``p(x) = w(x) p_ft(x) + (1 - w(x)) p_zs(x)``, each ``p`` the softmax of the
       component's logits divided by its calibration temperature.

    Parameters
    ----------
    zeroshot_estimator : classifier
        The zero-shot model, e.g. :class:`ZeroShotClassifier`. Fixed heads and
        :class:`~sklearn.frozen.FrozenEstimator` are used as they are; any other
        classifier is cloned and fitted.
    finetuned_estimator : classifier
        The fine-tuned model (cloned and fitted, or used as it is when frozen).
    k : int or {"auto", "authors"}, default="auto"
        Which neighbour's distance is ``d(x)``. ``"auto"``: 0.1 % of the ZSF set
        (the paper's rule, at least 1); ``"authors"``: ``round(1000 * |ZSF| /
        n_train)`` (the authors' scripts; far too large on small training sets).
        Clipped to the ZSF set's size with a warning.
    threshold : float, default=1.5
        The distance ``a`` at which both components weigh one half.
    temperature : float, default=0.6
        The softness ``b`` > 0 of the weight's sigmoid (not the calibration
        temperature of the components).
    embedding : "auto" or transformer, default="auto"
        The space of the distances. ``"auto"``: if the fine-tuned component
        (unwrapped from a FrozenEstimator) is a Pipeline, the output of its steps
        before the last (computed once and fed on to its final step); otherwise X
        itself, which must then be a numeric 2-D array. A transformer is cloned and
        fitted on X, unless it is a FrozenEstimator (a prefit embedding) or needs
        no fit (``requires_fit=False`` in its tags). A fitted, unfrozen
        transformer is still used as it is, with a FutureWarning (deprecated).
    weighting : {"sigmoid", "linear", "step"}, default="sigmoid"
        Shape of ``w(d)`` (the paper's ablation): the sigmoid above; ``"linear"``,
        ``clip(1/2 - (d - threshold) / (4 temperature), 0, 1)``, the line with the
        sigmoid's slope at the threshold; ``"step"``, 1 below the threshold and 0
        above (the hard switch of selective prediction).
    mixing : {"probability", "logit"}, default="probability"
        Mix calibrated probabilities (the paper) or calibrated logits
        (``softmax(w z_ft / T_ft + (1 - w) z_zs / T_zs)``).
    zsf_rule : {"paper", "zeroshot_errors", "all"}, default="paper"
        ``"paper"``: rows the fine-tuned component predicts right and the zero-shot
        one wrong (Eq. 3); ``"zeroshot_errors"``: every zero-shot error;
        ``"all"``: every training row (the paper's bank ablation, Fig. 4:
        82.2/61.0 ID/OOD against the ZSF set's 82.3/61.8 on ViT-B/16).
    calibrate : bool, default=True
        Divide each component's logits by a temperature minimising log-loss on
        data that component was not fitted on: ``X_val`` when given to ``fit``;
        otherwise the training rows for fixed components (a frozen fine-tuned
        model calibrated on its own training rows stays overconfident: pass
        ``X_val``), and out-of-fold predictions for components fitted here.
    calibration_method : {"log_loss", "confidence"}, default="log_loss"
        How a temperature is fitted: minimising log-loss (temperature scaling,
        Guo et al. 2017), or the VRF authors' rule, mean max-probability equal to
        accuracy (for reproduction; still on held-out data).
    calibration_cv : int, cross-validation generator or iterable, default=5
        Folds for the out-of-fold logits of components fitted here.
    logit_adjustment : {"gla"} or None, default=None
        ``"gla"``: subtract the zero-shot component's label bias, estimated on
        the training rows (generalized logit adjustment, Zhu et al. 2023; see
        ``skvrf._base.estimate_label_bias``), from its logits before
        calibration, the ZSF set and the mix. None leaves them as they are.
    bank_dtype : {"float32", "float16", "float64"}, default="float32"
        Storage type of the ZSF embeddings. ``"float16"`` halves their memory
        (distances are computed in float32); ``"float64"`` doubles it and
        computes the queries and distances in float64.
    knn_backend : {"auto", "numpy", "torch", "faiss"}, default="auto"
        Engine of the k-th-neighbour search (see
        :func:`skvrf.neighbors.kth_neighbor_distances`).
    working_memory : int, default=None
        MiB bound of the temporary distance block (None: the engine's default).
    n_jobs : int, default=None
        Jobs for out-of-fold fits (joblib) and distance chunks (threads).
    random_state : int, RandomState instance or None, default=None
        Shuffles the calibration folds when set.
    verbose : int, default=0
        Show a progress bar over row chunks when predicting many rows.

    Attributes
    ----------
    zeroshot_estimator_ : classifier
        The fitted (or kept) zero-shot component.
    finetuned_estimator_ : classifier
        The fitted (or kept) fine-tuned component.
    embedding_ : transformer or "passthrough"
        The embedding used for distances.
    classes_ : ndarray of shape (n_classes,)
        Union of the components' classes, sorted.
    n_features_in_ : int
        Number of features, when X is numeric.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when X has string column names.
    k_ : int
        The k used (0 when the ZSF set is empty), after clipping to the ZSF
        set's size.
    n_samples_fit_ : int
        Number of training rows (the ``"authors"`` rule of ``k`` uses it).
    zsf_indices_ : ndarray of shape (n_zsf,)
        Training rows in the ZSF set.
    zsf_embeddings_ : ndarray of shape (n_zsf, n_embedding)
        Their normalised embeddings (the bank). A fitted VRF therefore contains
        training data: mind size and privacy when sharing it.
    zsf_sample_weight_ : ndarray of shape (n_zsf,) or None
        The ZSF rows' sample weights, when ``fit`` had ``sample_weight`` and
        they are not all 1 (else None). A bank row of weight ``w`` counts as
        ``w`` rows: ``d(x)`` is the distance of the nearest bank row at which
        the bank's summed weight, nearest rows first, reaches ``k`` (integer
        weights give the distances of the rows repeated), and ``"auto"``,
        ``"authors"`` and the clipping of ``k`` count summed weights. Rows of
        weight 0 are never in the ZSF set.
    calibration_temperatures_ : dict
        Temperature of each component (``"zeroshot"``, ``"finetuned"``).
    zeroshot_bias_ : ndarray of shape (n_zeroshot_classes,) or None
        The label bias subtracted from the zero-shot logits (columns in the
        order of ``zeroshot_estimator_.classes_``), or None without
        ``logit_adjustment``.

    Warns
    -----
    UserWarning
        At fit, when ``threshold`` lies outside the range of the distances
        ``d(x)`` observed on ``X_val`` (when given; else on the training rows,
        each ZSF row's zero distance to itself left out; at most 5,000 rows,
        drawn with a fixed seed): every weight then falls on one side of 1/2
        and the switch between the components is never used. The message gives
        the range and what to do.

    See Also
    --------
    OutputSpaceEnsembleClassifier : The global-alpha baseline (OSE).
    ZeroShotClassifier : The CLIP zero-shot head.

    References
    ----------
    .. [1] B. Zhu, J. Cui and H. Zhang, "Robust Fine-tuning of Zero-shot Models
       via Variance Reduction", NeurIPS 2024. arXiv:2411.06966.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> y = rng.integers(0, 3, 300)
    >>> X = centers[y] + rng.normal(scale=0.8, size=(300, 8))
    >>> zs = ZeroShotClassifier(centers + rng.normal(scale=0.5, size=(3, 8)))
    >>> clf = VRFEnsembleClassifier(zs, LogisticRegression(), random_state=0)
    >>> clf.fit(X, y).predict(X[:5]).shape
    (5,)
    >>> w = clf.ensemble_weights(X[:5])
    >>> bool(((w >= 0) & (w <= 1)).all())
    True
    """

    _fit_uses_val_outputs = True  # the threshold check / lambda
    _parameter_constraints: dict = {
        **_BaseComponentEnsemble._parameter_constraints,
        "k": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto", "authors"}),
        ],
        "threshold": [Interval(Real, None, None, closed="neither")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "embedding": [StrOptions({"auto"}), HasMethods(["transform"])],
        "weighting": [StrOptions(set(WEIGHTINGS))],
        "mixing": [StrOptions({"probability", "logit"})],
        "zsf_rule": [StrOptions({"paper", "zeroshot_errors", "all"})],
        "bank_dtype": [StrOptions({"float32", "float16", "float64"})],
        "knn_backend": [StrOptions({"auto", "numpy", "torch", "faiss"})],
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        zeroshot_estimator,
        finetuned_estimator,
        *,
        k="auto",
        threshold=1.5,
        temperature=0.6,
        embedding="auto",
        weighting="sigmoid",
        mixing="probability",
        zsf_rule="paper",
        calibrate=True,
        calibration_method="log_loss",
        calibration_cv=5,
        logit_adjustment=None,
        bank_dtype="float32",
        knn_backend="auto",
        working_memory=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            zeroshot_estimator,
            finetuned_estimator,
            calibrate=calibrate,
            calibration_method=calibration_method,
            calibration_cv=calibration_cv,
            logit_adjustment=logit_adjustment,
            n_jobs=n_jobs,
            random_state=random_state,
            verbose=verbose,
        )
        self.k = k
        self.threshold = threshold
        self.temperature = temperature
        self.embedding = embedding
        self.weighting = weighting
        self.mixing = mixing
        self.zsf_rule = zsf_rule
        self.bank_dtype = bank_dtype
        self.knn_backend = knn_backend
        self.working_memory = working_memory

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # distances need a dense embedding
        return tags

    # -------------------------------------------------------------- fitting
    def _prepare_outputs(self, X, y):
        if self.knn_backend == "faiss" and self.bank_dtype == "float64":
            raise ValueError(
                'knn_backend="faiss" has no float64 search; use bank_dtype="float32" '
                'or knn_backend="numpy" / "torch" for float64 distances.'
            )
        self._fit_embedding(X, y)

    # fit keeps, per chunk of training rows, only the ZSF rows' indices and
    # normalised embeddings, and the embeddings of the rows on which the
    # threshold's range is checked: never the components' logits of every row.
    def _start_fit(self, n_samples):
        rows = _range_rows(n_samples)
        return {
            "n": n_samples,
            "zsf": [],
            "bank": [],
            "weights": [],
            "rows": rows,
            "sample": [],
        }

    def _fit_chunk(self, state, rows, y, outputs):
        # Label-based: each component's argmax is read through its own classes_.
        if self.zsf_rule == "all":
            zsf = np.ones(len(y), dtype=bool)
        else:
            zs_classes = self.zeroshot_estimator_.classes_
            zsf = zs_classes[outputs["zeroshot"].argmax(axis=1)] != y
            if self.zsf_rule == "paper":
                ft_classes = self.finetuned_estimator_.classes_
                zsf &= ft_classes[outputs["finetuned"].argmax(axis=1)] == y
        sample_weight = state.get("sample_weight")
        if sample_weight is not None:  # a row of weight 0 is absent
            zsf &= sample_weight[rows] > 0
            state["weights"].append(sample_weight[rows][zsf])
        E = self._check_embedding(outputs["embedding"], reset=rows.start == 0)
        state["zsf"].append(np.flatnonzero(zsf) + rows.start)
        bank = _normalize_rows(E[zsf], self._compute_dtype())
        state["bank"].append(bank.astype(self.bank_dtype, copy=False))
        sample = state["rows"]
        sample = sample[(sample >= rows.start) & (sample < rows.stop)] - rows.start
        state["sample"].append(E[sample])

    def _end_fit(self, state, X, y, val_outputs=None, y_val=None):
        self.zsf_indices_ = np.concatenate(state.pop("zsf"))
        bank = state.pop("bank")
        self.zsf_embeddings_ = bank[0] if len(bank) == 1 else np.concatenate(bank)
        del bank
        self.n_samples_fit_ = len(y)
        sample_weight = state.get("sample_weight")
        self.zsf_sample_weight_ = None
        self._sizes = (self.zsf_indices_.size, self.n_samples_fit_)
        if sample_weight is not None:
            weights = np.concatenate(state.pop("weights"))
            self._sizes = (float(weights.sum()), float(sample_weight.sum()))
            if np.any(weights != 1):
                self.zsf_sample_weight_ = weights
        if self.zsf_indices_.size == 0:
            warnings.warn(
                "The Zero-Shot Failure set is empty (no training row is predicted "
                "right by the fine-tuned component and wrong by the zero-shot one): "
                "w(x) = 0 everywhere, the ensemble is the zero-shot model.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        self.k_ = self._resolve_k(self.k)
        self._reset_bank_cache(bank_ready=self.k_ > 0)
        if self.k_:
            sample = {
                "embedding": np.concatenate(state["sample"]),
                "rows": state["rows"],
            }
            self._check_threshold(sample, val_outputs)

    def _observed_distances(self, outputs, val_outputs, return_rows=False):
        """``d(x)`` on (at most 5,000 of) the rows of X_val, else of X with each
        bank row's distance to itself left out; and where they come from.

        ``outputs``: fit's sample of the training rows, their ``"embedding"``
        and their indices ``"rows"`` (drawn by ``_range_rows``); without
        ``"rows"``, the outputs of every training row, sampled here.
        """
        if val_outputs is not None:
            E = self._check_embedding(val_outputs["embedding"])
            rows = _range_rows(E.shape[0])
            found = self.bank_distances(E[rows]), f"X_val ({rows.size} rows)"
            return (*found, None) if return_rows else found
        E = self._check_embedding(outputs["embedding"])
        rows = outputs.get("rows")
        if rows is None:
            rows = _range_rows(E.shape[0])
            E = E[rows]
        in_bank = np.isin(rows, self.zsf_indices_)
        # with weights, k + 1 leaves out one unit of a bank row's own weight
        if self.k_ + 1 <= self._zsf_size():
            d = self.bank_distances(E, [self.k_, self.k_ + 1])
            d = np.where(in_bank, d[:, 1], d[:, 0])
        else:  # a bank row has only k_ - 1 others: leave it out
            rows, E = rows[~in_bank], E[~in_bank]
            d = self.bank_distances(E) if rows.size else np.empty(0)
        where = (
            f"the training rows ({rows.size} rows, each ZSF row's distance to "
            "itself left out)"
        )
        return (d, where, rows) if return_rows else (d, where)

    def _range_distances(self, X, X_val=None, return_rows=False):
        """The distances ``d(x)`` (at ``k_``) that fit checks the threshold
        against: X_val's rows (at most 5,000) when given, else the training
        rows ``X`` (at most 5,000, the same draw) with each ZSF row's distance
        to itself left out. Empty when the ZSF set is. With ``return_rows``,
        also the rows (of X_val when given, else of X) they are of."""
        check_is_fitted(self)
        if self.k_ == 0:
            return (np.empty(0), None) if return_rows else np.empty(0)
        embed = lambda o: o.extras["embedding"]  # noqa: E731
        if X_val is not None:
            rows = _range_rows(_num_samples(X_val))
            E = self._collect(_safe_indexing(X_val, rows), embed)
            d = self.bank_distances(E)
            return (d, rows) if return_rows else d
        rows = _range_rows(_num_samples(X))
        E = self._collect(_safe_indexing(X, rows), embed)
        d, _, rows = self._observed_distances(
            {"embedding": E, "rows": rows}, None, return_rows=True
        )
        return (d, rows) if return_rows else d

    def _check_threshold(self, outputs, val_outputs):
        """Warn when ``threshold`` lies outside every observed distance."""
        d, where = self._observed_distances(outputs, val_outputs)
        d = d[np.isfinite(d)]
        if d.size == 0:
            return
        lo, hi = float(d.min()), float(d.max())
        a = self.threshold
        if lo <= a <= hi:
            return
        w_lo, w_hi = self._weights(np.array([hi, lo]))
        side = "above" if a > hi else "below"
        more = "more" if a > hi else "less"
        warnings.warn(
            f"threshold={a:g} lies {side} every distance d(x) observed on {where}, "
            f"which run from {lo:.3g} to {hi:.3g}: the fine-tuned component weighs "
            f"{more} than the zero-shot one on every row (w(x) from {w_lo:.2f} to "
            f"{w_hi:.2f}), and the switch between them is never used. The paper's "
            "threshold=1.5 fits CLIP ViT-B/16 features; on yours, choose a "
            "threshold inside the observed range (their median is "
            f"{float(np.median(d)):.3g}), or let VRFEnsembleClassifierCV() "
            "choose one (its default candidates are quantiles of the observed "
            "distances).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )

    # ---------------------------------------------------------- distances
    def _compute_dtype(self):
        """float64 distances for a float64 bank; float32 otherwise."""
        return np.float64 if self.bank_dtype == "float64" else np.float32

    def _zsf_size(self):
        """The ZSF set's size: its rows, or their summed sample weight."""
        return getattr(self, "_sizes", (self.zsf_indices_.size,))[0]

    def _resolve_k(self, k):
        """``k`` resolved against the ZSF set and the training rows (their
        summed sample weights when fit had some)."""
        n_zsf, n_train = getattr(
            self, "_sizes", (self.zsf_indices_.size, self.n_samples_fit_)
        )
        return resolve_k(k, n_zsf, n_train)

    def bank_distances(self, embedding, k=None):
        """Distances from embedded rows to their k-th nearest ZSF bank row.

        The lower-level form of :meth:`zsf_distances`, for rows that are already
        in the space of the distances (the ``"embedding"`` extra of
        :meth:`iter_component_outputs`): it lets a consumer compute the
        components' outputs and the distances of a chunk once.

        The bank is searched as a :class:`~skvrf.neighbors.PreparedBank`
        kept by the fitted estimator: validated once, and copied to a device
        (``knn_backend="torch"``) once per device, not once per call.

        Parameters
        ----------
        embedding : array-like or torch.Tensor of shape (n_samples, n_embedding)
            Rows in the embedding space (normalised here). A torch tensor is
            checked and normalised on its device, in the dtype of the
            distances, and searched there (see
            :func:`~skvrf.neighbors.kth_neighbor_distances`).
        k : int or sequence of int, default=None
            Neighbour rank(s), each in ``[1, len(zsf_indices_)]``; default
            ``k_``. With ``zsf_sample_weight_``, the weight to reach (a bank
            row of weight ``w`` counts as ``w`` rows).

        Returns
        -------
        distances : ndarray of shape (n_samples,) or (n_samples, len(k))
            Squared L2 distances between normalised embeddings, in [0, 4]
            (one column per rank for a sequence); ``inf`` when the ZSF set is
            empty. NumPy, also for a tensor.
        """
        check_is_fitted(self)
        E = self._check_embedding(embedding, keep_tensor=True)
        if is_torch_tensor(E):
            Q = normalize_tensor_rows(E, self._compute_dtype())
        else:
            Q = _normalize_rows(E, self._compute_dtype())
        k = self.k_ if k is None else k
        ks = np.atleast_1d(np.asarray(k))
        if self.k_ == 0:
            shape = (Q.shape[0],) if np.ndim(k) == 0 else (Q.shape[0], ks.size)
            return np.full(shape, np.inf)
        engine = {
            "backend": self.knn_backend,
            "working_memory": self.working_memory,
            "n_jobs": self.n_jobs,
        }
        k = k if np.ndim(k) == 0 else list(ks.tolist())
        weights = getattr(self, "zsf_sample_weight_", None)
        if weights is not None:
            return weighted_kth_neighbor_distances(
                Q, self._prepared_bank(), k, weights, **engine
            )
        return kth_neighbor_distances(Q, self._prepared_bank(), k, **engine)

    def _weights(self, distances):
        return vrf_weights(distances, self.threshold, self.temperature, self.weighting)

    def _mix(self, outputs):
        w = self._weights(self.bank_distances(outputs.extras["embedding"]))
        p = outputs.proba
        return mix(p["zeroshot"], p["finetuned"], w, self.mixing)

    # ------------------------------------------- parameters that refit nothing
    def with_params(self, **params):
        """A fitted copy with other weighting parameters, without refitting.

        ``k``, ``threshold``, ``temperature``, ``weighting`` and ``mixing`` change
        nothing that ``fit`` learns (components, calibration, ZSF bank): the copy
        shares those (read-only) and resolves ``k`` again against the ZSF set. It
        predicts exactly as a ``fit`` with the same parameters would.

        Parameters
        ----------
        **params
            New values of ``k``, ``threshold``, ``temperature``, ``weighting``
            and/or ``mixing``.

        Returns
        -------
        vrf : VRFEnsembleClassifier
            The fitted copy.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
        >>> rng = np.random.default_rng(0)
        >>> centers = rng.normal(size=(3, 8))
        >>> y = rng.integers(0, 3, 300)
        >>> X = centers[y] + rng.normal(scale=0.8, size=(300, 8))
        >>> zs = ZeroShotClassifier(centers + rng.normal(scale=0.5, size=(3, 8)))
        >>> vrf = VRFEnsembleClassifier(zs, LogisticRegression()).fit(X, y)
        >>> sharper = vrf.with_params(temperature=0.1)
        >>> sharper.temperature, vrf.temperature
        (0.1, 0.6)
        """
        check_is_fitted(self)
        allowed = {"k", "threshold", "temperature", "weighting", "mixing"}
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(
                f"with_params changes only {sorted(allowed)} (they refit nothing); "
                f"got {sorted(unknown)}. Refit for other parameters."
            )
        new = copy.copy(self)  # without the bank's cache (see __getstate__)
        if "_bank_cache" in self.__dict__:  # the same bank: share its copies
            new._bank_cache = self._bank_cache
        new.set_params(**params)
        for name in params:
            constraint = {name: self._parameter_constraints[name]}
            validate_parameter_constraints(
                constraint, {name: params[name]}, caller_name=type(self).__name__
            )
        new.k_ = new._resolve_k(new.k)
        return new

    # -------------------------------------------------------- explanations
    def zsf_distances(self, X):
        """Distance ``d(x)`` from each row to its k-th nearest ZSF embedding.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        distances : ndarray of shape (n_samples,)
            Squared L2 distances between normalised embeddings, in [0, 4];
            ``inf`` when the ZSF set is empty.
        """
        return self._collect(X, lambda o: self.bank_distances(o.extras["embedding"]))

    def ensemble_weights(self, X):
        """Weight ``w(x)`` of the fine-tuned component for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            Values in [0, 1].
        """
        return self._weights(self.zsf_distances(X))

    def zsf_neighbors(self, X, n_neighbors=None):
        """Nearest ZSF training rows of each row, for explanations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.
        n_neighbors : int, default=None
            How many neighbours; default ``k_``.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_neighbors)
            Sorted squared L2 distances.
        indices : ndarray of shape (n_samples, n_neighbors)
            Indices into the training set (rows of ``zsf_indices_``).
        """
        check_is_fitted(self)
        n = self.k_ if n_neighbors is None else n_neighbors
        if not isinstance(n, Integral) or n < 1:
            raise ValueError(f"n_neighbors must be a positive int, got {n!r}.")
        if self.k_ == 0:
            raise ValueError(
                "The Zero-Shot Failure set is empty: there are no neighbours."
            )
        if n > self.zsf_indices_.size:
            raise ValueError(
                f"n_neighbors={n} is larger than the ZSF set "
                f"({self.zsf_indices_.size} rows)."
            )

        def neighbors(outputs):
            E = self._check_embedding(outputs.extras["embedding"])
            d, idx = kneighbors(
                _normalize_rows(E, self._compute_dtype()),
                self._prepared_bank(),
                n,
                backend=self.knn_backend,
                working_memory=self.working_memory,
                n_jobs=self.n_jobs,
            )
            return d, self.zsf_indices_[idx]

        return self._collect(X, neighbors)
