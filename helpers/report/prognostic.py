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
from helpers.report.formatting import join_words as _names
from helpers.report.formatting import (count_of, format_ci, format_count, format_not_estimable, format_number, format_p, in_sentence,
                                       ordinal, without_unit)
from helpers.stats.types import Caveat, NotEstimable, is_estimable

ENDPOINT_LABELS = {"os": "Overall survival", "pfs": "Progression-free survival"}
ENDPOINT_EVENTS = {"os": "deaths", "pfs": "events (progression or death)"}
APPROACH_LABELS = {"baseline": "As a baseline covariate (biased)", "landmark": "Landmark at {months:g} months",
                   "time_varying": "Time-varying model"}
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


def result_key(term: str) -> str:
    """results.json key of a model term: ``x[< 70]`` -> ``x_lt_70``."""
    for old, new in ((">=", "_ge_"), ("<=", "_le_"), (">", "_gt_"), ("<", "_lt_"), ("+", "_plus_")):
        term = term.replace(old, new)
    term = re.sub(r"[^0-9A-Za-z]+", "_", term)
    return term.strip("_")


def term_label(term: str, words: Words | None = None, prose: bool = False) -> str:
    """Readable name of a model column: ``var[level]`` -> "Label: level", a numeric ``var`` ->
    "Label (per unit)", ``var:log(t)`` -> "Label (per unit) × log(months)". ``prose``: the form inside a
    sentence, "label level" ("performance score < 70"), a "Yes" level by the label alone."""
    w = _w(words)
    if term.endswith(":log(t)"):
        return f"{term_label(term[: -len(':log(t)')], w, prose)} × log(months)"
    m = re.fullmatch(r"(.+)\[(.+)\]", term)
    if m:
        label, level = w.label(m.group(1)), w.level(m.group(1), m.group(2))
        if not prose:
            return f"{label}: {level}"
        return in_sentence(label) if level == "Yes" else f"{in_sentence(label)} {level}"
    return f"{in_sentence(w.label(term)) if prose else w.label(term)} ({w.unit(term)})"


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


def _epv_text(epv: float) -> str:
    """Events per parameter in prose: whole numbers from 10 up ("106"), one decimal below ("5.0")."""
    return format_number(epv, 0 if epv is not None and epv >= 10 else 1)


def _note_table(text: str) -> pd.DataFrame:
    return pd.DataFrame({"Note": [text]})


# ----------------------------------------------------------------------------- caveats in words
def caveat_text(caveat: Caveat, words: Words | None = None) -> str:
    """One caveat in one sentence."""
    w = _w(words)
    d = caveat.data
    endpoint = ENDPOINT_LABELS.get(d.get("endpoint"), "")
    if caveat.kind == "sparse_level":
        return (f"{w.label(d['variable'])} = '{w.level(d['variable'], d['level'])}' has {format_count(d['n'])} patient"
                f"{'s' if d['n'] != 1 else ''} and {format_count(d['events'])} event{'s' if d['events'] != 1 else ''}"
                f"{f' ({endpoint})' if endpoint else ''}: its hazard ratio is unstable; see the Firth-penalised estimate")
    if caveat.kind == "monotone_likelihood":
        terms = ", ".join(term_label(t, w) for t in d.get("terms", []))
        return (f"monotone likelihood for {terms}: every event occurs at the extreme value of the covariate in "
                "its risk set, so the maximum-likelihood HR is infinite or zero; the HR is reported as not "
                "estimable (the likelihood-ratio test remains valid); see the Firth-penalised estimate")
    if caveat.kind == "low_epv":
        return (f"{format_count(d['events'])} events for {format_count(d['parameters'])} parameters: {d['epv']:.1f} events per parameter "
                f"(< {d['threshold']:g}); estimates may be biased and unstable")
    if caveat.kind == "immortal_time":
        names = _names([in_sentence(w.label(v)) for v in d["variables"]])
        verb = "is" if len(d["variables"]) == 1 else "are"
        if d.get("timing") == "unrecorded":
            return (f"{names} {verb} decided after the start of treatment at a date the data do not record, so "
                    "neither the landmark nor the time-varying model can place it in time: it enters both as if "
                    "known at the start, and its HR keeps the immortal-time bias towards benefit (a patient must "
                    "live long enough to receive it)")
        if d.get("approach") == "landmark_time_varying":
            return (f"{names} {verb} counted after the start of treatment: the rows \"as a baseline covariate\" "
                    "carry immortal-time bias (a patient must live long enough to accumulate the count); the "
                    f"landmark rows count only what was received by {d['landmark_months']:g} months, among the "
                    "patients still at risk then, and the time-varying rows update the count at each "
                    "administration date")
        return (f"{names} {verb} known only after the start of treatment "
                "but entered as baseline covariates: patients who live longer have more time to accumulate "
                "them, which biases the HR towards benefit (immortal time)")
    if caveat.kind == "extrapolation":
        arms = _names([w.level("arm", a) for a in d["arms"]])
        return (f"{in_sentence(w.label(d['variable']))} is zero by design outside the {arms} arm, so its HR "
                "compares patients of different arms as well as different exposures; "
                + ("with the arm in the same model the arm term describes a count of zero that no patient of that "
                   "arm has (an extrapolation)" if d.get("with_arm") else
                   "without the arm in the model it absorbs the difference between the arms (an extrapolation "
                   "beyond the patients who could have any value of it)"))
    if caveat.kind == "ph_violation":
        return (f"proportional hazards rejected for {w.label(d['term']) if d['term'] != 'GLOBAL' else 'the model as a whole'} "
                f"(score test on the Kaplan-Meier time scale, χ² = {d['chisq']:.2f}, df = {d['df']}, {_p_statement(d['p'])})")
    if caveat.kind == "categorical_not_imputed":
        names = _names([w.label(v) for v in d["variables"]])
        text = (f"Categorical covariates with missing values ({names}) are not imputed (predictive mean matching "
                "imputes numeric variables only)")
        if d.get("in_model"):
            n = d.get("n_excluded", 0)
            text += (f"; {_names([in_sentence(w.label(v)) for v in d['in_model']])} "
                     f"{'stays' if len(d['in_model']) == 1 else 'stay'} in the model and the imputation analysis "
                     f"uses the patients with {'it' if len(d['in_model']) == 1 else 'them'} recorded "
                     f"({format_count(n)} patient{'s' if n != 1 else ''} excluded)")
        if d.get("left_out"):
            text += (f"; {_names([in_sentence(w.label(v)) for v in d['left_out']])} "
                     f"{'is' if len(d['left_out']) == 1 else 'are'} not in the model and left out")
        return text
    if caveat.kind == "non_convergence":
        return "the Cox model did not converge; its estimates are not reported"
    if caveat.kind == "no_events":
        return "no events among the analysed patients: no Cox model"
    return caveat.kind.replace("_", " ")


_CAVEAT_CLASS = {"sparse_level": "SparseLevelWarning", "monotone_likelihood": "SeparationWarning",
                 "low_epv": "LowEventsPerVariableWarning", "ph_violation": "ProportionalHazardsWarning",
                 "immortal_time": "ImmortalTimeWarning", "extrapolation": "ExtrapolationWarning"}


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
#: reason codes of a model row whose hazard ratio could not be estimated (the ``note`` column)
NOTE_REASONS = ("monotone_likelihood", "non_convergence")


def _not_estimable_row(row) -> bool:
    return str(row["note"]) in NOTE_REASONS


def _hr_text(row, digits=2) -> str:
    if row["reference"]:
        return "1 (reference)"
    if _not_estimable_row(row):
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
                   "n": format_count(int(row["n"])), "Events": format_count(int(row["events"])),
                   "HR (95% CI)": _hr_text(row),
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
        ("Patients (complete cases)", f"{format_count(result.n)} ({format_count(result.n_missing)} excluded for "
                                      "missing data)"),
        ("Events", format_count(result.events)),
        ("Parameters", format_count(result.n_params)),
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
    summary = {"Patients / events": lambda r: f"{format_count(r.n)} / {format_count(r.events)}",
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
        "Chi-square (score test)": [format_number(v, 2) for v in t["chisq"]],
        "P": [format_p(v) for v in t["p"]],
        "Chi-square (Grambsch-Therneau approximation)": [format_number(v, 2, "–") for v in t["chisq_gt"]],
        "P (approx.)": [format_p(v) for v in t["p_gt"]],
    })


def make_remedy_table(remedy: PHRemedy, words: Words | None = None) -> pd.DataFrame | None:
    """Display table of the PH remedy (the model description is :func:`remedy_note`); None when no term
    violated proportional hazards (there is no model to show, and the prose says so)."""
    if isinstance(remedy, NotEstimable):
        return _note_table(f"Model allowing non-proportional hazards {not_estimable_text(remedy)}.")
    if remedy.empty:
        return None
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
    parts += [f"{term_label(t, w)} × log(months)" for t in remedy.time_terms]
    if remedy.time_terms and not remedy.exact:
        parts.append(f"× log(t) on {format_count(remedy.n_cuts)} event-time quantiles (more than {remedy.max_rows:,} rows "
                     "for every event time)")
    return "; ".join(parts)


def remedy_note(remedy: PHRemedy, words: Words | None = None) -> str:
    """Footnote of the PH-remedy table: how the model was changed."""
    if isinstance(remedy, NotEstimable) or remedy.empty:
        return ""
    text = "Model: " + remedy_model(remedy, words) + "."
    if remedy.time_terms:
        text += (" A term × log(months) is the change in log HR per unit of log(time): with $\\beta$ the "
                 "coefficient of the variable and $\\gamma$ that of the term, $\\mathrm{HR}(t) = "
                 "\\exp(\\beta + \\gamma \\ln t)$.")
    return text


def make_immortal_time_table(comparison: ImmortalTimeComparison, words: Words | None = None) -> pd.DataFrame:
    """Display table of :func:`helpers.analyses.prognostic.compare_immortal_time`."""
    if isinstance(comparison, NotEstimable):
        return _note_table(f"Landmark and time-varying analyses {not_estimable_text(comparison)}.")
    w = _w(words)
    t = comparison.table

    def covariate(term, var):
        if "[" in term:
            return term_label(term, w)
        unit = w.unit(var) if comparison.coding == "per_cycle" else ">= cutpoint vs fewer"
        return f"{w.label(var)} ({unit})"

    population = t["population"] if "population" in t else [None] * len(t)
    return pd.DataFrame({
        "Covariate": [covariate(term, v) for term, v in zip(t["term"], t["variable"])],
        "Patients of": ["all arms" if p is None else _names([w.level("arm", a) for a in p]) for p in population],
        "Approach": [APPROACH_LABELS[a].format(months=comparison.landmark_months) for a in t["approach"]],
        "Patients": [_count_or_blank(v) for v in t["n"]], "Events": [_count_or_blank(v) for v in t["events"]],
        "HR (95% CI)": [f"{format_number(h, 2)} ({format_ci(a, b, 2)})" if np.isfinite(h)
                        else format_not_estimable(NotEstimable("hazard_ratio", "monotone_likelihood"))
                        for h, a, b in t[["hr", "lower", "upper"]].to_numpy(dtype=float)],
        "P (Wald)": [format_p(p) if np.isfinite(p) else "—" for p in t["p"].to_numpy(dtype=float)],
    }).sort_values(["Patients of", "Covariate"], kind="stable").reset_index(drop=True)


def _count_or_blank(value) -> str:
    """A count of a table cell with its thousands separator; "" for a missing one (as before)."""
    return "" if value is None or pd.isna(value) else format_count(value)


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
        "CI and P": ["profile penalised likelihood, penalised LR" if m == "profile" else "Wald at Firth estimate"
                     for m in firth["ci_method"]],
    })


def sparse_note(sparse: pd.DataFrame, firth: pd.DataFrame | None = None, words: Words | None = None,
                min_n: int = 5) -> str:
    """Footnote naming the sparse levels that motivated the Firth model (and saying when none was fitted)."""
    w = _w(words)
    if sparse.empty:
        text = f"No sparse level (all levels have at least {format_count(min_n)} patients and one event)."
        if firth is not None and firth.empty:
            text += (" No separation either: the maximum-likelihood model needs no Firth correction, "
                     "which was not fitted.")
        return text
    items = [f"{w.label(r['variable'])} {w.level(r['variable'], r['level'])} (n = {format_count(r['n'])}, "
             f"{format_count(r['events'])} events)"
             for _, r in sparse.iterrows()]
    return "Sparse levels: " + "; ".join(items) + ". Firth model with Efron ties."


def make_mi_table(mi: pd.DataFrame | None, words: Words | None = None) -> pd.DataFrame:
    """Display table: term, complete-case HR (95% CI) and P, pooled MI HR (95% CI), P and FMI."""
    if mi is None:
        return _note_table("No candidate variable with missing values (or no multivariable model): "
                           "no imputation analysis.")
    return pd.DataFrame({
        "Term": [term_label(t, words) for t in mi["term"]],
        f"Complete cases (n = {format_count(mi.attrs.get('n_cc'))}) HR (95% CI)":
            [f"{format_number(h, 2)} ({format_ci(l, u, 2)})" for h, l, u in mi[["hr_cc", "lower_cc", "upper_cc"]].to_numpy()],
        "P (CC)": [format_p(p) for p in mi["p_cc"]],
        f"Multiple imputation (n = {format_count(mi.attrs.get('n_mi'))}, m = {format_count(mi.attrs.get('m'))}) "
        "HR (95% CI)":
            [f"{format_number(h, 2)} ({format_ci(l, u, 2)})" for h, l, u in mi[["hr", "lower", "upper"]].to_numpy()],
        "P (MI)": [format_p(p) for p in mi["p"]],
        "FMI": [format_number(f, 2) for f in mi["fmi"]],
    })


def mi_note(mi: pd.DataFrame | None, words: Words | None = None) -> str:
    """Footnote of :func:`make_mi_table`: the variables imputed and the caveats (categorical ones not imputed)."""
    if mi is None:
        return ""
    w = _w(words)
    text = ""
    if mi.attrs.get("imputed"):
        text = f"Imputed: {_names([w.label(v) for v in mi.attrs['imputed']])}. "
    return text + caveat_note(mi.attrs.get("caveats", []), words)


def mi_display(mi: pd.DataFrame | None, words: Words | None = None):
    """The multiple-imputation table with its footnote (Markdown)."""
    from helpers.report.formatting import show_table
    return show_table(make_mi_table(mi, words), footnote=mi_note(mi, words) or None)


def immortal_time_display(comparison, words: Words | None = None):
    """The landmark / time-varying table with its footnote (Markdown), or None when the study has no exposure
    part and no post-baseline covariates (the notebook cell then has no output and is left out)."""
    from helpers.report.formatting import show_table
    if comparison is None:
        return None
    return show_table(make_immortal_time_table(comparison, words), footnote=immortal_time_note(comparison, words))


# ----------------------------------------------------------------------------- figures
def plot_forest(result: MultivariableResult, title: str | None = None, words: Words | None = None):
    """Forest plot of a multivariable model: HR with 95% CI on a log axis.

    One row per level: reference levels as a grey diamond at 1 labelled "reference", squares with area
    proportional to the precision of the log HR (1 / SE^2), n and events per level on the left, HR (95% CI)
    on the right; below the axis, "lower hazard" and "higher hazard" on either side of 1.
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt
    w = _w(words)
    from helpers.report.figures import DOUBLE_WIDTH_IN, FONT_SMALL_PT, OKABE_ITO, style_context

    LABEL_X, N_X = -1.55, -0.05   # label and n/events columns, in axes-width units left of the axis
    table = result.table
    lines = []  # (label, row, kind)
    for var, block in table.groupby("variable", sort=False):
        numeric = len(block) == 1 and not block["reference"].iloc[0]
        if numeric:
            lines.append((f"{w.label(var)} ({w.unit(var)})", block.iloc[0], "level"))
            continue
        lines.append((w.label(var), None, "header"))
        for _, row in block.iterrows():
            lines.append((f"    {w.level(var, row['level'])}", row, "level"))
    est = table[~table["reference"] & table["se"].notna() & np.isfinite(table["hr"].astype(float))]
    finite = est[["lower", "upper"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    lo = min(0.2, np.nanmin(finite) * 0.8) if finite.size else 0.2
    hi = max(5.0, np.nanmax(finite) * 1.25) if finite.size else 5.0
    precision = (1 / est["se"].astype(float) ** 2) if len(est) else pd.Series(dtype=float)
    pmax = float(precision.max()) if len(precision) else 1.0
    with style_context(), mpl.rc_context({"font.size": FONT_SMALL_PT}):   # the columns are set like a table
        height = 0.9 + 0.19 * len(lines)
        fig, ax = plt.subplots(figsize=(DOUBLE_WIDTH_IN, height))
        colour = OKABE_ITO.get("blue", "C0")
        for i, (label, row, kind) in enumerate(lines):
            y = len(lines) - i
            weight = "bold" if kind == "header" else "normal"
            ax.text(LABEL_X, y, label, transform=ax.get_yaxis_transform(), ha="left", va="center",
                    fontweight=weight)
            if kind == "header" or row is None:
                continue
            ax.text(N_X, y, f"{format_count(int(row['n']))}/{format_count(int(row['events']))}", transform=ax.get_yaxis_transform(),
                    ha="right", va="center")
            if row["reference"]:
                ax.plot([1], [y], marker="D", color="0.5", markersize=3.5)
                text = "reference"
            elif _not_estimable_row(row) or not np.isfinite(float(row["hr"])):
                text = "not estimable"
            else:
                size = 2.5 + 5.5 * np.sqrt((1 / float(row["se"]) ** 2) / pmax)
                ax.plot([row["lower"], row["upper"]], [y, y], color=colour, lw=1)
                ax.plot([row["hr"]], [y], marker="s", color=colour, markersize=size, linestyle="none")
                text = f"{format_number(row['hr'], 2)} ({format_ci(row['lower'], row['upper'], 2)})"
            ax.text(1.02, y, text, transform=ax.get_yaxis_transform(), ha="left", va="center")
        ax.axvline(1, color="0.3", lw=0.6, ls="--")
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0.3, len(lines) + 0.9)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("Hazard ratio (log scale)", labelpad=13)   # below the "lower/higher hazard" arrows
        ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if lo <= t <= hi]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.annotate("\u2190 lower hazard", xy=(1, 0), xycoords=("data", "axes fraction"), xytext=(-4, -14),
                    textcoords="offset points", ha="right", va="top")
        ax.annotate("higher hazard \u2192", xy=(1, 0), xycoords=("data", "axes fraction"), xytext=(4, -14),
                    textcoords="offset points", ha="left", va="top")
        top = len(lines) + 0.7
        for x, text, ha in ((LABEL_X, "Variable", "left"), (N_X, "n/events", "right"), (1.02, "HR (95% CI)", "left")):
            ax.text(x, top, text, transform=ax.get_yaxis_transform(), ha=ha, va="center", fontweight="bold")
        if title:
            ax.set_title(title)
        fig.subplots_adjust(left=0.42, right=0.70, bottom=0.6 / height, top=1 - 0.05 / height)
    return fig


def plot_calibration(calibration):
    """Predicted against observed survival at the milestone, one point per risk group (Kaplan-Meier
    95% CI as a vertical bar), with the line of perfect calibration."""
    import matplotlib.pyplot as plt
    try:
        from helpers.report.figures import COLUMN_WIDTH_IN, OKABE_ITO, style_context
    except ImportError:  # pragma: no cover
        import contextlib
        style_context, OKABE_ITO, COLUMN_WIDTH_IN = contextlib.nullcontext, {"blue": "C0"}, 3.35
    t = calibration.table
    with style_context():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, COLUMN_WIDTH_IN))
        ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=0.8)
        colour = OKABE_ITO.get("blue", "C0")
        lower = (t["observed"] - t["lower"]).clip(lower=0).fillna(0)
        upper = (t["upper"] - t["observed"]).clip(lower=0).fillna(0)
        ax.errorbar(t["predicted"], t["observed"], yerr=[lower, upper], fmt="o", color=colour, ms=4, capsize=2)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"Predicted survival at {calibration.months:g} months")
        ax.set_ylabel(f"Observed survival at {calibration.months:g} months (Kaplan-Meier)")
        fig.tight_layout()
    return fig


def calibration_figure(calibration):
    """The calibration plot (a message when it could not be computed)."""
    if not is_estimable(calibration):
        return _message_figure(f"Calibration {not_estimable_text(calibration)}")
    return plot_calibration(calibration)


#: Candidate month ticks of the Schoenfeld plots' Kaplan-Meier transformed time axis.
_MONTH_TICKS = (1, 2, 3, 6, 9, 12, 18, 24, 30, 36, 48, 60, 72, 84, 96, 120)


def _spline_smooth(x: np.ndarray, y: np.ndarray, var: float, grid: np.ndarray, df: int = 4):
    """Natural cubic spline regression of y on x evaluated at ``grid``, with its standard error
    sqrt(var * diag(P (X'X)^-1 P')) for residuals of variance ``var``, as R ``plot.cox.zph`` draws them:
    ``ns(c(grid, x), df, intercept = TRUE)``, i.e. inner knots at quantiles of the grid and the data
    together (tests/reference/schoenfeld_bands.R). Fewer distinct x: fewer df."""
    from patsy import build_design_matrices, dmatrix
    df = int(min(df, len(np.unique(x))))
    if df < 2:
        fit = np.full(len(grid), float(np.mean(y)))
        return fit, np.full(len(grid), np.sqrt(var / max(len(y), 1)))
    if df < 3:   # a straight line
        X, P = np.column_stack([np.ones_like(x), x]), np.column_stack([np.ones_like(grid), grid])
    else:   # knots at quantiles of the grid and the data together, as plot.cox.zph's ns(c(pred.x, x))
        knots = np.quantile(np.concatenate([grid, x]), np.arange(1, df - 1) / (df - 1))
        lo, hi = float(min(x.min(), grid.min())), float(max(x.max(), grid.max()))
        design = dmatrix("cr(x, knots=knots, lower_bound=lo, upper_bound=hi) - 1",
                         {"x": x, "knots": knots, "lo": lo, "hi": hi})
        X = np.asarray(design)
        P = np.asarray(build_design_matrices([design.design_info], {"x": grid})[0])
    xtx_inv = np.linalg.pinv(X.T @ X)
    fit = P @ (xtx_inv @ X.T @ y)
    se = np.sqrt(np.maximum(var * np.einsum("ij,jk,ik->i", P, xtx_inv, P), 0.0))
    return fit, se


def plot_schoenfeld(ph: PHTest, words: Words | None = None):
    """Scaled Schoenfeld residuals per coefficient on the Kaplan-Meier transformed time scale of the PH
    test (``cox.zph(transform = "km")``), as R ``plot.cox.zph``: a natural-spline smoother (4 df) with
    ±2 SE bands, and the model coefficient (dashed). The x axis is labelled in months at the times
    that correspond to its positions.

    A flat smoother at the coefficient is consistent with proportional hazards; a trend means the log
    hazard ratio changes with time. The P value is the score test of the table.
    """
    import textwrap

    import matplotlib.pyplot as plt

    from helpers.report.formatting import format_p_statement
    from helpers.stats.cox import km_time_transform, schoenfeld_variance
    try:
        from helpers.report.figures import (COLUMN_WIDTH_IN, OKABE_ITO, RASTER_POINTS_ABOVE, style_context,
                                            thin_for_display)
    except ImportError:  # pragma: no cover
        import contextlib
        style_context, OKABE_ITO, COLUMN_WIDTH_IN = contextlib.nullcontext, {"blue": "C0", "vermillion": "C1"}, 3.35
        RASTER_POINTS_ABOVE = 2000
        def thin_for_display(n, most=5000):
            return np.arange(n), 1
    fit = ph.fit
    engine = fit.engine
    res = ph.residuals()
    times = res.pop("time").to_numpy()
    x = km_time_transform(engine, times)
    order = np.argsort(x, kind="stable")
    shown, step = thin_for_display(len(x))
    shown = order[shown]
    variance = np.diag(schoenfeld_variance(engine))
    cols = list(res.columns)
    ncol = 2 if len(cols) > 1 else 1
    nrow = int(np.ceil(len(cols) / ncol))
    term_of = {c: v for v, cs in fit.design.terms.items() for c in cs}
    p_of = dict(zip(ph.table["term"], ph.table["p"]))
    grid = np.linspace(x.min(), x.max(), 40)     # plot.cox.zph(nsmo = 40): its knots depend on the grid too
    # month ticks: round months within follow-up, mapped to the transformed scale, at least 0.07 apart
    ticks, labels = [], []
    for m in _MONTH_TICKS:
        if times.min() <= m <= times.max():
            g = float(km_time_transform(engine, [m])[0])
            if not ticks or g - ticks[-1] >= 0.07:
                ticks.append(g)
                labels.append(f"{m:g}")
    blue, red = OKABE_ITO.get("blue", "C0"), OKABE_ITO.get("vermillion", "C1")
    with style_context():
        width = 2 * COLUMN_WIDTH_IN if ncol > 1 else COLUMN_WIDTH_IN
        fig, axes = plt.subplots(nrow, ncol, figsize=(width, 2.5 * nrow), squeeze=False)
        for k, (ax, col, v) in enumerate(zip(axes.ravel(), cols, variance)):
            y = res[col].to_numpy()
            ax.scatter(x[shown], y[shown], s=5, color="0.6", alpha=0.7, linewidths=0, zorder=2,
                       rasterized=len(shown) > RASTER_POINTS_ABOVE)   # many residuals: one image layer
            smooth, se = _spline_smooth(x, y, float(v), grid)
            ax.fill_between(grid, smooth - 2 * se, smooth + 2 * se, color=blue, alpha=0.18, lw=0, zorder=1)
            ax.plot(grid, smooth, color=blue, lw=1.1, zorder=3)
            ax.axhline(fit.coef[col], color=red, ls="--", lw=0.8, zorder=3)
            ax.set_title(textwrap.fill(term_label(col, words), 48)
                         + f"\nPH test {format_p_statement(p_of[term_of[col]])}", loc="left")
            ax.set_xticks(ticks, labels)
            ax.set_xlim(min(0.0, x.min()), max(x.max(), ticks[-1] if ticks else 0) + 0.02)
            ax.set_xlabel("Months (Kaplan-Meier transformed time scale)")
            if k % ncol == 0:
                ax.set_ylabel("Log hazard ratio over time, β(t)")
        for ax in axes.ravel()[len(cols):]:
            ax.set_visible(False)
        fig.tight_layout()
        if step > 1:   # a registry: say which residuals are drawn
            fig.text(0.0, 0.0, f"Points: every {ordinal(step)} of the {len(x):,} residuals in time order; "
                     "the smoother and its band use all of them.", ha="left", va="top", fontsize="small")
    plt.close(fig)
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
    text = {f"{prefix}n": format_count(result.n), f"{prefix}events": format_count(result.events),
            f"{prefix}n_missing": format_count(result.n_missing), f"{prefix}epv": _epv_text(result.epv),
            f"{prefix}n_params": format_count(result.n_params),
            f"{prefix}concordance": format_number(result.concordance, 2),
            f"{prefix}global_lr": _lr_string(result.lr_test),
            f"{prefix}selected": ", ".join(in_sentence(words.label(v)) for v in result.selected)}
    for _, row in result.table[~result.table["reference"]].iterrows():
        key = f"{prefix}{result_key(_term_name(row))}"
        text[key] = ("not estimable" if _not_estimable_row(row)
                     else _hr_string(row["hr"], row["lower"], row["upper"], row["p"]))
        if pd.notna(row["n"]):   # patients in the level (e.g. pm_<variable>_<level>_n)
            text[f"{key}_n"] = format_count(int(row["n"]))
    return text


def _term_hr_phrases(result: MultivariableResult, variables: list, words: Words) -> list[str]:
    t = result.table
    return [f"{term_label(_term_name(r), words, prose=True)} {_hr_string(r['hr'], r['lower'], r['upper'], r['p'])}"
            for _, r in t[~t["reference"] & t["variable"].isin(variables)].iterrows()
            if not _not_estimable_row(r)]


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
    text = "The model selected by the stated rule " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]) + "."
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
                "firth_sentence": (f"No level had fewer than {format_count(min_n)} patients or no events, and no term separated, "
                                   "so the maximum-likelihood estimates needed no Firth correction")}
    counts = [f"{format_count(r['n'])} patient{'s' if r['n'] != 1 else ''}" + (", no events" if r["events"] == 0 else "")
              for _, r in sparse.iterrows()]
    levels = [f"{in_sentence(w.label(r['variable']))} {w.level(r['variable'], r['level'])}" for _, r in sparse.iterrows()]
    items = [f"{level}, {count}" for level, count in zip(levels, counts)]
    text = {"sparse_levels": "; ".join(items)}
    listed = _names([f"{level} ({count})" for level, count in zip(levels, counts)])
    lead = f"The sparse level{'s were' if len(items) > 1 else ' was'} {listed}"
    profiled = firth[firth["ci_method"] == "profile"] if firth is not None and not firth.empty else None
    if profiled is None or profiled.empty:
        text["firth_sentence"] = lead + "; no Firth model was fitted"
        return text
    estimates = [f"{term_label(r['term'], w, prose=True)}, {_hr_string(r['hr_firth'], r['lower_firth'], r['upper_firth'], r['p_firth'])}"
                 for _, r in profiled.iterrows()]
    text["firth_sentence"] = (
        lead + ". With the variables that have a sparse level added to the multivariable "
        f"model, the Firth-penalised estimate{'s were' if len(estimates) > 1 else ' was'} "
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
            "(the published specification). In that model, " + "; ".join(hrs) + ". ")
    sparse_levels = [r for _, r in paper.table.iterrows() if not r["reference"] and r["level"] != "per unit"
                     and r["n"] < min_n]
    for r in sparse_levels:
        text += (f"The estimate for {in_sentence(w_level(words, r))} rests on {format_count(int(r['n']))} patient"
                 f"{'s' if r['n'] != 1 else ''} (see the sparse levels above). ")
    if is_estimable(result):
        text += compare_selection(result, paper, words, arm_only)
    return text.strip()


def w_level(words: Words, row) -> str:
    return f"{words.label(row['variable'])} {words.level(row['variable'], row['level'])}"


def exposure_paragraph(immortal: ImmortalTimeComparison | NotEstimable | None, words: Words) -> str:
    """The landmark and time-varying estimates of the post-baseline variables, per population ("" without
    exposure data)."""
    if immortal is None or isinstance(immortal, NotEstimable):
        return ""
    t = immortal.table
    population = t["population"] if "population" in t else pd.Series([None] * len(t))
    keys = list(dict.fromkeys(tuple(p) if p is not None else None for p in population))

    def hr_range(values) -> str:
        values = [v for v in values if np.isfinite(v)]
        if not values:
            return "not estimable"
        low, high = min(values), max(values)
        return f"HR {format_number(low, 2)}" if low == high else f"HRs {format_number(low, 2)}–{format_number(high, 2)}"

    parts = []
    for key in keys:
        mask = np.array([(tuple(p) if p is not None else None) == key for p in population])
        block = t[mask]
        per = {a: block[block["approach"] == a].set_index("term")["hr"].astype(float)
               for a in ("baseline", "landmark", "time_varying")}
        who = "all patients" if key is None else f"the {_names([words.level('arm', a) for a in key])} arm"
        n_landmark = int(block.loc[block["approach"] == "landmark", "n"].iloc[0]) if (block["approach"] == "landmark").any() else 0
        common = [term for term in per["baseline"].index if term in per["time_varying"].index
                  and np.isfinite(per["baseline"][term]) and np.isfinite(per["time_varying"][term])]
        closer = sum(abs(np.log(per["time_varying"][term])) < abs(np.log(per["baseline"][term])) for term in common)
        parts.append(f"In {who}, {count_of(closer, len(common), 'variables')} had a hazard ratio closer to 1 in the "
                     f"time-varying model ({hr_range(per['time_varying'])}) than as baseline covariates "
                     f"({hr_range(per['baseline'])}); the landmark model, on the {format_count(n_landmark)} patients "
                     f"still at risk at {immortal.landmark_months:g} months, gave {hr_range(per['landmark'])}.")
    return " ".join(parts) + (" The gap between the baseline-covariate rows and the others shows how much of an "
                              "association immortal time can produce on its own.")


def pfs_paragraph(pfs: MultivariableResult | NotEstimable | None, words: Words) -> str:
    """The rule-selected PFS model in one sentence ("" without progression data)."""
    if pfs is None:
        return ""
    if isinstance(pfs, NotEstimable):
        return f"For progression-free survival the entry rule built no model ({not_estimable_text(pfs)})."
    hrs = _term_hr_phrases(pfs, pfs.selected, words)
    return (f"The same entry rule applied to progression-free survival selected "
            f"{_names([in_sentence(words.label(v)) for v in pfs.selected])} ({format_count(pfs.events)} events, "
            f"{_epv_text(pfs.epv)} events per parameter): " + "; ".join(hrs) + ".")


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
        text += f" The model allowing non-proportional hazards was {remedy_model(remedy, words)} (@tbl-ph-remedy)."
    return text


def mi_sentence(mi: pd.DataFrame | None, words: Words) -> str:
    if mi is None or mi.empty:
        return ""
    missing = mi.attrs.get("imputed", [])
    what = _names([in_sentence(words.label(v)) for v in missing]) if missing else "the incompletely recorded candidates"
    hrs = "; ".join(f"{term_label(r['term'], words, prose=True)} {_hr_string(r['hr'], r['lower'], r['upper'], r['p'])}"
                    for _, r in mi.iterrows())
    return (f"With {what} added and missing values multiply imputed ({format_count(mi.attrs.get('m'))} imputations, "
            f"{format_count(mi.attrs.get('n_mi'))} patients), the estimates were {hrs}.")


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
                          words: Words | None = None, validation=None, calibration=None,
                          profile: pd.DataFrame | None = None, epv_candidates: dict | None = None) -> dict:
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
    text = {"n_candidates": format_count(len(data.candidates)),
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
            text.setdefault(f"{kind}_{result_key(r['term'])}", _hr_string(r["hr"], r["lower"], r["upper"], r["p"]))
            text.setdefault(f"{kind}_n", format_count(int(r["n"])))
            text.setdefault(f"{kind}_events", format_count(int(r["events"])))
        text["landmark_months"] = f"{immortal.landmark_months:g}"
    if sparse is not None:
        payload["sparse_levels"] = sparse.assign(label=[w.label(v) for v in sparse["variable"]])[
            ["variable", "label", "level", "n", "events"]].to_dict(orient="records")
        for _, r in sparse.iterrows():
            text[f"sparse_{result_key(r['variable'] + '[' + r['level'] + ']')}_n"] = format_count(int(r["n"]))
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
        text["mi_m"] = format_count(mi.attrs.get("m"))
        text["mi_n"] = format_count(mi.attrs.get("n_mi"))
        for _, r in mi.iterrows():
            text[f"mi_{result_key(r['term'])}"] = _hr_string(r["hr"], r["lower"], r["upper"], r["p"])
    _issue13_results(payload, text, data, w, paper, validation, calibration, profile, epv_candidates, immortal)
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
    coding = ("entered as counts, with the HR per additional unit" if data.choices["exposure_coding"] == "per_cycle"
              else f"entered as two levels (fewer than {data.choices['exposure_cutpoint']:g} vs more)")
    return (f"The treatment exposure counts, {names}, {coding}. Such a count is only known once "
            "treatment is over, and a patient has to stay alive to accumulate it: used as a baseline covariate, it "
            "credits long-lived patients with the survival that made their exposure possible, which pushes its HR "
            "below 1 (immortal-time bias). We therefore show the baseline-count estimate next to a "
            f"landmark analysis (only patients at risk at {data.choices['landmark_months']:g} months, exposure "
            "counted up to then, follow-up from then) and a time-varying Cox model in which the cumulative count "
            "rises at each administration date (counting-process data).")


def mi_methods(mi: pd.DataFrame | None, words: Words) -> str:
    if mi is None or not mi.attrs.get("imputed"):
        return "No candidate variable had missing values here, so no imputation was needed."
    names = _names([in_sentence(words.label(v)) for v in mi.attrs["imputed"]])
    return (f"{names[:1].upper() + names[1:]} {'is' if len(mi.attrs['imputed']) == 1 else 'are'} missing for some "
            f"patients; the multivariable model with {'it' if len(mi.attrs['imputed']) == 1 else 'them'} added was "
            f"fitted on complete cases and after {format_count(mi.attrs.get('m'))} imputations with a fixed seed.")


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
    models = {"Published specification": paper, "Selected by the stated rule": result} if paper is not None \
        else {"Selected by the stated rule": result}
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
    return (f"The publication names {format_count(len(data.published_model))} independent factors ({names}) but no hazard "
            "ratios, so we also fitted those factors together (the published specification) and show it next to "
            "the model selected by the stated rule.")


# ----------------------------------------------------------------------------- issue 13: the headline table
DASH = "\u2014"


def caveat_note(caveats: list, words: Words | None = None) -> str:
    """The caveats of one table, each distinct one once, in words (its footnote)."""
    seen, out = set(), []
    for c in caveats or []:
        text = caveat_text(c, words)
        if text not in seen:
            seen.add(text)
            out.append(text[:1].upper() + text[1:] + ".")
    return " ".join(out)


def _entry_p_column(entry_test: str) -> str:
    return "p_wald_joint" if entry_test == "wald" else "p_lr"


_hr_text_plain = _hr_text


def make_prognostic_table(univariable: UnivariableResult, multivariable, words: Words | None = None,
                          entry_test: str = "lr") -> pd.DataFrame:
    """Univariable and multivariable models side by side (as gtsummary ``tbl_merge``).

    One row per numeric variable; a factor gets a row with its label and P, then one row per level.
    Columns: Characteristic, n, Events (per level, from the univariable model), then HR (95% CI) and P of
    each model. P is the likelihood-ratio test of the whole variable (global for a factor): against the
    null model in the univariable column (the P the entry rule used; the joint Wald P when the plan's
    ``entry_test`` is "wald"), dropping the variable from the multivariable model in the other (R ``drop1``).
    Reference levels show an em dash; a variable that did not enter has empty multivariable cells.
    """
    w = _w(words)
    uni = univariable.table
    multi = multivariable.table if is_estimable(multivariable) and multivariable is not None else None
    p_col = _entry_p_column(entry_test)

    def _hr_text(row):   # a monotone likelihood in words (the LR P next to it stays valid)
        if _not_estimable_row(row):
            return format_not_estimable(NotEstimable("hazard_ratio", str(row["note"])))
        return _hr_text_plain(row)

    heads = ["Characteristic", "n", "Events", "Univariable HR (95% CI)", "Univariable P",
             "Multivariable HR (95% CI)", "Multivariable P"]
    out = []
    for var, block in uni.groupby("variable", sort=False):
        mblock = multi[multi["variable"] == var] if multi is not None else None
        entered = mblock is not None and not mblock.empty
        u_p = format_p(block[p_col].iloc[0])
        m_p = format_p(mblock["p_lr"].iloc[0]) if entered else ""
        numeric = len(block) == 1 and block["level"].iloc[0] == "per unit"
        if numeric:
            row = block.iloc[0]
            out.append([f"{w.label(var)} ({w.unit(var)})", format_count(int(row["n"])), format_count(int(row["events"])),
                        _hr_text(row), u_p, _hr_text(mblock.iloc[0]) if entered else "", m_p])
            continue
        out.append([w.label(var), "", "", "", u_p, "", m_p])
        for _, row in block.iterrows():
            m_text = ""
            if entered:
                hit = mblock[mblock["level"] == row["level"]]
                m_text = DASH if row["reference"] else (_hr_text(hit.iloc[0]) if not hit.empty else "")
            out.append([f"\u2003{w.level(var, row['level'])}", format_count(int(row["n"])),
                        format_count(int(row["events"])),
                        DASH if row["reference"] else _hr_text(row), "", m_text, ""])
    for var, ne in univariable.not_estimable.items():
        out.append([w.label(var), "", "", not_estimable_text(ne), "", "", ""])
    return pd.DataFrame(out, columns=heads)


def prognostic_table_note(univariable: UnivariableResult, multivariable, words: Words | None = None,
                          entry_p: float | None = 0.05, entry_test: str = "lr") -> str:
    """Footnote of :func:`make_prognostic_table`: conventions, the multivariable model's size, caveats."""
    test = "joint Wald test" if entry_test == "wald" else "likelihood-ratio test"
    text = (f"n and Events per level from the univariable models (each on the patients with the variable "
            f"recorded). HR: Wald 95% CI; {DASH}: reference level. Univariable P: {test} of the whole variable "
            "against the null model")
    if entry_p is not None:
        text += f", the P of the entry rule (P < {entry_p:g} enters)"
    text += ". Multivariable P: likelihood-ratio test dropping the variable from the model."
    if is_estimable(multivariable) and multivariable is not None:
        m = multivariable
        text += (f" Multivariable model: {format_count(m.n)} patients with complete data ({format_count(m.n_missing)} "
                 f"excluded for a missing value), {format_count(m.events)} events, {format_count(m.n_params)} parameter{'s' if m.n_params != 1 else ''}; empty "
                 "cells: not entered.")
        note = caveat_note(m.caveats, words)
        if note:
            text += " " + note
    elif multivariable is not None:
        text += f" Multivariable model {not_estimable_text(multivariable)}."
    return text


def make_remark_table(profile: pd.DataFrame, words: Words | None = None, validation=None,
                      epv: dict | None = None) -> pd.DataFrame:
    """REMARK profile: one column per model, rows patients, events, candidates, selection, missing data."""
    w = _w(words)
    if profile is None or profile.empty:
        return _note_table("No model.")
    names = {"univariable": "Univariable models", "multivariable": "Multivariable model (baseline)",
             "multivariable_pfs": "Multivariable model, progression-free survival",
             "replication": "Published specification"}

    def selection(r):
        if r["selection"] == "none":
            return "each candidate alone"
        if r["selection"] == "fixed":
            return "all listed variables entered together"
        if r["selection"] == "univariable_screening":
            test = "likelihood-ratio" if r["entry_test"] == "lr" else "Wald"
            return f"univariable {test} P < {r['entry_p']:g}"
        return format_not_estimable(NotEstimable("model", r["selection"]))

    def num(v):
        return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format_count(int(v))

    rows = {
        "Endpoint": [ENDPOINT_LABELS.get(r["endpoint"], "") for _, r in profile.iterrows()],
        "Patients in the cohort": [num(r["patients_total"]) for _, r in profile.iterrows()],
        "Patients analysed": [num(r["patients"]) if r["selection"] != "none" else f"up to {num(r['patients'])}"
                              for _, r in profile.iterrows()],
        "Events": [num(r["events"]) for _, r in profile.iterrows()],
        "Excluded for missing data": [(num(r["excluded_missing"]) if r["selection"] != "none"
                                       else f"up to {num(r['excluded_missing'])}") for _, r in profile.iterrows()],
        "Candidate variables (parameters)": [f"{format_count(r['candidates'])} ({format_count(r['candidate_parameters'])})"
                                             if r["model"] != "replication" else "" for _, r in profile.iterrows()],
        "Selection": [selection(r) for _, r in profile.iterrows()],
        "Variables in the model": [", ".join(w.label(v) for v in r["variables"]) if r["selection"] != "none"
                                   else "" for _, r in profile.iterrows()],
        "Parameters estimated": [num(r["parameters"]) for _, r in profile.iterrows()],
    }
    table = pd.DataFrame(rows, index=[names.get(m, m) for m in profile["model"]]).T
    table.index.name = "Item"
    table = table.reset_index()
    extra = []
    if epv is not None:
        extra.append(["Events per candidate parameter", format_number(epv["epv"], 1)])
    if validation is not None and is_estimable(validation):
        extra.append(["Harrell's C, apparent", format_number(validation.apparent, 3)])
        extra.append([f"Harrell's C, optimism-corrected ({format_count(validation.used)} bootstrap replicates)",
                      format_number(validation.corrected, 3)])
    elif validation is not None:
        extra.append(["Harrell's C, optimism-corrected", not_estimable_text(validation)])
    for item, value in extra:
        rec = {c: "" for c in table.columns}
        rec["Item"] = item
        rec[table.columns[2] if len(table.columns) > 2 else table.columns[1]] = value
        table = pd.concat([table, pd.DataFrame([rec])], ignore_index=True)
    return table


def validation_sentence(validation, epv: dict | None, words: Words | None = None) -> str:
    """Discrimination and events per candidate parameter in words."""
    parts = []
    if epv is not None:
        low = epv["epv"] < epv.get("threshold", 10)
        parts.append(f"The {format_count(epv['events'])} events gave {format_number(epv['epv'], 1)} events per "
                     f"candidate parameter ({format_count(epv['parameters'])} parameters among the candidates)"
                     + (f", fewer than {epv.get('threshold', 10):g}: which variables are selected is unstable "
                        "and the apparent estimates are optimistic" if low else ""))
    if validation is not None and is_estimable(validation):
        what = "the whole selection procedure" if validation.selection else "the model"
        parts.append(f"Harrell's C was {format_number(validation.apparent, 3)} in the data that built the model "
                     f"and {format_number(validation.corrected, 3)} after correcting for optimism "
                     f"({format_count(validation.used)} "
                     f"bootstrap replicates, each repeating {what})")
    elif validation is not None:
        parts.append(f"the optimism-corrected C-index is {not_estimable_text(validation)}")
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def bootstrap_rule_sentence(validation) -> str:
    """How many bootstrap replicates of the C-index validation were drawn, and by which rule ('' when none)."""
    if validation is None or not is_estimable(validation):
        return ""
    precision = getattr(validation, "precision", None)
    mcse = getattr(validation, "mcse", float("nan"))
    mcse_text = f"final Monte Carlo standard error {format_number(mcse, 4)}" if np.isfinite(mcse) else ""
    if precision is None:
        return f"The optimism was averaged over {format_count(validation.replicates)} replicates" + \
            (f" ({mcse_text.replace('final ', '')})." if mcse_text else ".")
    cap = validation.max_replicates or validation.replicates
    rule = (f"Replicates were drawn in batches of {format_count(validation.batch)} until the Monte Carlo standard "
            f"error of the optimism was below {precision:g}, at most {format_count(cap)}")
    if validation.replicates >= cap and not (np.isfinite(mcse) and mcse < precision):
        return f"{rule}; all {format_count(cap)} were drawn ({mcse_text})."
    return f"{rule}; {format_count(validation.replicates)} were needed ({mcse_text})."


def calibration_note(calibration) -> str:
    """Footnote of the calibration plot: groups, months, method."""
    if not is_estimable(calibration):
        return ""
    t = calibration.table
    return (f"{format_count(len(t))} groups of predicted survival at {calibration.months:g} months "
            f"({', '.join(format_count(int(n)) for n in t['n'])} patients); observed: Kaplan-Meier with log-transformed "
            "95% CI; apparent calibration (the data that built the model).")


def immortal_time_note(comparison, words: Words | None = None) -> str:
    """Footnote of the landmark / time-varying table: populations and the immortal-time caveats."""
    if comparison is None or not is_estimable(comparison):
        return ""
    w = _w(words)
    pops = [p for p in comparison.table["population"] if p is not None]
    text = ""
    if pops:
        arms = _names([w.level("arm", a) for a in pops[0]])
        text = (f"Counts given only in the {arms} arm are analysed within that arm (no arm term: an exposure that "
                "is zero by design in one arm and the arm never share a model). ")
    return text + caveat_note(comparison.caveats, words)


def _issue13_results(payload: dict, text: dict, data: PrognosticData, w: Words, paper, validation, calibration,
                     profile, epv_candidates, immortal) -> None:
    """results.json keys of issue 13: ``replication`` (the published specification, with its biases),
    ``c_index`` {apparent, optimism_corrected, ...}, ``epv_candidates``, ``remark``, ``calibration``."""
    from helpers.analyses.prognostic import published_specification_caveats
    if paper is not None and is_estimable(paper):
        caveats = published_specification_caveats(paper, data)
        payload["replication"] = {"label": "published specification", "variables": list(paper.selected),
                                  "terms": _model_terms(paper), "model": _model_summary(paper),
                                  "biases": [c.kind for c in caveats],
                                  "caveats": [caveat_text(c, w) for c in caveats]}
        text["replication_biases"] = caveat_note(caveats, w) or "none named"
    if epv_candidates is not None:
        payload["epv_candidates"] = epv_candidates["epv"]
        payload["candidate_parameters"] = epv_candidates["parameters"]
        text["epv_candidates"] = format_number(epv_candidates["epv"], 1)
        text["candidate_parameters"] = format_count(epv_candidates["parameters"])
    if validation is not None and is_estimable(validation):
        payload["c_index"] = {"apparent": validation.apparent, "optimism_corrected": validation.corrected,
                              "optimism": validation.optimism, "replicates": validation.replicates,
                              "used": validation.used, "seed": validation.seed,
                              "whole_selection": validation.selection, "times_selected": validation.times_selected,
                              "method": validation.method}
        text["c_apparent"] = format_number(validation.apparent, 3)
        text["c_corrected"] = format_number(validation.corrected, 3)
        text["bootstrap_replicates"] = format_count(validation.replicates)
    elif validation is not None:
        payload["c_index"] = {"apparent": None, "optimism_corrected": None,
                              "not_estimable": validation.reason}
    text.setdefault("bootstrap_replicates", format_count(data.choices.get("bootstrap_replicates", 200)))
    text["bootstrap_rule"] = bootstrap_rule_sentence(validation)
    text.setdefault("replication_biases", "")
    text["validation_sentence"] = validation_sentence(validation, epv_candidates, w)
    if calibration is not None and is_estimable(calibration):
        payload["calibration"] = {"months": calibration.months, "groups": calibration.table.to_dict(orient="records"),
                                  "method": calibration.method}
    text["calibration_months"] = f"{data.choices.get('calibration_months', 12):g}"
    if profile is not None:
        payload["remark"] = profile.to_dict(orient="records")
    text["immortal_time_note"] = immortal_time_note(immortal, w) if immortal is not None else ""
    text["post_baseline_sentence"] = post_baseline_sentence(data, w)
    text["modelled_as"] = modelled_as(data, w)


def post_baseline_sentence(data: PrognosticData, words: Words) -> str:
    """Which post-baseline variables exist and where they enter ("" when none)."""
    names = [v for v in [*data.exposures.values(), *data.post_baseline_covariates]]
    if not names:
        return "The data dictionary records no variable measured after the start of treatment."
    listed = _names([in_sentence(words.label(v)) for v in names])
    where = ("are analysed separately, as described below" if data.has_exposure
             else "enter no model here (the data have no administration dates for a landmark or time-varying analysis)")
    return (f"Variables known only after the start of treatment ({listed}) are not candidates for the "
            f"multivariable model; they {where}.")


def modelled_as(data: PrognosticData, words: Words) -> str:
    """Every candidate as actually modelled: "age (years): > 60 vs <= 60; ..." (levels, reference, units)."""
    items = []
    for v in data.candidates:
        s = data.patients[v]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or s.dtype == bool:
            cats = list(s.cat.categories) if isinstance(s.dtype, pd.CategoricalDtype) else sorted(map(str, s.dropna().unique()))
            cats = [c for c in cats if (s == c).any()]
            if not cats:
                continue
            ref = words.level(v, cats[0])
            others = [words.level(v, c) for c in cats[1:]]
            # a grouped variable's unit ("Age (years)") would sit next to the levels' parenthesis
            items.append(f"{in_sentence(without_unit(words.label(v)))} ({', '.join(f'{o} vs {ref}' for o in others)})")
        else:
            items.append(f"{in_sentence(words.label(v))} (linear, HR {words.unit(v)})")
    return "; ".join(items)


def replication_table(paper, result, data: PrognosticData, words: Words | None = None):
    """The published specification next to the model selected by the stated rule, with the biases of the
    published specification named under it (a Markdown table), or None without a replication part (the
    notebook cell then has no output and is left out of the report)."""
    from helpers.analyses.prognostic import published_specification_caveats
    from helpers.report.formatting import show_table
    if paper is None:
        return None
    table = make_model_comparison_table({"Published specification": paper, "Selected by the stated rule": result},
                                        data.published_model, words) if is_estimable(paper) else \
        _note_table(f"Published specification {not_estimable_text(paper)}.")
    note = ("The published specification enters the publication's factors together, including variables known "
            "only after the start of treatment; it is reproduced for comparison only and is not this "
            "supplement's prognostic model. ")
    note += caveat_note(published_specification_caveats(paper, data), words)
    return show_table(table, footnote=note.strip())


def prognostic_table(univariable: dict, model, endpoint: str, words: Words | None = None,
                     choices: dict | None = None):
    """The side-by-side table of ``endpoint`` with its footnote (Markdown), or None when the data do not
    record that endpoint (the notebook cell then has no output and is left out of the report)."""
    from helpers.report.formatting import show_table
    if endpoint not in univariable:
        return None
    choices = choices or {}
    entry_p, entry_test = choices.get("entry_p", 0.05), choices.get("entry_test", "lr")
    return show_table(make_prognostic_table(univariable[endpoint], model, words, entry_test),
                      footnote=prognostic_table_note(univariable[endpoint], model, words, entry_p, entry_test))
