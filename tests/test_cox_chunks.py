"""The Cox engine's large-data layout: segment sums a chunk of rows at a time, blocked transposes.

On a registry's million rows the engine forms [w, w x] and x v a chunk of rows at a time
(helpers.stats.cox._SortedModel on the segment-sum layout). These tests force many small chunks on
data small enough to check against the engine's reference evaluation (partial_likelihood, which sums
over whole arrays in the caller's row order).
"""
from __future__ import annotations

import numpy as np
import pytest

from helpers.stats import cox


def _data(seed: int, n: int = 4000, p: int = 4, counting: bool = False):
    """Times on a coarse grid (few event times: the segment layout), ties, 0/1 and numeric columns."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n), rng.integers(0, 4, n),
                         rng.normal(size=n)])[:, :p].astype(float)
    time = np.ceil(rng.exponential(30, n) * np.exp(-0.3 * X[:, 0])) + 1
    event = (rng.random(n) < 0.7).astype(int)
    entry = None
    if counting:
        entry = np.floor(time * rng.random(n) * (rng.random(n) < 0.5))
        entry = np.where(entry >= time, 0.0, entry)
    return X, time, event, entry


@pytest.mark.parametrize("counting", [False, True])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("weighted", [False, True])
def test_chunked_evaluation_equals_the_reference(monkeypatch, counting, ties, weighted):
    X, time, event, entry = _data(1, counting=counting)
    weights = np.random.default_rng(2).uniform(0.5, 2, len(time)) if weighted else None
    groups = cox._event_groups(time, event, entry)
    assert groups.sorted_layout().segments is not None, "the data must use the segment layout"
    monkeypatch.setattr(cox, "CHUNK_ELEMENTS", 5 * 97)     # about 97 rows a chunk: dozens of chunks
    model = cox._SortedModel(groups, X, ties, weights)
    assert len(groups.sorted_layout().segments.chunks(model.chunk_rows)) > 20
    beta = np.array([0.3, -0.2, 0.1, 0.05])
    got = model.evaluate(beta)
    ref = cox.partial_likelihood(beta, X, time, event, ties, entry=entry, weights=weights)
    np.testing.assert_allclose(got.loglik, ref.loglik, rtol=1e-12)
    np.testing.assert_allclose(got.score, ref.score, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.information, ref.information, rtol=1e-9, atol=1e-9)


def test_chunked_segment_sums_equal_whole_array_sums():
    rng = np.random.default_rng(3)
    n = 5000
    bounds = np.sort(rng.integers(0, n + 1, 700))
    bounds[0] = 0
    segments = cox._Segments(bounds, n)
    values = rng.normal(size=(3, n))
    for rows in (1, 7, 64, 1000, 10_000):
        chunked = segments.sums_by_chunk(lambda r0, r1: values[:, r0:r1], 3, rows)
        np.testing.assert_array_equal(chunked, segments.sums(values))


def test_fits_agree_whatever_the_chunk_size(monkeypatch):
    X, time, event, entry = _data(4, n=6000, counting=True)
    whole = cox.fit_coxph(time, event, X, entry=entry)
    monkeypatch.setattr(cox, "CHUNK_ELEMENTS", 300)
    cox._GROUPS_CACHE.clear()
    small = cox.fit_coxph(time, event, X, entry=entry)
    np.testing.assert_allclose(small.coef, whole.coef, rtol=0, atol=1e-12)
    np.testing.assert_allclose(small.se, whole.se, rtol=1e-12)
    np.testing.assert_allclose(small.loglik, whole.loglik, rtol=1e-14)


@pytest.mark.parametrize("shape", [(5000, 7), (5000, 1), (100, 3), (4097, 2)])
def test_blocked_transpose_is_the_transpose(shape):
    A = np.random.default_rng(5).normal(size=shape)
    out = cox._transposed(A)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, A.T)
