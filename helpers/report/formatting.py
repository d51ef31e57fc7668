"""All number formatting in one place: P values, CIs, n (%), and Markdown tables.

Tables leave the notebooks as Markdown pipe tables, which survive HTML, Typst/PDF and Word alike.
"""
from __future__ import annotations

import math
import operator
import os
import re
from typing import Any

import pandas as pd

from helpers.config import SUPPRESS_ENV  # counts 1 to value - 1 shown as "<value" (off: unset or 0)

#: Typographic dash used in ranges (CI limits).
RANGE_SEP = "–"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


#: Significance level of every statement "significant" / "not significant" of the document.
ALPHA = 0.05


def format_p(p: float | None, digits: int = 3, alpha: float | None = ALPHA) -> str:
    """P value rounded (not truncated) to ``digits`` decimals; below 10^-digits shown as "<0.001".

    A displayed P never rounds onto or across the significance level ``alpha`` (default 0.05): when
    the rounded value would equal ``alpha`` or lie on the other side of it, decimals are added until it
    does not (0.04953 -> "0.0495", 0.0502 -> "0.0502", 0.04996 -> "0.04996"). A P exactly equal to
    ``alpha`` is shown as such ("0.050"). ``alpha`` None switches the rule off. Whether a result is
    significant is decided on the unrounded P (:func:`is_significant`), never on this string.
    """
    if _missing(p):
        return "–"
    p = float(p)
    threshold = 10 ** (-digits)
    if p < threshold:
        return f"<{threshold:.{digits}f}"
    shown = round(p, digits)
    if alpha is not None and p != alpha:
        d = digits
        while d < 12 and (shown == round(alpha, d) or (shown < alpha) != (p < alpha)):
            d += 1
            shown = round(p, d)
        return f"{shown:.{d}f}"
    return f"{shown:.{digits}f}"


def is_significant(p: float | None, alpha: float = ALPHA) -> bool | None:
    """Is the unrounded ``p`` below ``alpha``? None when P is missing (not estimable)."""
    if _missing(p):
        return None
    return float(p) < alpha


def format_number(value: float | None, digits: int = 1, missing: str = "NR") -> str:
    """A number rounded to ``digits`` decimals; ``missing`` (default "NR", not reached) for None/NaN."""
    if _missing(value):
        return missing
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text   # never "-0.0"


def format_ci(lower: float | None, upper: float | None, digits: int = 1, missing: str = "NR") -> str:
    """"lower–upper" with the given decimals; NR for a limit that was not reached.

    When a limit is negative the limits are joined by " to " ("-4.0 to 28.2"), so that a minus sign
    is never read as the range dash.
    """
    sep = RANGE_SEP
    if any(not _missing(x) and not math.isinf(x) and round(x, digits) < 0 for x in (lower, upper)):
        sep = " to "
    return f"{format_number(lower, digits, missing)}{sep}{format_number(upper, digits, missing)}"


def format_estimate_ci(estimate: float | None, lower: float | None, upper: float | None,
                       digits: int = 1, missing: str = "NR", level: int = 95) -> str:
    """"10.8 (95% CI 8.9–12.9)"."""
    return (f"{format_number(estimate, digits, missing)} "
            f"({level}% CI {format_ci(lower, upper, digits, missing)})")


def suppression_threshold() -> int:
    """Small-cell threshold from ``$SUPPLEMENT_SUPPRESS_BELOW`` (0, the default, means no suppression).

    Clinical papers report small cells, so nothing is suppressed unless the variable is set, e.g.
    ``SUPPLEMENT_SUPPRESS_BELOW=5 make report`` for a data-protection review. A value that is not a
    whole number >= 0 raises ValueError naming the variable.
    """
    raw = os.environ.get(SUPPRESS_ENV, "").strip()
    if not raw:
        return 0
    try:
        threshold = int(raw)
    except ValueError:
        threshold = -1
    if threshold < 0:
        raise ValueError(f"{SUPPRESS_ENV} must be a whole number >= 0 (got {raw!r})")
    return threshold


def format_n_pct(k: int, n: int, digits: int = 1) -> str:
    """"32 (82.1)": count and percentage of ``n``; "0 (0.0)" when n is 0; the count with a thousands
    separator from 1,000 on ("67,271 (97.4)", :func:`format_count`).

    With small-cell suppression on (``$SUPPLEMENT_SUPPRESS_BELOW=T``, see :func:`suppression_threshold`)
    a count of 1 to T-1 is shown as "<T" without its percentage (which would reveal it). Zero is shown.
    Only cells formatted here are suppressed; complementary cells (e.g. n - k) are not.
    """
    threshold = suppression_threshold()
    if threshold and 0 < k < threshold:
        return f"<{threshold}"
    pct = 100.0 * k / n if n else 0.0
    return f"{format_count(int(k))} ({pct:.{digits}f})"


#: A cell that starts with a number (an estimate, a count, a P value): right-aligned by default
_NUMERIC_CELL_RE = re.compile(r"^\s*[<>≤≥=P\s]*[-\u2212+]?\d")


def markdown_table(df: pd.DataFrame, index: bool = False, align: str | None = None) -> str:
    """A pipe table of ``df`` with every cell as text; pipes in cells are escaped."""
    frame = df.reset_index() if index else df
    header = [str(c) for c in frame.columns]
    rows = [["" if _missing(v) else str(v).replace("|", "\\|") for v in row]
            for row in frame.itertuples(index=False, name=None)]
    if align is None:   # the first column and text columns left, numeric columns right
        def numeric(j: int) -> bool:
            cells = [r[j] for r in rows if r[j].strip() not in ("", "–", "-", "—")]
            return bool(cells) and sum(bool(_NUMERIC_CELL_RE.match(c)) for c in cells) >= 0.6 * len(cells)
        align = "l" + "".join("r" if numeric(j) else "l" for j in range(1, len(header)))
    # Dash counts set the relative column widths pandoc gives a wide table in PDF and Word:
    # proportional to the longest word-wrapped content, so label columns are not squeezed.
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    dashes = [max(3, min(40, w)) for w in widths]
    rule = {"l": ":{}", "r": "{}:", "c": ":{}:"}
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(rule[a].format("-" * d) for a, d in zip(align, dashes)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def show_table(df: pd.DataFrame | None, index: bool = False, footnote: str | None = None,
               align: str | None = None):
    """Display ``df`` in a notebook as a Markdown pipe table (with an optional footnote paragraph).
    ``None`` (a table these data do not call for) displays nothing, so the report leaves the table out."""
    from IPython.display import Markdown

    if df is None:
        return None

    text = markdown_table(df, index=index, align=align)
    if footnote:
        text += "\n\n" + footnote
    return Markdown(text)


# ----------------------------------------------------------------------------------------------
# Typed results (helpers.stats.types) in words
# ----------------------------------------------------------------------------------------------
#: NotEstimable reasons in words (helpers.stats.types.NotEstimable.reason -> phrase); the one vocabulary
#: of every section.
NOT_ESTIMABLE_REASONS = {
    "no_events": "no events were observed",
    "no_events_in_arm": "no events in one arm",
    "all_events": "every patient had the event in both arms",
    "beyond_last_followup": "beyond the last follow-up of the arm",
    "separation": "the covariate separates the outcomes",
    "monotone_likelihood": "the likelihood is monotone (the estimate is infinite)",
    "non_convergence": "the model did not converge",
    "empty_arm": "no patients in one arm",
    "no_patients": "no patients in the arm",
    "too_few_patients": "too few patients",
    "no_variable_selected": "no candidate variable met the entry rule",
    "no_exposure_data": "the data have no treatment-cycle dates",
    "constant_covariate": "a variable takes a single value among the analysed patients",
    "one_start_year": "all patients started in one calendar year",
    "collinear_covariates": "a variable is a linear combination of the others",
}


def format_not_estimable(result, short: bool = False) -> str:
    """"not estimable: no events in one arm" for a NotEstimable (``short``: "NE", for table cells)."""
    if short:
        return "NE"
    code = str(getattr(result, "reason", "") or "")
    reason = NOT_ESTIMABLE_REASONS.get(code, code.replace("_", " "))
    return f"not estimable: {reason}" if reason else "not estimable"


def format_p_statement(p: float | None, digits: int = 3, alpha: float | None = ALPHA) -> str:
    """"P = 0.004" / "P < 0.001" (never "P = <0.001") / "P not estimable" (for sentences and cells).

    The number follows :func:`format_p` (never rounded onto or across ``alpha``).
    """
    if _missing(p):
        return "P not estimable"
    s = format_p(p, digits, alpha)
    return f"P {s[0]} {s[1:]}" if s.startswith("<") else f"P = {s}"


def significance_phrase(p: float | None, alpha: float = ALPHA) -> str:
    """"significant" / "not significant" at ``alpha`` from the unrounded P; "not tested" when missing."""
    sig = is_significant(p, alpha)
    if sig is None:
        return "not tested"
    return "significant" if sig else "not significant"


def format_estimate(est, digits: int = 1, missing: str = "NR", scale: float = 1.0, ci_label: bool = True,
                    suffix: str = "") -> str:
    """An ``Estimate`` as "10.8 (95% CI 8.9–12.9)" (``ci_label`` False: "10.8 (8.9–12.9)").

    ``scale`` multiplies value and limits (100 for a percentage, with ``suffix="%"``); a value that is
    NaN/None alone reads ``missing``; a NotEstimable reads "not estimable: <reason>". Limits that are
    None (no interval) are left out.
    """
    from helpers.stats.types import NotEstimable

    if isinstance(est, NotEstimable):
        return format_not_estimable(est)
    if _missing(est.value):
        return missing

    def sc(x):
        return None if _missing(x) else x * scale

    head = f"{format_number(sc(est.value), digits, missing)}{suffix}"
    if est.lower is None and est.upper is None:
        return head
    label = f"{int(round(100 * est.level))}% CI " if ci_label else ""
    return f"{head} ({label}{format_ci(sc(est.lower), sc(est.upper), digits, missing)})"


# ----------------------------------------------------------------------------------------------
# Number agreement in generated sentences
# ----------------------------------------------------------------------------------------------
_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def plural(n: int, singular: str, plural: str | None = None) -> str:
    """``singular`` when ``n`` is 1, else ``plural`` (default ``singular + "s"``): plural(2, "value") -> "values"."""
    return singular if n == 1 else (plural if plural is not None else singular + "s")


def number_words(n: int) -> str:
    """Small counts in words for running text ("one", "two" ... "ten"), larger ones as digits with a
    thousands separator from 1,000 on (:func:`format_count`)."""
    try:
        k = operator.index(n)
    except TypeError:
        return f"{n}"
    return _NUMBER_WORDS[k] if 0 <= k < len(_NUMBER_WORDS) else format_count(k)


#: First words that keep their capital inside a sentence: eponyms of clinical scores and scales.
EPONYMS = frozenset({"Karnofsky", "Charlson", "Gleason", "Eastern", "Breslow", "Clark", "Dukes", "Child-Pugh",
                     "Child", "Glasgow", "Ann", "Hodgkin", "Barcelona", "Masaoka", "Siewert", "Lauren", "Borrmann"})


def in_sentence(label: str) -> str:
    """A variable's label inside a sentence: "Age at start" -> "age at start"; the first letter stays
    capital when the first word is an acronym ("KPS score", "pT stage") or an eponym ("Karnofsky
    performance score", :data:`EPONYMS`)."""
    first = label.split(" ", 1)[0]
    if not first or any(c.isupper() for c in first[1:]) or first.strip("(,") in EPONYMS:
        return label
    return label[:1].lower() + label[1:]


def results_key(name) -> str:
    """A code as it appears in a results-file key (``{{< res >}}`` path): each character that is not a
    letter or digit becomes "_", leading and trailing ones dropped ("CMT+ICI" -> "CMT_ICI"). The one rule
    of every section (helpers/report/keys.py writes such keys as ``{arm}``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in str(name)).strip("_")


def ordinal(n: int) -> str:
    """English ordinal of a positive integer: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 112th."""
    n = int(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def format_count(n: Any, missing: str = "–") -> str:
    """A count as the document prints it: a comma thousands separator from 1,000 on.

    en-GB / AMA style for whole numbers of patients, events, cycles, adverse events, replicates ...:
    ``format_count(999) == "999"``, ``format_count(1000) == "1,000"``, ``format_count(69048) ==
    "69,048"``, ``format_count(-1234) == "-1,234"``. Years, P values, percentages and estimates are not
    counts and must not go through this function (a year prints "2021", never "2,021").

    Parameters
    ----------
    n : int, numpy integer, float or None
        The count. An integral float (``69048.0``, e.g. a count read back from a DataFrame) prints as a
        whole number; a non-integral one (a weighted count) keeps its decimals after the separated
        integer part (``1234.5 -> "1,234.5"``). A string is returned unchanged (an already formatted
        cell such as ``"<5"``).
    missing : str
        Shown for None, NaN or ``pd.NA`` (default "–", the dash of :func:`format_p` for a missing value).

    Returns
    -------
    str
        The count with its separators. R equivalent: ``formatC(n, big.mark = ",", format = "d")`` or
        ``format(n, big.mark = ",")``.
    """
    if isinstance(n, str):
        return n
    if _missing(n) or n is pd.NA:
        return missing
    try:
        return f"{operator.index(n):,}"
    except TypeError:
        pass
    value = float(n)
    if math.isnan(value):
        return missing
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value.is_integer():
        return f"{int(value):,}"
    return f"{value:,}"


def without_unit(label: str) -> str:
    """A label without its closing unit in parentheses ("Age (years)" -> "Age"), for a sentence or a
    list whose own parentheses it would nest in; a label that is only a parenthesis is kept."""
    return re.sub(r"\s*\([^()]*\)$", "", label) or label


def join_words(words: list[str], conjunction: str = "and") -> str:
    """Items of a sentence: ``["a", "b", "c"]`` -> ``"a, b and c"`` (no serial comma; empty items dropped)."""
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" {conjunction} " + words[-1]


def count_of(k: int, n: int, noun: str, verb: tuple[str, str] | None = None) -> str:
    """A part of a whole in words: ``count_of(0, 18, "characteristics")`` -> "none of the 18 characteristics",
    ``count_of(1, 29, "counts", ("differs", "differ"))`` -> "1 of the 29 counts differs" (the verb agrees)."""
    text = f"{'none' if k == 0 else format_count(k)} of the {format_count(n)} {noun}"
    if verb:
        text += " " + (verb[0] if k == 1 else verb[1])
    return text
