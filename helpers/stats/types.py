"""Typed result building blocks shared by every statistics and analysis module.

Statistics return numbers together with their method (test name, CI method, convention) in these
frozen dataclasses; ``helpers.report`` turns them into words. Nothing here contains English prose:
``method``, ``test``, ``kind`` and ``reason`` are short machine names (``"log"``, ``"log-rank"``,
``"no_events_in_arm"``) that the report layer renders.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Estimate", "TestResult", "Caveat", "NotEstimable", "is_estimable"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval.

    Attributes
    ----------
    value : float
        The point estimate (NaN when undefined, e.g. a median not reached).
    lower, upper : float or None
        Confidence limits (None when no interval is given; NaN when a limit is not reached).
    level : float
        Confidence level of the interval (0.95 by default).
    method : str
        How the interval was computed, e.g. ``"log"`` or ``"log-log"`` (Kaplan-Meier),
        ``"wald"``, ``"profile"``, ``"clopper-pearson"``, ``"brookmeyer-crowley"``.
    """

    value: float
    lower: float | None = None
    upper: float | None = None
    level: float = 0.95
    method: str = ""

    @property
    def reached(self) -> bool:
        """True when the point estimate is a finite number."""
        return self.value is not None and math.isfinite(self.value)


@dataclass(frozen=True)
class TestResult:
    """A hypothesis test: statistic, degrees of freedom, P value and the test's name.

    ``test`` is a machine name: ``"log-rank"``, ``"pearson"``, ``"yates"``, ``"fisher"``,
    ``"lr"`` (likelihood ratio), ``"wald"``, ``"score"``, ...
    """

    __test__ = False  # not a pytest test class

    statistic: float | None
    df: float | None
    p: float | None
    test: str


@dataclass(frozen=True)
class Caveat:
    """A statistical caveat: a kind and its data; ``helpers.report`` renders it in words, once.

    Examples of ``kind``: ``"sparse_level"``, ``"low_epv"``, ``"ph_violation"``, ``"immortal_time"``,
    ``"not_estimable"``; ``data`` e.g. ``{"variable": "kps_group", "level": "< 70", "n": 2}``.
    """

    kind: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NotEstimable:
    """Returned INSTEAD of a result when the statistics cannot be computed.

    Attributes
    ----------
    what : str
        What could not be estimated (a machine name, e.g. ``"hazard_ratio"``).
    reason : str
        A kind: ``"no_events_in_arm"``, ``"separation"``, ``"non_convergence"``, ``"empty_arm"``, ...;
        the report layer renders it as "not estimable: <reason in words>".
    """

    what: str
    reason: str


def is_estimable(result) -> bool:
    """True unless ``result`` is None or a :class:`NotEstimable`."""
    return result is not None and not isinstance(result, NotEstimable)
