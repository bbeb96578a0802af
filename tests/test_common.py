"""scikit-learn's estimator checks for every skvrf estimator."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvrf import (
    EntropyEnsembleClassifier,
    LinearHeadClassifier,
    LogitsClassifier,
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)

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


def _expected_failed_checks(estimator):
    if isinstance(
        estimator, (ZeroShotClassifier, LinearHeadClassifier, LogitsClassifier)
    ):
        return _HEAD_FAILURES
    return {}


def _lr():
    return LogisticRegression(max_iter=500)


@parametrize_with_checks(
    [
        VRFEnsembleClassifier(_lr(), _lr(), calibrate=False),
        VRFEnsembleClassifier(_lr(), _lr(), k=3, calibrate=True, calibration_cv=3),
        OutputSpaceEnsembleClassifier(_lr(), _lr(), calibrate=False),
        OutputSpaceEnsembleClassifier(_lr(), _lr(), alpha=0.3, calibration_cv=3),
        EntropyEnsembleClassifier(_lr(), _lr(), calibration_cv=3),
        VRFEnsembleClassifier(
            _lr(),
            _lr(),
            weighting="linear",
            mixing="logit",
            calibration_method="confidence",
        ),
        ZeroShotClassifier(np.eye(3)),
        LinearHeadClassifier(np.eye(3)),
        LogitsClassifier(3),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
