"""skvrf.utils: memory budgets (chunk sizing)."""

import os
import warnings

import pytest
from sklearn import config_context
from sklearn.base import BaseEstimator

from skvrf.utils import chunk_n_rows, working_memory_bytes
from skvrf.utils._delegation import add_keyword_parameters, delegate_methods


def test_working_memory_bytes_is_mib_times_two_to_the_twenty():
    assert working_memory_bytes(1) == 2**20
    assert working_memory_bytes(0.5) == 2**19
    assert working_memory_bytes(1e-9) == 1  # never a budget of 0 bytes


def test_working_memory_none_is_scikit_learns_setting():
    assert working_memory_bytes() == 1024 * 2**20  # scikit-learn's default
    with config_context(working_memory=3):
        assert working_memory_bytes() == 3 * 2**20
        assert working_memory_bytes(None) == 3 * 2**20


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "64", True])
def test_working_memory_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="working_memory must be a positive"):
        working_memory_bytes(bad)


def test_chunk_n_rows_is_the_budget_over_the_row_cost():
    assert chunk_n_rows(2**10, working_memory=1) == 2**10
    assert chunk_n_rows(3 * 2**10, working_memory=1) == 341  # floor(1024 / 3)
    with config_context(working_memory=2):
        assert chunk_n_rows(2**20) == 2


def test_chunk_n_rows_is_at_least_one_row_without_a_warning(recwarn):
    assert chunk_n_rows(2**30, working_memory=1) == 1
    assert not recwarn.list


def test_chunk_n_rows_refuses_a_row_cost_of_zero():
    with pytest.raises(ValueError, match="row_bytes"):
        chunk_n_rows(0)


# -- cv_results: GridSearchCV's layout --------------------------------------


def test_cv_results_has_grid_search_cvs_keys_and_values():
    import numpy as np
    from sklearn.dummy import DummyClassifier
    from sklearn.model_selection import GridSearchCV

    from skvrf.utils._cv_results import cv_results

    X, y = np.zeros((12, 1)), np.array([0, 1] * 6)
    grid = {"strategy": ["prior", "uniform"], "random_state": [0, 1]}
    ref = GridSearchCV(DummyClassifier(), grid, cv=3).fit(X, y).cv_results_
    splits = np.column_stack([ref[f"split{i}_test_score"] for i in range(3)])
    times = np.ones_like(splits)
    got = cv_results(ref["params"], splits, times, times, {"extra": 2 * splits})
    expected = set(ref) | {f"split{i}_extra" for i in range(3)}
    assert set(got) == expected | {"mean_extra", "std_extra"}
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-12)
    assert got["rank_test_score"].dtype == ref["rank_test_score"].dtype
    for key in ("param_strategy", "param_random_state"):
        assert got[key].dtype == ref[key].dtype
        assert got[key].tolist() == ref[key].tolist()
    np.testing.assert_allclose(got["mean_extra"], 2 * ref["mean_test_score"])


def test_cv_results_nan_scores_warn_and_rank_last():
    import numpy as np

    from skvrf.utils._cv_results import cv_results

    scores = np.array([[0.5, 0.5], [np.nan, 1.0], [0.7, 0.7]])
    with pytest.warns(UserWarning, match="non-finite"):
        got = cv_results([{"a": 0}, {"a": 1}, {"a": 2}], scores, scores, scores)
    assert got["rank_test_score"].tolist() == [2, 3, 1]


# -- what a meta-estimator takes over from the estimator it wraps -------------


class _Inner:
    """Inner.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength.
    beta : int, default=2
        Count,
        on two lines.
    """

    def __init__(self, alpha=1.0, beta=2):
        self.alpha, self.beta = alpha, beta

    def fit(self):
        self.fitted_ = True
        return self

    def predict(self, X, scale=1):
        """Predict.

        More.
        """
        return [x * scale * self.alpha for x in X]


class _Outer(BaseEstimator):
    """Outer.

    Parameters
    ----------
    gamma : int, default=0
        Own.
    beta : int, default=2
        Documented here.
    **inner_params
        The inner ones; below.

    Attributes
    ----------
    inner_ : _Inner
    """

    def __init__(self, gamma=0, **inner_params):
        self.gamma = gamma

    def fit(self):
        return self


add_keyword_parameters(_Outer, _Inner, ["alpha", "beta"], after="; below.\n")
delegate_methods(_Outer, _Inner, ["predict"], "inner_", lambda self: self.gamma)


def test_add_keyword_parameters_signature_and_docs():
    import inspect

    Outer = _Outer
    params = inspect.signature(Outer.__init__).parameters
    assert list(params) == ["self", "gamma", "alpha", "beta"]
    assert params["alpha"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["alpha"].default == 1.0
    # alpha's entry inserted after the marker; beta's own entry kept, not twice
    assert "; below.\n    alpha : float, default=1.0\n        Strength.\n" in (
        Outer.__doc__
    )
    assert Outer.__doc__.count("beta : ") == 1


def test_delegate_methods_calls_the_fitted_attribute():
    import inspect

    from sklearn.exceptions import NotFittedError

    Outer = _Outer
    outer = Outer(gamma=1)
    with pytest.raises(NotFittedError):
        outer.predict([1])
    outer.inner_ = _Inner(alpha=3.0).fit()
    assert outer.predict([1, 2], scale=2) == [6.0, 12.0]
    assert inspect.signature(Outer.predict) == inspect.signature(_Inner.predict)
    assert Outer.predict.__doc__.startswith("Predict. (of ``inner_``)\n")
    assert not hasattr(Outer(gamma=0), "predict")  # available_if


# -- PrecomputedProba -------------------------------------------------------


def test_precomputed_proba_answers_its_own_input_only():
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import get_scorer

    from skvrf.utils._precomputed import PrecomputedProba

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 2)), np.array([0, 1, 2] * 10)
    clf = LogisticRegression().fit(X, y)
    proba = rng.dirichlet(np.ones(3), 30)
    view = PrecomputedProba(clf, X, proba)
    assert view.predict_proba(X) is proba
    np.testing.assert_array_equal(view.predict(X), proba.argmax(axis=1))
    other = X.copy()  # equal values, another object: predicted again
    np.testing.assert_allclose(view.predict_proba(other), clf.predict_proba(other))
    expected = np.mean(proba.argmax(axis=1) == y)
    assert get_scorer("accuracy")(view, X, y) == expected
    log_loss = -np.mean(np.log(proba[np.arange(30), y]))
    np.testing.assert_allclose(-get_scorer("neg_log_loss")(view, X, y), log_loss)
    assert view.coef_ is clf.coef_  # everything else is the estimator's


# ------------------------------------------------------------- warnings
def test_fit_warnings_point_at_the_callers_line():
    # the ensembles' fit-time warnings name the line that called fit, not a
    # line of skvrf or of scikit-learn's _fit_context wrapper
    from sklearn.linear_model import LogisticRegression

    from skvrf import (
        SelectiveEnsembleClassifier,
        VRFEnsembleClassifier,
        ZeroShotClassifier,
    )
    from skvrf.utils._testing import noisy_centres

    X, y, _, text = noisy_centres(200, 8, 3, seed=0)
    zs = ZeroShotClassifier(text)
    estimators = [
        VRFEnsembleClassifier(zs, LogisticRegression(), k=10**6, threshold=99.0),
        VRFEnsembleClassifier(zs, zs),  # an empty ZSF set
        SelectiveEnsembleClassifier(zs, LogisticRegression(), id_score="knn", k=10**6),
    ]
    seen = set()
    for est in estimators:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X, y)
        user = [w for w in caught if issubclass(w.category, UserWarning)]
        assert user
        for w in user:
            assert w.filename == __file__, (w.filename, str(w.message))
            seen.add(str(w.message)[:20])
    assert len(seen) >= 4  # the k, threshold, empty-set and selective k warnings


def test_import_without_docstrings(python_stdout):
    # python -OO strips docstrings: the delegated parameters and methods of the
    # CV search are still added (their documentation is not)
    code = (
        "import inspect, skvrf; "
        "c = skvrf.VRFEnsembleClassifierCV; "
        "print(c.__doc__, 'bank_dtype' in inspect.signature(c).parameters, "
        "callable(c.predict))"
    )
    env = {**os.environ, "PYTHONOPTIMIZE": "2"}
    assert python_stdout(code, env=env) == "None True True"
