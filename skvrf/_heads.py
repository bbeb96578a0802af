"""Fixed linear heads over features: zero-shot, prefit linear and logits-as-input.

These classifiers learn nothing from data: their weights come from elsewhere (class
text embeddings, a fine-tuned checkpoint's head, or precomputed logits). Their
scikit-learn tags say so (``requires_fit=False``): they predict without ``fit``, and
``fit`` only validates its input and records ``classes_`` and ``n_features_in_``.
Ensembles read that tag to know that such a component needs no fitting and may be
calibrated on the data given to ``fit``.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d, validate_data

from ._labels import check_label_kinds, label_kind, shown_labels
from .utils import normalize_rows

__all__ = ["ZeroShotClassifier", "LinearHeadClassifier", "LogitsClassifier"]


def _check_classes(classes, n_classes, owner):
    if classes is None:
        return np.arange(n_classes)
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.shape[0] != n_classes:
        raise ValueError(
            f"{owner}: `classes` must be 1-D with one label per class "
            f"({n_classes}); got shape {classes.shape}."
        )
    label_kind(classes, f"{owner}: `classes`")
    if np.unique(classes).shape[0] != n_classes:
        raise ValueError(f"{owner}: `classes` contains duplicate labels.")
    return classes


def _check_known_labels(y, classes, owner):
    """Raise if ``y`` holds labels outside ``classes``, naming them."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{owner}: y must be 1-D, got shape {y.shape}.")
    check_label_kinds(y=y, **{f"{owner}'s classes": classes})
    unknown = np.setdiff1d(np.unique(y), classes)
    if unknown.size:
        raise ValueError(
            f"{owner}: y contains labels not in `classes`: {shown_labels(unknown)}."
        )


class _FixedHeadClassifier(ClassifierMixin, BaseEstimator):
    """Base of classifiers whose logits are a fixed function of the input.

    Subclasses implement ``_validate_head()`` -> (coef, intercept, classes) and
    may override ``_transform_input(X)``.
    """

    def _validate_head(self):
        """Validate the fixed weights; return (coef, intercept, classes)."""
        raise NotImplementedError

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the input and record ``classes_``; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features (e.g. CLIP image embeddings). Only validated.
        y : array-like of shape (n_samples,), default=None
            Labels; when given, each must be one of ``classes``.

        Returns
        -------
        self : object
            The classifier.
        """
        coef, intercept, classes = self._validate_head()
        X, y = self._check_fit_input(X, y)
        self._check_width(X, coef.shape[1])
        self._check_fit_labels(X, y, classes)
        self.coef_ = coef
        self.intercept_ = intercept
        self.classes_ = classes
        return self

    #: How a width error names what the weights expect (``{n}``: the width).
    _width_text = "has weights for {n} features"

    def _check_width(self, X, n):
        """Raise unless ``X`` has ``n`` columns (``n=None``: any number)."""
        if n is not None and X.shape[1] != n:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} "
                + self._width_text.format(n=n)
                + "."
            )

    def _check_fit_input(self, X, y):
        """``(X, y)`` of ``fit``, validated (``y`` may be None)."""
        if y is not None:
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=True)
        return X, y

    def _check_fit_labels(self, X, y, classes):
        """Raise unless ``y`` (when given) has one known label per row of ``X``."""
        if y is None:
            return
        if len(y) != X.shape[0]:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: "
                f"{X.shape[0]} and {len(y)}."
            )
        _check_known_labels(y, classes, type(self).__name__)

    def _check_input(self, X, n_columns):
        """``X`` for prediction: as in ``fit`` once fitted, else ``n_columns`` wide."""
        if hasattr(self, "n_features_in_"):
            return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        X = check_array(X, dtype=[np.float64, np.float32])
        self._check_width(X, n_columns)  # used without fit: the weights fix it
        return X

    def _transform_input(self, X):
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # the weights are given: predicting needs no fit
        return tags

    def _head(self):
        """(coef, intercept, classes): the fitted ones, or validated from params."""
        if hasattr(self, "coef_"):
            return self.coef_, self.intercept_, self.classes_
        return self._validate_head()

    def _logits(self, X):
        """Full (n_samples, n_classes) logits."""
        coef, intercept, _ = self._head()
        X = self._transform_input(self._check_input(X, coef.shape[1]))
        return X @ coef.T.astype(X.dtype, copy=False) + intercept

    def decision_function(self, X):
        """Logits of each class (1-D for two classes, as scikit-learn expects).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Logits; with two classes, the logit of ``classes_[1]`` minus that of
            ``classes_[0]``.
        """
        z = self._logits(X)
        if z.shape[1] == 2:
            return z[:, 1] - z[:, 0]
        return z

    def predict_proba(self, X):
        """Softmax of the logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``.
        """
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities.
        """
        return log_softmax(self._logits(X), axis=1)

    def predict(self, X):
        """Label of the largest logit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, values of ``classes_``.
        """
        logits = self._logits(X)
        return self._predicted_classes(logits.shape[1])[np.argmax(logits, axis=1)]

    def _predicted_classes(self, n_columns):
        """The label of each of the ``n_columns`` logit columns."""
        return self._head()[2]


def _finite_matrix(a, name, owner):
    a = np.asarray(a)
    if a.dtype.kind not in "fiu" or a.ndim != 2 or 0 in a.shape:
        raise ValueError(
            f"{owner}: `{name}` must be a non-empty 2-D numeric array "
            f"(n_classes, n_features); got shape {a.shape} and dtype {a.dtype}."
        )
    a = a.astype(np.float64, copy=False)
    if not np.all(np.isfinite(a)):
        bad = np.unique(np.nonzero(~np.isfinite(a))[0])
        raise ValueError(
            f"{owner}: `{name}` has non-finite values in rows {bad[:10].tolist()}."
        )
    return a


class ZeroShotClassifier(_FixedHeadClassifier):
    """CLIP-style zero-shot head: scaled cosine similarity to class embeddings.

    ``decision_function(X) = logit_scale * cos(X, class_embeddings)`` and
    ``predict_proba`` is the softmax of those logits. The class embeddings are
    usually the normalised mean of prompt-template text embeddings of each class
    name (see :func:`skvrf.clip.zeroshot_classifier`). ``fit`` learns nothing.

    Parameters
    ----------
    class_embeddings : array-like of shape (n_classes, n_features)
        One embedding per class, in the same space as the image features. Rows
        are L2-normalised internally; zero or non-finite rows are rejected.
    classes : array-like of shape (n_classes,), default=None
        Label value of each row of ``class_embeddings``; default
        ``arange(n_classes)``. Prompt texts live with the text encoder, not here.
    logit_scale : float, default=100.0
        Multiplier of the cosine similarity (CLIP's learned scale is 100).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Label of each row of the weights, in the order given (not sorted, unlike
        most scikit-learn classifiers): column ``j`` of ``predict_proba`` is
        ``classes_[j]``. The ensembles match these columns to their own sorted
        ``classes_`` by label.
    coef_ : ndarray of shape (n_classes, n_features)
        Normalised class embeddings times ``logit_scale``.
    intercept_ : ndarray of shape (n_classes,)
        Zeros.
    n_features_in_ : int
        Number of features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when X has string column names.

    See Also
    --------
    LinearHeadClassifier : A prefit linear head with an intercept.
    VRFEnsembleClassifier : Mixes this head with a fine-tuned model per sample.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf import ZeroShotClassifier
    >>> text = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    >>> X = np.array([[0.9, 0.1], [0.1, 0.8], [-2.0, -1.5]])
    >>> clf = ZeroShotClassifier(text, classes=["cat", "dog", "car"]).fit(X)
    >>> clf.predict(X).tolist()
    ['cat', 'dog', 'car']
    >>> clf.predict_proba(X).sum(axis=1).round(6).tolist()
    [1.0, 1.0, 1.0]
    """

    _parameter_constraints: dict = {
        "class_embeddings": ["array-like"],
        "classes": ["array-like", None],
        "logit_scale": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, class_embeddings, *, classes=None, logit_scale=100.0):
        self.class_embeddings = class_embeddings
        self.classes = classes
        self.logit_scale = logit_scale

    def _validate_head(self):
        owner = type(self).__name__
        emb = _finite_matrix(self.class_embeddings, "class_embeddings", owner)
        norms = np.linalg.norm(emb, axis=1)
        zero = np.nonzero(norms == 0)[0]
        if zero.size:
            raise ValueError(
                f"{owner}: class embeddings of rows {zero[:10].tolist()} are zero; "
                "a zero vector has no direction to compare with."
            )
        coef = self.logit_scale * emb / norms[:, None]
        classes = _check_classes(self.classes, emb.shape[0], owner)
        return coef, np.zeros(emb.shape[0]), classes

    def _transform_input(self, X):
        return normalize_rows(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class LinearHeadClassifier(_FixedHeadClassifier):
    """A prefit linear classification head over features.

    ``decision_function(X) = normalize(X) @ coef.T + intercept`` (without the
    normalisation when ``normalize_input=False``). Fine-tuned CLIP checkpoints that
    carry a classification head load into this class (see
    :func:`skvrf.clip.load_checkpoint`), which avoids refitting a 1000-class logistic
    regression on 1.28M ImageNet rows. ``fit`` learns nothing.

    Parameters
    ----------
    coef : array-like of shape (n_classes, n_features)
        Weight matrix (PyTorch ``nn.Linear.weight`` layout).
    intercept : array-like of shape (n_classes,), default=None
        Bias; zeros when None.
    classes : array-like of shape (n_classes,), default=None
        Label value of each row; default ``arange(n_classes)``.
    normalize_input : bool, default=True
        L2-normalise each input row first, as CLIP heads over normalised image
        features expect.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Label of each row of the weights, in the order given (not sorted, unlike
        most scikit-learn classifiers): column ``j`` of ``predict_proba`` is
        ``classes_[j]``. The ensembles match these columns to their own sorted
        ``classes_`` by label.
    coef_ : ndarray of shape (n_classes, n_features)
        The weights as float64.
    intercept_ : ndarray of shape (n_classes,)
        The bias as float64.
    n_features_in_ : int
        Number of features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when X has string column names.

    See Also
    --------
    ZeroShotClassifier : Cosine-similarity head from class text embeddings.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf import LinearHeadClassifier
    >>> head = LinearHeadClassifier([[2.0, 0.0], [0.0, 2.0]], [0.0, 0.5])
    >>> head.fit(np.eye(2)).decision_function([[1.0, 0.0], [0.0, 3.0]])
    array([-1.5,  2.5])
    """

    _parameter_constraints: dict = {
        "coef": ["array-like"],
        "intercept": ["array-like", None],
        "classes": ["array-like", None],
        "normalize_input": ["boolean"],
    }

    def __init__(self, coef, intercept=None, *, classes=None, normalize_input=True):
        self.coef = coef
        self.intercept = intercept
        self.classes = classes
        self.normalize_input = normalize_input

    def _validate_head(self):
        owner = type(self).__name__
        coef = _finite_matrix(self.coef, "coef", owner)
        if self.intercept is None:
            intercept = np.zeros(coef.shape[0])
        else:
            intercept = np.asarray(self.intercept, dtype=np.float64)
            if intercept.shape != (coef.shape[0],):
                raise ValueError(
                    f"{owner}: `intercept` must have shape ({coef.shape[0]},), "
                    f"got {intercept.shape}."
                )
            if not np.all(np.isfinite(intercept)):
                raise ValueError(f"{owner}: `intercept` has non-finite values.")
        classes = _check_classes(self.classes, coef.shape[0], owner)
        return coef, intercept, classes

    def _transform_input(self, X):
        if not self.normalize_input:
            return X
        return normalize_rows(X)


class LogitsClassifier(_FixedHeadClassifier):
    """A stateless classifier that treats its input columns as logits.

    Researchers often keep each model's logits on disk. This classifier turns
    such a block of columns back into a classifier, so that VRF and its baselines
    run without the models: combine it with a
    :class:`~sklearn.compose.ColumnTransformer` to read its block of a wider X.

    Parameters
    ----------
    n_classes : int, default=None
        Number of logit columns; when None, the number of columns seen in
        ``fit``.
    classes : array-like of shape (n_classes,), default=None
        Label of each column; default ``arange(n_classes)``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Label of each row of the weights, in the order given (not sorted, unlike
        most scikit-learn classifiers): column ``j`` of ``predict_proba`` is
        ``classes_[j]``. The ensembles match these columns to their own sorted
        ``classes_`` by label.
    n_features_in_ : int
        Number of logit columns.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when X has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf import LogitsClassifier
    >>> logits = np.array([[2.0, 0.0, 1.0], [0.0, 0.0, 5.0]])
    >>> LogitsClassifier(classes=["a", "b", "c"]).fit(logits).predict(logits)
    array(['a', 'c'], dtype='<U1')
    """

    _width_text = "expects {n} logit columns"
    _parameter_constraints: dict = {
        "n_classes": [Interval(Real, 1, None, closed="left"), None],
        "classes": ["array-like", None],
    }

    def __init__(self, n_classes=None, *, classes=None):
        self.n_classes = n_classes
        self.classes = classes

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the logits and record ``classes_``; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_classes)
            Logits.
        y : array-like of shape (n_samples,), default=None
            Labels; when given, each must be one of ``classes``.

        Returns
        -------
        self : object
            The classifier.
        """
        X, y = self._check_fit_input(X, y)
        n = self._expected_columns()
        self._check_width(X, n)
        classes = _check_classes(self.classes, X.shape[1], type(self).__name__)
        self._check_fit_labels(X, y, classes)
        self.classes_ = classes
        return self

    def _expected_columns(self):
        if self.n_classes is not None:
            return int(self.n_classes)
        return None if self.classes is None else len(self.classes)

    def _head(self):
        if hasattr(self, "classes_"):
            return None, None, self.classes_
        n = self._expected_columns()
        if n is None:
            raise NotFittedError(
                "LogitsClassifier without n_classes or classes learns its number "
                "of columns in fit; call fit first (or predict on the logits)."
            )
        return None, None, _check_classes(self.classes, n, type(self).__name__)

    def _logits(self, X):
        return self._check_input(X, self._expected_columns())

    def _predicted_classes(self, n_columns):
        if hasattr(self, "classes_"):
            return self.classes_
        return _check_classes(self.classes, n_columns, type(self).__name__)
