"""The words the prose uses for the study itself: its design, setting, arms and size.

The pipeline (:func:`helpers.build.pipeline.study_facts`) collects the facts from the validated study's
configuration (``study.yaml``); :func:`study_text` words them for the ``study`` section of results.json,
quoted by ``sections/00-introduction.qmd`` and ``sections/00-design.qmd`` (keys declared in
:mod:`helpers.report.keys`).
"""
from __future__ import annotations

from helpers.report.formatting import format_count

#: Shown when study.yaml has no ``setting``
NO_SETTING = "a setting that the study's configuration does not state"


def study_text(facts: dict) -> dict[str, str]:
    """Ready-to-quote strings for ``facts`` (title, setting, design, arms as [{code, label, n}], n_total).

    The first arm is the reference, the last the experimental arm.
    """
    randomised = facts.get("design") == "randomised"
    arms = facts["arms"]
    reference, experimental = arms[0], arms[-1]
    return {"title": facts.get("title") or "Supplement",
            "setting": facts.get("setting") or NO_SETTING,
            "design": "a randomised trial" if randomised else "an observational cohort study",
            "allocation": ("Patients were allocated to the arms at random." if randomised else
                           "Treatment was not assigned at random; it followed clinical practice."),
            "n_total": format_count(facts["n_total"]),
            "reference_label": str(reference["label"]), "experimental_label": str(experimental["label"]),
            "n_reference": format_count(reference["n"]), "n_experimental": format_count(experimental["n"])}
