"""skvrf.utils: memory budgets (chunk sizing)."""

import pytest
from sklearn import config_context

from skvrf.utils import chunk_n_rows, working_memory_bytes


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
