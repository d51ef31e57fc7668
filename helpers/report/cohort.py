"""The cohort section in words and tables: notice, input files, patients per arm, missing values, results.

Input: the study and the typed results of :mod:`helpers.analyses.cohort`; output: DataFrames shown
as Markdown, sentences, and the ``data`` and ``arms`` sections of the results file.
"""
from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from helpers.analyses.cohort import (OVERALL, CohortSummary, GroupSummary, input_files, missing_values,
                                     summarise_cohort)
from helpers.report.formatting import format_count, format_n_pct, join_words, plural, results_key, show_table

__all__ = ["SYNTHETIC_NOTICE", "data_notice", "input_files_table", "cohort_overview_table", "missingness_table",
           "assumptions_table", "parts_sentence", "design_words", "data_results", "arms_results",
           "show_input_files", "show_cohort", "show_missing", "show_assumptions",
           "flow_table", "flow_footnote", "flow_results", "plot_flow", "show_flow",
           "disposition_table", "disposition_footnote", "disposition_results", "show_disposition",
           "exposure_table", "exposure_footnote", "exposure_results", "show_exposure",
           "deaths_table", "deaths_footnote", "deaths_results", "show_deaths"]

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



def data_notice(study: Any) -> str:
    """Markdown notice for the top of each section: synthetic or real data, and which study."""
    if study.config.synthetic:
        return SYNTHETIC_NOTICE
    return f"Data: {study.config.title or 'study cohort'} (cut-off {study.config.cutoff_date.year})."


def input_files_table(study: Any) -> pd.DataFrame:
    """Input files with their row counts and SHA-256 (first 16 hex digits)."""
    return pd.DataFrame([{"File": f.name, "Rows": "" if f.rows is None else format_count(f.rows),
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
        out = {"Patients": format_count(g.n), "Deaths (OS events)": format_n_pct(g.os_events, g.n)}
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
        out += join_words([f"{PART_WORDS[p][0]} ({PART_WORDS[p][1]})" for p in present]) + "."
    else:
        out = "The data hold survival data only."
    if absent:
        out += (f" They hold no {join_words([PART_WORDS[p][0] for p in absent], 'or')}, so "
                f"{join_words([PART_WORDS[p][1] for p in absent])} "
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
                     "n_total": format_count(len(study.patients)),
                     **{f"n_{results_key(g.code)}": format_count(g.n) for g in summary.arms}}}


def arms_results(study: Any, summary: Optional[CohortSummary] = None) -> dict:
    """The ``arms`` section: n and events per arm code, and role keys (``arms.text.*``) for the prose."""
    summary = summary or summarise_cohort(study)
    out: dict = {}
    for g in summary.arms:
        pfs = g.pfs_events
        out[g.code] = {"n": g.n, "os_events": g.os_events, "pfs_events": pfs, "label": g.label,
                       "text": {"n": format_count(g.n), "os_events": format_n_pct(g.os_events, g.n),
                                "pfs_events": "-" if pfs is None else format_n_pct(pfs, g.n)}}
    ref, exp = summary.reference, summary.experimental
    out["text"] = {"reference_label": ref.label, "experimental_label": exp.label,
                   "reference_description": ref.description or ref.label,
                   "experimental_description": exp.description or exp.label,
                   "n_reference": format_count(ref.n), "n_experimental": format_count(exp.n),
                   "n_total": format_count(summary.overall.n),
                   "os_events_reference": format_n_pct(ref.os_events, ref.n),
                   "os_events_experimental": format_n_pct(exp.os_events, exp.n),
                   "composition": composition_sentence(summary)}
    return out


def composition_sentence(summary: CohortSummary) -> str:
    """"The analysed cohort comprises 228 patients: 138 in the A arm (description) and 90 in the B arm."

    An arm's description is given in parentheses only when the study has one that differs from its label.
    """
    def arm(g) -> str:
        desc = (g.description or "").strip()
        return f"{format_count(g.n)} in the {g.label} arm" + (f" ({desc})" if desc and desc != g.label else "")

    n = summary.overall.n
    return (f"The analysed cohort comprises {format_count(n)} {plural(n, 'patient')}: {arm(summary.reference)} and "
            f"{arm(summary.experimental)}.")


# one call per table in notebook 01

def show_input_files(study: Any):
    return show_table(input_files_table(study), align="lrl")


def cohort_footnote(study_or_summary: Any) -> str:
    """Footnote of the cohort table: what the cells are, naming only the rows the data have."""
    summary = (study_or_summary if isinstance(study_or_summary, CohortSummary)
               else summarise_cohort(study_or_summary))
    text = "Counts are n (%) of the arm."
    if summary.overall.with_adverse_event is not None:
        text += " Adverse events: patients with at least one adverse event of any grade."
    if summary.exposure_labels:
        text += " Treatment exposure: median (range) over the patients of the arm."
    return text


def show_cohort(study: Any):
    return show_table(cohort_overview_table(study), footnote=cohort_footnote(study))


def show_missing(study: Any):
    frame = missingness_table(study)
    return show_table(frame, align="ll" + "r" * (len(frame.columns) - 2))


def show_assumptions(study: Any):
    """The synthetic cohort's assumptions (for real data a one-line note, so the labelled cell has an output)."""
    from IPython.display import Markdown

    frame = assumptions_table(study)
    return Markdown("Real data: no generator assumptions apply.") if frame is None else show_table(frame, align="lll")


# ============================================================================= flow, disposition, exposure,
# deaths: tables (N in column headers, one row per count, notes in words) and results payloads
from dataclasses import asdict as _asdict  # noqa: E402

from helpers.analyses.cohort import (Deaths, Disposition, Exposure, PatientFlow)  # noqa: E402


def _arm_header(study: Any, code: str, n: int) -> str:
    label = study.config.arm_label(code) if hasattr(study.config, "arm_label") else code
    return f"{label} (N = {format_count(n)})"


def _months_words(x: float) -> str:
    return f"{x:g} month" + ("" if x == 1 else "s")


def _n_pct(k: Optional[int], n: int) -> str:
    return "–" if k is None else format_n_pct(int(k), n)


def flow_table(study: Any, flow: PatientFlow) -> pd.DataFrame:
    """Patient flow (STROBE item 13): one row per box of the diagram, one column per arm and overall."""
    groups = [*flow.arms, flow.overall]
    rows: list[tuple[str, list[str]]] = []
    rows.append(("Patients analysed", [format_count(g.n) for g in groups]))
    if flow.overall.response_evaluable is not None:
        rows.append(("Evaluable for response", [_n_pct(g.response_evaluable, g.n) for g in groups]))
    if flow.overall.with_adverse_event is not None:
        rows.append(("With at least one adverse event recorded", [_n_pct(g.with_adverse_event, g.n) for g in groups]))
    rows.append(("Dead at the cut-off", [_n_pct(g.dead, g.n) for g in groups]))
    rows.append((f"Alive, last seen more than {_months_words(flow.lost_months)} before the cut-off "
                 "(lost to follow-up)", [_n_pct(g.lost, g.n) for g in groups]))
    headers = [_arm_header(study, g.code, g.n) for g in flow.arms] + [f"Overall (N = {format_count(flow.overall.n)})"]
    return pd.DataFrame([[label, *cells] for label, cells in rows], columns=["", *headers])


def excluded_sentence(flow: PatientFlow) -> str:
    """The exclusions in words (``flow.text.excluded_sentence``)."""
    if flow.excluded is None:
        return "The data list no patients excluded before analysis."
    if not flow.n_excluded:
        return "No patient was excluded before analysis."
    reasons = "; ".join(f"{reason}: {format_count(n)}" for reason, n in flow.excluded)
    verb = "patients were" if flow.n_excluded != 1 else "patient was"
    return f"{format_count(flow.n_excluded)} {verb} excluded before analysis ({reasons})."


def flow_footnote(flow: PatientFlow) -> str:
    """Footnote of :func:`flow_table`: the exclusions and the definitions, in words."""
    excluded = excluded_sentence(flow)
    return (f"{excluded} n (%) of the patients of the column. Lost to follow-up: alive and last seen more than "
            f"{_months_words(flow.lost_months)} before the data cut-off; these patients are included among "
            "those alive (the patients not dead)."
            + (" Evaluable for response: a best overall response other than not evaluable."
               if flow.overall.response_evaluable is not None else ""))


def flow_results(flow: PatientFlow) -> dict:
    """The ``flow`` section of results.json: the counts of the diagram per arm code and overall."""
    out = {g.code: _asdict(g) for g in [*flow.arms, flow.overall]}
    out["lost_to_followup_months"] = flow.lost_months
    out["excluded"] = None if flow.excluded is None else {"n": flow.n_excluded,
                                                          "reasons": [{"reason": r, "n": n} for r, n in flow.excluded]}
    ref, exp = flow.arms[0], flow.arms[-1]
    out["text"] = {"lost_reference": f"{format_count(ref.lost)} of {format_count(ref.alive)}",
                   "lost_experimental": f"{format_count(exp.lost)} of {format_count(exp.alive)}",
                   "lost_months": _months_words(flow.lost_months),
                   "excluded_sentence": excluded_sentence(flow)}
    return out


def plot_flow(study: Any, flow: PatientFlow):
    """A simple flow diagram (matplotlib boxes): excluded (when listed) -> analysed -> per arm, with the
    vital status at the cut-off. Returns the Figure (detached from pyplot)."""
    import matplotlib.pyplot as plt

    from helpers.report.figures import COLUMN_WIDTH_IN, style_context

    k = len(flow.arms)
    with style_context():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN * 1.9, 4.2))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
        box = dict(boxstyle="round,pad=0.4", facecolor="white", edgecolor="black", linewidth=0.8)

        def put(x, y, text):
            ax.text(x, y, text, ha="center", va="center", fontsize=7, bbox=box, wrap=True)

        def arrow(start, end):
            ax.annotate("", xy=end, xytext=start, annotation_clip=False,
                        arrowprops=dict(arrowstyle="-|>", lw=0.8, color="black", shrinkA=0, shrinkB=0))

        top = f"Patients analysed\nN = {format_count(flow.overall.n)}"
        put(0.5, 0.88, top)
        if flow.excluded is not None:
            put(0.86, 0.88, f"Excluded\nn = {format_count(flow.n_excluded or 0)}"
                + "".join(f"\n{r}: {format_count(n)}" for r, n in flow.excluded[:4]))
            arrow((0.6, 0.88), (0.74, 0.88))
        for i, g in enumerate(flow.arms):
            x = (i + 0.5) / k
            label = study.config.arm_label(g.code) if hasattr(study.config, "arm_label") else g.code
            lines = [f"{label}\nn = {format_count(g.n)}"]
            if g.response_evaluable is not None:
                lines.append(f"Evaluable for response: {format_count(g.response_evaluable)}")
            if g.with_adverse_event is not None:
                lines.append(f"With adverse events: {format_count(g.with_adverse_event)}")
            put(x, 0.58, "\n".join(lines))
            arrow((0.5, 0.81), (x, 0.68))
            put(x, 0.22, f"At the cut-off\nDead: {format_count(g.dead)}\nAlive: {format_count(g.alive)}\n"
                         f"of whom lost to follow-up: {format_count(g.lost)}")
            arrow((x, 0.48), (x, 0.33))
    plt.close(fig)
    return fig


def disposition_table(study: Any, disposition: Disposition) -> pd.DataFrame:
    """Disposition per arm (DST01-like): treatment status, then vital status at the cut-off."""
    arms = disposition.arms
    rows: list[list[str]] = []
    if disposition.has_cycles:
        rows.append(["Treatment ongoing at the cut-off", *[_n_pct(a.ongoing, a.n) for a in arms]])
    if disposition.has_reasons:
        if disposition.has_cycles:
            rows.append(["Treatment discontinued", *[_n_pct(a.discontinued, a.n) for a in arms]])
        reasons = list(dict.fromkeys(r for a in arms for r, _ in (a.reasons or ())))
        for reason in reasons:
            label = reason or "reason not recorded"
            prefix = "Discontinued: " if disposition.has_cycles else "Treatment ended: "
            rows.append([f"{prefix}{label}", *[_n_pct(dict(a.reasons or ()).get(reason, 0), a.n) for a in arms]])
    rows.append(["Dead", *[_n_pct(a.dead, a.n) for a in arms]])
    rows.append(["Alive, in follow-up", *[_n_pct(a.in_followup, a.n) for a in arms]])
    rows.append(["Alive, lost to follow-up", *[_n_pct(a.lost, a.n) for a in arms]])
    return pd.DataFrame(rows, columns=["", *[_arm_header(study, a.code, a.n) for a in arms]])


def disposition_footnote(disposition: Disposition) -> str:
    parts = ["n (%) of the patients of the arm, at the data cut-off."]
    if disposition.has_cycles:
        parts.append(f"Treatment ongoing: alive, last cycle given within {disposition.ongoing_window_days:g} days "
                     "before the cut-off" + (" and no reason for ending treatment recorded"
                                             if disposition.has_reasons else "") + "; every other patient "
                     "counts as having discontinued (the complement of this row).")
    if disposition.has_reasons:
        parts.append("Reasons as recorded in the data.")
    parts.append(f"Lost to follow-up: alive and last seen more than {_months_words(disposition.lost_months)} "
                 "before the cut-off; in follow-up: the other patients alive.")
    return " ".join(parts)


def disposition_results(disposition: Disposition) -> dict:
    out = {a.code: {**_asdict(a), "reasons": None if a.reasons is None else
                    [{"reason": r, "n": n} for r, n in a.reasons]} for a in disposition.arms}
    out["ongoing_window_days"] = disposition.ongoing_window_days
    out["lost_to_followup_months"] = disposition.lost_months
    return out


def _median_range_text(s) -> str:
    if s is None or s.median is None:
        return "–"
    return f"{s.median:g} ({s.minimum:g}–{s.maximum:g})"


def _mean_sd_text(s, digits: int = 1) -> str:
    if s is None or s.mean is None:
        return "–"
    return f"{s.mean:.{digits}f} ({'–' if s.sd is None else format(s.sd, f'.{digits}f')})"


def _bin_label(bounds) -> str:
    low, high = bounds
    return f"> {low - 1}" if high is None else (f"{low}" if low == high else f"{low}–{high}")


def exposure_table(study: Any, exposure: Optional[Exposure]) -> Optional[pd.DataFrame]:
    """Exposure per arm (EXT01-like); None without treatment cycles. Cells of an agent class not given
    in an arm read "not applicable"."""
    if exposure is None:
        return None
    arms = exposure.arms
    rows: list[list[str]] = []
    classes = [c.agent_class for c in arms[0].classes]
    for i, cls in enumerate(classes):
        label = next(a.classes[i].label for a in arms)
        cells = [a.classes[i] for a in arms]

        def cell(fn):
            return [fn(c, a) if c.applicable else "not applicable" for c, a in zip(cells, arms)]

        rows.append([f"{label}, median (range)", *cell(lambda c, a: _median_range_text(c.cycles))])
        rows.append([f"{label}, mean (SD)", *cell(lambda c, a: _mean_sd_text(c.cycles))])
        if any(c.applicable and c.none for c in cells):
            rows.append([f"{label}: none", *cell(lambda c, a: format_n_pct(c.none, a.n))])
        for j, bounds in enumerate(exposure.bins):
            rows.append([f"{label}: {_bin_label(bounds)}", *cell(lambda c, a, j=j: format_n_pct(c.bins[j][1], a.n))])
    rows.append(["Duration of treatment (months), median (range)",
                 *[_duration_text(a.duration_months) for a in arms]])
    rows.append(["Duration of treatment (months), mean (SD)", *[_mean_sd_text(a.duration_months) for a in arms]])
    return pd.DataFrame(rows, columns=["", *[_arm_header(study, a.code, a.n) for a in arms]])


def _duration_text(s) -> str:
    if s is None or s.median is None:
        return "–"
    return f"{s.median:.1f} ({s.minimum:.1f}–{s.maximum:.1f})"


def exposure_footnote(exposure: Exposure) -> str:
    return ("Cycles: the number of cycles of the class recorded for each patient of the arm (0 for a patient "
            "who received none); the class is summarised only in the arms in which it is given. Patients by "
            "number of cycles: n (%) of the arm. Duration of treatment: from the first to the last cycle of "
            f"any class plus one cycle interval ({exposure.cycle_interval_days:g} days), in months of "
            f"{exposure.days_per_month:g} days, over the patients with at least one cycle. SD: standard "
            "deviation.")


def exposure_results(exposure: Optional[Exposure]) -> Optional[dict]:
    if exposure is None:
        return None
    out = {}
    for a in exposure.arms:
        out[a.code] = {"n": a.n, "treated": a.treated, "duration_months": _asdict(a.duration_months),
                       "classes": {c.agent_class: {"label": c.label, "applicable": c.applicable,
                                                   "cycles": None if c.cycles is None else _asdict(c.cycles),
                                                   "none": c.none if c.applicable else None,
                                                   "bins": [{"low": b[0], "high": b[1], "n": k} for b, k in c.bins]}
                                   for c in a.classes}}
    out["cycle_interval_days"] = exposure.cycle_interval_days
    out["duration_rule"] = "last cycle - first cycle + one cycle interval"
    return out


def deaths_table(study: Any, deaths: Deaths) -> pd.DataFrame:
    """Deaths per arm (DTHT01-like): all deaths; within the window of the last cycle and later (with
    cycles); treatment-related, i.e. with a grade 5 adverse event (with adverse events)."""
    arms = deaths.arms
    rows = [["All deaths", *[format_n_pct(a.deaths, a.n) for a in arms]]]
    if arms[0].within_window is not None:
        w = f"{deaths.window_days:g} days"
        rows.append([f"Deaths within {w} of the last cycle", *[format_n_pct(a.within_window, a.n) for a in arms]])
        if any(a.no_cycle for a in arms):
            rows.append(["Deaths without any cycle recorded", *[format_n_pct(a.no_cycle, a.n) for a in arms]])
    if arms[0].treatment_related is not None:
        rows.append(["Treatment-related deaths (grade 5 adverse event)",
                     *[format_n_pct(a.treatment_related, a.n) for a in arms]])
    return pd.DataFrame(rows, columns=["", *[_arm_header(study, a.code, a.n) for a in arms]])


def deaths_footnote(deaths: Deaths) -> str:
    out = "n (%) of the patients of the arm; deaths from any cause up to the data cut-off."
    if deaths.arms[0].within_window is not None:
        out += (f" Within {deaths.window_days:g} days: the date of death at most {deaths.window_days:g} days after "
                "the date of the last administered cycle; the other deaths occurred later.")
    if deaths.arms[0].treatment_related is not None:
        out += " Treatment-related: patients with an adverse event of grade 5 (fatal)."
    return out


def deaths_results(deaths: Deaths) -> dict:
    out = {a.code: _asdict(a) for a in deaths.arms}
    out["window_days"] = deaths.window_days
    return out


def show_flow(study: Any, flow: PatientFlow):
    frame = flow_table(study, flow)
    return show_table(frame, align="l" + "r" * (len(frame.columns) - 1), footnote=flow_footnote(flow))


def show_disposition(study: Any, disposition: Disposition):
    frame = disposition_table(study, disposition)
    return show_table(frame, align="l" + "r" * (len(frame.columns) - 1), footnote=disposition_footnote(disposition))


def show_exposure(study: Any, exposure: Optional[Exposure]):
    """The exposure table, or None (no output: the embed is left out) without treatment cycles."""
    frame = exposure_table(study, exposure)
    if frame is None:
        return None
    return show_table(frame, align="l" + "r" * (len(frame.columns) - 1), footnote=exposure_footnote(exposure))


def show_deaths(study: Any, deaths: Deaths):
    frame = deaths_table(study, deaths)
    return show_table(frame, align="l" + "r" * (len(frame.columns) - 1), footnote=deaths_footnote(deaths))
