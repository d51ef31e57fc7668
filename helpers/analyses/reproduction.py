"""Published versus reproduced: every headline number of a publication next to ours.

Only for a study whose data folder holds ``published.yaml`` (the replication part). Reads the
publication's numbers from that file and ours from ``_output/results.json``
(the sections written by notebooks 02-07), and builds the tables of ``08-reproduction``:

* :func:`compare_headline` - abstract numbers (median OS per arm, log-rank P values, median PFS,
  the statements on ORR, DCR, TRAEs and the independent prognostic factors);
* :func:`compare_baseline` - Table 1 counts per arm and the printed test per variable (summarised
  in two rows of the headline table; the per-level comparison is shown by 02-baseline);
* :func:`make_software_table` and :func:`make_checksum_table` - the software and input-file
  colophon of the supplement.

A results section that is missing (its notebook not run, or not written yet) shows "not computed";
nothing here fails because another section is absent.

Conventions: differences are reproduced minus published (months for medians, counts for Table 1).
P values are compared by their conclusion at the two-sided 5% level, since a printed "<0.001" has
no exact value; where both are numbers the arithmetic difference is shown as well.
"""
from __future__ import annotations

import importlib.metadata
import json
import platform
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
import yaml

from helpers.config import PROJECT_ROOT
from helpers.build.results import get_result
from helpers.report.formatting import results_key

NOT_COMPUTED = "not computed"
NOT_PUBLISHED = "not published"
ALPHA = 0.05


def published_arms(published: dict | None) -> tuple[str, ...]:
    """The arm codes of ``published.yaml``'s ``arms`` (reference first), as the study's data code them."""
    return tuple(str(code) for code in ((published or {}).get("arms") or {}))


def _counts_column(kind: str, arms: Sequence[str]) -> str:
    return f"{kind} n ({'/'.join(arms)})"

HEADLINE_FOOTNOTE = (
    "Published: as printed in the abstract of the publication. Reproduced: this supplement's "
    "analysis of the data set named in the software section. Difference: reproduced minus published "
    "(months, with the relative difference, for medians; the arithmetic difference for P values printed "
    "as numbers). Status, the one agreement metric of this comparison: a number matches when ours, rounded "
    "to the decimals printed, equals the printed value (a bound such as < 0.001 when ours satisfies it); a "
    "statement matches when our estimate has the published direction and significance at the two-sided 5% "
    "level; \"reproduced\" or \"not reproduced\" for a value that matches or not, \"calibration target\" "
    "for a value the synthetic data were generated to match (its agreement shows that the generator "
    "worked, not that the analysis replicates the publication).")
BASELINE_FOOTNOTE = (
    "Counts per arm, reference arm first. Published counts are shown as printed, including the two histology "
    "cells that do not add up to the printed totals. Difference: reproduced minus printed count, per "
    "arm. P comparison: whether our P, rounded to the decimals printed, equals the printed P, with the "
    "arithmetic difference.")

#: Status of a compared value (the one agreement metric: "matches as printed").
REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
CALIBRATION_TARGET = "calibration target"
#: Headline rows that compare a published statement (not a number).
STATEMENT_ROWS = ("Objective response rate", "Disease control rate", "Treatment-related adverse events")
#: Identifiers of the headline quantities, as named by the plan's ``reproduction.calibration_targets``.
QUANTITY_IDS = ("os_median:<arm>", "pfs_median:<arm>", "os_p", "pfs_p", "orr", "dcr", "trae",
                "table1_counts", "table1_p", "multivariable_os_factors")


#: Where each reproduced quantity lives in results.json; the first path found is used.
RESULT_PATHS: dict[str, tuple[str, ...]] = {
    "os_median": ("os.median.{arm}.estimate",),
    "os_p": ("os.logrank_p",),
    "pfs_median": ("pfs.median.{arm}.estimate",),
    "pfs_p": ("pfs.logrank_p",),
    "rate": ("response.{ep}.{arm}.rate",),
    "rate_p": ("response.{ep}.p",),
    "rate_test": ("response.{ep}.test",),
    "trae_rate": ("safety.any_grade.{arm}.rate",),
    "trae_p": ("safety.any_grade.p",),
    "trae_test": ("safety.any_grade.test",),
    # the published specification (issue 13: cox.replication.terms; earlier cox.multivariable_paper)
    "cox_terms": ("cox.replication.terms", "cox.multivariable_paper"),    # list of {term, hr, lower, upper, p}
}


def load_published(path: str | Path | None = None, data_dir: str | Path | None = None) -> dict:
    """The publication's numbers: ``path``, else ``published.yaml`` in ``data_dir`` (default: the data
    folder of :func:`helpers.config.data_dir`). FileNotFoundError when there is none: a study without
    ``published.yaml`` has no replication part (the build does not run notebook 08 for it)."""
    if path:
        candidate = Path(path)
    else:
        from helpers.config import data_dir as default_data_dir

        candidate = Path(data_dir or default_data_dir()) / "published.yaml"
    if not candidate.exists():
        raise FileNotFoundError(f"published.yaml not found: {candidate}")
    return yaml.safe_load(candidate.read_text(encoding="utf-8"))


def _get(results: dict, dotted: str) -> Any:
    """The value at a dotted path of results.json, or None where the path does not exist."""
    try:
        return get_result(results, dotted)
    except KeyError:
        return None


def find_result(results: dict, key: str, **fmt: str) -> Any:
    """First non-null value among :data:`RESULT_PATHS` ``key`` (formatted with ``fmt``), or None."""
    for template in RESULT_PATHS[key]:
        value = _get(results, template.format(**fmt))
        if value is not None:
            return value
    return None


def _num(value: Any, digits: int = 1) -> str:
    from helpers.report.formatting import format_number

    return NOT_COMPUTED if value is None else format_number(float(value), digits)


def _p(value: Any) -> str:
    from helpers.report.formatting import format_p

    if value is None:
        return NOT_COMPUTED
    return format_p(float(value)) if isinstance(value, (int, float)) else str(value)


def _signed(value: float, digits: int = 1) -> str:
    """"+0.1", "−0.1" (Unicode minus); a value that rounds to zero reads "+0.0", never "−0.0"."""
    if round(value, digits) == 0:
        return f"+{0:.{digits}f}"
    text = f"{value:+.{digits}f}"
    return text.replace("-", "−") if value < 0 else text


def _p_bound(printed: Any) -> tuple[float | None, bool]:
    """(value, is_upper_bound) of a printed P value such as 0.004 or "<0.001"."""
    if printed is None:
        return None, False
    if isinstance(printed, (int, float)):
        return float(printed), False
    match = re.match(r"\s*<\s*([0-9.]+)", str(printed))
    if match:
        return float(match.group(1)), True
    try:
        return float(printed), False
    except ValueError:
        return None, False


def _significant(printed: Any) -> bool | None:
    value, bound = _p_bound(printed)
    if value is None:
        return None
    return value <= ALPHA if bound else value < ALPHA


def _decimals(printed: Any, minimum: int = 0) -> int:
    """Decimals of a printed number (at least ``minimum``: YAML reads a printed 0.900 as 0.9)."""
    text = repr(float(printed)) if not isinstance(printed, str) else printed.strip()
    if "e" in text.lower():
        return max(minimum, 6)
    return max(minimum, len(text.split(".", 1)[1]) if "." in text else 0)


def matches_printed(printed: Any, reproduced: float | None, minimum_decimals: int = 0) -> bool | None:
    """True when ``reproduced`` rounded to the printed decimals equals ``printed`` (a bound "<0.001":
    when ``reproduced`` satisfies it); None when either is missing. The one agreement metric of the
    comparison. ``minimum_decimals``: P values are printed with 3, medians with 1."""
    if reproduced is None or printed is None:
        return None
    value, bound = _p_bound(printed)
    if value is None:
        return None
    if bound:
        return float(reproduced) < value
    d = _decimals(printed, minimum_decimals)
    return abs(round(float(reproduced), d) - value) < 0.5 * 10 ** -(d + 3)


def compare_p(published: Any, reproduced: float | None) -> str:
    """Comparison cell of a P value: whether ours matches the printed P (3 decimals at least) and,
    when both are numbers, the arithmetic difference."""
    if reproduced is None:
        return NOT_COMPUTED
    match = matches_printed(published, reproduced, 3)
    if match is None:
        return "–"
    verdict = "matches as printed" if match else "differs as printed"
    value, bound = _p_bound(published)
    if value is not None and not bound:
        return f"{verdict} ({_signed(reproduced - value, 3)})"
    return verdict


def compare_number(published: float | None, reproduced: float | None, digits: int = 1,
                   unit: str = "") -> str:
    """Difference cell for a number: reproduced − published (and relative difference)."""
    if reproduced is None:
        return NOT_COMPUTED
    if published is None:
        return "–"
    diff = float(reproduced) - float(published)
    relative = 100 * diff / float(published) if published else None
    # whole per cent, one decimal below 1% so that a small difference keeps its sign ("−0.5%", not "+0%")
    rel = "" if relative is None else \
        f" ({_signed(relative, 1 if 0 < abs(relative) < 0.95 else 0)}%)"
    return f"{_signed(diff, digits)}{unit}{rel}"


def _rate_statement(results: dict, ep: str, rate_key: str, p_key: str, test_key: str,
                    label: str, arms: Sequence[str]) -> tuple[str, bool | None]:
    """"A 20.7% vs B 48.7%, P = 0.002 (test)" and whether the last arm's is significantly higher."""
    rates = {arm: find_result(results, rate_key, ep=ep, arm=arm) for arm in arms}
    p = find_result(results, p_key, ep=ep)
    if any(v is None for v in rates.values()) or p is None:
        return NOT_COMPUTED, None
    test = find_result(results, test_key, ep=ep)
    text = (f"{label}: " + " vs ".join(f"{arm} {100 * float(rates[arm]):.1f}%" for arm in arms)
            + f", P = {_p(p)}" + (f" ({test})" if test else ""))
    higher = float(rates[arms[-1]]) > float(rates[arms[0]])
    return text, bool(higher and float(p) < ALPHA)


def _status(match: bool | None, calibration: bool, computed: bool, published: bool) -> str:
    """Status cell: reproduced / not reproduced / calibration target (matches | differs)."""
    if not published:
        return f"{CALIBRATION_TARGET} (assumed; not published)" if calibration else NOT_PUBLISHED
    if not computed or match is None:
        return NOT_COMPUTED
    if calibration:
        return f"{CALIBRATION_TARGET} ({'matches' if match else 'differs'})"
    return REPRODUCED if match else NOT_REPRODUCED


def calibration_targets(results: dict, targets: Iterable[str] | None) -> set[str]:
    """The calibration targets that apply: those of the plan (``reproduction.calibration_targets``), only
    for synthetic data (results ``data.synthetic`` not false)."""
    if not targets or _get(results, "data.synthetic") is False:
        return set()
    return {str(t) for t in targets}


def term_label(term: str, dictionary: Any = None) -> str:
    """A model term in words: "kps_group[< 70]" -> "KPS score: < 70" with the study dictionary's labels
    (``Dictionary.label`` / ``level_label``); the term itself without a dictionary."""
    if dictionary is None:
        return str(term)
    match = re.fullmatch(r"(.+?)\[(.*)\]", str(term))
    name, level = (match.group(1), match.group(2)) if match else (str(term), None)
    try:
        label = dictionary.label(name)
        return label if level is None else f"{label}: {dictionary.level_label(name, level)}"
    except Exception:  # noqa: BLE001  an unknown term is shown as it is
        return str(term)


def compare_headline(results: dict, published: dict, targets: Iterable[str] | None = None,
                     dictionary: Any = None) -> pd.DataFrame:
    """The abstract's numbers and statements next to ours.

    Columns: Quantity, Published, Reproduced, Difference (reproduced − published: months for medians,
    the arithmetic difference for P values), Status (the one agreement metric, see
    :data:`HEADLINE_FOOTNOTE`). ``targets``: identifiers of :data:`QUANTITY_IDS` that were calibration
    targets of the synthetic data (the plan's ``reproduction.calibration_targets``); their status reads
    "calibration target", never "reproduced".
    ``dictionary``: the study's data dictionary, to name model terms in words (:func:`term_label`).
    """
    abstract = published.get("abstract", {})
    arms = published_arms(published)
    calibrated = calibration_targets(results, targets)
    rows: list[dict] = []

    def add(quantity, pub, rep, diff, match, qid, is_published=True):
        computed = rep != NOT_COMPUTED
        rows.append({"Quantity": quantity, "Published": pub, "Reproduced": rep, "Difference": diff,
                     "Status": _status(match, qid in calibrated, computed, is_published)})

    for endpoint, name in (("os", "overall survival"), ("pfs", "progression-free survival")):
        pub_medians = abstract.get(f"{endpoint}_median_months", {}) or {}
        for arm in arms:
            rep = find_result(results, f"{endpoint}_median", arm=arm)
            pub = pub_medians.get(arm)
            add(f"Median {name}, {arm} (months)", NOT_PUBLISHED if pub is None else _num(pub),
                _num(rep), compare_number(pub, rep, unit=" months") if pub is not None else
                ("–" if rep is not None else NOT_COMPUTED),
                matches_printed(pub, rep, 1), f"{endpoint}_median:{arm}", pub is not None)
        pub_p = abstract.get(f"{endpoint}_p")
        rep_p = find_result(results, f"{endpoint}_p")
        value, bound = _p_bound(pub_p)
        diff = (NOT_COMPUTED if rep_p is None else
                _signed(rep_p - value, 3) if value is not None and not bound else "–")
        add(f"Log-rank P, {name}", _p(pub_p) if pub_p is not None else NOT_PUBLISHED, _p(rep_p), diff,
            matches_printed(pub_p, rep_p, 3), f"{endpoint}_p", pub_p is not None)

    for ep, name in (("orr", "Objective response rate"), ("dcr", "Disease control rate")):
        text, agrees = _rate_statement(results, ep, "rate", "rate_p", "rate_test", ep.upper(), arms)
        add(name, str(abstract.get(ep, NOT_PUBLISHED)), text, "–", agrees, ep, ep in abstract)

    text, higher_sig = _rate_statement(results, "", "trae_rate", "trae_p", "trae_test", "Any TRAE", arms)
    agrees = None if higher_sig is None else float(find_result(results, "trae_p")) >= ALPHA
    add("Treatment-related adverse events", str(abstract.get("trae", NOT_PUBLISHED)), text, "–", agrees,
        "trae", "trae" in abstract)

    for row in baseline_summary(compare_baseline(results, published)):
        qid = row.pop("id")
        match = row.pop("match")
        add(row["Quantity"], row["Published"], row["Reproduced"], row["Difference"], match, qid)

    factors = abstract.get("multivariable_os_factors") or []
    terms = find_result(results, "cox_terms")
    terms = [t for t in terms if isinstance(t, dict)] if isinstance(terms, list) else None
    ours = None if terms is None else [
        term_label(t.get("term"), dictionary) for t in terms if t.get("p") is not None and float(t["p"]) < ALPHA]
    match = None if not terms else len(ours) == len(terms)
    add("Independent factors for overall survival (published specification, multivariable Cox)",
        "; ".join(factors) or NOT_PUBLISHED,
        NOT_COMPUTED if ours is None else ("; ".join(map(str, ours)) or "none significant"),
        NOT_COMPUTED if ours is None else f"{len(ours)} of {len(terms)} terms with P < 0.05",
        match, "multivariable_os_factors", bool(factors))
    return pd.DataFrame(rows)


def baseline_summary(baseline: pd.DataFrame) -> list[dict]:
    """Two rows for Table 1 from :func:`compare_baseline`: the counts per level and arm, and the P
    values, each with the one agreement metric (a count matches when equal; a P value when ours,
    rounded to the printed decimals, equals it). The per-level comparison is shown by 02-baseline.
    Each row: Quantity, Published, Reproduced, Difference, ``match`` (all match; None when not
    computed) and ``id`` (``table1_counts`` / ``table1_p``)."""
    published_column = next(c for c in baseline.columns if str(c).startswith("Published n ("))
    cells = [d for d, p in zip(baseline["Difference"], baseline[published_column]) if p != NOT_PUBLISHED]
    compared = [x for d in cells if re.fullmatch(r"[0-9+−/–]+", str(d)) for x in str(d).split("/") if x != "–"]
    differing = sum(1 for x in compared if x != "0")
    p_rows = [c for p, c in zip(baseline["Published P"], baseline["P comparison"])
              if p not in ("", NOT_PUBLISHED)]
    p_compared = [c for c in p_rows if "as printed" in str(c)]
    p_match = sum(1 for c in p_compared if str(c).startswith("matches"))
    n_printed = sum(len([x for x in str(p).split("/") if x != "–"])
                    for p in baseline[published_column] if p != NOT_PUBLISHED)
    return [
        {"Quantity": "Published Table 1: patients per level and arm", "Published": f"{n_printed} counts printed",
         "Reproduced": (f"{len(compared) - differing} of {len(compared)} cells identical as printed" if compared
                        else NOT_COMPUTED),
         "Difference": (f"{differing} differ as printed (see the baseline section and its corrections)" if compared
                        else NOT_COMPUTED),
         "match": (differing == 0) if compared else None, "id": "table1_counts"},
        {"Quantity": "Published Table 1: P values of the between-arm tests", "Published": f"{len(p_rows)} printed",
         "Reproduced": (f"{p_match} of {len(p_compared)} match as printed" if p_compared else NOT_COMPUTED),
         "Difference": (f"{len(p_compared) - p_match} differ" if p_compared else NOT_COMPUTED),
         "match": (p_match == len(p_compared)) if p_compared else None, "id": "table1_p"},
    ]


def add_baseline_summary(rows: list[dict], baseline: pd.DataFrame) -> None:
    """Append the two Table 1 rows of :func:`baseline_summary` to ``rows`` (earlier interface)."""
    for row in baseline_summary(baseline):
        row.pop("id")
        row.pop("match")
        rows.append(row)


def _agreement(agrees: bool | None) -> str:
    if agrees is None:
        return NOT_COMPUTED
    return "agrees" if agrees else "does not agree"


def compare_baseline(results: dict, published: dict) -> pd.DataFrame:
    """Table 1 as printed next to ours: counts per level and arm, and the test per variable.

    One row per published level; the test columns are filled on the first row of each variable.
    Counts are compared as printed (no correction of the two histology cells that do not add up;
    the baseline section discusses them). Columns: Characteristic, Level, Published n
    (arm codes of published.yaml, reference first), Reproduced n, Difference (reproduced − published, per arm), Published P,
    Reproduced P (test), P comparison.
    """
    arms = published_arms(published)
    rows_by_label = {}
    for key, row in (_get(results, "baseline.rows") or {}).items():
        rows_by_label[str(row.get("label", key))] = row
    out = []
    for item in published.get("table1", []):
        label = item["variable"]
        levels = item.get("levels") or {}
        ours = rows_by_label.get(label)
        our_levels = (ours or {}).get("levels") or {}
        if ours is None:
            rep_p, p_cmp = NOT_COMPUTED, NOT_COMPUTED
        else:
            p, test = ours.get("p"), ours.get("test")
            rep_p = (_p(p) + (f" ({test})" if test else "")) if p is not None else NOT_COMPUTED
            p_cmp = compare_p(item.get("p"), p) if (p is not None and item.get("p") is not None) else "–"
        pub_p = _p(item.get("p")) if item.get("p") is not None else NOT_PUBLISHED
        shown = list(levels) or list(our_levels) or [""]
        for i, level in enumerate(shown):
            cells = levels.get(level) or {}
            pub = [cells.get(a) for a in arms]
            rep = [_get(our_levels, f"{level}.{a}.n") if level in our_levels else None for a in arms]
            if not cells:
                pub_text, diff = NOT_PUBLISHED, "–"
            else:
                pub_text = "/".join("–" if n is None else str(n) for n in pub)
            if ours is None:
                rep_text, diff = NOT_COMPUTED, NOT_COMPUTED
            else:
                rep_text = "/".join("–" if n is None else str(int(n)) for n in rep)
                if cells:
                    diff = ("level not found" if any(n is None for n in rep) else
                            "/".join(_signed(int(r) - int(q), 0) if q is not None else "–"
                                     for r, q in zip(rep, pub)).replace("+0", "0"))
            out.append({"Characteristic": label if i == 0 else "",
                        "Level": level,
                        _counts_column("Published", arms): pub_text,
                        _counts_column("Reproduced", arms): rep_text,
                        "Difference": diff,
                        "Published P": pub_p if i == 0 else "",
                        "Reproduced P (test)": rep_p if i == 0 else "",
                        "P comparison": p_cmp if i == 0 else ""})
    return pd.DataFrame(out)


def reproduction_results(headline: pd.DataFrame, baseline: pd.DataFrame, results: dict | None = None,
                         published: dict | None = None) -> dict:
    """The ``reproduction`` section of results.json: counts of compared, agreeing and missing items.

    With ``published`` it also stores the publication's design facts (``published.*``: period,
    setting, patients per arm) and with ``results`` the analysed patients per arm (from
    ``baseline.n``), as ready-formatted strings in ``text`` for the design section's prose.
    """
    status = [str(v) for v in headline["Status"]] if "Status" in headline else []
    independent = [v for v in status if v in (REPRODUCED, NOT_REPRODUCED)]
    calibration = [v for v in status if v in (f"{CALIBRATION_TARGET} (matches)", f"{CALIBRATION_TARGET} (differs)")]
    compared = independent + calibration
    matched = [v for v in compared if v in (REPRODUCED, f"{CALIBRATION_TARGET} (matches)")]
    missing = sum(1 for v in headline["Reproduced"] if str(v) == NOT_COMPUTED)
    logrank = headline[headline["Quantity"].str.startswith("Log-rank P")]
    p_compared = [v for v in logrank.get("Status", []) if v not in (NOT_COMPUTED, NOT_PUBLISHED)]
    statements = headline[headline["Quantity"].isin(STATEMENT_ROWS)]
    s_compared = [v for v in statements.get("Status", []) if v not in (NOT_COMPUTED, NOT_PUBLISHED)]

    def n_match(values):
        return sum(1 for v in values if v in (REPRODUCED, f"{CALIBRATION_TARGET} (matches)"))

    diffs: dict[str, list[str]] = {}
    variable = ""
    for _, row in baseline.iterrows():
        variable = row["Characteristic"] or variable
        diffs.setdefault(variable, []).append(str(row["Difference"]))
    numeric = {v: d for v, d in diffs.items() if all(re.fullmatch(r"[0-9+−/–]+", x) for x in d)}
    payload = {"headline_rows": len(headline), "baseline_rows": len(baseline),
               # the one agreement metric (matches as printed), over the rows of the headline table
               "compared": len(compared), "matched": len(matched),
               "calibration_targets": len(calibration),
               "calibration_targets_matched": n_match(calibration),
               "independent_compared": len(independent), "independent_matched": n_match(independent),
               # earlier keys, counted with the same metric
               "p_values_compared": len(p_compared), "p_values_same_conclusion": n_match(p_compared),
               "statements_compared": len(s_compared), "statements_agree": n_match(s_compared),
               "baseline_variables_compared": len(numeric),
               "baseline_variables_exact": sum(all(set(x) <= set("0/–") for x in d) for d in numeric.values()),
               "not_computed": missing}
    text = {k: str(v) for k, v in payload.items()}
    text["summary_sentence"] = summary_sentence(payload)
    text["not_computed_sentence"] = (
        "" if not missing else
        f"{missing} entr{'ies' if missing != 1 else 'y'} marked \"not computed\" belong{'' if missing != 1 else 's'} to "
        "analyses whose results were not available when this document was produced.")
    codes = published_arms(published) or tuple(
        str(a) for a in (_get(results or {}, "baseline.n") or {}) if a != "Overall")
    if published is not None:
        period = (published.get("citation") or {}).get("period") or []
        arms = published.get("arms") or {}
        payload["published"] = {"period": period, "total_n": published.get("total_n"),
                                 "n": {a: (arms.get(a) or {}).get("n") for a in codes}}
        text.update({
            "published_period": "–".join(str(y) for y in period) if period else NOT_PUBLISHED,
            "published_setting": str((published.get("citation") or {}).get("setting", NOT_PUBLISHED)),
            "published_design": str((published.get("citation") or {}).get("design", NOT_PUBLISHED)),
            "published_n_total": str(published.get("total_n", NOT_PUBLISHED)),
            **{f"published_n_{results_key(a)}": str((arms.get(a) or {}).get("n", NOT_PUBLISHED)) for a in codes},
        })
    if results is not None:
        n = _get(results, "baseline.n") or {}
        total = _get(results, "data.n")
        text["n_analysed"] = str(total if total is not None else n.get("Overall", NOT_COMPUTED))
        for a in codes:
            arm_n = _get(results, f"arms.{a}.n")
            text[f"n_{results_key(a)}"] = str(arm_n if arm_n is not None else n.get(a, NOT_COMPUTED))
    payload["text"] = text
    return payload


def summary_sentence(payload: dict) -> str:
    """The comparison in one metric, in words (``reproduction.text.summary_sentence``); no clause for a
    case that does not occur."""
    compared, matched = payload["compared"], payload["matched"]
    if not compared:
        return "No published value could be compared with this re-analysis."
    out = (f"Of {compared} published value{'s' if compared != 1 else ''} compared, {matched} "
           f"match{'es' if matched == 1 else ''} as printed.")
    k, km = payload["calibration_targets"], payload["calibration_targets_matched"]
    if k:
        j, jm = payload["independent_compared"], payload["independent_matched"]
        out += (f" {k} of them {'were calibration targets' if k != 1 else 'was a calibration target'} of the "
                f"generator of the synthetic data ({km} match{'es' if km == 1 else ''}): the data were made to "
                f"reproduce {'them' if k != 1 else 'it'}, so agreement there shows that the generator worked, "
                "not that the publication's findings replicate.")
        out += (f" Of the {j} values that were not calibration targets, {jm} match{'es' if jm == 1 else ''}."
                if j else " No compared value is independent of the calibration.")
    return out



# --------------------------------------------------------------------------- colophon

def _requirements(path: Path) -> list[str]:
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0])
    return names


_VERSION_RE = re.compile(r"^\d+(\.\d+)+(-\d+)?$")


def _r_versions(reference_dir: Path) -> list[tuple[str, str]]:
    """R and package versions recorded by the golden-value scripts (tests/reference/*.json).

    Recognised: top-level ``r_version`` / ``R_version`` and ``<package>_version`` strings, and
    dicts under ``meta``, ``_meta`` or ``versions`` mapping ``R`` or a package name to its version
    (other entries of those dicts, e.g. checksums or counts, are ignored).
    """
    found: dict[str, set[str]] = {}

    def add(name: str, version) -> None:
        version = str(version).strip()
        if name.lower() in ("r", "r_version"):
            found.setdefault("R", set()).add(version.removeprefix("R version ").strip())
        elif _VERSION_RE.match(version):
            found.setdefault(name, set()).add(version)

    for path in sorted(reference_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        for key, value in data.items():
            if isinstance(value, dict) and key in ("meta", "_meta", "versions"):
                for name, version in value.items():
                    if isinstance(version, (str, int, float)):
                        add(str(name), version)
            elif isinstance(value, str) and (key.lower() == "r_version" or key.endswith("_version")):
                add(key if key.lower() == "r_version" else key.removesuffix("_version"), value)
    order = sorted(found, key=lambda n: (n != "R", n.lower()))
    return [(name, ", ".join(sorted(found[name]))) for name in order]


def make_software_table(requirements: str | Path | None = None,
                        reference_dir: str | Path | None = None,
                        packages: Sequence[str] | None = None, blocks: int = 1) -> pd.DataFrame:
    """Python and every direct dependency with its installed version, then the R used for golden values.

    The packages are ``packages``, else those of ``requirements`` when given (a requirements file),
    else the project's direct dependencies (:func:`direct_dependencies`; the lock file's indirect
    ones are not listed). Columns: Software, Version, Used for. A package not installed is shown as
    "not installed". With ``blocks`` > 1 only Software and Version are kept, laid out as
    that many side-by-side column pairs (a compact table for print; see :func:`widen_table`).
    """
    reference_dir = Path(reference_dir or PROJECT_ROOT / "tests" / "reference")
    rows = [{"Software": "Python", "Version": platform.python_version(), "Used for": "analysis"}]
    if packages is not None:
        names = list(packages)
    elif requirements is not None:
        names = _requirements(Path(requirements)) if Path(requirements).exists() else []
    else:
        names = direct_dependencies()
    for name in sorted(names, key=str.lower):
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        rows.append({"Software": name, "Version": version, "Used for": "analysis (Python package)"})
    r_rows = _r_versions(reference_dir) if reference_dir.exists() else []
    if not r_rows:
        rows.append({"Software": "R", "Version": "not recorded in tests/reference",
                     "Used for": "golden values in the test suite (not at run time)"})
    for name, version in r_rows:
        rows.append({"Software": name, "Version": version,
                     "Used for": "golden values in the test suite (not at run time)"})
    table = pd.DataFrame(rows)
    return widen_table(table[["Software", "Version"]], blocks) if blocks > 1 else table


SOFTWARE_FOOTNOTE = (
    "Python and the project's direct dependencies (every version, theirs included, pinned in the "
    "project's lock file) produce every result; R and its packages (versions recorded with the "
    "reference values) produced only the reference values the test suite compares against.")


def widen_table(df: pd.DataFrame, blocks: int = 3) -> pd.DataFrame:
    """Lay a long two-column table out as ``blocks`` side-by-side column pairs (rows filled down)."""
    n = -(-len(df) // blocks)
    parts = []
    for b in range(blocks):
        chunk = df.iloc[b * n:(b + 1) * n].reset_index(drop=True)
        parts.append(chunk.reindex(range(n)).fillna(""))
    wide = pd.concat(parts, axis=1)
    wide.columns = list(df.columns) * blocks
    return wide


def make_checksum_table(results: dict) -> pd.DataFrame:
    """Input files and their SHA-256 from results.json ``data.sha256`` ({file: digest})."""
    digests = _get(results, "data.sha256") or {}
    if not digests:
        return pd.DataFrame([{"Input file": NOT_COMPUTED, "SHA-256": NOT_COMPUTED}])
    return pd.DataFrame([{"Input file": name, "SHA-256": digest}
                         for name, digest in sorted(digests.items())])


def load_all(results_file: str | Path | None = None,
             published_file: str | Path | None = None, data_dir: str | Path | None = None,
             output_dir: str | Path | None = None) -> tuple[dict, dict]:
    """(results, published) dicts; results empty when results.json does not exist yet.

    ``results_file`` defaults to ``output_dir/results.json`` (``output_dir``: the build's output
    folder), ``published_file`` to ``data_dir/published.yaml``.
    """
    from helpers.build.results import load_results

    if results_file:
        results = json.loads(Path(results_file).read_text(encoding="utf-8"))
    else:
        results = load_results(Path(output_dir) if output_dir else None)
    return results, load_published(published_file, data_dir)


def direct_dependencies(pyproject: str | Path | None = None) -> list[str]:
    """Names of the project's direct dependencies: ``[project] dependencies`` of ``pyproject.toml``."""
    path = Path(pyproject or PROJECT_ROOT / "pyproject.toml")
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:     # Python 3.10: the dependencies array read as text
        block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
        specs = re.findall(r'"([^"]+)"', re.sub(r"#.*", "", block.group(1))) if block else []
    else:
        specs = tomllib.loads(text).get("project", {}).get("dependencies", [])
    return [re.split(r"[=<>!~\[; ]", spec.strip(), maxsplit=1)[0] for spec in specs]


__all__: Iterable[str] = (
    "load_published", "find_result", "compare_headline", "compare_baseline", "compare_p",
    "compare_number", "reproduction_results", "make_software_table", "make_checksum_table", "load_all",
    "matches_printed", "baseline_summary", "calibration_targets", "summary_sentence", "REPRODUCED",
    "NOT_REPRODUCED", "CALIBRATION_TARGET", "QUANTITY_IDS", "term_label",
)
