"""Overall and progression-free survival of the two arms: the study and the plan in, typed results out.

:func:`analyse_endpoint` is the one call behind every number of the survival section (tables, figures,
results file): per arm the patients, events, Kaplan-Meier median and rates, restricted mean survival
time and reverse Kaplan-Meier follow-up; between the arms the log-rank test, the univariable Cox hazard
ratio (Wald and likelihood-ratio tests) and the RMST difference. The estimators are in
:mod:`helpers.stats.survival` (R ``survival`` conventions, checked in ``tests/test_survival.py``); the
words are written by :mod:`helpers.report.survival`. Nothing here is English: methods and caveats are
machine names.

Also per endpoint the time-to-event summary (events by earliest contributing event, quartiles, observed
range, differences of landmark rates), the proportional-hazards test of the arm and, when it rejects at
5%, hazard ratios by period; and :func:`analyse_followup` (reverse Kaplan-Meier, potential follow-up,
loss to follow-up per arm).

Choices (the ``survival`` block of ``analysis.yaml``): ``ci_transform`` ("log" or "log-log"),
``conf_level``, ``rate_times_months``, ``rmst_horizon_months``, ``piecewise_cuts_months`` (default
[6, 12]), ``lost_to_followup_months`` (default 3).
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
           "ObservedRange", "RateDifference", "PiecewiseHR", "ArmFollowUp", "FollowUpSummary",
           "REQUIRED_CHOICES", "DEFAULT_PIECEWISE_CUTS", "DEFAULT_LOST_MONTHS", "PH_ALPHA",
           "analyse_endpoint", "analyse_followup", "study_arms"]

#: Keys of the ``survival`` block of the analysis plan that :func:`analyse_endpoint` reads.
REQUIRED_CHOICES = ("ci_transform", "rate_times_months", "rmst_horizon_months")

#: Default cut points (months) of the piecewise hazard ratios (``survival.piecewise_cuts_months``).
DEFAULT_PIECEWISE_CUTS = (6.0, 12.0)
#: Default months before the cut-off beyond which an alive patient counts as lost to follow-up
#: (``survival.lost_to_followup_months``).
DEFAULT_LOST_MONTHS = 3.0
#: Level of the proportional-hazards test below which an endpoint is summarised without its HR first.
PH_ALPHA = 0.05
#: Days per month of the project (as helpers.data.load).
DAYS_PER_MONTH = 365.25 / 12

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
class ObservedRange:
    """Shortest and longest observed time (months), each flagged when it is a censored time."""

    min: float | None
    max: float | None
    min_censored: bool | None
    max_censored: bool | None


@dataclass(frozen=True)
class ArmSurvival:
    """One arm of one endpoint. ``median.value`` (and a limit) is NaN when not reached.

    ``quartiles``: the 25th, 50th and 75th percentiles of the time to event (months, NaN = not
    reached) with their CIs (R ``quantile(survfit)``); ``events_by_cause``: the earliest contributing
    event, ``{"death": n}`` for OS, ``{"progression": n, "death": n}`` for PFS (death without
    progression).
    """

    arm: str                     # arm code
    role: str                    # "reference" or "experimental"
    n: int
    events: int
    median: Estimate
    rates: tuple[Rate, ...]
    rmst: RMST
    followup: FollowUp
    quartiles: tuple[Estimate, ...] = ()
    range: ObservedRange | None = None
    events_by_cause: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RateDifference:
    """Experimental minus reference event-free rate (0-1) at ``months``: Wald CI and test."""

    months: float
    estimate: Estimate | NotEstimable
    se: float | None
    test: TestResult | None


@dataclass(frozen=True)
class PiecewiseHR:
    """Hazard ratio of the arm within (start, end] months (end None: open), Efron ties, Wald CI."""

    start: float
    end: float | None
    n_risk: int
    events: Mapping[str, int]
    estimate: Estimate | NotEstimable
    test: TestResult | None


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
    ph_test: TestResult | NotEstimable | None = None       # cox.zph of the arm, km transform
    piecewise: tuple[PiecewiseHR, ...] = ()                 # only when PH is rejected
    piecewise_cuts: tuple[float, ...] = ()
    rate_differences: tuple[RateDifference, ...] = ()
    censoring: str | None = None       # PFS: "last_assessment" or "last_followup"; OS: "last_followup"

    @property
    def ph_rejected(self) -> bool:
        """Is proportional hazards of the arm rejected at 5% (on the unrounded P)?"""
        return isinstance(self.ph_test, TestResult) and self.ph_test.p is not None and self.ph_test.p < PH_ALPHA

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


def _quartiles(t, e, conf_type: str, conf_level: float) -> tuple[Estimate, ...]:
    q = sv.survival_quantiles(t, e, (0.25, 0.5, 0.75), conf_type, conf_level)
    return tuple(Estimate(_nan(r.estimate), _nan(r.lower), _nan(r.upper), conf_level, conf_type)
                 for r in q.itertuples())


def _events_by_cause(patients, endpoint: str, arm: str) -> dict[str, int]:
    """Earliest contributing event per arm: OS all deaths; PFS progression (on or before death) or death
    without progression."""
    rows = patients[patients["arm"].astype(str) == arm]
    if endpoint == "os":
        return {"death": int(rows["os_event"].sum())}
    event = rows["pfs_event"].to_numpy() == 1
    import pandas as pd
    if "progression_date" not in rows:
        return {"progression": 0, "death": int(event.sum())}
    prog = pd.to_datetime(rows["progression_date"])
    death = pd.to_datetime(rows["death_date"]) if "death_date" in rows else pd.Series(pd.NaT, index=rows.index)
    by_prog = (prog.notna() & (death.isna() | (prog <= death))).to_numpy()
    return {"progression": int((event & by_prog).sum()), "death": int((event & ~by_prog).sum())}


def _rate_differences(ref_te, exp_te, times, conf_level: float) -> tuple[RateDifference, ...]:
    table = sv.rate_difference(*ref_te, *exp_te, times, conf_level)
    out = []
    for r in table.itertuples():
        if r.estimate is None:
            out.append(RateDifference(float(r.time), NotEstimable("rate_difference", "beyond_last_followup"),
                                      None, None))
        else:
            out.append(RateDifference(float(r.time), Estimate(r.estimate, r.lower, r.upper, conf_level, "wald"),
                                      float(r.se), TestResult(None if r.p is None else (r.estimate / r.se) ** 2,
                                                              1, r.p, "wald")))
    return tuple(out)


def _piecewise(all_t, all_e, all_g, ref, cuts, conf_level: float) -> tuple[PiecewiseHR, ...]:
    out = []
    for r in sv.piecewise_hazard_ratios(all_t, all_e, all_g, ref, cuts, conf_level):
        if r["estimate"] is None:
            est, test = NotEstimable("hazard_ratio", r["reason"]), None
        else:
            est = Estimate(r["estimate"], r["lower"], r["upper"], conf_level, "wald")
            test = TestResult((r["coef"] / r["se"]) ** 2, 1, r["p"], "wald")
        out.append(PiecewiseHR(r["start"], r["end"], r["n_risk"], dict(r["events"]), est, test))
    return tuple(out)


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
                followup=_followup(t, e, conf_type, conf_level),
                quartiles=_quartiles(t, e, conf_type, conf_level),
                range=ObservedRange(**sv.observed_range(t, e)),
                events_by_cause=_events_by_cause(study.patients, endpoint, a)))

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

        ph = sv.ph_test_arm(all_t, all_e, all_g, reference=ref)
        ph_test = (NotEstimable("ph_test", "no_events_in_arm") if ph is None
                   else TestResult(ph["chisq"], ph["df"], ph["p"], "cox.zph-km"))
        cuts = tuple(float(c) for c in (choices.get("piecewise_cuts_months") or DEFAULT_PIECEWISE_CUTS))
        rejected = isinstance(ph_test, TestResult) and ph_test.p < PH_ALPHA
        piecewise = _piecewise(all_t, all_e, all_g, ref, cuts, conf_level) if rejected else ()
        if rejected:
            caveats.append(Caveat("ph_violation", {"p": ph_test.p}))
        rate_differences = _rate_differences(data[ref], data[exp], rate_times, conf_level)

    censoring = "last_followup" if endpoint == "os" else (getattr(study, "pfs_censoring", None) or "last_followup")
    return EndpointResult(
        endpoint=endpoint, reference=ref, experimental=exp, arms=tuple(per_arm), logrank=logrank,
        hazard_ratio=hazard_ratio, rmst_difference=rmst_difference, followup=followup,
        n=int(len(all_t)), events=int(all_e.sum()), conf_type=conf_type, conf_level=conf_level,
        rate_times=rate_times, rmst_horizon=tau, caveats=tuple(caveats), ph_test=ph_test, piecewise=piecewise,
        piecewise_cuts=cuts, rate_differences=rate_differences, censoring=censoring)


# ----------------------------------------------------------------------------------------------
# Follow-up
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArmFollowUp:
    """Follow-up of one arm (months): reverse Kaplan-Meier median of OS follow-up, potential
    follow-up (start to the data cut-off: median and range), patients alive at last contact, those
    lost to follow-up (alive and last seen more than ``lost_months`` before the cut-off) and the range
    of the censored OS times."""

    arm: str
    role: str
    n: int
    reverse_km: FollowUp
    potential_median: float | None
    potential_min: float | None
    potential_max: float | None
    alive: int
    lost_to_followup: int


@dataclass(frozen=True)
class FollowUpSummary:
    """Follow-up of both arms and overall; ``lost_months``: the loss-to-follow-up threshold."""

    arms: tuple[ArmFollowUp, ...]
    overall: ArmFollowUp
    lost_months: float
    cutoff_known: bool

    def arm(self, key: str) -> ArmFollowUp:
        for a in self.arms:
            if key in (a.arm, a.role):
                return a
        raise KeyError(key)


def analyse_followup(study, choices: Mapping) -> FollowUpSummary:
    """Follow-up per arm: reverse Kaplan-Meier median (OS), potential follow-up and loss to follow-up.

    Parameters
    ----------
    study : helpers.data.load.Study (``start_date``, ``last_followup_date``, ``os_months``,
        ``os_event``; the cut-off from ``study.config.cutoff_date``).
    choices : the ``survival`` block of the plan: ``lost_to_followup_months`` (default 3),
        ``ci_transform``, ``conf_level``.

    Returns
    -------
    FollowUpSummary. Potential follow-up = months from start to the cut-off (days / 30.4375); a patient
    is lost to follow-up when alive at last contact and last seen more than ``lost_to_followup_months``
    months (x 30.4375 days) before the cut-off. Without a cut-off date these are None / 0 and
    ``cutoff_known`` is False. R: ``survfit(Surv(os, 1 - dead) ~ 1)``, ``median(cutoff - start)``.
    """
    import pandas as pd

    conf_type = choices.get("ci_transform", "log")
    conf_level = float(choices.get("conf_level", 0.95))
    lost_months = float(choices.get("lost_to_followup_months", DEFAULT_LOST_MONTHS) or DEFAULT_LOST_MONTHS)
    cutoff = getattr(study.config, "cutoff_date", None)
    cutoff = pd.Timestamp(cutoff) if cutoff is not None else None
    pts = study.patients
    arms = study_arms(study)

    def one(rows, arm, role):
        t, e = sv._as_arrays(rows["os_months"], rows["os_event"])
        alive = e == 0
        if cutoff is not None and len(rows):
            start = pd.to_datetime(rows["start_date"])
            last = pd.to_datetime(rows["last_followup_date"])
            potential = ((cutoff - start).dt.days / DAYS_PER_MONTH).to_numpy(float)
            lost = int((alive & ((cutoff - last).dt.days.to_numpy() > lost_months * DAYS_PER_MONTH)).sum())
            pot = (float(np.median(potential)), float(potential.min()), float(potential.max()))
        else:
            lost, pot = 0, (None, None, None)
        return ArmFollowUp(arm, role, int(len(t)), _followup(t, e, conf_type, conf_level), *pot,
                           int(alive.sum()), lost)

    codes = pts["arm"].astype(str)
    per_arm = tuple(one(pts[codes == a], a, r) for r, a in zip(ROLES, arms))
    overall = one(pts[codes.isin(arms)], "overall", "overall")
    return FollowUpSummary(per_arm, overall, lost_months, cutoff is not None)
