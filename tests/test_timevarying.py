"""Counting-process intervals: the exposure counts carried through the cuts' sort equal the
reference count of doses at or before each start (helpers.stats.timevarying.count_at_or_before)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.stats import imputation
from helpers.stats.timevarying import count_at_or_before, counting_process_intervals


@pytest.mark.parametrize("seed", range(40))
def test_counts_in_the_intervals_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    n, k, groups = int(rng.integers(1, 40)), int(rng.integers(0, 150)), int(rng.integers(1, 4))
    scale = rng.choice([1, 3])      # months on a grid (ties between doses, cuts and ends) or not
    end = rng.integers(0, 12, n) / scale
    event = rng.integers(0, 2, n)
    row = rng.integers(0, n, k)
    month = rng.integers(-1, 14, k) / scale             # doses before time zero and after the end too
    group = rng.integers(-1, groups, k)                  # -1: an agent that is not counted
    plain = counting_process_intervals(end, event, row, month)
    *same, counts = counting_process_intervals(end, event, row, month, group, groups)
    for a, b in zip(plain, same):
        np.testing.assert_array_equal(a, b)
    for g in range(groups):
        expected = count_at_or_before(row[group == g], month[group == g], plain[0], plain[1], n)
        np.testing.assert_array_equal(counts[:, g], expected)


def test_donor_orders_computed_once_give_the_same_donors():
    rng = np.random.default_rng(7)
    obs = np.round(rng.normal(size=500), 1)
    orders = imputation._donor_orders(obs)
    for _ in range(3):
        mis = rng.normal(size=60)
        np.testing.assert_array_equal(imputation._nearest_donors(obs, mis, 5, orders),
                                      imputation._nearest_donors(obs, mis, 5))
