"""Class maps: predictions on shift sets that cover or pool a subset of the classes.

ImageNet-A and -R keep 200 of ImageNet's 1000 classes; ObjectNet's 113 labels each
pool several ImageNet classes. Following the authors, a class map is applied to each
component's *logits* (kept columns, or the max logit over a target's source classes)
before that component's calibrated softmax, and the components are mixed afterwards;
that is not the same as mapping the mixed probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._calibration import component_logits
from ._labels import check_label_kinds, label_kind

__all__ = ["ClassMappedClassifier", "class_mapped", "map_logits", "parse_class_map"]


def parse_class_map(class_map, classes):
    """Validate a class map against the source ``classes``.

    Parameters
    ----------
    class_map : sequence or mapping
        A sequence of kept source labels (each its own target), or a mapping
        target label -> sequence of source labels (pooled by max logit).
    classes : ndarray of shape (n_classes,)
        The source labels (an estimator's ``classes_``).

    Returns
    -------
    targets : ndarray of shape (n_targets,)
        Target labels, in the map's order.
    sources : list of ndarray
        Source labels of each target.

    Examples
    --------
    >>> from skvrf._classmap import parse_class_map
    >>> targets, sources = parse_class_map({"pet": [0, 1], "car": [2]}, [0, 1, 2, 3])
    >>> targets.tolist(), [s.tolist() for s in sources]
    (['pet', 'car'], [[0, 1], [2]])
    """
    classes = np.asarray(classes)
    if isinstance(class_map, Mapping):
        targets = np.asarray(list(class_map.keys()))
        sources = [np.atleast_1d(np.asarray(v)) for v in class_map.values()]
    else:
        targets = np.atleast_1d(np.asarray(class_map))
        if targets.ndim != 1:
            raise ValueError(
                "A class map given as a sequence must be 1-D, got shape "
                f"{targets.shape}."
            )
        sources = [targets[i : i + 1] for i in range(targets.shape[0])]
    if targets.shape[0] == 0:
        raise ValueError("The class map is empty.")
    if isinstance(class_map, Mapping):
        # Targets are new labels (any one kind); sources are the estimator's.
        label_kind(np.array(list(class_map.keys()), dtype=object), "class map targets")
    check_label_kinds(
        classes=classes,
        **{f"the sources of target {t!r}": src for t, src in zip(targets, sources)},
    )
    if np.unique(targets).shape[0] != targets.shape[0]:
        raise ValueError("The class map has duplicate target labels.")
    for target, src in zip(targets, sources):
        if src.size == 0:
            raise ValueError(
                f"Target {target!r} of the class map has no source classes."
            )
        unknown = np.setdiff1d(src, classes)
        if unknown.size:
            raise ValueError(
                f"Target {target!r} of the class map names source classes the "
                f"estimator does not know: {unknown[:10].tolist()}."
            )
    return targets, sources


def map_logits(logits, classes, sources):
    """Map a component's logits to target columns by max over source columns.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        Full logits, columns in the order of ``classes``.
    classes : ndarray of shape (n_classes,)
        The component's labels.
    sources : list of ndarray
        Source labels of each target (from :func:`parse_class_map`).

    Returns
    -------
    mapped : ndarray of shape (n_samples, n_targets)
        ``-inf`` where the component knows none of a target's sources.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._classmap import map_logits
    >>> z = np.array([[1.0, 3.0, 2.0]])
    >>> map_logits(z, np.array([0, 1, 2]), [np.array([0, 2]), np.array([1])])
    array([[2., 3.]])
    """
    position = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
    out = np.full((logits.shape[0], len(sources)), -np.inf)
    for t, src in enumerate(sources):
        cols = [position[c] for c in src.tolist() if c in position]
        if cols:
            out[:, t] = logits[:, cols].max(axis=1)
    return out


class ClassMappedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted classifier seen through a class map (a subset or a relabelling).

    For skvrf's two-component ensembles, each component's logits are mapped and
    then softmaxed with its calibration temperature before the ensemble mixes them
    (the authors' rule for ImageNet-A/R and ObjectNet). For any other fitted
    classifier, its logits (``decision_function``, or the log of ``predict_proba``)
    are mapped and softmaxed.

    Parameters
    ----------
    estimator : fitted classifier
        The classifier to view.
    class_map : sequence or mapping
        Kept source labels, or a mapping target label -> source labels pooled by
        max logit.

    Attributes
    ----------
    classes_ : ndarray of shape (n_targets,)
        The target labels.
    sources_ : list of ndarray
        Source labels of each target.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf import ClassMappedClassifier, LogitsClassifier
    >>> logits = np.array([[3.0, 1.0, 2.0], [0.0, 4.0, 5.0]])
    >>> clf = LogitsClassifier().fit(logits)
    >>> view = ClassMappedClassifier(clf, {"a": [0], "b": [1, 2]}).fit()
    >>> view.predict(logits).tolist()
    ['a', 'b']
    >>> ClassMappedClassifier(clf, [1, 2]).fit().predict(logits).tolist()
    [2, 2]
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["predict"])],
        "class_map": ["array-like", Mapping],
    }

    def __init__(self, estimator, class_map):
        self.estimator = estimator
        self.class_map = class_map

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Validate the map against the fitted estimator's ``classes_``.

        Parameters
        ----------
        X : ignored
            Not used.
        y : ignored
            Not used.

        Returns
        -------
        self : object
            The view.
        """
        check_is_fitted(self.estimator)
        self.classes_, self.sources_ = parse_class_map(
            self.class_map, self.estimator.classes_
        )
        if hasattr(self.estimator, "n_features_in_"):
            self.n_features_in_ = self.estimator.n_features_in_
        return self

    def predict_proba(self, X):
        """Probabilities over the target classes.

        Parameters
        ----------
        X : array-like
            Input of the estimator.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_targets)
            Columns in the order of ``classes_``.
        """
        est = self.estimator
        classes, sources = self._map()
        if hasattr(est, "iter_component_outputs") and hasattr(est, "mix_outputs"):
            # A two-component ensemble: map each component, then mix.
            class_map = dict(zip(classes.tolist(), sources))
            out = None
            for outputs in est.iter_component_outputs(X, class_map=class_map):
                proba = est.mix_outputs(outputs)
                if out is None:
                    out = np.empty((_num_samples(X), proba.shape[1]))
                out[outputs.rows] = proba
            return out
        logits = component_logits(est, X)
        out = map_logits(logits, self.estimator.classes_, sources)
        return softmax(out, axis=1)

    def predict(self, X):
        """Target label of largest probability.

        Parameters
        ----------
        X : array-like
            Input of the estimator.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Target labels.
        """
        proba = self.predict_proba(X)
        return self._map()[0][np.argmax(proba, axis=1)]

    def _map(self):
        """(targets, sources): the fitted ones, or parsed from the parameters."""
        if hasattr(self, "sources_"):
            return self.classes_, self.sources_
        check_is_fitted(self.estimator)
        return parse_class_map(self.class_map, self.estimator.classes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # a view of a fitted estimator: nothing to learn
        return tags


def class_mapped(estimator, class_map):
    """A fitted view of ``estimator`` over the classes of ``class_map``.

    Parameters
    ----------
    estimator : fitted classifier
        Any fitted classifier.
    class_map : sequence or mapping
        Kept source classes, or target label -> source classes.

    Returns
    -------
    view : fitted classifier
        ``estimator.with_class_map(class_map)`` when the estimator has it (skvrf's
        ensembles), else ``ClassMappedClassifier(estimator, class_map).fit()``.
    """
    if hasattr(estimator, "with_class_map"):
        return estimator.with_class_map(class_map)
    return ClassMappedClassifier(estimator, class_map).fit()
