"""The cohort section in words and tables: notice, input files, patients per arm, missing values, results.

Input: the study and the typed results of :mod:`helpers.analyses.cohort`; output: DataFrames shown
as Markdown, sentences, and the ``data`` and ``arms`` sections of the results file.
"""
from __future__ import annotations

import re
from typing import Any, Optional

import pandas as pd

from helpers.analyses.cohort import (OVERALL, CohortSummary, GroupSummary, input_files, missing_values,
                                     summarise_cohort)
from helpers.report.formatting import format_n_pct, show_table

__all__ = ["SYNTHETIC_NOTICE", "data_notice", "input_files_table", "cohort_overview_table", "missingness_table",
           "assumptions_table", "parts_sentence", "design_words", "data_results", "arms_results",
           "show_input_files", "show_cohort", "show_missing", "show_assumptions"]

SYNTHETIC_NOTICE = ("**Synthetic data.** Every number, table and figure below was computed from a synthetic "
                    "cohort generated to resemble the study it stands for (same design and size, calibrated to "
                    "published summaries). It contains no patient data and must not be read as the study's "
                    "results.")

#: The optional parts in words: (what the data hold, what it allows).
PART_WORDS = {
    "pfs": ("progression dates", "progression-free survival"),
    "response": ("best overall responses", "the response analysis"),
    "safety": ("adverse events", "the safety analysis"),
    "exposure": ("treatment cycles", "the exposure analyses"),
    "replication": ("published values", "the comparison with the publication"),
}

DESIGN_WORDS = {"randomised": "randomised trial", "observational": "observational cohort study"}


def _key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", str(name)).strip("_")


def _join(words: list[str], conjunction: str = "and") -> str:
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" {conjunction} " + words[-1]


def data_notice(study: Any) -> str:
    """Markdown notice for the top of each section: synthetic or real data, and which study."""
    if study.config.synthetic:
        return SYNTHETIC_NOTICE
    return f"Data: {study.config.title or 'study cohort'} (cut-off {study.config.cutoff_date.year})."


def input_files_table(study: Any) -> pd.DataFrame:
    """Input files with their row counts and SHA-256 (first 16 hex digits)."""
    return pd.DataFrame([{"File": f.name, "Rows": "" if f.rows is None else f.rows,
                          "SHA-256 (first 16)": f.sha256[:16]} for f in input_files(study)])


def _median_range(value: tuple) -> str:
    median, low, high = value
    if median is None:
        return "-"
    return f"{median:.0f} ({low:.0f}–{high:.0f})"


def cohort_overview_table(study_or_summary: Any) -> pd.DataFrame:
    """Patients, events and exposure per arm and overall (counts; years only); rows of absent parts left out."""
    summary = (study_or_summary if isinstance(study_or_summary, CohortSummary)
               else summarise_cohort(study_or_summary))
    groups = [*summary.arms, summary.overall]

    def column(g: GroupSummary) -> dict[str, str]:
        out = {"Patients": str(g.n), "Deaths (OS events)": format_n_pct(g.os_events, g.n)}
        if g.pfs_events is not None:
            out["Progression or death (PFS events)"] = format_n_pct(g.pfs_events, g.n)
        out["Alive at last follow-up"] = format_n_pct(g.alive, g.n)
        if g.with_adverse_event is not None:
            out["Patients with any adverse event"] = format_n_pct(g.with_adverse_event, g.n)
        for name, label in summary.exposure_labels.items():
            out[f"{label}, median (range)"] = _median_range(g.exposures[name])
        if g.start_years:
            first, last = g.start_years
            out["Years of treatment start"] = str(first) if first == last else f"{first}–{last}"
        return out

    table = pd.DataFrame({g.label: column(g) for g in groups})
    table.index.name = "Characteristic"
    return table.reset_index()


def _rule_words(row) -> str:
    if row.rule == "missing_means":
        return f"empty = {row.meaning}"
    if row.rule == "required":
        return "required"
    if row.rule == "required_when":
        return f"empty unless {row.condition[0]} is {row.condition[1]}"
    return "may be missing"


def missingness_table(study: Any) -> pd.DataFrame:
    """Missing values per patient-level variable, overall and per arm, with the rule that allows them."""
    rows = []
    for r in missing_values(study):
        rec = {"Variable": r.label, "Rule": _rule_words(r),
               "Missing, n (%)": format_n_pct(r.missing[OVERALL], r.n[OVERALL])}
        for code in study.config.arm_order:
            label = study.config.arm_label(code) if hasattr(study.config, "arm_label") else code
            rec[label] = format_n_pct(r.missing[code], r.n[code])
        rows.append(rec)
    return pd.DataFrame(rows)


def assumptions_table(study: Any) -> Optional[pd.DataFrame]:
    """Quantities the synthetic cohort assumes, with their sources (synthetic data only; else None)."""
    if not study.config.synthetic:
        return None
    from helpers.data.synthetic import ASSUMPTIONS

    return pd.DataFrame(ASSUMPTIONS, columns=["Quantity", "Value assumed", "Source"])


def parts_sentence(parts: dict) -> str:
    """Which optional parts the data hold, as a sentence (``data.text.parts_present``)."""
    present = [p for p in PART_WORDS if parts.get(p)]
    absent = [p for p in PART_WORDS if not parts.get(p)]
    out = "Besides the survival data, the data hold "
    if present:
        out += _join([f"{PART_WORDS[p][0]} ({PART_WORDS[p][1]})" for p in present]) + "."
    else:
        out = "The data hold survival data only."
    if absent:
        out += (f" They hold no {_join([PART_WORDS[p][0] for p in absent], 'or')}, so "
                f"{_join([PART_WORDS[p][1] for p in absent])} "
                f"{'is' if len(absent) == 1 else 'are'} left out.")
    return out


def design_words(study: Any) -> str:
    design = getattr(study.config, "design", None) or study.config.extra.get("design", "")
    return DESIGN_WORDS.get(design, str(design))


def data_results(study: Any, summary: Optional[CohortSummary] = None) -> dict:
    """The ``data`` section of the results file (keys of earlier versions kept; ``parts``, ``text`` added)."""
    summary = summary or summarise_cohort(study)
    parts = summary.parts
    cfg = study.config
    return {"synthetic": cfg.synthetic, "sha256": dict(study.sources), "n": len(study.patients),
            "cutoff_year": cfg.cutoff_date.year, "arm_order": list(cfg.arm_order),
            "reference_arm": cfg.reference_arm, "rules_checked": getattr(study, "rules_checked", None),
            "n_adverse_event_rows": None if study.adverse_events is None else len(study.adverse_events),
            "n_cycle_rows": None if study.cycles is None else len(study.cycles),
            "generator": (cfg.extra or {}).get("generator") if hasattr(cfg, "extra") else None,
            "parts": dict(parts),
            "text": {"title": str(cfg.title or ""), "setting": str(getattr(cfg, "setting", "") or ""),
                     "design": design_words(study), "parts_present": parts_sentence(parts),
                     "n_total": str(len(study.patients)),
                     **{f"n_{_key(g.code)}": str(g.n) for g in summary.arms}}}


def arms_results(study: Any, summary: Optional[CohortSummary] = None) -> dict:
    """The ``arms`` section: n and events per arm code, and role keys (``arms.text.*``) for the prose."""
    summary = summary or summarise_cohort(study)
    out: dict = {}
    for g in summary.arms:
        pfs = g.pfs_events
        out[g.code] = {"n": g.n, "os_events": g.os_events, "pfs_events": pfs, "label": g.label,
                       "text": {"n": str(g.n), "os_events": format_n_pct(g.os_events, g.n),
                                "pfs_events": "-" if pfs is None else format_n_pct(pfs, g.n)}}
    ref, exp = summary.reference, summary.experimental
    out["text"] = {"reference_label": ref.label, "experimental_label": exp.label,
                   "reference_description": ref.description or ref.label,
                   "experimental_description": exp.description or exp.label,
                   "n_reference": str(ref.n), "n_experimental": str(exp.n), "n_total": str(summary.overall.n),
                   "os_events_reference": format_n_pct(ref.os_events, ref.n),
                   "os_events_experimental": format_n_pct(exp.os_events, exp.n)}
    return out


# one call per table in notebook 01

def show_input_files(study: Any):
    return show_table(input_files_table(study), align="lrl")


def show_cohort(study: Any):
    return show_table(cohort_overview_table(study))


def show_missing(study: Any):
    frame = missingness_table(study)
    return show_table(frame, align="ll" + "r" * (len(frame.columns) - 2))


def show_assumptions(study: Any):
    """The synthetic cohort's assumptions (for real data a one-line note, so the labelled cell has an output)."""
    from IPython.display import Markdown

    frame = assumptions_table(study)
    return Markdown("Real data: no generator assumptions apply.") if frame is None else show_table(frame, align="lll")
