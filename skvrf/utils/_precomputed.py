"""A fitted classifier whose probabilities on one input are already known."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score


class PrecomputedProba:
    """A fitted classifier that answers ``predict_proba(X)`` from a known array.

    Scikit-learn's scorers call ``predict``, ``predict_proba`` or
    ``predict_log_proba``; given the very object ``X`` (compared by identity),
    this view returns ``proba`` (or what follows from it) instead of predicting
    again. Any other input, and any other attribute, goes to ``estimator``.
    A search that computes many candidates' probabilities at once can so score
    each candidate with any scikit-learn scorer.

    Parameters
    ----------
    estimator : fitted classifier
        The classifier whose probabilities ``proba`` are (``classes_``, tags
        and every other attribute are its own).
    X : object
        The input ``proba`` belongs to.
    proba : ndarray of shape (n_samples, n_classes)
        ``estimator.predict_proba(X)``, computed beforehand.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.metrics import get_scorer
    >>> from skvrf.utils._precomputed import PrecomputedProba
    >>> X, y = np.zeros((4, 1)), np.array([0, 0, 1, 1])
    >>> clf = DummyClassifier().fit(X, y)
    >>> view = PrecomputedProba(clf, X, np.array([[1, 0], [1, 0], [0, 1], [1, 0]]))
    >>> float(get_scorer("accuracy")(view, X, y))
    0.75
    """

    def __init__(self, estimator, X, proba):
        self._estimator, self._X, self._proba = estimator, X, proba
        self.classes_ = estimator.classes_

    def __sklearn_tags__(self):
        return self._estimator.__sklearn_tags__()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._estimator, name)

    def predict_proba(self, X):
        return self._proba if X is self._X else self._estimator.predict_proba(X)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y, sample_weight=None):
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
