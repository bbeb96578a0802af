"""scikit-learn's estimator checks for every skvrf estimator.

Two kinds of ensemble configurations run the checks:

* two identical LogisticRegressions: the components always agree, so the Zero-Shot
  Failure (ZSF) set is empty and VRF is its zero-shot component (the degenerate
  path, kept because it must work too);
* components that disagree on scikit-learn's check data (a zero-shot component that
  learns little: a depth-1 tree, GaussianNB or the most-frequent class, against a
  LogisticRegression), so that VRF builds a non-empty ZSF bank, resolves ``k_ >= 1``
  and runs the neighbour search: the real path.
  ``test_disagreeing_components_reach_the_real_path`` asserts that they do, on the
  data of ``check_classifiers_train`` and on iris.

``check_param_validation`` (not among the checks that ``parametrize_with_checks``
yields) runs on every public estimator of ``skvrf.__all__`` and of the subpackages.
"""

import importlib
import inspect
import pkgutil
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_iris, make_blobs
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)

import skvrf
from skvrf import (
    ClassMappedClassifier,
    EntropyEnsembleClassifier,
    LinearHeadClassifier,
    LogitsClassifier,
    OutputSpaceEnsembleClassifier,
    SelectiveEnsembleClassifier,
    VRFEnsembleClassifier,
    VRFEnsembleClassifierCV,
    ZeroShotClassifier,
)
from skvrf._base import used_as_is

_ZSF_EMPTY = "The Zero-Shot Failure set is empty"
# k clipped to a small ZSF set: "k=5 is larger than the Zero-Shot Failure set"
# (VRF), "Some candidate k exceed the Zero-Shot Failure set" (the CV search)
_K_CLIPPED = ".*(larger than|exceed) the Zero-Shot Failure set"

_DIMS = (
    "the head's weight matrix fixes the number of features (3); the check fits "
    "on data with another number"
)
# Only the checks that a fixed weight matrix makes inapplicable, each with why.
_HEAD_FAILURES = {
    name: _DIMS
    for name in [
        "check_classifier_data_not_an_array",
        "check_classifiers_classes",
        "check_classifiers_train",
        "check_decision_proba_consistency",
        "check_dtype_object",
        "check_estimators_dtypes",
        "check_estimators_fit_returns_self",
        "check_estimators_overwrite_params",
        "check_fit2d_1feature",
        "check_fit2d_1sample",
        "check_fit_check_is_fitted",
        "check_fit_idempotent",
        "check_n_features_in",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_readonly_memmap_input",
        "check_requires_y_none",
    ]
}
_HEAD_FAILURES["check_classifiers_one_label"] = (
    "a fixed head keeps predicting all of its classes when fitted on one label "
    "(it learns nothing from y)"
)


_TRANSDUCTIVE = {
    "check_methods_subset_invariance": (
        "DaWin's offset adjustment is transductive: it shifts every row's weight "
        "by statistics of the batch being predicted, so a subset of the rows "
        "gets other predictions (documented; off by default)"
    ),
}


# Out-of-fold calibration splits the rows into folds: a row repeated n times can
# fall into several folds where the row of weight n falls into one, so the fits
# differ. With X_val or calibrate=False the weights are exact repetitions
# (tests/test_sample_weight.py; the other configurations here pass the check).
_OUT_OF_FOLD_WEIGHTS = dict.fromkeys(
    [
        "check_sample_weight_equivalence_on_dense_data",
        "check_sample_weight_equivalence_on_sparse_data",
    ],
    "out-of-fold calibration: a repeated row may fall into several folds, the "
    "weighted row into one (exact with X_val or calibrate=False)",
)


def _calibrates_out_of_fold(estimator):
    if not getattr(estimator, "calibrate", False):
        return False
    return any(
        not used_as_is(getattr(estimator, name))
        for name in ("zeroshot_estimator", "finetuned_estimator")
    )


def _expected_failed_checks(estimator):
    if isinstance(
        estimator, (ZeroShotClassifier, LinearHeadClassifier, LogitsClassifier)
    ):
        return _HEAD_FAILURES
    failures = {}
    if getattr(estimator, "offset_adjustment", False):
        failures.update(_TRANSDUCTIVE)
    if _calibrates_out_of_fold(estimator):
        failures.update(_OUT_OF_FOLD_WEIGHTS)
    return failures


def _lr():
    return LogisticRegression(max_iter=500)


def _stump():
    return DecisionTreeClassifier(max_depth=1, random_state=0)


# Ensembles whose zero-shot component is weaker than the fine-tuned one, so that
# they disagree on realistic data (non-empty ZSF set, k_ >= 1).
DISAGREEING = [
    VRFEnsembleClassifier(_stump(), _lr(), k=3, calibrate=False),
    VRFEnsembleClassifier(GaussianNB(), _lr(), calibration_cv=3),
    VRFEnsembleClassifier(
        DummyClassifier(strategy="most_frequent"),
        _lr(),
        k=2,
        weighting="linear",
        mixing="logit",
        calibration_method="confidence",
        calibration_cv=3,
    ),
    VRFEnsembleClassifierCV(
        _stump(),
        _lr(),
        ks=(1, 3, "auto"),
        thresholds=(1.0, 1.5),
        temperatures=(0.3, 0.6),
        cv=3,
        calibrate=False,  # calibrated fits are covered above; 4x slower here
    ),
    OutputSpaceEnsembleClassifier(_stump(), _lr(), alpha=0.3, calibration_cv=3),
    EntropyEnsembleClassifier(GaussianNB(), _lr(), calibrate=False),
    EntropyEnsembleClassifier(
        GaussianNB(), _lr(), offset_adjustment=True, calibration_cv=3
    ),
    # selective prediction: a score of the fine-tuned logits, of the embedding's
    # Gaussians and of its neighbours (the engine's real path)
    SelectiveEnsembleClassifier(
        _stump(), _lr(), id_score="energy", logit_adjustment="gla", calibration_cv=3
    ),
    SelectiveEnsembleClassifier(
        GaussianNB(), _lr(), id_score="relative_mahalanobis", weighting="sigmoid"
    ),
    SelectiveEnsembleClassifier(_stump(), _lr(), id_score="knn", k=2, calibrate=False),
]


@parametrize_with_checks(
    [
        VRFEnsembleClassifier(_lr(), _lr(), calibrate=False),
        VRFEnsembleClassifier(_lr(), _lr(), k=3, calibrate=True, calibration_cv=3),
        OutputSpaceEnsembleClassifier(_lr(), _lr(), calibrate=False),
        OutputSpaceEnsembleClassifier(_lr(), _lr(), alpha=0.3, calibration_cv=3),
        EntropyEnsembleClassifier(_lr(), _lr(), calibration_cv=3),
        SelectiveEnsembleClassifier(_lr(), _lr(), calibrate=False),
        # the bank ablation (every training row in the bank, so never empty) and
        # the zero-shot label bias removed (GLA)
        VRFEnsembleClassifier(
            _stump(),
            _lr(),
            k=2,
            zsf_rule="all",
            logit_adjustment="gla",
            calibrate=False,
        ),
        VRFEnsembleClassifier(
            _lr(),
            _lr(),
            weighting="linear",
            mixing="logit",
            calibration_method="confidence",
        ),
        *DISAGREEING,
        ZeroShotClassifier(np.eye(3)),
        LinearHeadClassifier(np.eye(3)),
        LogitsClassifier(3),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        # Identical components always give an empty ZSF set, and the checks'
        # tiny data sets (one sample, one label) leave disagreeing ones none
        # either: both are documented warnings, not failures.
        warnings.filterwarnings("ignore", message=_ZSF_EMPTY)
        warnings.filterwarnings("ignore", message=_K_CLIPPED)
        check(estimator)


# ------------------------------------------------------------ the real path
def _check_classifiers_train_data():
    """The multi-class data of scikit-learn's ``check_classifiers_train``."""
    X, y = make_blobs(n_samples=300, random_state=0)
    return StandardScaler().fit_transform(X), y


def _iris_string_labels():
    """Iris with string class names whose sorted order is not the first-seen
    order ("zeta" for the first rows, then "alpha", then "mid")."""
    X, y = load_iris(return_X_y=True)
    return X, np.array(["zeta", "alpha", "mid"])[y]


_DATA = {
    "check_classifiers_train": _check_classifiers_train_data,
    "iris": lambda: load_iris(return_X_y=True),
    "iris_string_labels": _iris_string_labels,
}


@pytest.mark.parametrize("data", sorted(_DATA))
@pytest.mark.parametrize("estimator", DISAGREEING, ids=lambda e: repr(e)[:60])
def test_disagreeing_components_reach_the_real_path(estimator, data):
    X, y = _DATA[data]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = clone(estimator).fit(X, y)
    empty = [w for w in caught if _ZSF_EMPTY in str(w.message)]
    assert not empty, [str(w.message) for w in empty]
    fitted = est.best_estimator_ if isinstance(est, VRFEnsembleClassifierCV) else est
    zs = fitted.zeroshot_estimator_.predict(X)
    ft = fitted.finetuned_estimator_.predict(X)
    zsf = np.flatnonzero((zs != y) & (ft == y))
    assert zsf.size > 0  # the components disagree where it matters
    if isinstance(fitted, VRFEnsembleClassifier):
        assert len(fitted.zsf_indices_) > 0 and fitted.k_ >= 1
        assert np.array_equal(fitted.zsf_indices_, zsf)
        # the neighbour search ran: finite distances, the fine-tuned component
        # weighs somewhere
        assert np.isfinite(fitted.zsf_distances(X)).all()
        assert est.ensemble_weights(X).max() > 0


# -------------------------------------------------------- param validation
def _fitted_logits():
    return LogitsClassifier(3).fit(np.zeros((1, 3)))


def _open_clip(name):
    def make():
        pytest.importorskip("torch")
        pytest.importorskip("open_clip")
        clip = pytest.importorskip("skvrf.clip")
        return getattr(clip, name)("ViT-B-32", "laion2b_s34b_b79k")

    return make


def _minilm():
    return pytest.importorskip("skvrf.minilm").MiniLMEmbedder()


# One valid instance of every public estimator; check_param_validation sets each
# parameter to invalid values and expects fit to raise InvalidParameterError.
PARAM_CASES = {
    "VRFEnsembleClassifier": lambda: VRFEnsembleClassifier(_lr(), _lr()),
    "VRFEnsembleClassifierCV": lambda: VRFEnsembleClassifierCV(_lr(), _lr()),
    "OutputSpaceEnsembleClassifier": lambda: OutputSpaceEnsembleClassifier(
        _lr(), _lr()
    ),
    "EntropyEnsembleClassifier": lambda: EntropyEnsembleClassifier(_lr(), _lr()),
    "SelectiveEnsembleClassifier": lambda: SelectiveEnsembleClassifier(_lr(), _lr()),
    "ZeroShotClassifier": lambda: ZeroShotClassifier(np.eye(3)),
    "LinearHeadClassifier": lambda: LinearHeadClassifier(np.eye(3)),
    "LogitsClassifier": lambda: LogitsClassifier(3),
    "ClassMappedClassifier": lambda: ClassMappedClassifier(_fitted_logits(), [0, 1]),
    "OpenCLIPImageEmbedder": _open_clip("OpenCLIPImageEmbedder"),
    "OpenCLIPTextEmbedder": _open_clip("OpenCLIPTextEmbedder"),
    "MiniLMEmbedder": _minilm,
}


def _public_estimators():
    """Names of the estimator classes that skvrf and its public modules export."""
    names = set()
    modules = ["skvrf"] + [
        f"skvrf.{m.name}"
        for m in pkgutil.iter_modules(skvrf.__path__)
        if not m.name.startswith("_")
    ]
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an optional extra is missing (torch, open_clip)
            continue
        for name in getattr(module, "__all__", []):
            try:
                obj = getattr(module, name, None)
            except ImportError:  # a lazily imported name needs a missing extra
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                names.add(name)
    return names


def test_every_public_estimator_has_a_param_validation_case():
    assert _public_estimators() <= set(PARAM_CASES)
    assert set(skvrf.__all__) & set(PARAM_CASES) == {
        name
        for name in skvrf.__all__
        if inspect.isclass(getattr(skvrf, name))
        and issubclass(getattr(skvrf, name), BaseEstimator)
    }


@pytest.mark.parametrize("name", sorted(PARAM_CASES))
def test_check_param_validation(name):
    check_param_validation(name, PARAM_CASES[name]())
