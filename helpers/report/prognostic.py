"""Prognostic factors in words: tables, figures, sentences and the ``cox`` section of results.json.

Takes the typed results of :mod:`helpers.analyses.prognostic` and the study's vocabulary (labels, level
labels and units from the data dictionary) and writes the Markdown tables, the forest and Schoenfeld
plots, the table footnotes and the generated sentences the prose quotes (``cox.text.*``). No covariate
of a particular study is named here: every label comes from the dictionary.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from helpers.analyses.prognostic import (ImmortalTimeComparison, MultivariableResult,
                                         PHRemedy, PHTest, PrognosticData, UnivariableResult)
from helpers.report.formatting import format_ci, format_not_estimable, format_number, format_p
from helpers.stats.types import Caveat, NotEstimable, is_estimable

ENDPOINT_LABELS = {"os": "Overall survival", "pfs": "Progression-free survival"}
ENDPOINT_EVENTS = {"os": "deaths", "pfs": "events (progression or death)"}
APPROACH_LABELS = {"baseline": "Total count as a baseline covariate (biased)", "landmark": "Landmark at {months:g} months",
                   "time_varying": "Time-varying cumulative count"}
APPROACH_KEYS = {"baseline": "paper", "landmark": "landmark", "time_varying": "tv"}


# ----------------------------------------------------------------------------- vocabulary
class Words:
    """Labels of variables, levels and units for one study (``dictionary`` may be None: names)."""

    def __init__(self, dictionary=None, arm_labels: dict | None = None):
        self.dictionary = dictionary
        self.arm_labels = arm_labels or {}

    def label(self, var: str) -> str:
        if self.dictionary is None:
            return var
        return self.dictionary.label(var)

    def level(self, var: str, code) -> str:
        if var == "arm" and str(code) in self.arm_labels:
            return self.arm_labels[str(code)]
        if self.dictionary is None:
            return str(code)
        return self.dictionary.level_label(var, code)

    def unit(self, var: str) -> str:
        """"per year", "per cycle", "per unit": the HR of a numeric covariate is per one of its units."""
        spec = None
        if self.dictionary is not None:
            try:
                spec = self.dictionary.variable(var)
            except (KeyError, AttributeError):
                spec = None
        unit = getattr(spec, "unit", None)
        if not unit:
            return "per unit"
        unit = str(unit)
        if unit.endswith("s") and not unit.endswith("ss") and len(unit) > 2:
            unit = unit[:-1]
        return f"per {unit}"


def words_for(data: PrognosticData | None = None, study=None) -> Words:
    """The vocabulary of a study: dictionary labels and the arms' labels."""
    dictionary = data.dictionary if data is not None else getattr(study, "dictionary", None)
    if dictionary is not None and not hasattr(dictionary, "label"):
        dictionary = None
    arm_labels = {}
    config = getattr(study, "config", None)
    for arm in getattr(config, "arms", ()) or ():
        arm_labels[str(arm.code)] = str(arm.label)
    return Words(dictionary, arm_labels)


_PLAIN = Words()


def _w(words: Words | None) -> Words:
    return words if words is not None else _PLAIN


def in_sentence(label: str) -> str:
    """A label inside a sentence: first letter lower-cased unless it starts an acronym ("ECOG score")."""
    if len(label) > 1 and label[:2].isupper():
        return label
    return label[:1].lower() + label[1:]


def _names(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def result_key(term: str) -> str:
    """results.json key of a model term: ``x[< 70]`` -> ``x_lt_70``."""
    for old, new in ((">=", "_ge_"), ("<=", "_le_"), (">", "_gt_"), ("<", "_lt_"), ("+", "_plus_")):
        term = term.replace(old, new)
    term = re.sub(r"[^0-9A-Za-z]+", "_", term)
    return term.strip("_")


def term_label(term: str, words: Words | None = None) -> str:
    """Readable name of a model column: ``var[level]`` -> "Label: level", a numeric ``var`` ->
    "Label (per unit)", ``var:log(t)`` -> "Label (per unit) x log(months)"."""
    w = _w(words)
    if term.endswith(":log(t)"):
        return f"{term_label(term[: -len(':log(t)')], w)} x log(months)"
    m = re.fullmatch(r"(.+)\[(.+)\]", term)
    if m:
        return f"{w.label(m.group(1))}: {w.level(m.group(1), m.group(2))}"
    return f"{w.label(term)} ({w.unit(term)})"


def _term_name(row) -> str:
    return row["variable"] if row["level"] == "per unit" else f"{row['variable']}[{row['level']}]"


def _hr_string(h, lo, hi, p=None) -> str:
    """'HR 0.41 (95% CI 0.25-0.66), P < 0.001' for prose."""
    if h is None or not np.isfinite(h):
        return "not estimable"
    text = f"HR {format_number(h, 2)} (95% CI {format_ci(lo, hi, 2)})"
    if p is None:
        return text
    shown = format_p(p)
    return text + (f", P {shown[0]} {shown[1:]}" if shown.startswith("<") else f", P = {shown}")


def _p_statement(p) -> str:
    shown = format_p(p)
    return f"P < {shown[1:]}" if shown.startswith("<") else f"P = {shown}"


def _lr_string(lr: dict) -> str:
    shown = format_p(lr["p"])
    return (f"chi-square {format_number(lr['chisq'], 1)} on {lr['df']} df, "
            + (f"P < {shown[1:]}" if shown.startswith("<") else f"P = {shown}"))


def not_estimable_text(result: NotEstimable) -> str:
    """"not estimable: <reason in words>"."""
    return format_not_estimable(result)


def _note_table(text: str) -> pd.DataFrame:
    return pd.DataFrame({"Note": [text]})


# ----------------------------------------------------------------------------- caveats in words
def caveat_text(caveat: Caveat, words: Words | None = None) -> str:
    """One caveat in one sentence."""
    w = _w(words)
    d = caveat.data
    endpoint = ENDPOINT_LABELS.get(d.get("endpoint"), "")
    if caveat.kind == "sparse_level":
        return (f"{w.label(d['variable'])} = '{w.level(d['variable'], d['level'])}' has {d['n']} patient"
                f"{'s' if d['n'] != 1 else ''} and {d['events']} event{'s' if d['events'] != 1 else ''}"
                f"{f' ({endpoint})' if endpoint else ''}: its hazard ratio is unstable; see the Firth-penalized estimate")
    if caveat.kind == "monotone_likelihood":
        terms = ", ".join(term_label(t, w) for t in d.get("terms", []))
        return (f"monotone likelihood for {terms}: every event occurs at the extreme value of the covariate in "
                "its risk set, so the maximum-likelihood HR is infinite or zero; the HR is reported as not "
                "estimable (the likelihood-ratio test remains valid); see the Firth-penalized estimate")
    if caveat.kind == "low_epv":
        return (f"{d['events']} events for {d['parameters']} parameters: {d['epv']:.1f} events per parameter "
                f"(< {d['threshold']:g}); estimates may be biased and unstable")
    if caveat.kind == "immortal_time":
        names = _names([in_sentence(w.label(v)) for v in d["variables"]])
        return (f"{names} {'is' if len(d['variables']) == 1 else 'are'} known only after the start of treatment "
                "but entered as baseline covariates: patients who live longer have more time to accumulate "
                "them, which biases the HR towards benefit")
    if caveat.kind == "ph_violation":
        return (f"proportional hazards rejected for {w.label(d['term']) if d['term'] != 'GLOBAL' else 'the model as a whole'} "
                f"(cox.zph km score test, chi2 = {d['chisq']:.2f}, df = {d['df']}, {_p_statement(d['p'])})")
    if caveat.kind == "non_convergence":
        return "the Cox model did not converge; its estimates are not reported"
    if caveat.kind == "no_events":
        return "no events among the analysed patients: no Cox model"
    return caveat.kind.replace("_", " ")


_CAVEAT_CLASS = {"sparse_level": "SparseLevelWarning", "monotone_likelihood": "SeparationWarning",
                 "low_epv": "LowEventsPerVariableWarning", "ph_violation": "ProportionalHazardsWarning",
                 "immortal_time": "ImmortalTimeWarning"}


def caveat_lines(caveats: list, words: Words | None = None) -> list[str]:
    """Each distinct caveat once, as "Kind: sentence" (the results file's ``warnings`` list)."""
    seen, out = set(), []
    for c in caveats:
        text = f"{_CAVEAT_CLASS.get(c.kind, 'CoxWarning')}: {caveat_text(c, words)}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


# ----------------------------------------------------------------------------- tables
def _hr_text(row, digits=2) -> str:
    if row["reference"]:
        return "1 (reference)"
    if str(row["note"]).startswith("not estimable"):
        return "not estimable"
    return f"{format_number(row['hr'], digits)} ({format_ci(row['lower'], row['upper'], digits)})"


def _level_text(row, words: Words) -> str:
    return words.unit(row["variable"]) if row["level"] == "per unit" else words.level(row["variable"], row["level"])


def make_cox_table(result, words: Words | None = None, show_factor_p: bool = True) -> pd.DataFrame:
    """Display table: Variable, Level, n, Events, HR (95% CI), P (Wald), P (LR, whole variable).

    ``result``: a UnivariableResult, MultivariableResult or their per-level table. The LR P is shown
    once per variable, only for variables with more than one level contrast.
    """
    w = _w(words)
    if isinstance(result, NotEstimable):
        return _note_table(f"Multivariable model {not_estimable_text(result)}.")
    table = result.table if isinstance(result, (UnivariableResult, MultivariableResult)) else result
    out = []
    for var, block in table.groupby("variable", sort=False):
        for i, (_, row) in enumerate(block.iterrows()):
            rec = {"Variable": w.label(var) if i == 0 else "", "Level": _level_text(row, w),
                   "n": int(row["n"]), "Events": int(row["events"]), "HR (95% CI)": _hr_text(row),
                   "P (Wald)": "" if row["reference"] or pd.isna(row["p"]) else format_p(row["p"])}
            if show_factor_p:
                rec["P (LR, variable)"] = format_p(row["p_lr"]) if (i == 0 and row["df"] > 1) else ""
            out.append(rec)
    if isinstance(result, UnivariableResult):
        for var, ne in result.not_estimable.items():
            rec = {"Variable": w.label(var), "Level": "", "n": "", "Events": "",
                   "HR (95% CI)": not_estimable_text(ne), "P (Wald)": ""}
            if show_factor_p:
                rec["P (LR, variable)"] = ""
            out.append(rec)
    return pd.DataFrame(out)


def describe_multivariable(result: MultivariableResult, words: Words | None = None) -> pd.DataFrame:
    """One-row-per-statistic summary: n, events, parameters, EPV, global LR test, concordance."""
    w = _w(words)
    lr = result.lr_test
    rows = [
        ("Endpoint", ENDPOINT_LABELS[result.endpoint]),
        ("Entry rule", f"univariable {'LR' if result.entry_test == 'lr' else 'Wald'} P < "
                       f"{result.entry_p}" if result.entry_p is not None else "all candidates"),
        ("Variables entered", ", ".join(w.label(v) for v in result.selected)),
        ("Patients (complete cases)", f"{result.n} ({result.n_missing} excluded for missing data)"),
        ("Events", str(result.events)),
        ("Parameters", str(result.n_params)),
        ("Events per parameter", format_number(result.epv, 1)),
        ("Global LR test", f"chi2 = {format_number(lr['chisq'], 2)}, df = {lr['df']}, {_p_statement(lr['p'])}"),
        ("Concordance (Harrell's C)", format_number(result.concordance, 3)),
    ]
    return pd.DataFrame(rows, columns=["Statistic", "Value"])


def markdown_notes(result: MultivariableResult, words: Words | None = None) -> str:
    """Table footnote: the model summary statistics and the caveats raised while fitting."""
    if result is None or isinstance(result, NotEstimable):
        return ""
    summary = describe_multivariable(result, words)
    parts = ["; ".join(f"{a}: {b}" for a, b in summary.to_numpy())]
    parts += [f"Warning ({c.split(':', 1)[0]}):{c.split(':', 1)[1]}" for c in caveat_lines(result.caveats, words)]
    return "\n\n".join(parts)


def univariable_note(result: UnivariableResult) -> str:
    return "Efron ties; each model on the patients with the variable recorded."


def make_model_comparison_table(models: dict, published: list | set | dict | None = None,
                                words: Words | None = None) -> pd.DataFrame:
    """Several multivariable models side by side, one row per variable level.

    ``models``: {column heading: MultivariableResult}; ``published``: the variables a publication
    named as independent factors (adds a "Published" column). Closing rows: patients/events, events
    per parameter, global LR test P and concordance of each model.
    """
    w = _w(words)
    models = {k: v for k, v in models.items() if is_estimable(v)}
    named = set(published.values() if isinstance(published, dict) else (published or []))
    keys = []
    for result in models.values():
        for _, row in result.table.iterrows():
            if (row["variable"], row["level"]) not in keys:
                keys.append((row["variable"], row["level"]))
    first = {}
    for i, (v, _) in enumerate(keys):
        first.setdefault(v, i)
    keys.sort(key=lambda k: first[k[0]])
    rows, previous = [], None
    for var, level in keys:
        rec = {"Variable": w.label(var) if var != previous else "",
               "Level": w.unit(var) if level == "per unit" else w.level(var, level)}
        if published is not None:
            rec["Published"] = ("independent factor" if var in named else "not named") if var != previous else ""
        previous = var
        for name, result in models.items():
            hit = result.table[(result.table["variable"] == var) & (result.table["level"] == level)]
            if hit.empty:
                rec[f"{name}: HR (95% CI)"], rec[f"{name}: P"] = "not in model", ""
            else:
                row = hit.iloc[0]
                rec[f"{name}: HR (95% CI)"] = _hr_text(row)
                rec[f"{name}: P"] = "" if row["reference"] or pd.isna(row["p"]) else format_p(row["p"])
        rows.append(rec)
    summary = {"Patients / events": lambda r: f"{r.n} / {r.events}",
               "Events per parameter": lambda r: format_number(r.epv, 1),
               "Global LR test P": lambda r: format_p(r.lr_test["p"]),
               "Concordance (Harrell's C)": lambda r: format_number(r.concordance, 2)}
    for label, get in summary.items():
        rec = {"Variable": label, "Level": ""}
        if published is not None:
            rec["Published"] = ""
        for name, result in models.items():
            rec[f"{name}: HR (95% CI)"], rec[f"{name}: P"] = get(result), ""
        rows.append(rec)
    return pd.DataFrame(rows)


def make_ph_table(ph: PHTest, words: Words | None = None) -> pd.DataFrame:
    """Display table of :func:`helpers.analyses.prognostic.check_proportional_hazards`."""
    if isinstance(ph, NotEstimable):
        return _note_table(f"Proportional-hazards test {not_estimable_text(ph)}.")
    w = _w(words)
    t = ph.table
    return pd.DataFrame({
        "Term": ["Global" if v == "GLOBAL" else w.label(v) for v in t["term"]], "df": t["df"].astype(int),
        "Chi-square (score test, R cox.zph)": [format_number(v, 2) for v in t["chisq"]],
        "P": [format_p(v) for v in t["p"]],
        "Chi-square (G-T approximation, lifelines)": [format_number(v, 2, "–") for v in t["chisq_gt"]],
        "P (approx.)": [format_p(v) for v in t["p_gt"]],
    })


def make_remedy_table(remedy: PHRemedy, words: Words | None = None) -> pd.DataFrame:
    """Display table of the PH remedy (the model description is :func:`remedy_note`)."""
    if isinstance(remedy, NotEstimable):
        return _note_table(f"Model allowing non-proportional hazards {not_estimable_text(remedy)}.")
    if remedy.empty:
        return _note_table("No term violated proportional hazards (P >= 0.05).")
    if remedy.table.empty:
        return _note_table("Every term that violated proportional hazards is categorical and was moved to the "
                           "strata; no coefficient is left to estimate.")
    t = remedy.table
    return pd.DataFrame({
        "Term": [term_label(x, words) for x in t["term"]],
        "HR (95% CI)": [f"{format_number(h, 2)} ({format_ci(l, u, 2)})" if np.isfinite(h) else "not estimable"
                        for h, l, u in t[["hr", "lower", "upper"]].to_numpy(dtype=float)],
        "P (Wald)": [format_p(p) for p in t["p"]],
    })


def remedy_model(remedy: PHRemedy, words: Words | None = None) -> str:
    """How the model was changed: "stratified by X; Y (per unit) x log(months)[; ...quantiles]"."""
    w = _w(words)
    parts = [f"stratified by {w.label(t)}" for t in remedy.strata]
    parts += [f"{term_label(t, w)} x log(months)" for t in remedy.time_terms]
    if remedy.time_terms and not remedy.exact:
        parts.append(f"x log(t) on {remedy.n_cuts} event-time quantiles (more than {remedy.max_rows:,} rows "
                     "for every event time)")
    return "; ".join(parts)


def remedy_note(remedy: PHRemedy, words: Words | None = None) -> str:
    """Footnote of the PH-remedy table: how the model was changed."""
    if isinstance(remedy, NotEstimable) or remedy.empty:
        return ""
    text = "Model: " + remedy_model(remedy, words) + "."
    if remedy.time_terms:
        text += (" A term x log(months) is the change in log HR per unit of log(time): "
                 "HR(t) = HR x (its HR)^log(t).")
    return text


def make_immortal_time_table(comparison: ImmortalTimeComparison, words: Words | None = None) -> pd.DataFrame:
    """Display table of :func:`helpers.analyses.prognostic.compare_immortal_time`."""
    if isinstance(comparison, NotEstimable):
        return _note_table(f"Landmark and time-varying analyses {not_estimable_text(comparison)}.")
    w = _w(words)
    t = comparison.table
    unit = {v: (w.unit(v) if comparison.coding == "per_cycle" else ">= cutpoint vs fewer") for v in t["variable"]}
    return pd.DataFrame({
        "Covariate": [f"{w.label(v)} ({unit[v]})" for v in t["variable"]],
        "Approach": [APPROACH_LABELS[a].format(months=comparison.landmark_months) for a in t["approach"]],
        "Patients": t["n"], "Events": t["events"],
        "HR (95% CI)": [f"{format_number(h, 2)} ({format_ci(a, b, 2)})" if np.isfinite(h)
                        else "not estimable (monotone likelihood)"
                        for h, a, b in t[["hr", "lower", "upper"]].to_numpy(dtype=float)],
        "P (Wald)": [format_p(p) if np.isfinite(p) else "—" for p in t["p"].to_numpy(dtype=float)],
    }).sort_values(["Covariate"], kind="stable").reset_index(drop=True)


def make_firth_table(firth: pd.DataFrame, words: Words | None = None) -> pd.DataFrame:
    """Display table: term, ML HR (Wald CI), P, Firth HR (profile CI), P (penalized LR)."""
    def hr(e, lo, hi):
        if pd.isna(e):
            return "not estimable"
        return f"{format_number(e, 2)} ({format_ci(lo, hi, 2)})"
    if firth.empty:
        return _note_table("No Firth model: no sparse level and no separation.")
    return pd.DataFrame({
        "Term": [term_label(t, words) for t in firth["term"]],
        "ML HR (Wald 95% CI)": [hr(*v) for v in firth[["hr_ml", "lower_ml", "upper_ml"]].to_numpy()],
        "P (Wald)": [format_p(p) for p in firth["p_ml"]],
        "Firth HR (95% CI)": [hr(*v) for v in firth[["hr_firth", "lower_firth", "upper_firth"]].to_numpy()],
        "P (Firth)": [format_p(p) for p in firth["p_firth"]],
        "CI and P": ["profile penalized likelihood, penalized LR" if m == "profile" else "Wald at Firth estimate"
                     for m in firth["ci_method"]],
    })


def sparse_note(sparse: pd.DataFrame, firth: pd.DataFrame | None = None, words: Words | None = None,
                min_n: int = 5) -> str:
    """Footnote naming the sparse levels that motivated the Firth model (and saying when none was fitted)."""
    w = _w(words)
    if sparse.empty:
        text = f"No sparse level (all levels have at least {min_n} patients and one event)."
        if firth is not None and firth.empty:
            text += (" No separation either: the maximum-likelihood model needs no Firth correction, "
                     "which was not fitted.")
        return text
    items = [f"{w.label(r['variable'])} {w.level(r['variable'], r['level'])} (n = {r['n']}, {r['events']} events)"
             for _, r in sparse.iterrows()]
    return "Sparse levels: " + "; ".join(items) + ". Firth model with Efron ties."


def make_mi_table(mi: pd.DataFrame | None, words: Words | None = None) -> pd.DataFrame:
    """Display table: term, complete-case HR (95% CI) and P, pooled MI HR (95% CI), P and FMI."""
    if mi is None:
        return _note_table("No candidate variable with missing values (or no multivariable model): "
                           "no imputation analysis.")
    return pd.DataFrame({
        "Term": [term_label(t, words) for t in mi["term"]],
        f"Complete cases (n = {mi.attrs.get('n_cc')}) HR (95% CI)":
            [f"{format_number(h, 2)} ({format_ci(l, u, 2)})" for h, l, u in mi[["hr_cc", "lower_cc", "upper_cc"]].to_numpy()],
        "P (CC)": [format_p(p) for p in mi["p_cc"]],
        f"Multiple imputation (n = {mi.attrs.get('n_mi')}, m = {mi.attrs.get('m')}) HR (95% CI)":
            [f"{format_number(h, 2)} ({format_ci(l, u, 2)})" for h, l, u in mi[["hr", "lower", "upper"]].to_numpy()],
        "P (MI)": [format_p(p) for p in mi["p"]],
        "FMI": [format_number(f, 2) for f in mi["fmi"]],
    })


# ----------------------------------------------------------------------------- figures
def plot_forest(result: MultivariableResult, title: str | None = None, words: Words | None = None):
    """Forest plot of a multivariable model: HR with 95% CI on a log axis, reference levels shown.

    Left columns: variable/level and n per level; right column: HR (95% CI) and Wald P.
    """
    import matplotlib.pyplot as plt
    w = _w(words)
    try:
        from helpers.report.figures import COLUMN_WIDTH_IN, OKABE_ITO, style_context
    except ImportError:  # pragma: no cover
        import contextlib
        style_context, OKABE_ITO, COLUMN_WIDTH_IN = contextlib.nullcontext, {"blue": "C0"}, 3.35

    LABEL_X, N_X = -1.45, -0.06   # label and n columns, in axes-width units left of the axis
    table = result.table
    lines = []  # (label, n, row, kind)
    for var, block in table.groupby("variable", sort=False):
        numeric = len(block) == 1 and not block["reference"].iloc[0]
        if numeric:
            row = block.iloc[0]
            lines.append((f"{w.label(var)} ({w.unit(var)})", "", row, "level"))
            continue
        lines.append((w.label(var), "", None, "header"))
        for _, row in block.iterrows():
            lines.append((f"   {w.level(var, row['level'])}", str(int(row["n"])), row, "level"))
    finite = table.loc[~table["reference"], ["lower", "upper"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    lo = min(0.1, np.nanmin(finite) * 0.8) if finite.size else 0.1
    hi = max(10.0, np.nanmax(finite) * 1.25) if finite.size else 10.0
    with style_context():
        height = 0.6 + 0.19 * len(lines)
        fig, ax = plt.subplots(figsize=(2.2 * COLUMN_WIDTH_IN, height))
        colour = OKABE_ITO.get("blue", "C0")
        for i, (label, n, row, kind) in enumerate(lines):
            y = len(lines) - i
            weight = "bold" if kind == "header" else "normal"
            ax.text(LABEL_X, y, label.replace("   ", "    "), transform=ax.get_yaxis_transform(),
                    ha="left", va="center", fontweight=weight)
            if kind == "header" or row is None:
                continue
            n_text = str(int(row["n"])) if row["reference"] or n else ""
            ax.text(N_X, y, n_text, transform=ax.get_yaxis_transform(), ha="right", va="center")
            if row["reference"]:
                ax.plot([1], [y], marker="D", color="0.5", markersize=3.5)
                text = "Reference"
            elif str(row["note"]).startswith("not estimable"):
                text = "not estimable"
            else:
                ax.plot([row["lower"], row["upper"]], [y, y], color=colour, lw=1)
                ax.plot([row["hr"]], [y], marker="s", color=colour, markersize=4)
                text = f"{row['hr']:.2f} ({row['lower']:.2f}–{row['upper']:.2f})  P {format_p(row['p'])}"
            ax.text(1.02, y, text, transform=ax.get_yaxis_transform(), ha="left", va="center")
        ax.axvline(1, color="0.3", lw=0.6, ls="--")
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0.3, len(lines) + 0.9)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("Hazard ratio (log scale)")
        ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if lo <= t <= hi]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
        top = len(lines) + 0.7
        ax.text(LABEL_X, top, "Variable", transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontweight="bold")
        ax.text(N_X, top, "n", transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontweight="bold")
        ax.text(1.02, top, "HR (95% CI)", transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontweight="bold")
        if title:
            ax.set_title(title)
        fig.subplots_adjust(left=0.40, right=0.66)
    return fig



def plot_schoenfeld(ph: PHTest, words: Words | None = None):
    """Scaled Schoenfeld residuals against time (months) per coefficient, with a lowess smoother.

    A flat smoother at the coefficient (dashed line) is consistent with proportional hazards;
    a trend means the log hazard ratio changes with time. The P value is the cox.zph score test.
    """
    import matplotlib.pyplot as plt
    from statsmodels.nonparametric.smoothers_lowess import lowess
    try:
        from helpers.report.figures import COLUMN_WIDTH_IN, OKABE_ITO, style_context
    except ImportError:  # pragma: no cover
        import contextlib
        style_context, OKABE_ITO, COLUMN_WIDTH_IN = contextlib.nullcontext, {"blue": "C0", "vermillion": "C1"}, 3.35
    fit = ph.fit
    res = ph.residuals()
    times = res.pop("time").to_numpy()
    cols = list(res.columns)
    ncol = 2 if len(cols) > 1 else 1
    nrow = int(np.ceil(len(cols) / ncol))
    term_of = {c: v for v, cs in fit.design.terms.items() for c in cs}
    p_of = dict(zip(ph.table["term"], ph.table["p"]))
    with style_context():
        fig, axes = plt.subplots(nrow, ncol, figsize=(2 * COLUMN_WIDTH_IN, 1.9 * nrow), squeeze=False)
        for ax, col in zip(axes.ravel(), cols):
            y = res[col].to_numpy()
            ax.scatter(times, y, s=6, color="0.55", alpha=0.7, linewidths=0)
            sm = lowess(y, times, frac=2 / 3, return_sorted=True)
            ax.plot(sm[:, 0], sm[:, 1], color=OKABE_ITO.get("blue", "C0"))
            ax.axhline(fit.coef[col], color=OKABE_ITO.get("vermillion", "C1"), ls="--", lw=0.8)
            name = term_label(col, words)
            ax.set_title(f"{name} (P {format_p(p_of[term_of[col]])})")
            ax.set_xlabel("Months")
            ax.set_ylabel("Beta(t)")
        for ax in axes.ravel()[len(cols):]:
            ax.set_visible(False)
        fig.tight_layout()
    return fig




# ----------------------------------------------------------------------------- sentences
def _model_terms(result: MultivariableResult) -> list[dict]:
    """results.json rows {term, hr, lower, upper, p} of the non-reference levels of a model."""
    multi = result.table[~result.table["reference"]]
    return [{"term": _term_name(r), "hr": r["hr"], "lower": r["lower"], "upper": r["upper"],
             "p": r["p"]} for _, r in multi.iterrows()]


def _model_summary(result: MultivariableResult) -> dict:
    return {"n": result.n, "events": result.events, "n_missing": result.n_missing,
            "n_params": result.n_params, "selected": result.selected, "global_lr": result.lr_test,
            "concordance": result.concordance, "entry_p": result.entry_p,
            "entry_test": result.entry_test, "epv": result.epv}


def _model_text(result: MultivariableResult, prefix: str, words: Words) -> dict:
    """Prose strings of one model: n, events, EPV, global LR, C and one HR string per term."""
    text = {f"{prefix}n": str(result.n), f"{prefix}events": str(result.events),
            f"{prefix}n_missing": str(result.n_missing), f"{prefix}epv": format_number(result.epv, 1),
            f"{prefix}n_params": str(result.n_params),
            f"{prefix}concordance": format_number(result.concordance, 2),
            f"{prefix}global_lr": _lr_string(result.lr_test),
            f"{prefix}selected": ", ".join(in_sentence(words.label(v)) for v in result.selected)}
    for _, row in result.table[~result.table["reference"]].iterrows():
        key = f"{prefix}{result_key(_term_name(row))}"
        text[key] = ("not estimable" if str(row["note"]).startswith("not estimable")
                     else _hr_string(row["hr"], row["lower"], row["upper"], row["p"]))
        if pd.notna(row["n"]):   # patients in the level (e.g. pm_<variable>_<level>_n)
            text[f"{key}_n"] = str(int(row["n"]))
    return text


def _term_hr_phrases(result: MultivariableResult, variables: list, words: Words) -> list[str]:
    t = result.table
    return [f"{term_label(_term_name(r), words)} {_hr_string(r['hr'], r['lower'], r['upper'], r['p'])}"
            for _, r in t[~t["reference"] & t["variable"].isin(variables)].iterrows()
            if not str(r["note"]).startswith("not estimable")]


def compare_selection(result: MultivariableResult, paper: MultivariableResult, words: Words | None = None,
                      arm_only: dict | None = None) -> str:
    """What the rule-selected model keeps of, adds to and leaves out of the published-specification
    model (HR of each kept level), for any cohort."""
    w = _w(words)
    if not is_estimable(result):
        return f"The entry rule built no model ({not_estimable_text(result)})."

    def names(variables):
        return _names([in_sentence(w.label(v)) for v in variables])

    kept = [v for v in paper.selected if v in result.selected]
    added = [v for v in result.selected if v not in paper.selected]
    dropped = [v for v in paper.selected if v not in result.selected]
    parts = []
    if kept:
        hrs = _term_hr_phrases(result, kept, w)
        parts.append(f"keeps {names(kept)}" + (f" ({'; '.join(hrs)})" if hrs else ""))
    if added:
        parts.append(f"adds {names(added)}")
    if dropped:
        parts.append(f"leaves out {names(dropped)}")
    text = "The rule-selected model " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]) + "."
    return text + arm_exposure_sentence(result, w, arm_only)


def arm_exposure_sentence(result: MultivariableResult, words: Words, arm_only: dict | None) -> str:
    """A caution when the arm and an exposure given in one arm only are in the same model."""
    if not arm_only or "arm" not in result.selected:
        return ""
    for var, arms in arm_only.items():
        if var in result.selected and arms:
            arms_text = _names([words.level("arm", a) for a in arms])
            return (f" The arm coefficient in that model is hard to interpret: only patients in the {arms_text} "
                    f"arm have non-zero values of {in_sentence(words.label(var))}, so once that count is in the "
                    "model, the arm term compares the arms at an equal count.")
    return ""


def sparse_sentences(sparse: pd.DataFrame, firth: pd.DataFrame | None, words: Words | None = None,
                     min_n: int = 5) -> dict:
    """Prose on the sparse levels for any cohort: ``sparse_levels`` (what was flagged) and
    ``firth_sentence`` (the Firth estimates of the sparse levels, or why no Firth model was fitted)."""
    w = _w(words)
    if sparse.empty:
        return {"sparse_levels": "none in this cohort",
                "firth_sentence": (f"No level had fewer than {min_n} patients or no events, and no term separated, "
                                   "so the maximum-likelihood estimates needed no Firth correction")}
    items = [f"{w.label(r['variable'])} {w.level(r['variable'], r['level'])} has {r['n']} patient"
             f"{'s' if r['n'] != 1 else ''}" + (" and no events" if r["events"] == 0 else "")
             for _, r in sparse.iterrows()]
    text = {"sparse_levels": "; ".join(items)}
    profiled = firth[firth["ci_method"] == "profile"] if firth is not None and not firth.empty else None
    if profiled is None or profiled.empty:
        text["firth_sentence"] = "Only " + "; ".join(items) + "; no Firth model was fitted"
        return text
    estimates = [f"{term_label(r['term'], w)}, {_hr_string(r['hr_firth'], r['lower_firth'], r['upper_firth'], r['p_firth'])}"
                 for _, r in profiled.iterrows()]
    text["firth_sentence"] = (
        "Only " + "; ".join(items) + ". With the variables that have a sparse level added to the rule-selected "
        f"model, the Firth-penalized estimate{'s were' if len(estimates) > 1 else ' was'} "
        + "; ".join(estimates) + "; the width of such an interval shows how little so few patients can tell")
    return text


def published_paragraph(paper: MultivariableResult | None, result: MultivariableResult, words: Words,
                        arm_only: dict | None = None, min_n: int = 5) -> str:
    """The published-specification model in one paragraph ("" without a published model)."""
    if paper is None:
        return ""
    if not is_estimable(paper):
        return f"The published model could not be fitted to these data ({not_estimable_text(paper)})."
    hrs = _term_hr_phrases(paper, paper.selected, words)
    text = (f"The {len(paper.selected)} factors the publication calls independent were also fitted together "
            "(the published model specification) and are set next to the rule-selected model. In that model, "
            + "; ".join(hrs) + ". ")
    sparse_levels = [r for _, r in paper.table.iterrows() if not r["reference"] and r["level"] != "per unit"
                     and r["n"] < min_n]
    for r in sparse_levels:
        text += (f"The estimate for {in_sentence(w_level(words, r))} rests on {int(r['n'])} patient"
                 f"{'s' if r['n'] != 1 else ''} (see sparse levels below). ")
    if is_estimable(result):
        text += compare_selection(result, paper, words, arm_only)
    return text.strip()


def w_level(words: Words, row) -> str:
    return f"{words.label(row['variable'])} {words.level(row['variable'], row['level'])}"


def exposure_paragraph(immortal: ImmortalTimeComparison | NotEstimable | None, words: Words) -> str:
    """The landmark and time-varying estimates of the exposure counts ("" without exposure data)."""
    if immortal is None or isinstance(immortal, NotEstimable):
        return ""
    t = immortal.table
    per = {a: t[t["approach"] == a] for a in ("baseline", "landmark", "time_varying")}

    def hrs(block):
        return "; ".join(f"{in_sentence(words.label(r['variable']))} {_hr_string(r['hr'], r['lower'], r['upper'], r['p'])}"
                         for _, r in block.iterrows())

    n_landmark = int(per["landmark"]["n"].iloc[0]) if len(per["landmark"]) else 0
    return (f"Landmark analysis: {n_landmark} patients were still at risk at {immortal.landmark_months:g} months; "
            f"counting only what they had received by then and following them from that point gave {hrs(per['landmark'])}. "
            f"Time-varying model: comparing each patient at every moment with the patients still at risk on the "
            f"counts received so far gave {hrs(per['time_varying'])}. Entered as baseline covariates in the same "
            f"adjusted model, the counts gave {hrs(per['baseline'])}; the gap between these rows and the corrected "
            "ones shows how much of an association with such counts immortal time can produce on its own.")


def pfs_paragraph(pfs: MultivariableResult | NotEstimable | None, words: Words) -> str:
    """The rule-selected PFS model in one sentence ("" without progression data)."""
    if pfs is None:
        return ""
    if isinstance(pfs, NotEstimable):
        return f"For progression-free survival the entry rule built no model ({not_estimable_text(pfs)})."
    hrs = _term_hr_phrases(pfs, pfs.selected, words)
    return (f"The same entry rule applied to progression-free survival selected "
            f"{_names([in_sentence(words.label(v)) for v in pfs.selected])} ({pfs.events} events, "
            f"{format_number(pfs.epv, 1)} events per parameter): " + "; ".join(hrs) + ".")


def checks_paragraph(ph, remedy, mi, words: Words, post_baseline: list | None = None) -> str:
    """The proportional-hazards result, its remedy and the imputation estimate in words."""
    if isinstance(ph, NotEstimable) or ph is None:
        return ""
    violated = [in_sentence(words.label(v)) for v in ph.violated]
    text = ("The scaled Schoenfeld residual tests rejected proportional hazards for "
            + (_names(violated) if violated else "no term") + f" (global {_p_statement(ph.global_p)}).")
    late = [v for v in ph.violated if post_baseline and v in post_baseline]
    if late:
        text += (" For counts accumulated during follow-up this is expected: their association with survival "
                 "changes over follow-up by construction.")
    if isinstance(remedy, PHRemedy) and not remedy.empty:
        text += f" The model allowing non-proportional hazards was {remedy_model(remedy, words)}."
    return text


def mi_sentence(mi: pd.DataFrame | None, words: Words) -> str:
    if mi is None or mi.empty:
        return ""
    missing = mi.attrs.get("imputed", [])
    what = _names([in_sentence(words.label(v)) for v in missing]) if missing else "the incompletely recorded candidates"
    hrs = "; ".join(f"{term_label(r['term'], words)} {_hr_string(r['hr'], r['lower'], r['upper'], r['p'])}"
                    for _, r in mi.iterrows())
    return (f"With {what} added and missing values multiply imputed ({mi.attrs.get('m')} imputations, "
            f"{mi.attrs.get('n_mi')} patients), the estimates were {hrs}.")


def reference_levels_text(references: dict, words: Words) -> str:
    return "; ".join(f"{in_sentence(words.label(v))}: {words.level(v, lev)}" for v, lev in references.items())


# ----------------------------------------------------------------------------- results.json
UNI_COLS = ["endpoint", "variable", "level", "reference", "n", "events", "hr", "lower", "upper",
            "p", "df", "p_lr", "n_model", "events_model"]


def _level_code(row) -> str:
    return row["level"]


def _uni_records(uni: UnivariableResult, words: Words) -> list[dict]:
    t = uni.table.copy()
    t["level"] = [w_unit if lev == "per unit" else lev
                  for lev, w_unit in zip(t["level"], [words.unit(v) for v in t["variable"]])]
    return t[UNI_COLS].to_dict(orient="records")


def summarise_for_results(data: PrognosticData, univariable: dict, result, ph=None, remedy=None,
                          immortal=None, sparse: pd.DataFrame | None = None, firth: pd.DataFrame | None = None,
                          mi: pd.DataFrame | None = None, paper=None, pfs=None,
                          words: Words | None = None) -> dict:
    """The ``cox`` section of results.json, with ready-formatted strings under ``text``.

    ``result`` is the rule-selected OS model (keys ``multivariable``, ``model``, text ``mv_*`` and the
    summary keys); ``paper`` the published-specification model (``multivariable_paper``,
    ``model_paper``, text ``pm_*``); ``pfs`` the rule-selected PFS model (``*_pfs``, text ``pfs_mv_*``).
    Generated paragraphs for the prose: ``published_paragraph``, ``exposure_paragraph``,
    ``pfs_paragraph``, ``checks_paragraph``, ``mi_sentence`` ("" when the part is absent).
    """
    w = words or words_for(data)
    choices = data.choices
    summary_keys = ("n", "events", "n_missing", "epv", "n_params", "concordance", "global_lr", "selected")
    uni_os = univariable["os"]
    text = {"n_candidates": str(len(data.candidates)),
            "entry_p": f"{choices['entry_p']:g}" if choices["entry_p"] is not None else "none",
            "reference_levels": reference_levels_text({v: data.references[v] for v in data.candidates
                                                      if v in data.references}, w)}
    payload: dict = {
        "choices": {"candidate_covariates": data.candidates, "reference_levels": data.references,
                    "merged_levels": choices["merged_levels"], "paper_model": data.published_model,
                    "entry_p": choices["entry_p"], "entry_test": choices["entry_test"],
                    "cycles_coding": choices["exposure_coding"], "landmark_months": choices["landmark_months"],
                    "seed": choices.get("seed")},
        "reference_levels": {v: r for v, r in data.references.items() if v in data.candidates},
        "univariable": _uni_records(uni_os, w),
    }
    caveats = list(uni_os.caveats)
    for _, row in uni_os.table[~uni_os.table["reference"]].iterrows():
        text[f"uv_{result_key(_term_name(row))}"] = _hr_string(row["hr"], row["lower"], row["upper"], row["p"])
    if is_estimable(result):
        text.update({(k[3:] if k[3:] in summary_keys else k): v for k, v in _model_text(result, "mv_", w).items()})
        payload["multivariable"] = _model_terms(result)
        payload["model"] = _model_summary(result)
        payload["epv"] = result.epv
        caveats = list(result.caveats)
    else:
        text["selected"] = not_estimable_text(result)
    if is_estimable(ph):
        t = ph.table.assign(label=["Global" if v == "GLOBAL" else w.label(v) for v in ph.table["term"]])
        payload["ph_test"] = t[["term", "label", "df", "chisq", "p", "chisq_gt", "p_gt"]].to_dict(orient="records")
        text["ph_global_p"] = format_p(ph.global_p)
        text["ph_violated"] = ", ".join(in_sentence(w.label(v)) for v in ph.violated) or "none"
    if remedy is not None and is_estimable(remedy):
        payload["ph_remedy"] = remedy.table.drop(columns=["se"], errors="ignore").assign(
            model=remedy_model(remedy, w)).to_dict(orient="records") if not remedy.empty else []
    payload["warnings"] = caveat_lines(caveats, w)
    if "pfs" in univariable:
        t = univariable["pfs"].table
        payload["univariable_pfs"] = t.assign(label=[w.label(v) for v in t["variable"]])[
            ["endpoint", "variable", "label", *[c for c in t.columns if c not in ("endpoint", "variable")]]
        ].to_dict(orient="records")
    if paper is not None and is_estimable(paper):
        payload["multivariable_paper"] = _model_terms(paper)
        payload["model_paper"] = _model_summary(paper)
        text.update(_model_text(paper, "pm_", w))
        if is_estimable(result):
            text["selected_vs_paper"] = compare_selection(result, paper, w, data.arm_only)
    if pfs is not None and is_estimable(pfs):
        payload["multivariable_pfs"] = _model_terms(pfs)
        payload["model_pfs"] = _model_summary(pfs)
        text.update(_model_text(pfs, "pfs_mv_", w))
    if immortal is not None and is_estimable(immortal):
        t = immortal.table.copy()
        t["approach"] = [APPROACH_LABELS[a].format(months=immortal.landmark_months) for a in t["approach"]]
        t["label"] = [w.label(v) for v in t["variable"]]
        cols = ["approach", "term", "label", "hr", "lower", "upper", "p", "n", "events"]
        payload["landmark"] = t[immortal.table["approach"] == "landmark"][cols].to_dict(orient="records")
        payload["paper_style"] = t[immortal.table["approach"] == "baseline"][cols].to_dict(orient="records")
        payload["landmark_months"] = immortal.landmark_months
        payload["time_varying"] = immortal.time_varying.drop(columns=[], errors="ignore").to_dict(orient="records")
        for _, r in immortal.table.iterrows():
            kind = APPROACH_KEYS[r["approach"]]
            text[f"{kind}_{r['term'].split('[')[0]}"] = _hr_string(r["hr"], r["lower"], r["upper"], r["p"])
            text[f"{kind}_n"] = str(int(r["n"]))
            text[f"{kind}_events"] = str(int(r["events"]))
        text["landmark_months"] = f"{immortal.landmark_months:g}"
    if sparse is not None:
        payload["sparse_levels"] = sparse.assign(label=[w.label(v) for v in sparse["variable"]])[
            ["variable", "label", "level", "n", "events"]].to_dict(orient="records")
        for _, r in sparse.iterrows():
            text[f"sparse_{result_key(r['variable'] + '[' + r['level'] + ']')}_n"] = str(int(r["n"]))
    if firth is not None:
        payload["firth"] = firth.to_dict(orient="records")
        for _, r in firth.iterrows():
            text[f"firth_{result_key(r['term'])}"] = _hr_string(r["hr_firth"], r["lower_firth"], r["upper_firth"],
                                                                r["p_firth"])
    if sparse is not None:
        text.update(sparse_sentences(sparse, firth, w, choices["sparse_min_n"]))
    if mi is not None:
        payload["mice"] = {"m": mi.attrs.get("m"), "seed": mi.attrs.get("seed"), "n": mi.attrs.get("n_mi"),
                           "n_complete_case": mi.attrs.get("n_cc"), "terms": mi.to_dict(orient="records")}
        text["mi_m"] = str(mi.attrs.get("m"))
        text["mi_n"] = str(mi.attrs.get("n_mi"))
        for _, r in mi.iterrows():
            text[f"mi_{result_key(r['term'])}"] = _hr_string(r["hr"], r["lower"], r["upper"], r["p"])
    text["published_paragraph"] = published_paragraph(paper, result, w, data.arm_only, choices["sparse_min_n"])
    text["published_methods"] = published_methods(data, w)
    text["exposure_paragraph"] = exposure_paragraph(immortal, w)
    text["exposure_methods"] = exposure_methods(data, w)
    text["pfs_paragraph"] = pfs_paragraph(pfs, w)
    text["checks_paragraph"] = checks_paragraph(ph, remedy, mi, w, data.post_baseline)
    text["mi_sentence"] = mi_sentence(mi, w)
    text["mi_methods"] = mi_methods(mi, w)
    payload["text"] = text
    return payload


def exposure_methods(data: PrognosticData, words: Words) -> str:
    """Methods paragraph on the post-baseline exposure counts ("" without them)."""
    if not data.has_exposure:
        return ""
    names = _names([in_sentence(words.label(v)) for v in data.exposures.values()])
    coding = ("as counts (HR per additional unit)" if data.choices["exposure_coding"] == "per_cycle"
              else f"as two levels (fewer than {data.choices['exposure_cutpoint']:g} vs more)")
    return (f"The treatment exposure counts ({names}) were coded {coding}. Such a count is only known once "
            "treatment is over, and a patient has to stay alive to accumulate it: used as a baseline covariate, it "
            "credits long-lived patients with the survival that made their exposure possible, which pushes its HR "
            "below 1 (immortal-time bias). We therefore show the baseline-count estimate next to a "
            f"landmark analysis (only patients at risk at {data.choices['landmark_months']:g} months, exposure "
            "counted up to then, follow-up from then) and a time-varying Cox model in which the cumulative count "
            "rises at each administration date (counting-process data; R `coxph(Surv(start, stop, event) ~ ...)`).")


def mi_methods(mi: pd.DataFrame | None, words: Words) -> str:
    if mi is None or not mi.attrs.get("imputed"):
        return "No candidate variable had missing values here, so no imputation was needed."
    names = _names([in_sentence(words.label(v)) for v in mi.attrs["imputed"]])
    return (f"{names[:1].upper() + names[1:]} {'is' if len(mi.attrs['imputed']) == 1 else 'are'} missing for some "
            f"patients; the rule-selected model with {'it' if len(mi.attrs['imputed']) == 1 else 'them'} added was "
            f"fitted on complete cases and after {mi.attrs.get('m')} imputations with a fixed seed.")


# ----------------------------------------------------------------------------- one call per notebook cell
def univariable_table(univariable: dict, endpoint: str, words: Words | None = None) -> pd.DataFrame:
    """The univariable table of ``endpoint`` (a note when the data have no such endpoint)."""
    if endpoint not in univariable:
        return _note_table(f"{ENDPOINT_LABELS[endpoint]} is not recorded in these data.")
    return make_cox_table(univariable[endpoint], words)


def multivariable_table(result, words: Words | None = None, endpoint: str = "os") -> pd.DataFrame:
    """The multivariable table (a note when the endpoint is absent or no model could be built)."""
    if result is None:
        return _note_table(f"{ENDPOINT_LABELS[endpoint]} is not recorded in these data.")
    return make_cox_table(result, words)


def models_table(paper, result, words: Words | None = None, published: list | None = None) -> pd.DataFrame:
    """The published-specification model next to the rule-selected one (the latter alone without a
    published model)."""
    models = {"Published specification": paper, "Rule-selected": result} if paper is not None \
        else {"Rule-selected": result}
    if not any(is_estimable(m) for m in models.values()):
        return _note_table("No multivariable model could be fitted.")
    return make_model_comparison_table(models, published if paper is not None else None, words)


def _message_figure(text: str):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 1))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def forest_figure(result, words: Words | None = None):
    """Forest plot of the rule-selected model (a message when it is not estimable)."""
    if not is_estimable(result):
        return _message_figure(f"Multivariable model {not_estimable_text(result)}")
    return plot_forest(result, words=words)


def schoenfeld_figure(ph, words: Words | None = None):
    """Scaled Schoenfeld residual plots (a message when the PH test could not be computed)."""
    if not is_estimable(ph):
        return _message_figure(f"Proportional-hazards test {not_estimable_text(ph)}")
    return plot_schoenfeld(ph, words)


def published_methods(data: PrognosticData, words: Words) -> str:
    """Methods sentence on the published model specification ("" without a published comparison)."""
    if not data.published_model:
        return ""
    names = _names([in_sentence(words.label(v)) for v in data.published_model])
    return (f"The publication names {len(data.published_model)} independent factors ({names}) but no hazard "
            "ratios, so we also fitted those factors together (the published model specification) and show it "
            "next to the rule-selected model.")
