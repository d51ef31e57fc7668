"""Association tests for r x c contingency tables (Table 1 and response/safety tables).

One public entry point, :func:`test_association`, chooses the test from the expected counts
under a named rule and returns an :class:`AssociationTest` that carries the test's name with
its statistic and P value, so that a P value never travels without the test that produced it.

Rules
-----
``rule="cochran"`` (default; ``"paper"`` is accepted as its former name) follows Cochran's
criteria for the chi-square approximation (Cochran 1954: the approximation is poor when an
expected count is below 1, or when the table is small and expected counts are below 5), as
implemented by common statistical software's crosstabulation procedure. On the shipped data it
reproduces every printed statistic and P of the published table to three decimals (see
``tests/test_contingency.py``):

* 2 x 2 table
    - n < 40 or minimum expected count < 1: Fisher's exact test, two-sided, no statistic
      (printed "-"). R: ``fisher.test(x)``.
    - 1 <= minimum expected count < 5: Yates continuity-corrected chi-square.
      R: ``chisq.test(x, correct = TRUE)``.
    - minimum expected count >= 5: Pearson chi-square, no correction.
      R: ``chisq.test(x, correct = FALSE)``.
* larger table (more than 2 rows or columns)
    - any expected count < 5: Fisher-Freeman-Halton exact test (exact P as R's
      ``fisher.test(x)``), reported with the statistic SPSS prints for it (see
      :func:`freeman_halton_statistic`).
    - otherwise Pearson chi-square. R: ``chisq.test(x)``.

``rule="modern"``: Fisher's exact test (computed exactly, any r x c) whenever an expected count
is below 5, otherwise Pearson chi-square without continuity correction.

Libraries
---------
Pearson and Yates chi-square come from ``scipy.stats.chi2_contingency`` (its Yates correction
caps |O - E| at 0.5 as R does) and the 2 x 2 Fisher test from ``scipy.stats.fisher_exact``
(same relative tolerance 1e-7 as R); both equal R to 1e-6 in the tests. The exact r x c test
(Fisher-Freeman-Halton) is computed here by full enumeration because scipy offers only a Monte
Carlo version for tables larger than 2 x 2; above the size guard (below) the Monte Carlo exact P
draws its tables with ``scipy.stats.random_table`` and counts them as R does.

Conventions
-----------
* Exact P values are two-sided and sum the probabilities of all tables with the observed
  margins whose probability is at most the observed one, with relative tolerance 1e-7, as
  R's ``fisher.test`` (``relErr = 1 + 10^-7``). They are computed by full enumeration when the
  enumeration is small enough (see below).
* Size guard (bounded memory and time). Before enumerating, the work is bounded: for an r x 2
  (or 2 x c) table the number of partial tables the vectorised enumeration would hold is counted
  exactly (a dynamic programme over the first column's running total, O(r x n) time, O(n) memory);
  a general r x c table (three or more rows and columns) is enumerated with a counter of visited
  tables (limit :data:`GENERAL_LIMIT`, 500,000). Above
  :data:`EXACT_LIMIT` (2,000,000 partial tables; about 100 MB and a few seconds) the exact
  P is replaced by a Monte Carlo exact P from :data:`MONTE_CARLO_TABLES` (100,000) random tables with
  the observed margins (Patefield's algorithm, ``scipy.stats.random_table``), seeded
  (:data:`MONTE_CARLO_SEED` unless a seed is passed), as R's
  ``fisher.test(x, simulate.p.value = TRUE, B = 1e5)``: P = (1 + #{simulated tables with
  -sum log x_ij! <= observed / (1 + 64 eps)}) / (B + 1). Its smallest possible value is
  1 / (B + 1) = 1.0e-5 (shown as "<0.001"). The result says which was used
  (``AssociationTest.replicates``: None for exact enumeration, B for Monte Carlo), and the table
  note names it. No table size raises MemoryError: R's ``fisher.test`` stops with a workspace
  error on such tables (a 5 x 2 table of n = 2,511 needs ``workspace = 2e8``).
* Rows or columns whose total is zero are dropped before anything is computed (they carry no
  information and would make expected counts zero); if fewer than two rows or two columns
  remain, no test is possible and the result has ``p = None``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
from scipy import special, stats

from helpers.stats.types import TestResult

__all__ = [
    "AssociationTest",
    "RULES",
    "canonical_rule",
    "ContingencyTableError",
    "ExactTestTooLargeError",
    "UntestableTableWarning",
    "TEST_NAMES",
    "test_association",
    "expected_counts",
    "pearson_chisq",
    "fisher_exact_rxc",
    "exact_p_value",
    "monte_carlo_exact_p",
    "two_column_work",
    "EXACT_LIMIT",
    "MONTE_CARLO_TABLES",
    "freeman_halton_statistic",
]

Rule = Literal["cochran", "modern", "paper"]

#: The test-selection rules (machine names); ``"paper"`` is an alias of ``"cochran"``.
RULES = ("cochran", "modern")
_RULE_ALIASES = {"paper": "cochran"}


def canonical_rule(rule: str) -> str:
    """The canonical name of a test-selection rule ("paper" -> "cochran"); ValueError if unknown."""
    name = _RULE_ALIASES.get(rule, rule)
    if name not in RULES:
        raise ValueError(f"rule must be one of {list(RULES)} (or 'paper'), got {rule!r}")
    return name

#: Human-readable names, keyed by the short test code stored in ``AssociationTest.key``.
TEST_NAMES = {
    "pearson": "Pearson chi-square",
    "yates": "Yates-corrected chi-square",
    "fisher": "Fisher's exact test",
    "fisher_freeman_halton": "Fisher-Freeman-Halton exact test",
    "fisher_freeman_halton_mc": "Fisher-Freeman-Halton exact test (Monte Carlo P)",
    "none": "no test (fewer than two non-empty rows or columns)",
}

#: R relative tolerance for "probability <= observed" in fisher.test.
_REL_ERR = 1e-7
#: Largest number of (partial) tables the exact enumeration may hold or visit; above it the P value is
#: a Monte Carlo exact P (see the module docstring).
EXACT_LIMIT = 2_000_000
_MAX_TABLES = EXACT_LIMIT
#: Largest number of complete tables the (pure Python) enumeration of a general r x c table (three or
#: more rows and columns) visits, about 3 seconds; above it, the Monte Carlo exact P
GENERAL_LIMIT = 500_000
#: Number of random tables of the Monte Carlo exact P (R: ``fisher.test(simulate.p.value = TRUE, B = 1e5)``)
MONTE_CARLO_TABLES = 100_000
#: Default seed of the Monte Carlo exact P (the project's seed convention: passed explicitly)
MONTE_CARLO_SEED = 20240101


class ContingencyTableError(ValueError):
    """The input is not a table of non-negative integer counts with at least 2 x 2 cells."""


class ExactTestTooLargeError(RuntimeError):
    """Exact enumeration would visit more tables than ``_MAX_TABLES``."""


class UntestableTableWarning(UserWarning):
    """After dropping empty rows/columns fewer than two rows or columns remain."""


@dataclass(frozen=True)
class AssociationTest:
    """Result of a test of association in an r x c table.

    Attributes
    ----------
    statistic : float or None
        Chi-square statistic (Pearson or Yates), the SPSS-style Fisher-Freeman-Halton statistic,
        or None for Fisher's exact test (printed "-").
    df : int or None
        Degrees of freedom of a chi-square statistic ((R-1)(C-1)); None for exact tests.
    p : float or None
        Two-sided P value; None if no test was possible.
    test : str
        Human-readable test name (one of :data:`TEST_NAMES` values).
    min_expected : float or None
        Smallest expected count r_i c_j / n of the (non-empty) table.
    key : str
        Short code of the test: "pearson", "yates", "fisher", "fisher_freeman_halton", "none".
    rule : str
        The rule that selected the test ("cochran" or "modern").
    shape : tuple of int
        Shape (rows, columns) of the table actually tested (after dropping empty margins).
    replicates : int or None
        None when the exact P was computed by enumeration; the number of random tables when it
        is a Monte Carlo exact P (the table was above :data:`EXACT_LIMIT`).
    seed : int or None
        Seed of the Monte Carlo exact P (None for enumeration).
    """

    statistic: Optional[float]
    df: Optional[int]
    p: Optional[float]
    test: str
    min_expected: Optional[float]
    key: str = ""
    rule: str = "cochran"
    shape: tuple = ()
    replicates: Optional[int] = None
    seed: Optional[int] = None

    @property
    def exact(self) -> bool:
        """True for the exact tests (by enumeration or Monte Carlo)."""
        return self.key in ("fisher", "fisher_freeman_halton")

    @property
    def monte_carlo(self) -> bool:
        """True when the exact P is a Monte Carlo estimate (table above the size guard)."""
        return self.replicates is not None

    @property
    def result(self) -> TestResult:
        """The typed result (:class:`helpers.stats.types.TestResult`; ``test`` = the machine name,
        ``"fisher_freeman_halton_mc"`` / ``"fisher_mc"`` when the exact P is a Monte Carlo estimate)."""
        return TestResult(self.statistic, self.df, self.p, f"{self.key}_mc" if self.monte_carlo else self.key)


# --------------------------------------------------------------------------------------------
# validation


def _as_count_table(table) -> np.ndarray:
    """Return ``table`` as a 2-D int64 array, validating it (rows = levels, columns = arms)."""
    try:
        arr = np.asarray(table, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ContingencyTableError(f"table is not numeric: {exc}") from exc
    if arr.ndim != 2:
        raise ContingencyTableError(f"table must be 2-D (rows x columns), got shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ContingencyTableError(f"table must be at least 2 x 2, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ContingencyTableError("table contains missing or infinite counts")
    if np.any(arr < 0):
        raise ContingencyTableError("table contains negative counts")
    if not np.allclose(arr, np.round(arr)):
        raise ContingencyTableError("table contains non-integer counts")
    return np.round(arr).astype(np.int64)


def _drop_empty_margins(x: np.ndarray) -> np.ndarray:
    return x[x.sum(axis=1) > 0][:, x.sum(axis=0) > 0]


# --------------------------------------------------------------------------------------------
# statistics


def expected_counts(table) -> np.ndarray:
    """Expected counts under independence, E_ij = r_i c_j / n (R: ``chisq.test(x)$expected``)."""
    x = _as_count_table(table).astype(float)
    n = x.sum()
    if n == 0:
        raise ContingencyTableError("table has no observations")
    return np.outer(x.sum(axis=1), x.sum(axis=0)) / n


def pearson_chisq(table, correct: bool = False) -> tuple[float, int, float]:
    """Pearson chi-square test of independence.

    Parameters
    ----------
    table : array-like of int, shape (R, C)
    correct : bool
        Apply Yates' continuity correction (only for 2 x 2 tables), as R's
        ``chisq.test(x, correct = TRUE)``: |O - E| is reduced by min(0.5, |O - E|).

    Returns
    -------
    (statistic, df, p)
    """
    x = _drop_empty_margins(_as_count_table(table)).astype(float)
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise ContingencyTableError("chi-square needs at least two non-empty rows and columns")
    res = stats.chi2_contingency(x, correction=bool(correct) and x.shape == (2, 2))
    return float(res.statistic), int(res.dof), float(res.pvalue)


def _log_hypergeom(x: np.ndarray) -> float:
    """log P(table | margins) = sum log r_i! + sum log c_j! - log n! - sum log x_ij!."""
    r, c, n = x.sum(axis=1), x.sum(axis=0), x.sum()
    return float(
        special.gammaln(r + 1).sum()
        + special.gammaln(c + 1).sum()
        - special.gammaln(n + 1)
        - special.gammaln(x + 1).sum()
    )


def _exact_two_column(rows: np.ndarray, c1: int, log_obs: float) -> float:
    """Exact P for an R x 2 table with row sums ``rows`` and first-column total ``c1``.

    Enumerates the first column row by row (numpy-vectorised), keeping only partial tables
    that can still be completed; the second column is determined by the row sums.
    Returns the sum of probabilities of the tables with log-probability <= observed (+tol).
    """
    n = int(rows.sum())
    c2 = n - c1
    const = special.gammaln(rows + 1).sum() + special.gammaln(c1 + 1) + special.gammaln(c2 + 1) \
        - special.gammaln(n + 1)
    rows = np.sort(np.asarray(rows, dtype=np.int64))   # the largest row last: it is not expanded
    used = np.zeros(1, dtype=np.int64)  # column-1 count used so far
    logp = np.zeros(1, dtype=float)     # sum of -log x_i1! - log x_i2! so far
    remaining = int(rows.sum())
    for r in rows[:-1]:
        r = int(r)
        remaining -= r
        k = np.arange(r + 1)
        term = -(special.gammaln(k + 1) + special.gammaln(r - k + 1))
        new_used = (used[:, None] + k[None, :]).ravel()
        new_logp = (logp[:, None] + term[None, :]).ravel()
        # feasible: column-1 not exceeded, and the rest of column 1 fits in the remaining rows
        ok = (new_used <= c1) & (c1 - new_used <= remaining)
        used, logp = new_used[ok], new_logp[ok]
        if used.size > _MAX_TABLES:
            raise ExactTestTooLargeError(
                f"exact enumeration exceeds {_MAX_TABLES} partial tables; table too large"
            )
    last = int(rows[-1])                 # determined by the column total: no expansion
    k = c1 - used
    ok = (k >= 0) & (k <= last)
    logp = logp[ok] - (special.gammaln(k[ok] + 1) + special.gammaln(last - k[ok] + 1)) + const
    keep = logp <= log_obs + math.log1p(_REL_ERR)
    return float(min(1.0, np.exp(logp[keep]).sum()))


def _exact_general(x: np.ndarray, log_obs: float) -> float:
    """Exact P for a general R x C table by column-wise recursion over rows (pure Python)."""
    rows = [int(v) for v in x.sum(axis=1)]
    cols = [int(v) for v in x.sum(axis=0)]
    n = sum(rows)
    lf = special.gammaln(np.arange(n + 2)).tolist()  # lf[k+1] = log k!
    const = sum(lf[r + 1] for r in rows) + sum(lf[c + 1] for c in cols) - lf[n + 1]
    thresh = log_obs + math.log1p(_REL_ERR)
    total = 0.0
    visited = 0

    def fill_column(j: int, i: int, cap: list[int], left: int, acc: float):
        # place the count of row i in column j; ``left`` = what column j still needs
        nonlocal total, visited
        if i == len(rows) - 1:
            if left > cap[i]:
                return
            cap[i] -= left
            acc2 = acc - lf[left + 1]
            if j == len(cols) - 2:
                # last column determined by the remaining row capacities
                last = acc2 - sum(lf[v + 1] for v in cap)
                visited += 1
                if visited > GENERAL_LIMIT:
                    raise ExactTestTooLargeError(
                        f"exact enumeration exceeds {GENERAL_LIMIT} tables; table too large"
                    )
                lp = const + last
                if lp <= thresh:
                    total += math.exp(lp)
            else:
                fill_column(j + 1, 0, cap, cols[j + 1], acc2)
            cap[i] += left
            return
        rest_cap = sum(cap[i + 1:])
        lo = max(0, left - rest_cap)
        hi = min(cap[i], left)
        for k in range(lo, hi + 1):
            cap[i] -= k
            fill_column(j, i + 1, cap, left - k, acc - lf[k + 1])
            cap[i] += k

    fill_column(0, 0, list(rows), cols[0], 0.0)
    return float(min(1.0, total))


def two_column_work(rows, c1: int) -> int:
    """Largest number of partial tables the vectorised r x 2 enumeration would hold at one step.

    Counts, row by row, the first-column partial sums (with multiplicity) that can still be
    completed, times the choices of the next row: a dynamic programme over the running total
    0..c1 (O(r x c1) time, O(c1) memory, counts in floating point so that they never overflow).
    The enumeration itself holds exactly that many entries before filtering, which is what made
    the former unguarded enumeration allocate 13.9 GiB on a 5 x 2 table of n = 2,511.
    """
    rows = sorted(int(r) for r in rows)   # as the enumeration: the largest row last, not expanded
    counts = np.zeros(c1 + 1, dtype=float)
    counts[0] = 1.0
    remaining = sum(rows)
    largest = 0.0
    for r in rows[:-1]:
        largest = max(largest, float(counts.sum()) * (r + 1))
        remaining -= r
        # counts of the new running total t: sum over k = 0..r of counts[t - k] (a moving sum)
        cum = np.concatenate(([0.0], np.cumsum(counts)))
        t = np.arange(c1 + 1)
        new = cum[t + 1] - cum[np.maximum(t - r, 0)]
        feasible = (c1 - t) <= remaining
        counts = np.where(feasible, new, 0.0)
        if largest > 1e300:
            break
    return int(min(largest, 1e18))


def monte_carlo_exact_p(table, replicates: int = MONTE_CARLO_TABLES, seed: int = MONTE_CARLO_SEED,
                        chunk: int = 10_000) -> float:
    """Monte Carlo exact P of Fisher's test for an r x c table (R: ``fisher.test(x,
    simulate.p.value = TRUE, B = replicates)``).

    ``replicates`` random tables with the observed margins are drawn by Patefield's algorithm
    (``scipy.stats.random_table``, generator ``numpy.random.default_rng(seed)``), in chunks of
    ``chunk`` tables (memory ``chunk x r x c`` integers). As R, the statistic is
    S = -sum log x_ij! and P = (1 + #{S_sim <= S_obs / (1 + 64 eps)}) / (B + 1); the random
    tables differ from R's (another generator), so P agrees with R's within Monte Carlo error
    (standard error sqrt(P (1 - P) / B)), and exactly when no or every simulated table is as
    extreme as the observed one.
    """
    x = _drop_empty_margins(_as_count_table(table))
    if x.shape[0] < 2 or x.shape[1] < 2:
        return 1.0
    observed = -float(special.gammaln(x + 1.0).sum())
    cutoff = observed / (1 + 64 * np.finfo(float).eps)
    rng = np.random.default_rng(seed)
    dist = stats.random_table(x.sum(axis=1), x.sum(axis=0), seed=rng)
    hits, left = 0, int(replicates)
    while left > 0:
        size = min(chunk, left)
        sims = dist.rvs(size).reshape(size, -1).astype(float)
        hits += int(np.count_nonzero(-special.gammaln(sims + 1.0).sum(axis=1) <= cutoff))
        left -= size
    return float((1 + hits) / (replicates + 1))


def exact_p_value(table, seed: int = MONTE_CARLO_SEED,
                  replicates: int = MONTE_CARLO_TABLES) -> tuple[float, Optional[int]]:
    """Exact P of Fisher's test in bounded memory: ``(p, None)`` by enumeration when the table is
    within :data:`EXACT_LIMIT`, else ``(p, replicates)`` by :func:`monte_carlo_exact_p`.

    Never raises MemoryError or :class:`ExactTestTooLargeError`; see the module docstring.
    """
    try:
        return fisher_exact_rxc(table), None
    except ExactTestTooLargeError:
        return monte_carlo_exact_p(table, replicates=replicates, seed=seed), int(replicates)


def fisher_exact_rxc(table) -> float:
    """Two-sided exact P of Fisher's test for any r x c table, by full enumeration.

    Equivalent to R's ``fisher.test(x)`` (network algorithm; exact). For 2 x 2 tables it is
    ``scipy.stats.fisher_exact`` (the conditional two-sided P of ``fisher.test``, linear in n);
    for larger tables it is the
    Fisher-Freeman-Halton test. Tables are enumerated with fixed margins; the P value sums the
    hypergeometric probabilities of all tables no more probable than the observed one
    (relative tolerance 1e-7, as R).

    Raises
    ------
    ExactTestTooLargeError
        Before any large allocation, if the enumeration would hold or visit more than
        :data:`EXACT_LIMIT` tables (:func:`exact_p_value` then gives the Monte Carlo exact P).
    """
    x = _drop_empty_margins(_as_count_table(table))
    if x.shape[0] < 2 or x.shape[1] < 2:
        return 1.0
    if x.shape == (2, 2):
        return float(min(1.0, stats.fisher_exact(x).pvalue))   # R parity, see the module docstring
    log_obs = _log_hypergeom(x)
    if x.shape[1] == 2 or x.shape[0] == 2:
        y = x if x.shape[1] == 2 else x.T
        rows, c1 = y.sum(axis=1), int(y[:, 0].sum())
        # the smaller column as the enumerated one (fewer running totals)
        c1 = min(c1, int(rows.sum()) - c1)
        work = two_column_work(rows, c1)
        if work > EXACT_LIMIT:
            raise ExactTestTooLargeError(
                f"exact enumeration would hold {work:,} partial tables (limit {EXACT_LIMIT:,})")
        return _exact_two_column(rows, c1, log_obs)
    # put the dimension with fewer categories as columns (fewer recursion levels)
    y = x if x.shape[1] <= x.shape[0] else x.T
    return _exact_general(y, log_obs)


def freeman_halton_statistic(table) -> float:
    """The Fisher-Freeman-Halton statistic as printed by SPSS Exact Tests.

    ``-2 ln(gamma * P_obs)``, where P_obs is the hypergeometric probability of the observed
    table and

    ``gamma = (2 pi)^((R-1)(C-1)/2) * n^(-(RC-1)/2) * prod_i r_i^((C-1)/2) * prod_j c_j^((R-1)/2)``

    (Mehta and Patel, IBM SPSS Exact Tests manual, "Fisher's exact test" for r x c tables). It
    is asymptotically chi-square with (R-1)(C-1) df; SPSS reports the exact P alongside it.
    R has no equivalent (``fisher.test`` prints no statistic).
    """
    x = _drop_empty_margins(_as_count_table(table))
    R, C = x.shape
    r, c, n = x.sum(axis=1).astype(float), x.sum(axis=0).astype(float), float(x.sum())
    log_gamma = (
        (R - 1) * (C - 1) / 2 * math.log(2 * math.pi)
        - (R * C - 1) / 2 * math.log(n)
        + (C - 1) / 2 * np.log(r).sum()
        + (R - 1) / 2 * np.log(c).sum()
    )
    return float(-2 * (log_gamma + _log_hypergeom(x)))


# --------------------------------------------------------------------------------------------
# the rule


def _choose(shape: tuple[int, int], n: int, min_e: float, rule: str) -> str:
    two_by_two = shape == (2, 2)
    rule = canonical_rule(rule)
    if rule == "cochran":
        if two_by_two:
            if min_e < 1 or n < 40:
                return "fisher"
            if min_e < 5:
                return "yates"
            return "pearson"
        return "fisher_freeman_halton" if min_e < 5 else "pearson"
    if rule == "modern":
        return "fisher" if min_e < 5 else "pearson"
    raise ValueError(f"rule must be one of {list(RULES)}, got {rule!r}")


def test_association(table, rule: Rule = "cochran", seed: int = MONTE_CARLO_SEED) -> AssociationTest:
    """Test association between rows (levels) and columns (arms) of a table of counts.

    Parameters
    ----------
    table : array-like of int, shape (R, C)
        Counts; rows = levels of the characteristic, columns = arms. A pandas DataFrame
        (e.g. ``pd.crosstab``) is accepted.
    rule : {"cochran", "modern"}
        Test-selection rule, see the module docstring. "cochran" (Cochran's criteria:
        Pearson / Yates / Fisher for 2 x 2, Fisher-Freeman-Halton for sparse larger tables;
        "paper" is accepted as an alias); "modern" uses Fisher's exact test whenever any
        expected count is below 5.
    seed : int
        Seed of the Monte Carlo exact P, used only when the table is above the size guard
        (:data:`EXACT_LIMIT`; the result then has ``replicates`` set).

    Returns
    -------
    AssociationTest
        statistic (None for Fisher's exact test), df (None for exact tests), two-sided p,
        test name, min expected count.

    Raises
    ------
    ContingencyTableError
        If the table is not a >= 2 x 2 array of non-negative integer counts.
    """
    rule = canonical_rule(rule)
    x = _drop_empty_margins(_as_count_table(table))
    if x.shape[0] < 2 or x.shape[1] < 2:
        warnings.warn(
            f"table has fewer than two non-empty rows or columns (non-empty shape {x.shape}); "
            "no test computed",
            UntestableTableWarning,
            stacklevel=2,
        )
        return AssociationTest(None, None, None, TEST_NAMES["none"], None, "none", rule,
                               tuple(x.shape))
    n = int(x.sum())
    e = np.outer(x.sum(axis=1), x.sum(axis=0)) / n
    min_e = float(e.min())
    key = _choose(x.shape, n, min_e, rule)
    shape = tuple(int(s) for s in x.shape)
    if key in ("pearson", "yates"):
        stat, df, p = pearson_chisq(x, correct=(key == "yates"))
        return AssociationTest(stat, df, p, TEST_NAMES[key], min_e, key, rule, shape)
    p, replicates = exact_p_value(x, seed=seed)
    name = TEST_NAMES[key] if replicates is None else \
        f"{TEST_NAMES[key]} (Monte Carlo P from {replicates:,} random tables)"
    mc = {"replicates": replicates, "seed": None if replicates is None else int(seed)}
    if key == "fisher_freeman_halton":
        return AssociationTest(freeman_halton_statistic(x), None, p, name, min_e,
                               key, rule, shape, **mc)
    return AssociationTest(None, None, p, name, min_e, key, rule, shape, **mc)


# keep pytest from collecting the public function as a test when imported into a test module
test_association.__test__ = False  # type: ignore[attr-defined]
