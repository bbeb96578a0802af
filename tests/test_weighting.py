"""skvrf._weighting: the mixes against plain-numpy formulas; the grid count
against a candidate-by-candidate loop."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skvrf._weighting import (
    entropy_weights,
    grid_counts,
    mix,
    mix_log_probabilities,
    vrf_weights,
)


def _probas(seed=0, n=50, c=4):
    rng = np.random.default_rng(seed)
    p_zs, p_ft = rng.dirichlet(np.ones(c), n), rng.dirichlet(np.full(c, 0.3), n)
    p_zs[:10, 0] = 0.0  # a class the zero-shot model does not know
    p_zs[:10] /= p_zs[:10].sum(axis=1, keepdims=True)
    return p_zs, p_ft, rng


def test_logit_mix_is_the_normalised_geometric_mean():
    p_zs, p_ft, rng = _probas()
    w = rng.uniform(size=len(p_zs))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no log(0) or 0 * inf warning
        got = mix_log_probabilities(p_zs, p_ft, w)
    tiny = np.finfo(np.float64).tiny
    z = p_ft.clip(tiny) ** w[:, None] * p_zs.clip(tiny) ** (1 - w[:, None])
    assert_allclose(got, z / z.sum(axis=1, keepdims=True), rtol=1e-12)
    assert np.isfinite(got).all()


def test_entropy_weights_is_a_sigmoid_of_the_entropy_difference():
    p_zs, p_ft, _ = _probas()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = entropy_weights(p_zs, p_ft)

    def h(p):
        return -np.array([sum(x * np.log(x) for x in row if x > 0) for row in p])

    expected = np.exp(-h(p_ft)) / (np.exp(-h(p_zs)) + np.exp(-h(p_ft)))
    assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("weighting", ["sigmoid", "linear", "step"])
@pytest.mark.parametrize("mixing", ["probability", "logit"])
def test_grid_counts_equal_one_candidate_at_a_time(weighting, mixing):
    p_zs, p_ft, rng = _probas(seed=1, n=80)
    dist = rng.uniform(0, 3, size=(80, 3))
    target = rng.integers(-1, 4, 80)  # -1: a class of no column
    thresholds, temperatures = [0.5, 1.0, 1.5, 2.0], [0.1, 0.6]
    correct, weight = grid_counts(
        p_zs, p_ft, dist, target, thresholds, temperatures, weighting, mixing
    )
    assert correct.shape == weight.shape == (3, 4, 2)
    for j in range(3):
        for a, threshold in enumerate(thresholds):
            for b, temperature in enumerate(temperatures):
                w = vrf_weights(dist[:, j], threshold, temperature, weighting)
                pred = mix(p_zs, p_ft, w, mixing).argmax(axis=1)
                assert correct[j, a, b] == np.sum(pred == target)
                assert_allclose(weight[j, a, b], w.sum(), rtol=1e-12)
    assert correct.max() > 0  # the check above compared something
