"""E-values for unmeasured confounding (VanderWeele and Ding, Ann Intern Med 2017;167:268-274).

The E-value is the minimum strength of association, on the risk-ratio scale, that an unmeasured
confounder would need to have with both the treatment and the outcome, conditional on the measured
covariates, to fully explain away an observed treatment-outcome association. For a risk ratio RR >= 1,
``E = RR + sqrt(RR * (RR - 1))``; a protective RR < 1 is inverted first. For a confidence interval the
E-value is computed for the limit closer to the null, and is 1 when the interval includes the null.

Hazard ratios are converted to the risk-ratio scale first:

- rare outcome (< 15% at the end of follow-up): RR ~ HR;
- common outcome (death or progression in most patients, as here): the square-root-type conversion
  ``RR ~ (1 - 0.5**sqrt(HR)) / (1 - 0.5**sqrt(1/HR))`` (VanderWeele, Biometrics 2020;76:746-752;
  the formula of the R package ``EValue``, ``evalues.HR(rare = FALSE)``).
"""
from __future__ import annotations

import math

#: The two conversions from a hazard ratio to the risk-ratio scale (machine names; the report words them).
HR_CONVERSIONS = {True: "rare_outcome_hr", False: "common_outcome_sqrt"}


def evalue_rr(rr: float) -> float:
    """E-value of a risk ratio: ``RR + sqrt(RR (RR - 1))`` after inverting RR < 1 (VanderWeele-Ding 2017)."""
    if rr is None or not math.isfinite(rr) or rr <= 0:
        raise ValueError(f"a risk ratio must be positive and finite, got {rr!r}")
    rr = 1.0 / rr if rr < 1 else rr
    return rr + math.sqrt(rr * (rr - 1.0))


def hr_to_rr(hr: float, rare: bool = False) -> float:
    """Approximate risk ratio of a hazard ratio: HR itself if ``rare``, else the common-outcome conversion."""
    if hr is None or not math.isfinite(hr) or hr <= 0:
        raise ValueError(f"a hazard ratio must be positive and finite, got {hr!r}")
    if rare:
        return float(hr)
    return (1.0 - 0.5 ** math.sqrt(hr)) / (1.0 - 0.5 ** math.sqrt(1.0 / hr))


def evalue_ci(lower: float, upper: float, rare_hr: bool | None = None) -> float:
    """E-value of the CI limit closer to the null (1 when the CI includes 1).

    ``rare_hr`` None: the limits are risk ratios; True/False: hazard ratios converted by :func:`hr_to_rr`.
    """
    if rare_hr is not None:
        lower, upper = hr_to_rr(lower, rare_hr), hr_to_rr(upper, rare_hr)
    if lower <= 1.0 <= upper:
        return 1.0
    return evalue_rr(lower if lower > 1.0 else upper)


def evalue_hr(estimate: float, lower: float, upper: float, rare: bool = False) -> dict:
    """E-values of a hazard ratio and of its CI limit closer to 1 (R ``EValue::evalues.HR``).

    Returns
    -------
    dict
        ``{"hr", "lower", "upper", "rr", "evalue_point", "evalue_ci", "conversion"}``; ``conversion`` is
        ``"rare_outcome_hr"`` (RR = HR) or ``"common_outcome_sqrt"`` (VanderWeele 2020).
    """
    rr = hr_to_rr(estimate, rare)
    return {"hr": float(estimate), "lower": float(lower), "upper": float(upper), "rr": rr,
            "evalue_point": evalue_rr(rr), "evalue_ci": evalue_ci(lower, upper, rare_hr=rare),
            "conversion": HR_CONVERSIONS[bool(rare)]}
