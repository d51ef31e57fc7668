"""Overall and progression-free survival of the two arms: the study and the plan in, typed results out.

:func:`analyse_endpoint` is the one call behind every number of the survival section (tables, figures,
results file): per arm the patients, events, Kaplan-Meier median and rates, restricted mean survival
time and reverse Kaplan-Meier follow-up; between the arms the log-rank test, the univariable Cox hazard
ratio (Wald and likelihood-ratio tests) and the RMST difference. The estimators are in
:mod:`helpers.stats.survival` (R ``survival`` conventions, checked in ``tests/test_survival.py``); the
words are written by :mod:`helpers.report.survival`. Nothing here is English: methods and caveats are
machine names.

Choices (the ``survival`` block of ``analysis.yaml``): ``ci_transform`` ("log" or "log-log"),
``conf_level``, ``rate_times_months``, ``rmst_horizon_months``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from scipy import stats

from helpers.stats import survival as sv
from helpers.stats.types import Caveat, Estimate, NotEstimable, TestResult

__all__ = ["Rate", "FollowUp", "RMST", "ArmSurvival", "HazardRatio", "RMSTDifference", "EndpointResult",
           "REQUIRED_CHOICES", "analyse_endpoint", "study_arms"]

#: Keys of the ``survival`` block of the analysis plan that :func:`analyse_endpoint` reads.
REQUIRED_CHOICES = ("ci_transform", "rate_times_months", "rmst_horizon_months")

#: Role of the arms by position (the first arm of study.yaml is the reference).
ROLES = ("reference", "experimental")


@dataclass(frozen=True)
class Rate:
    """Kaplan-Meier survival probability (0-1) at ``months`` with its pointwise CI.

    ``estimate`` is :class:`NotEstimable` (reason ``"beyond_last_followup"``) past the arm's last
    follow-up time; a curve that reached 0 gives ``Estimate(0.0)`` without limits.
    """

    months: float
    n_risk: int
    estimate: Estimate | NotEstimable


@dataclass(frozen=True)
class FollowUp:
    """Median follow-up by reverse Kaplan-Meier (months; value NaN = not reached) and censored range."""

    median: Estimate
    n_censored: int
    min_censored: float | None
    max_censored: float | None


@dataclass(frozen=True)
class RMST:
    """Restricted mean survival time up to ``tau`` months: estimate with normal CI, and its SE."""

    tau: float
    estimate: Estimate
    se: float


@dataclass(frozen=True)
class ArmSurvival:
    """One arm of one endpoint. ``median.value`` (and a limit) is NaN when not reached."""

    arm: str                     # arm code
    role: str                    # "reference" or "experimental"
    n: int
    events: int
    median: Estimate
    rates: tuple[Rate, ...]
    rmst: RMST
    followup: FollowUp


@dataclass(frozen=True)
class HazardRatio:
    """Univariable Cox hazard ratio of the experimental vs the reference arm (Efron ties, Wald CI)."""

    estimate: Estimate
    coef: float
    se: float
    wald: TestResult
    lr: TestResult
    reference: str
    experimental: str


@dataclass(frozen=True)
class RMSTDifference:
    """RMST of the experimental minus the reference arm (months), normal CI and Wald test."""

    estimate: Estimate
    se: float
    test: TestResult
    reference: str
    experimental: str


@dataclass(frozen=True)
class EndpointResult:
    """Everything the survival section reports about one endpoint ("os" or "pfs")."""

    endpoint: str
    reference: str
    experimental: str
    arms: tuple[ArmSurvival, ...]
    logrank: TestResult | NotEstimable
    hazard_ratio: HazardRatio | NotEstimable
    rmst_difference: RMSTDifference | NotEstimable
    followup: FollowUp           # all patients
    n: int
    events: int
    conf_type: str
    conf_level: float
    rate_times: tuple[float, ...]
    rmst_horizon: float
    caveats: tuple[Caveat, ...] = field(default_factory=tuple)

    def arm(self, key: str) -> ArmSurvival:
        """The arm by code or by role ("reference", "experimental")."""
        for a in self.arms:
            if key in (a.arm, a.role):
                return a
        raise KeyError(f"no arm {key!r} in {[a.arm for a in self.arms]}")


# ----------------------------------------------------------------------------------------------
def study_arms(study) -> list[str]:
    """Arm codes in study order (first = reference) that have at least one patient."""
    order = list(getattr(study.config, "arm_order", []) or [])
    present = set(study.patients["arm"].astype(str))
    arms = [a for a in order if a in present] if order else sv.arm_levels(study.patients["arm"])
    return arms


def _nan(x) -> float:
    return math.nan if x is None else float(x)


def _median(d: Mapping, conf_type: str, conf_level: float) -> Estimate:
    return Estimate(_nan(d["estimate"]), _nan(d["lower"]), _nan(d["upper"]), conf_level, conf_type)


def _followup(t, e, conf_type: str, conf_level: float) -> FollowUp:
    f = sv.median_followup(t, e, conf_type, conf_level)
    return FollowUp(Estimate(_nan(f["estimate"]), _nan(f["lower"]), _nan(f["upper"]), conf_level,
                             f"reverse-km-{conf_type}"),
                    f["n_censored"], f["min_censored"], f["max_censored"])


def _rates(t, e, times, conf_type: str, conf_level: float) -> tuple[Rate, ...]:
    table = sv.km_table(t, e, times, conf_type, conf_level)
    out = []
    for r in table.itertuples():
        if r.surv is None:
            est = NotEstimable("rate", "beyond_last_followup")
        else:
            est = Estimate(float(r.surv), r.lower, r.upper, conf_level, conf_type)
        out.append(Rate(float(r.time), int(r.n_risk), est))
    return tuple(out)


def _rmst(t, e, tau: float, z: float, conf_level: float) -> RMST:
    r = sv.rmst(t, e, tau)
    return RMST(r["tau"], Estimate(r["estimate"], r["estimate"] - z * r["se"], r["estimate"] + z * r["se"],
                                   conf_level, "greenwood-rmst"), r["se"])


def analyse_endpoint(study, endpoint: str, choices: Mapping) -> EndpointResult:
    """Kaplan-Meier, log-rank, Cox hazard ratio, RMST and follow-up of ``endpoint`` for the two arms.

    Parameters
    ----------
    study : helpers.data.load.Study
        ``study.patients`` with ``arm`` and ``<endpoint>_months`` / ``<endpoint>_event``; the arm order
        (first = reference) from ``study.config``.
    endpoint : {"os", "pfs"}
    choices : mapping
        The ``survival`` block of the analysis plan: ``ci_transform`` ("log", R ``survfit`` default,
        or "log-log"), ``rate_times_months`` (months), ``rmst_horizon_months`` (tau, months), optional
        ``conf_level`` (0.95).

    Returns
    -------
    EndpointResult
        Times in months. Statistical impossibilities are :class:`NotEstimable` (hazard ratio without
        events in an arm, log-rank test without events) and caveats are listed in ``caveats``
        (kinds ``"small_arm"``, ``"no_events_in_arm"``, ``"rmst_beyond_followup"``).
    """
    missing = [k for k in REQUIRED_CHOICES if k not in choices]
    if missing:
        raise KeyError(f"the survival block of analysis.yaml lacks {missing}")
    conf_type = choices["ci_transform"]
    conf_level = float(choices.get("conf_level", 0.95))
    rate_times = tuple(float(x) for x in choices["rate_times_months"])
    tau = float(choices["rmst_horizon_months"])
    if conf_type not in sv.CONF_TYPES:
        raise ValueError(f"ci_transform must be one of {sv.CONF_TYPES}, got {conf_type!r}")

    arms = study_arms(study)
    if len(arms) != 2:
        raise sv.SurvivalInputError(f"expected two arms with patients, found {arms}")
    ref, exp = arms
    data = sv.split_by_arm(study.patients, endpoint, arms)
    z = float(stats.norm.ppf(1 - (1 - conf_level) / 2))
    caveats: list[Caveat] = []

    with warnings.catch_warnings():
        # The caveats the estimators warn about are recorded below as Caveat objects.
        warnings.simplefilter("ignore", sv.SurvivalCaveatWarning)
        per_arm = []
        for role, a in zip(ROLES, arms):
            t, e = data[a]
            if len(t) < 2:
                caveats.append(Caveat("small_arm", {"arm": a, "n": int(len(t))}))
            if e.sum() == 0:
                caveats.append(Caveat("no_events_in_arm", {"arm": a}))
            if len(t) and tau > t.max():
                caveats.append(Caveat("rmst_beyond_followup", {"arm": a, "tau": tau, "last": float(t.max())}))
            per_arm.append(ArmSurvival(
                arm=a, role=role, n=int(len(t)), events=int(e.sum()),
                median=_median(sv.median_survival(t, e, conf_type, conf_level), conf_type, conf_level),
                rates=_rates(t, e, rate_times, conf_type, conf_level),
                rmst=_rmst(t, e, tau, z, conf_level),
                followup=_followup(t, e, conf_type, conf_level)))

        all_t = np.concatenate([data[a][0] for a in arms])
        all_e = np.concatenate([data[a][1] for a in arms])
        all_g = np.concatenate([[a] * len(data[a][0]) for a in arms])

        lr = sv.logrank_test(all_t, all_e, all_g)
        logrank = (NotEstimable("log_rank", "no_events") if lr["p"] is None
                   else TestResult(lr["chisq"], lr["df"], lr["p"], lr["test"]))

        hr = sv.fit_cox_arm(all_t, all_e, all_g, reference=ref, conf_level=conf_level)
        if hr["estimate"] is None:
            hazard_ratio = NotEstimable("hazard_ratio", "no_events_in_arm")
        else:
            hazard_ratio = HazardRatio(
                Estimate(hr["estimate"], hr["lower"], hr["upper"], conf_level, "wald"), hr["coef"], hr["se"],
                TestResult((hr["coef"] / hr["se"]) ** 2, 1, hr["p"], "wald"),
                TestResult(hr["lr_chisq"], 1, hr["lr_p"], "lr"), ref, exp)

        a_ref, a_exp = per_arm
        d = sv.rmst_difference({"estimate": a_ref.rmst.estimate.value, "se": a_ref.rmst.se},
                               {"estimate": a_exp.rmst.estimate.value, "se": a_exp.rmst.se}, conf_level)
        rmst_difference = RMSTDifference(
            Estimate(d["estimate"], d["lower"], d["upper"], conf_level, "wald"), d["se"],
            TestResult(None if d["p"] is None else (d["estimate"] / d["se"]) ** 2, 1, d["p"], "wald"),
            ref, exp)

        followup = _followup(all_t, all_e, conf_type, conf_level)

    return EndpointResult(
        endpoint=endpoint, reference=ref, experimental=exp, arms=tuple(per_arm), logrank=logrank,
        hazard_ratio=hazard_ratio, rmst_difference=rmst_difference, followup=followup,
        n=int(len(all_t)), events=int(all_e.sum()), conf_type=conf_type, conf_level=conf_level,
        rate_times=rate_times, rmst_horizon=tau, caveats=tuple(caveats))
