"""Load, validate and derive the study data (the data contract of :mod:`helpers.data.contract`).

A data folder holds ``cohort.csv|xlsx``, ``study.yaml`` and, optionally, ``adverse_events``,
``treatment_cycles``, ``dictionary.yaml`` (default: the project's ``data/dictionary.yaml``),
``published.yaml`` and ``analysis.yaml``. :func:`load_study` reads, validates and derives it;
:func:`open_study` returns the study the pipeline validated once per build (cached under the output folder).

Validation uses pandera: its ``DataFrameSchema`` checks every column of every file lazily, so all
violations are collected and reported together, each with its file, column, rows and the rule broken.
(pandera was chosen over hand-written checks because it validates whole columns at once, reports every
failure case with its row index, and keeps the rules declarative next to the dictionary.) The rule
functions are first applied directly (text rules to each column's distinct values); only a file where
some rule fails goes through pandera, which then words every problem. A valid file of 10^6 rows thus
skips pandera's per-check copies and missing-value scans; the messages are pandera's, as before.

Conventions
-----------
- Time zero is ``start_date`` (start of the compared treatment). Months = days / 30.4375 (365.25 / 12).
- OS: start to death from any cause; alive patients censored at ``last_followup_date``.
- PFS (when ``progression_date`` is a column): start to progression or death, whichever comes first;
  otherwise censored at ``last_assessment_date`` when that column is present (and filled), else at
  ``last_followup_date`` (``Study.pfs_censoring``).
- Cells are read as text and trimmed of surrounding white space; an empty cell, or one listed in
  study.yaml's ``missing_values``, is a missing value. Leading lines starting with ``#`` (the synthetic
  files' notice) are skipped.
- Categorical columns are pandas Categoricals whose categories are the dictionary's codes in its order.

Input normalisations (accepted silently; each is a case of ``tests/bad_inputs``)
-------------------------------------------------------------------------------
- a UTF-8 byte-order mark (Excel's "CSV UTF-8") and Windows line ends;
- white space around cells and column names;
- trailing rows whose cells are all empty (spreadsheets leave them); an empty row *between* records is
  reported (missing values);
- Excel: the first worksheet is read; a cell typed as a date becomes ``YYYY-MM-DD`` (a time of day other
  than midnight is kept and then reported as not a date); a cell typed as a number becomes its text, whole
  numbers without ``.0`` (65.0 -> "65"); numbers and ISO dates stored as text are read as they are;
- columns not in the dictionary are ignored with an ``UnknownColumnsWarning`` (they never reach the analysis).

Normalised with a warning naming file, column and rows (one rule for every cell, whatever the others hold):

- characters invisible on screen (``InvisibleCharactersWarning``): zero-width space, non-joiner and joiner,
  word joiner, a byte-order mark inside a cell, soft hyphen, left-to-right/right-to-left marks, embeddings,
  overrides and isolates are removed; no-break, figure, narrow no-break and ideographic spaces become
  spaces; then the cell is trimmed. "CMT\u200b" is read as the code "CMT", in any file and column;
- Excel formula cells with a stored value (``ExcelContentWarning``): the value Excel last computed is read.

Excel as the user sees it: anything whose content as read would differ from what a person sees in Excel
and that cannot be read safely is refused, naming file, worksheet, column, Excel cell, data row and
patient: a formula cell without a stored value (written by a script, never calculated: it would be read
as empty), rows (also rows hidden by a filter) or columns hidden in Excel that hold data, a hidden first
worksheet, merged cells. Values are read as stored, not as displayed: a number format (4.66 shown as 4.7,
0.5 shown as 50%) is not applied; Excel error values (``#N/A``, ``#DIV/0!``) are text and break the
column's rule.

Everything else is an error naming file, column, rows and rule, among them: any date not in ISO form
(03/04/2020 is ambiguous and never guessed; "NA" is not a missing value unless study.yaml lists it), decimal
commas, codes in another case (codes are case-sensitive; the message shows the value found), text that
is not UTF-8 (Latin-1, UTF-16), semicolon- or tab-separated files, a row with more cells than the header,
duplicated column names, merged cells or title rows above the header in Excel, both ``x.csv`` and
``x.xlsx`` present, and a cycle listed twice.
"""
from __future__ import annotations

import codecs
import copy
import csv
import functools
import hashlib
import io
import re
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from helpers.config import PROJECT_ROOT, data_dir, output_dir
from helpers.data.contract import (DAYS_PER_MONTH, FILE_KEYS, PARTS, Dictionary, DictionaryError,
                                   add_optional_columns, grouping_values, parse_dictionary)



class _Pandera:
    """``pandera.pandas``, imported when a check first runs: a notebook kernel that opens the validated,
    cached study (:func:`open_study`) never needs it, and the import costs half a second per kernel."""

    def __getattr__(self, name):
        import pandera.pandas
        return getattr(pandera.pandas, name)


pa = _Pandera()

DICTIONARY_PATH = PROJECT_ROOT / "data" / "dictionary.yaml"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
INT_PATTERN = re.compile(r"^[+-]?\d+$")
NUMBER_PATTERN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
MAX_ROWS_LISTED = 10
#: A space next to a comma, a quote or a line end, or any tab: some CSV cell may need trimming.
SPACE_AT_CELL_EDGE = (" ,", ", ", " \n", "\n ", " \r", '" ', ' "', "\t")


# ----------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class Problem:
    """One broken rule: which file, column and rows, and what the rule is."""

    file: str
    column: str
    rule: str
    rows: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.file}, column '{self.column}'" if self.column else self.file
        if not self.rows:
            return f"{where}: {self.rule}"
        shown = ", ".join(self.rows[:MAX_ROWS_LISTED])
        more = f" and {len(self.rows) - MAX_ROWS_LISTED} more" if len(self.rows) > MAX_ROWS_LISTED else ""
        noun = "row" if len(self.rows) == 1 else "rows"
        return f"{where}: {self.rule} ({noun} {shown}{more})"


class CohortValidationError(ValueError):
    """The input data break the data contract; ``problems`` lists every violation."""

    def __init__(self, problems: list[Problem], folder: Path | None = None):
        self.problems = list(problems)
        self.folder = folder
        head = f"Invalid study data in {folder}" if folder else "Invalid study data"
        lines = [f"{head}: {len(self.problems)} problem{'' if len(self.problems) == 1 else 's'}"] + [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class UnknownColumnsWarning(UserWarning):
    """A file has columns the dictionary does not know; they are ignored."""


# ----------------------------------------------------------------------------- dictionary and config
def dictionary_path(folder: Path | str | None = None) -> Path:
    """The dictionary of a data folder: its own ``dictionary.yaml``, else the project default."""
    if folder is not None and (Path(folder) / "dictionary.yaml").exists():
        return Path(folder) / "dictionary.yaml"
    return DICTIONARY_PATH


def read_study_dictionary(path: Path | str = DICTIONARY_PATH) -> Dictionary:
    """The typed :class:`~helpers.data.contract.Dictionary` at ``path`` (parsed once per file content)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    return copy.deepcopy(_parsed_dictionary(text, path.name))


@functools.lru_cache(maxsize=8)
def _parsed_dictionary(text: str, name: str) -> Dictionary:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CohortValidationError([Problem(name, "", f"not valid YAML: {exc}")]) from None
    try:
        return parse_dictionary(raw, name)
    except DictionaryError as exc:
        raise CohortValidationError([Problem(name, c, r) for c, r in exc.problems]) from None


def _default_arm_codes(path: Path) -> list[str]:
    """Arm codes of the study.yaml next to ``path`` (for a dictionary read without its study)."""
    study = Path(path).parent / "study.yaml"
    try:
        raw = yaml.safe_load(study.read_text(encoding="utf-8")) or {}
        return [str(a["code"]) for a in raw.get("arms") or []]
    except Exception:  # noqa: BLE001  no study next to it: no arm codes
        return []


def load_dictionary(path: Path | str = DICTIONARY_PATH, arm_codes=None, present=None) -> dict:
    """The internal column rules of a dictionary: ``{"files": {...}, "derived": {...}}``; a new dict per call.

    ``files[key]["columns"][name]`` is the rule the validator applies to each column (type ``string |
    code | integer | number | date``, ``codes``, ``required``, ...; see :mod:`helpers.data.contract`).
    ``arm_codes`` default: those of the ``study.yaml`` next to the dictionary. ``present``: the cohort
    file's columns (optional core columns not among them are left out; None: all are listed).
    """
    dictionary = read_study_dictionary(path)
    codes = _default_arm_codes(Path(path)) if arm_codes is None else list(arm_codes)
    return {"files": dictionary.files(codes, present), "derived": dictionary.derived()}


@functools.lru_cache(maxsize=4)
def _parsed_yaml(text: str) -> dict:
    """``yaml.safe_load(text)``, parsed once per text (the pure-Python parser takes ~0.1 s here)."""
    return yaml.safe_load(text)


@dataclass(frozen=True)
class Arm:
    """A treatment arm: its code in cohort.csv, its label in tables and prose, and a description."""

    code: str
    label: str
    description: str = ""


DESIGNS = ("observational", "randomised")
STUDY_KEYS = ("title", "synthetic", "cutoff_date", "design", "setting", "arms", "missing_values", "authors",
              "generator")


@dataclass(frozen=True)
class StudyConfig:
    """Study settings from ``study.yaml`` (see :mod:`helpers.data.contract` and ``data/study.yaml``).

    ``arms`` lists the two arms, the reference first; ``arm_order`` and ``reference_arm`` give their codes.
    """

    title: str
    synthetic: bool
    cutoff_date: date
    arms: tuple[Arm, ...]
    design: str = "observational"
    setting: str = ""
    missing_values: tuple[str, ...] = ("",)
    authors: tuple = ()
    days_per_month: float = DAYS_PER_MONTH
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def arm_order(self) -> tuple[str, ...]:
        """Arm codes, the reference first."""
        return tuple(a.code for a in self.arms)

    @property
    def reference_arm(self) -> str:
        return self.arms[0].code

    @property
    def experimental_arm(self) -> str:
        return self.arms[-1].code

    @property
    def randomised(self) -> bool:
        return self.design == "randomised"

    def arm(self, code: str) -> Arm:
        for a in self.arms:
            if a.code == code:
                return a
        raise KeyError(code)

    def arm_label(self, code: str) -> str:
        """Label of arm ``code`` (the code itself when unknown)."""
        try:
            return self.arm(code).label
        except KeyError:
            return str(code)

    def arm_description(self, code: str) -> str:
        try:
            return self.arm(code).description
        except KeyError:
            return ""


def _parse_arms(raw, name: str, problems: list) -> tuple[Arm, ...]:
    if not isinstance(raw, list) or len(raw) != 2:
        problems.append(Problem(name, "arms", "must list the two arms as {code, label, description}, "
                                              "the reference arm first"))
        return ()
    arms = []
    for i, item in enumerate(raw, 1):
        if isinstance(item, dict) and item.get("code") not in (None, ""):
            arms.append(Arm(str(item["code"]), str(item.get("label", item["code"])),
                            str(item.get("description", ""))))
        else:
            problems.append(Problem(name, "arms", f"arm {i} must be a mapping with a code"))
    codes = [a.code for a in arms]
    if len(set(codes)) != len(codes):
        problems.append(Problem(name, "arms", f"arm codes must differ: {codes}"))
    return tuple(arms)


def load_config(folder: Path, arm_codes: list[str] | None = None) -> StudyConfig:
    """Read and check ``folder/study.yaml`` (every problem reported at once).

    ``arm_codes`` is accepted for backward compatibility and ignored: the arms come from study.yaml.
    """
    path = folder / "study.yaml"
    name = path.name
    if not path.exists():
        raise CohortValidationError([Problem(name, "", f"file not found in {folder}")], folder)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CohortValidationError([Problem(name, "", f"not valid YAML: {exc}")], folder) from None
    if not isinstance(raw, dict):
        raise CohortValidationError([Problem(name, "", "must be a mapping of keys (title, arms, ...)")], folder)
    problems = []
    old = [k for k in ("arm_order", "reference_arm") if k in raw]
    if old:
        problems.append(Problem(name, old[0], "this key is no longer read: list the arms under 'arms' as "
                                              "{code, label, description}, the reference arm first"))
    cutoff = raw.get("cutoff_date")
    if isinstance(cutoff, str):
        try:
            cutoff = date.fromisoformat(cutoff)
        except ValueError:
            cutoff = None
    if not isinstance(cutoff, date):
        problems.append(Problem(name, "cutoff_date", "must be a date YYYY-MM-DD"))
    arms = _parse_arms(raw.get("arms"), name, problems)
    if not isinstance(raw.get("synthetic", False), bool):
        problems.append(Problem(name, "synthetic", "must be true or false"))
    design = raw.get("design", "observational")
    if design not in DESIGNS:
        problems.append(Problem(name, "design", f"must be one of {list(DESIGNS)}"))
    missing = raw.get("missing_values", [""])
    if not isinstance(missing, list) or not all(isinstance(v, str) for v in missing):
        problems.append(Problem(name, "missing_values", "must be a list of texts, e.g. [\"\", \"NA\"]"))
        missing = [""]
    if problems:
        raise CohortValidationError(problems, folder)
    authors = raw.get("authors") or []
    return StudyConfig(title=str(raw.get("title", "")), synthetic=bool(raw.get("synthetic", False)),
                       cutoff_date=cutoff, arms=arms, design=design, setting=str(raw.get("setting") or ""),
                       missing_values=tuple(dict.fromkeys(["", *missing])),
                       authors=tuple(authors) if isinstance(authors, list) else (authors,),
                       extra={k: v for k, v in raw.items() if k not in STUDY_KEYS[:-2]})


# ----------------------------------------------------------------------------- reading
def find_file(folder: Path, stem: str) -> Path:
    """The one ``stem.csv`` or ``stem.xlsx`` in ``folder``."""
    candidates = [folder / f"{stem}.{ext}" for ext in ("csv", "xlsx")]
    found = [p for p in candidates if p.exists()]
    if not found:
        raise CohortValidationError([Problem(f"{stem}.csv", "", f"file not found in {folder} (.csv or .xlsx)")],
                                    folder)
    if len(found) > 1:
        raise CohortValidationError([Problem(f"{stem}.csv", "", f"both {stem}.csv and {stem}.xlsx exist; keep one")],
                                    folder)
    return found[0]


def _fail(name: str, rule: str, column: str = "") -> CohortValidationError:
    return CohortValidationError([Problem(name, column, rule)])


def _decode(name: str, data: bytes) -> str:
    """UTF-8 text (a byte-order mark is accepted and dropped); anything else is reported with its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        guess = ""
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            guess = " (it looks like UTF-16, Excel's 'Unicode text')"
        else:
            try:
                data.decode("cp1252")
                guess = " (it looks like Latin-1/Windows-1252)"
            except UnicodeDecodeError:
                pass
        raise _fail(name, f"is not UTF-8 text: byte {exc.start} on line {line}{guess}; "
                          "save it as 'CSV UTF-8'") from None


def _drop_trailing_empty_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows at the end whose cells are all empty (left by spreadsheet programs) are dropped."""
    if frame.empty:
        return frame
    if (frame.iloc[-1] != "").any():     # the usual case: the last row has a value (no scan of every cell)
        return frame
    filled = (frame != "").any(axis=1).to_numpy()
    last = np.flatnonzero(filled)
    keep = int(last[-1]) + 1 if len(last) else 0
    return frame.iloc[:keep]


def _header_problems(name: str, header: list[str]) -> list[Problem]:
    """Duplicated column names (pandas would silently rename the second one 'x.1')."""
    seen, problems = set(), []
    for column in header:
        if column in seen and column:
            problems.append(Problem(name, column, "column appears more than once"))
        seen.add(column)
    return problems


def _may_need_trimming(body: str) -> bool:
    """False when no CSV cell can start or end with white space (trimming 10^6 cells is then skipped)."""
    if " " not in body and "\t" not in body:     # one fast scan each; every case below needs one of them
        return False
    tail = body[-256:].rstrip("\r\n")
    last = tail[-1:] if tail or len(body) <= 256 else body.rstrip("\r\n")[-1:]
    return (body[:1] in (" ", "\t") or last in (" ", "\t")
            or any(pair in body for pair in SPACE_AT_CELL_EDGE))


#: Line boundaries of ``str.splitlines``.
_LINE_END = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _line_at(text: str, start: int) -> tuple[str, int]:
    """The line of ``text`` starting at ``start`` (with its line end, as ``splitlines(keepends=True)``)
    and the start of the next one."""
    found = _LINE_END.search(text, start)
    end = found.end() if found else len(text)
    return text[start:end], end


def _body_start(text: str) -> int:
    """Where the header line starts: after leading ``#`` comment lines, then after blank lines."""
    start = 0
    line, following = _line_at(text, start)
    while start < len(text) and line.lstrip().startswith("#"):
        start = following
        line, following = _line_at(text, start)
    while start < len(text) and not line.strip():
        start = following
        line, following = _line_at(text, start)
    return start


def _read_csv(path: Path) -> pd.DataFrame:
    name = path.name
    data = path.read_bytes()
    text = _decode(name, data)
    start = _body_start(text)
    body = text[start:]
    if not body or body.isspace():
        raise _fail(name, "file is empty (no header, no rows)")
    header = [c.strip() for c in next(csv.reader([_line_at(text, start)[0]]))]
    if len(header) == 1:
        for separator, label in ((";", "semicolons"), ("\t", "tabs")):
            if separator in header[0]:
                raise _fail(name, f"columns are separated by {label}; save it as comma-separated CSV "
                                  "(with '.' as the decimal mark)")
    duplicated = _header_problems(name, header)
    if duplicated:
        raise CohortValidationError(duplicated)
    # the parser reads the bytes of ``body`` (valid UTF-8 decodes and encodes back to the same bytes,
    # so they follow the byte-order mark and the encoded skipped lines); with na_filter off an empty
    # cell is '' (no NaN to fill)
    offset = (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0) + len(text[:start].encode("utf-8"))
    body_bytes = data[offset:]
    try:
        frame = pd.read_csv(io.BytesIO(body_bytes), encoding="utf-8", dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=True)
        frame.attrs["needs_strip"] = _may_need_trimming(body)
        frame.attrs["invisible"] = _NOT_PLAIN.search(body) is not None
    except pd.errors.ParserError as exc:
        ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if ragged:
            expected, line, saw = (int(g) for g in ragged.groups())
            raise _fail(name, f"cannot be parsed as CSV: data row {line - 1} has {saw} cells but the header has "
                              f"{expected} (an unquoted comma?)") from None
        raise _fail(name, f"cannot be parsed as CSV: {str(exc).strip()}") from None
    return frame


def _excel_text(value) -> str:
    """The canonical text of an Excel cell: dates as YYYY-MM-DD, whole numbers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == datetime.min.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")           # a time of day in a date column is reported
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)                         # shortest text that reads back as the same number
    return str(value)


class ExcelContentWarning(UserWarning):
    """An Excel cell is read as its stored value while Excel may show another (a formula's value as
    Excel last computed it); the warning names file, sheet, column and rows."""


class InvisibleCharactersWarning(UserWarning):
    """Cells held characters invisible on screen (zero-width spaces, no-break spaces, byte-order marks,
    soft hyphens, direction marks); they were removed (no-break spaces made ordinary spaces, then
    trimmed). The warning names file, column and rows."""


#: Characters a person cannot see on screen, removed from every cell: soft hyphen, Arabic letter mark,
#: Mongolian vowel separator, zero-width space/non-joiner/joiner, left-to-right and right-to-left marks,
#: directional embeddings, overrides and isolates, word joiner and invisible operators, byte-order mark
INVISIBLE_CHARACTERS = "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
#: Spaces that look like a space but are not one: no-break, figure, narrow no-break, ideographic
ODD_SPACES = "\u00a0\u2007\u202f\u3000"
_INVISIBLE = re.compile(f"[{INVISIBLE_CHARACTERS}]")
_ODD_SPACE = re.compile(f"[{ODD_SPACES}]")
_NOT_PLAIN = re.compile(f"[{INVISIBLE_CHARACTERS}{ODD_SPACES}]")


def _sheet_formulas(path: Path) -> bool:
    """True when a worksheet of the workbook holds a formula (an ``<f>`` element), without parsing it."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    data = archive.read(info)
                    if b"<f>" in data or b"<f " in data or b"<f/>" in data:
                        return True
    except (OSError, zipfile.BadZipFile):
        return False
    return False


def _read_excel(path: Path) -> pd.DataFrame:
    """The first worksheet as text cells, refusing what would be read otherwise than Excel shows it.

    Refused (an error naming file, sheet, column, Excel cell, data row and patient): a formula cell
    without a stored value (a workbook written by a script and never opened in Excel: it would be read
    as empty), merged cells, rows or columns hidden in Excel (also rows hidden by a filter) that hold
    data, a hidden first worksheet. Named in an :class:`ExcelContentWarning`: formula cells (their
    value as Excel last computed and stored it is read; Excel recomputes on opening). Read as stored,
    not as displayed: numbers (a number format showing 4.7 for 4.66, or 50% for 0.5, is not applied),
    dates typed as dates (``YYYY-MM-DD``), numbers typed as text (read as the text).
    """
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    name = path.name
    try:
        workbook = load_workbook(path, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a broken workbook
        raise _fail(name, f"cannot be read as Excel: {type(exc).__name__}: {exc}") from None
    sheet = workbook.worksheets[0]
    where = f"worksheet '{sheet.title}'"
    if sheet.sheet_state != "visible":
        raise _fail(name, f"the first worksheet ('{sheet.title}') is hidden in Excel; the data are read from "
                          "the first worksheet: unhide it, or move the data sheet first")
    merged = sorted(str(r) for r in sheet.merged_cells.ranges)
    if merged:
        raise _fail(name, f"the first worksheet has merged cells ({', '.join(merged[:5])}); it must hold one "
                          "header row of column names followed by one row per record: unmerge the cells and "
                          "delete title rows")
    first_row, first_col = sheet.min_row, sheet.min_column
    cells = list(sheet.iter_rows(min_row=first_row, min_col=first_col, max_row=sheet.max_row,
                                 max_col=sheet.max_column, values_only=True))
    rows = [[_excel_text(v) for v in row] for row in cells]
    skipped = 0
    while rows and not any(c.strip() for c in rows[0]):
        rows.pop(0)
        skipped += 1
    if not rows:
        workbook.close()
        raise _fail(name, "file is empty (no header, no rows)")
    header = [c.strip() for c in rows[0]]
    while header and header[-1] == "" and all(len(r) < len(header) or not r[len(header) - 1].strip()
                                               for r in rows[1:]):
        header.pop()                               # formatted but empty columns at the right
    width = len(header)
    duplicated = _header_problems(name, header)
    if duplicated:
        workbook.close()
        raise CohortValidationError(duplicated)
    body = [(r + [""] * width)[:width] for r in rows[1:]]
    header_row = first_row + skipped               # Excel row number of the header
    pid = header.index("patient_id") if "patient_id" in header else None

    def data_row(excel_row: int) -> str:
        index = excel_row - header_row - 1         # 0-based data row
        label = f"{index + 1}"
        if pid is not None and 0 <= index < len(body) and body[index][pid]:
            label += f" [{body[index][pid]}]"
        return label

    def column_name(excel_col: int) -> str:
        j = excel_col - first_col
        return header[j] if 0 <= j < width and header[j] else get_column_letter(excel_col)

    problems: list[Problem] = []
    last_row = header_row + len(body)
    hidden_rows = sorted(r for r, dim in list(sheet.row_dimensions.items())
                         if dim.hidden and header_row < r <= last_row and any(body[r - header_row - 1]))
    if hidden_rows:
        problems.append(Problem(name, "", f"{where}: rows hidden in Excel (or by a filter) hold records that "
                                          "would be analysed unseen; unhide them, or delete them "
                                          f"(Excel rows {', '.join(str(r) for r in hidden_rows[:MAX_ROWS_LISTED])})",
                                tuple(data_row(r) for r in hidden_rows)))
    for dim in sheet.column_dimensions.values():
        if not dim.hidden:
            continue
        low, high = (dim.min or 0), (dim.max or 0)
        for c in range(max(low, first_col), min(high, first_col + width - 1) + 1):
            j = c - first_col
            if header[j] or any(r[j] for r in body):
                problems.append(Problem(name, column_name(c), f"{where}: column {get_column_letter(c)} is hidden "
                                                              "in Excel but holds data that would be analysed "
                                                              "unseen; unhide it, or delete it"))
    workbook.close()
    if _sheet_formulas(path):
        formulas = load_workbook(path, data_only=False)
        fsheet = formulas.worksheets[0]
        empty: dict[int, list[tuple[int, str]]] = {}
        cached: dict[int, list[int]] = {}
        for row in fsheet.iter_rows(min_row=header_row + 1, max_row=last_row, min_col=first_col,
                                    max_col=first_col + width - 1):
            for cell in row:
                if cell.data_type != "f":
                    continue
                j = cell.column - first_col
                i = cell.row - header_row - 1
                if body[i][j] == "":
                    empty.setdefault(cell.column, []).append((cell.row, str(cell.value)))
                else:
                    cached.setdefault(cell.column, []).append(cell.row)
        formulas.close()
        for c, found in sorted(empty.items()):
            cellnames = ", ".join(f"{get_column_letter(c)}{r}" for r, _ in found[:MAX_ROWS_LISTED])
            problems.append(Problem(
                name, column_name(c),
                f"{where}: {'cell' if len(found) == 1 else 'cells'} {cellnames} "
                f"{'holds a formula' if len(found) == 1 else 'hold formulas'} ({found[0][1][:40]}) without a stored value (the "
                "workbook was written by a program and never calculated), which would be read as empty; open "
                "and save it in Excel, or paste the values",
                tuple(data_row(r) for r, _ in found)))
        for c, found in sorted(cached.items()):
            shown = ", ".join(data_row(r) for r in found[:MAX_ROWS_LISTED])
            more = f" and {len(found) - MAX_ROWS_LISTED} more" if len(found) > MAX_ROWS_LISTED else ""
            warnings.warn(f"{name}, {where}, column '{column_name(c)}': formulas; the values Excel last computed "
                          f"and stored are read (rows {shown}{more})", ExcelContentWarning, stacklevel=3)
    if problems:
        raise CohortValidationError(problems)
    frame = pd.DataFrame(body, columns=header, dtype=object) if body else pd.DataFrame(columns=header)
    frame.attrs["invisible"] = _NOT_PLAIN.search("\x00".join("\x00".join(r) for r in rows)) is not None
    return frame


def _drop_invisible_characters(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Remove characters invisible on screen from every cell and column name (no-break and other odd
    spaces become spaces, then cells are trimmed as usual), with an :class:`InvisibleCharactersWarning`
    naming the column and rows. One rule for every cell, whatever the other cells hold."""
    columns = []
    for column in frame.columns:
        text = str(column)
        if _NOT_PLAIN.search(text):
            cleaned = _ODD_SPACE.sub(" ", _INVISIBLE.sub("", text)).strip()
            warnings.warn(f"{name}: the column name {text!r} held characters invisible on screen; read as "
                          f"'{cleaned}'", InvisibleCharactersWarning, stacklevel=3)
            text = cleaned
        columns.append(text)
    frame.columns = columns
    for column in frame.columns:
        values = frame[column].astype(str)
        hit = values.str.contains(_NOT_PLAIN, regex=True)
        if not hit.any():
            continue
        rows = [_row_label(frame, i) for i in np.flatnonzero(hit.to_numpy())]
        shown = ", ".join(rows[:MAX_ROWS_LISTED])
        more = f" and {len(rows) - MAX_ROWS_LISTED} more" if len(rows) > MAX_ROWS_LISTED else ""
        examples = ", ".join(repr(v) for v in dict.fromkeys(values[hit]).keys()) if hit.sum() <= 3 else \
            ", ".join(repr(v) for v in list(dict.fromkeys(values[hit]).keys())[:3]) + " ..."
        warnings.warn(f"{name}, column '{column}': characters invisible on screen (zero-width or no-break "
                      f"spaces, byte-order marks, soft hyphens or direction marks) removed from {examples} "
                      f"(rows {shown}{more})", InvisibleCharactersWarning, stacklevel=3)
        frame[column] = values.str.replace(_INVISIBLE, "", regex=True).str.replace(_ODD_SPACE, " ", regex=True)
    frame.attrs["needs_strip"] = True
    return frame


def read_raw(path: Path) -> pd.DataFrame:
    """Read a CSV or Excel file with every cell as trimmed text ('' for empty).

    Normalisations (each tested in ``tests/test_bad_inputs.py``): a UTF-8 byte-order mark and Windows
    line ends are accepted; leading ``#`` comment lines are skipped; white space around cells and
    column names is trimmed; trailing rows whose cells are all empty are dropped; Excel cells typed as
    dates become ``YYYY-MM-DD`` and whole numbers lose their ``.0``. Everything else is left to the rules.
    """
    frame = _read_excel(path) if path.suffix == ".xlsx" else _read_csv(path)
    if frame.attrs.get("invisible", True):
        frame = _drop_invisible_characters(frame, path.name)
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.attrs.get("needs_strip", True) and len(frame.columns):   # skipped when no cell can need it
        frame = frame.apply(lambda s: s.astype(str).str.strip())
    frame = _drop_trailing_empty_rows(frame)
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1:
        return frame                               # already 0..n-1 (reset_index would copy every cell)
    return frame.reset_index(drop=True)


def agent_codes(agent: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each cycle's agent class as a code into the class names, without a string per cycle.

    Parameters
    ----------
    agent : Series (cycles,)
        The ``agent_class`` column of the treatment cycles (categorical when loaded, else any dtype).

    Returns
    -------
    codes : int array (cycles,)
        Positions in ``names``.
    names : list of str
        The classes as text; a missing class is named "nan" (as ``astype(str)`` reads it).
    """
    if isinstance(agent.dtype, pd.CategoricalDtype):
        codes, names = agent.cat.codes.to_numpy(), [str(x) for x in agent.cat.categories]
        if (codes < 0).any():
            codes, names = np.where(codes < 0, len(names), codes), [*names, "nan"]
        return codes, names
    codes, names = pd.factorize(agent.astype(str))
    return codes, [str(x) for x in names]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- column rules
def _is_int(value: str) -> bool:
    return bool(INT_PATTERN.match(value))


def _is_number(value: str) -> bool:
    return bool(NUMBER_PATTERN.match(value))


def _is_date(value: str) -> bool:
    if not re.match(DATE_PATTERN, value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _on_unique(fn):
    """Apply a vectorised text test to the distinct values only (dates and codes repeat a lot)."""
    def wrapper(s: pd.Series) -> pd.Series:
        codes, uniques = pd.factorize(s, use_na_sentinel=False)
        if len(uniques) > len(s) // 2:
            return fn(s)
        ok = np.asarray(fn(pd.Series(uniques, dtype=object)), dtype=bool)
        return pd.Series(ok[codes], index=s.index)
    wrapper.__name__ = fn.__name__
    return wrapper


@_on_unique
def _date_ok(s: pd.Series) -> pd.Series:
    """Vectorised ``_is_date``: ISO pattern and a real calendar day."""
    pattern = s.str.fullmatch(DATE_PATTERN[1:-1]).fillna(False).astype(bool)
    parsed = pd.to_datetime(s.where(pattern), format="%Y-%m-%d", errors="coerce")
    return pattern & parsed.notna()


@_on_unique
def _int_ok(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(INT_PATTERN.pattern[1:-1]).fillna(False).astype(bool)


@_on_unique
def _number_ok(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(NUMBER_PATTERN.pattern[1:-1]).fillna(False).astype(bool)


def _text_rules(spec: dict) -> list[tuple[object, str, str | None]]:
    """(function, error, check name) of the rules of one column read as text (empty cells pass; see
    'required'). Each function maps a Series of cell texts to one bool per cell, cell by cell.

    The functions are vectorised (whole columns), so 100,000 patients validate in about a second.
    """
    kind = spec["type"]
    rules = []
    present = "present"
    if kind == "code":
        codes = [str(c) for c in spec["codes"]]
        rules.append((lambda s, codes=codes: s.isin(codes + [""]),
                      f"value not among the allowed codes {codes}", None))
    elif kind == "date":
        rules.append((lambda s: (s == "") | _date_ok(s), "not a valid date in ISO format YYYY-MM-DD", None))
    elif kind == "integer":
        rules.append((lambda s: (s == "") | _int_ok(s), "not a whole number", None))
    elif kind == "number":
        rules.append((lambda s: (s == "") | _number_ok(s), "not a number (use '.' as the decimal mark)", None))
    if kind in ("integer", "number"):
        low, high = spec.get("min"), spec.get("max")
        ok = _int_ok if kind == "integer" else _number_ok
        low_, high_ = (-np.inf if low is None else low), (np.inf if high is None else high)

        if low is not None or high is not None:
            @_on_unique
            def range_rule(s, ok=ok, low_=low_, high_=high_):
                value = pd.to_numeric(s.where(ok(s)), errors="coerce")
                return value.isna() | ((value >= low_) & (value <= high_))

            rules.append((range_rule, f"outside the allowed range {low} to {high}", None))
        step = spec.get("multiple_of")
        if step:
            @_on_unique
            def multiple_rule(s, ok=ok, step=step):
                value = pd.to_numeric(s.where(ok(s)), errors="coerce")
                return value.isna() | (value % step == 0)

            rules.append((multiple_rule, f"not a multiple of {step}", None))
    if spec.get("required", False):
        rules.append((_on_unique(lambda s: s != ""), "missing value (this column is required)", present))
    return rules


def _text_checks(spec: dict) -> list[pa.Check]:
    """pandera checks for one column read as text: :func:`_text_rules` as ``pa.Check``."""
    return [pa.Check(fn, error=error, name=name) for fn, error, name in _text_rules(spec)]


def text_schema(columns: dict) -> pa.DataFrameSchema:
    """pandera schema of a raw file read as text, built from the dictionary's columns."""
    return pa.DataFrameSchema(
        {name: pa.Column(None, checks=_text_checks(spec), unique=bool(spec.get("unique", False)),
                         nullable=True, coerce=False)  # cells are text, never null
         for name, spec in columns.items()},
        strict=False)


def _row_label(frame: pd.DataFrame, index) -> str:
    """'row 5 [SYN-0004]': the 1-based data row and the patient id where the file has one."""
    try:
        position = int(index)
    except (TypeError, ValueError):
        return str(index)
    label = f"{position + 1}"
    if "patient_id" in frame.columns and position < len(frame):
        pid = frame["patient_id"].iloc[position]
        if isinstance(pid, str) and pid:
            label += f" [{pid}]"
    return label


def _found_values(values: pd.Series, rule: str, shown: int = 3) -> str:
    """'; found '03/04/2020', 'male' (codes are case-sensitive)': the offending cell texts, for the user."""
    distinct = [str(v) for v in dict.fromkeys(values.dropna().astype(str)) if str(v) != ""]
    if not distinct:
        return ""
    text = ", ".join(repr(v) for v in distinct[:shown]) + (" ..." if len(distinct) > shown else "")
    hint = ""
    codes = re.search(r"allowed codes (\[.*\])", rule)
    if codes:
        allowed = {c.casefold(): c for c in yaml.safe_load(codes.group(1).replace("'", '"'))}
        if any(v.casefold() in allowed for v in distinct):
            hint = " (codes are case-sensitive)"
    return f"; found {text}{hint}"


def _problems_from(errors: pa.errors.SchemaErrors, frame: pd.DataFrame, file: str,
                   rule_columns: dict[str, str] | None = None) -> list[Problem]:
    cases = errors.failure_cases
    problems = []
    rule_columns = rule_columns or {}
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        check = str(check)
        if check == "column_in_dataframe":
            for missing in group["failure_case"]:
                problems.append(Problem(file, str(missing), "required column is missing"))
            continue
        if check in rule_columns:
            column = rule_columns[check]
        indices = sorted({int(i) for i in group["index"].dropna()})
        rule = {"field_uniqueness": "duplicate values (must be unique)",
                "not_nullable": "missing value (this column is required)"}.get(check, check)
        if not rule_columns and not pd.isna(column):
            rule += _found_values(group["failure_case"], rule)
        problems.append(Problem(file, "" if pd.isna(column) else str(column), rule,
                                tuple(f"{_row_label(frame, i)}" for i in indices)))
    # rules checked at data-frame level are reported once per row, not once per column
    merged: dict[tuple, Problem] = {}
    for p in problems:
        key = (p.file, p.column, p.rule)
        if key in merged:
            rows = tuple(dict.fromkeys(merged[key].rows + p.rows))
            merged[key] = Problem(p.file, p.column, p.rule, rows)
        else:
            merged[key] = p
    return list(merged.values())


Distinct = dict[str, tuple[np.ndarray, np.ndarray]]


def _distinct_texts(frame: pd.DataFrame, columns) -> Distinct:
    """For each of ``columns`` in ``frame``: (code of each cell, the column's distinct cell values).

    Done once per column and shared by the text rules and the typing: a file of 10^6 rows has few
    distinct dates and codes. A missing cell (which :func:`read_raw` never gives) is a distinct value
    NaN, as ``pd.factorize(use_na_sentinel=False)``; codes are never -1.
    """
    distinct = {}
    for name in columns:
        if name in frame.columns:
            codes, uniques = pd.factorize(frame[name])
            if (codes < 0).any():
                codes = np.where(codes < 0, len(uniques), codes)
                uniques = np.append(np.asarray(uniques, dtype=object), np.nan)
            distinct[name] = (codes, uniques)
    return distinct


def _text_rules_hold(columns: dict, distinct: Distinct) -> bool:
    """True when every column of ``columns`` is in ``distinct`` (see :func:`_distinct_texts`) and every
    cell passes its text rules.

    The rules are applied to the distinct values only (each rule decides cell by cell, so a value
    that passes passes in every row); uniqueness is the number of distinct values. Missing cells
    (never produced by :func:`read_raw`) or a rule that raises give False: pandera then decides and
    reports.
    """
    for name, spec in columns.items():
        if name not in distinct:
            return False
        codes, uniques = distinct[name]
        values = pd.Series(uniques, dtype=object)
        if values.isna().any() or (spec.get("unique", False) and len(uniques) < len(codes)):
            return False
        for fn, _, _ in _text_rules(spec):
            if not _holds(fn, values):
                return False
    return True


def _holds(fn, data) -> bool:
    """True when the vectorised rule ``fn`` returns a boolean Series that is True everywhere."""
    try:
        result = fn(data)
    except Exception:  # noqa: BLE001  pandera reports the failure with its message
        return False
    return isinstance(result, pd.Series) and result.dtype == bool and bool(result.all())


def _validate_text(frame: pd.DataFrame, columns: dict, file: str,
                   distinct: Distinct | None = None) -> list[Problem]:
    """Problems of a raw file against the dictionary's columns (pandera collects and words them).

    A file whose cells all pass (:func:`_text_rules_hold`) is not given to pandera: with no failure it
    would report nothing, and it runs ~10 times slower on 10^6 rows.
    """
    if frame.empty:
        return [Problem(file, "", "file has a header but no data rows")]
    unknown = [c for c in frame.columns if c not in columns]
    if unknown:
        warnings.warn(f"{file}: ignoring columns not in the data dictionary: {unknown}", UnknownColumnsWarning,
                      stacklevel=3)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        header_row = _header_found_below(frame, columns)
        if header_row:
            return [Problem(file, "", f"the column names are on line {header_row + 1}, not on the first line: "
                                      "delete the title rows above the header")]
    duplicated = [c for c in frame.columns[frame.columns.duplicated()] if c]
    if duplicated:
        return [Problem(file, str(c), "column appears more than once") for c in duplicated]
    if not missing and _text_rules_hold(columns, _distinct_texts(frame, columns) if distinct is None else distinct):
        return []
    try:
        text_schema(columns).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        problems = _problems_from(errors, frame, file)
        by_case = {str(c).casefold(): str(c) for c in frame.columns}
        return [Problem(p.file, p.column, p.rule + f" (found '{by_case[p.column.casefold()]}': column names are "
                                                     "case-sensitive)", p.rows)
                if p.rule == "required column is missing" and p.column.casefold() in by_case else p
                for p in problems]
    return []


def _header_found_below(frame: pd.DataFrame, columns: dict, look: int = 5) -> int | None:
    """Line (0-based, the header being 0) of the first of the next rows that holds most column names."""
    for position in range(min(look, len(frame))):
        cells = set(frame.iloc[position].astype(str))
        if len(cells & set(columns)) >= max(2, len(columns) // 2):
            return position + 1
    return None


# ----------------------------------------------------------------------------- typing
def _typed(frame: pd.DataFrame, columns: dict, distinct: Distinct | None = None) -> pd.DataFrame:
    """Convert text columns to their dictionary types; invalid cells become missing (already reported).

    Each column's distinct values are converted (''-> missing; dates ``%Y-%m-%d``; integers and
    numbers that pass their text rule, else missing; codes as a Categorical of the dictionary's codes;
    strings as text) and spread back to the rows by their codes (see :func:`_distinct_texts`).
    """
    distinct = _distinct_texts(frame, columns) if distinct is None else distinct
    out = pd.DataFrame(index=frame.index)
    for name, spec in columns.items():
        if name not in frame.columns:
            continue
        codes, uniques = distinct[name]
        s = pd.Series(uniques, dtype=object).replace("", np.nan)
        kind = spec["type"]
        if kind == "date":
            values = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
        elif kind == "integer":
            values = pd.to_numeric(s.where(_int_ok(s.fillna(""))), errors="coerce").astype("Int64")
        elif kind == "number":
            values = pd.to_numeric(s.where(_number_ok(s.fillna(""))), errors="coerce").astype(float)
        elif kind == "code":
            values = pd.Series(pd.Categorical(s, categories=[str(c) for c in spec["codes"]]))
        else:
            values = s.astype(object)
        out[name] = values.take(codes).set_axis(frame.index)
    return out


# ----------------------------------------------------------------------------- cross-field rules
def _equals(values: pd.Series, value) -> pd.Series:
    """``values.astype(object) == value``; a Categorical compares its codes (no conversion of 10^6 cells)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values == value
    return values.astype(object) == value


def _rule(name: str, fn) -> pa.Check:
    return pa.Check(fn, name=name, error=name)


def _conditional_rules(columns: dict) -> list[tuple[str, str, object]]:
    """(rule text, column, function) for required_when / empty_when entries."""
    rules = []
    for name, spec in columns.items():
        for key, must_be_empty in (("required_when", False), ("empty_when", True)):
            condition = spec.get(key)
            if not condition:
                continue
            other, value = [part.strip() for part in condition.split("==")]
            text = (f"must be empty when {other} is {value}" if must_be_empty
                    else f"required when {other} is {value}")

            def check(df, name=name, other=other, value=value, must_be_empty=must_be_empty):
                applies = df[other].astype(object) == value
                filled = df[name].notna()
                return ~applies | (~filled if must_be_empty else filled)

            rules.append((text, name, check))
    return rules


Rule = tuple[str, str, object]  # (rule text, column it is reported on, function: typed frame -> bool per row)


def _patient_rules(columns: dict, cutoff: pd.Timestamp) -> list[Rule]:
    """Date-order, cut-off and conditional rules of cohort.csv (optional core columns only when present)."""
    known_until = lambda df: df["death_date"].fillna(df["last_followup_date"])  # noqa: E731
    ok = lambda cond, *cols: cond | pd.concat(cols, axis=1).isna().any(axis=1)  # noqa: E731
    has_progression = "progression_date" in columns
    rules = [
        ("death_date is before start_date", "death_date",
         lambda df: ok(df["death_date"] >= df["start_date"], df["death_date"], df["start_date"])),
    ]
    if has_progression:
        rules.append(("progression_date is before start_date", "progression_date",
                      lambda df: ok(df["progression_date"] >= df["start_date"], df["progression_date"],
                                    df["start_date"])))
    rules += [
        ("last_followup_date is before start_date", "last_followup_date",
         lambda df: ok(df["last_followup_date"] >= df["start_date"], df["last_followup_date"], df["start_date"])),
    ]
    if has_progression:
        rules.append(("progression_date is after death_date", "progression_date",
                      lambda df: ok(df["progression_date"] <= df["death_date"], df["progression_date"],
                                    df["death_date"])))
    rules.append(("last_followup_date is after death_date", "last_followup_date",
                  lambda df: ok(df["last_followup_date"] <= df["death_date"], df["last_followup_date"],
                                df["death_date"])))
    if has_progression:
        rules.append(("progression_date is after last_followup_date (and no death recorded)", "progression_date",
                      lambda df: ok(df["progression_date"] <= known_until(df), df["progression_date"],
                                    df["last_followup_date"])))
    if "last_assessment_date" in columns:
        rules += [
            ("last_assessment_date is before start_date", "last_assessment_date",
             lambda df: ok(df["last_assessment_date"] >= df["start_date"], df["last_assessment_date"],
                           df["start_date"])),
            ("last_assessment_date is after last_followup_date", "last_assessment_date",
             lambda df: ok(df["last_assessment_date"] <= df["last_followup_date"], df["last_assessment_date"],
                           df["last_followup_date"])),
        ]
    for column in ("start_date", "progression_date", "last_assessment_date", "death_date", "last_followup_date"):
        if column in columns:
            rules.append((f"{column} is after the data cut-off {cutoff.date()}", column,
                          lambda df, column=column: ok(df[column] <= cutoff, df[column])))
    rules += _conditional_rules(columns)
    return rules


def _child_rules(patients: pd.DataFrame, columns: dict, cutoff: pd.Timestamp,
                 date_column: str | None, exposures: dict | None = None) -> list[Rule]:
    """Rules of adverse_events.csv (``date_column`` None) or treatment_cycles.csv against the cohort.

    ``exposures`` ({name: Exposure}): an exposure restricted to some ``arms`` gives the rule
    "<agent_class> cycle given to a patient of the <arm> arm" for each other arm.
    """
    # duplicated ids are reported on the cohort file; the first row of an id is used for the lookups here
    by_id = (patients[["patient_id", "start_date", "death_date", "last_followup_date", "arm"]]
             .dropna(subset=["patient_id"]).drop_duplicates("patient_id").set_index("patient_id"))
    start = by_id["start_date"]
    until = by_id["death_date"].fillna(by_id["last_followup_date"])
    arm_codes = [str(c) for c in (by_id["arm"].cat.categories if isinstance(by_id["arm"].dtype, pd.CategoricalDtype)
                                  else pd.unique(by_id["arm"].dropna()))]
    in_arm = {arm: np.append((by_id["arm"].astype(object) == arm).to_numpy(), False)  # [-1]: not in the cohort
              for arm in arm_codes}
    last: dict = {}

    def cohort_row(df: pd.DataFrame) -> np.ndarray:
        """Position in ``by_id`` of each row's patient_id (-1: not in the cohort); once per data frame."""
        if last.get("frame") is not df:
            last.update(frame=df, rows=by_id.index.get_indexer(df["patient_id"]))
        return last["rows"]

    def lookup(df: pd.DataFrame, series: pd.Series) -> pd.Series:
        """``df["patient_id"].map(series)`` (missing where the patient is not in the cohort)."""
        return pd.Series(pd.api.extensions.take(series.to_numpy(), cohort_row(df), allow_fill=True), index=df.index)

    def duplicated_cycle(df: pd.DataFrame) -> pd.Series:
        """``df.duplicated([patient_id, agent_class, date], keep=False)``, missing values equal to each
        other; on one int64 key when every patient_id is a cohort row (its position identifies it)."""
        rows = cohort_row(df)
        agent = pd.factorize(df["agent_class"])[0] + 1          # 0: missing
        when = pd.factorize(df[date_column])[0] + 1
        sizes = (len(by_id), int(agent.max(initial=0)) + 1, int(when.max(initial=0)) + 1)
        if (rows >= 0).all() and sizes[0] * sizes[1] * sizes[2] < 2 ** 62:
            key = (rows.astype(np.int64) * sizes[1] + agent) * sizes[2] + when
            repeated = pd.Series(key, index=df.index).duplicated(keep=False)
        else:
            repeated = df.duplicated(["patient_id", "agent_class", date_column], keep=False)
        return ~repeated | df[date_column].isna()

    def known_or_missing(df: pd.DataFrame) -> pd.Series:
        found = pd.Series(cohort_row(df) >= 0, index=df.index)
        return found if found.all() else df["patient_id"].isna() | found

    rules = [("patient_id not found in the cohort file", "patient_id", known_or_missing)]
    if date_column:
        def within(df, series, cmp):
            ref = lookup(df, series)
            return cmp(df[date_column], ref) | df[date_column].isna() | ref.isna()

        rules += [
            (f"{date_column} is before the patient's start_date", date_column,
             lambda df: within(df, start, lambda a, b: a >= b)),
            (f"{date_column} is after the patient's death or last follow-up", date_column,
             lambda df: within(df, until, lambda a, b: a <= b)),
            (f"{date_column} is after the data cut-off {cutoff.date()}", date_column,
             lambda df: (df[date_column] <= cutoff) | df[date_column].isna()),
        ]
        for exposure in (exposures or {}).values():
            if exposure.arms is None:
                continue
            for arm in arm_codes:
                if arm in exposure.arms:
                    continue
                rules.append((f"{exposure.agent_class} cycle given to a patient of the {arm} arm", "agent_class",
                              lambda df, agent=exposure.agent_class, mask=in_arm[arm]:
                              ~(_equals(df["agent_class"], agent) & mask[cohort_row(df)])))
        rules += [
            ("the same cycle (patient_id, agent_class, cycle_date) is listed more than once", date_column,
             duplicated_cycle),
        ]
    return rules


def _validate_rules(typed: pd.DataFrame, rules: list[Rule], frame: pd.DataFrame, file: str) -> list[Problem]:
    """Problems of the cross-field ``rules`` on a typed file (pandera collects and words them).

    When every rule holds on every row (:func:`_holds`) pandera is not run: it would report nothing.
    """
    if all(_holds(fn, typed) for _, _, fn in rules):
        return []
    checks = [_rule(text, fn) for text, _, fn in rules]
    try:
        pa.DataFrameSchema(checks=checks).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return _problems_from(errors, frame, file, {text: column for text, column, _ in rules})
    return []


# ----------------------------------------------------------------------------- derivation
def _as_datetime(values: pd.Series) -> pd.Series:
    """``pd.to_datetime(values)``; a datetime64[ns] Series (what the loader gives) is used as it is."""
    return values if isinstance(values, pd.Series) and values.dtype == "datetime64[ns]" else pd.to_datetime(values)


def months_between(start: pd.Series, end: pd.Series, days_per_month: float = DAYS_PER_MONTH) -> pd.Series:
    """Months from ``start`` to ``end`` (days / 30.4375)."""
    return (_as_datetime(end) - _as_datetime(start)).dt.days / days_per_month


def derive_endpoints(patients: pd.DataFrame, cycles: pd.DataFrame | None = None,
                     days_per_month: float = DAYS_PER_MONTH, dictionary: Dictionary | None = None) -> pd.DataFrame:
    """Add OS, PFS (months, event flags), exposure counts, the dictionary's groupings and the start year.

    OS: start to death (event) or last follow-up (censored). PFS (only when ``progression_date`` is a
    column): start to the earlier of progression and death (event); otherwise censored at
    ``last_assessment_date`` when that column is present and filled, else at ``last_followup_date``.
    Times in months = days / 30.4375 (R: ``as.numeric(end - start) / 30.4375``).

    Parameters
    ----------
    patients : typed cohort (dates as datetime64).
    cycles : typed treatment_cycles (patient_id, agent_class) or None (no exposure counts).
    days_per_month : 30.4375.
    dictionary : the study's dictionary (default: the project's ``data/dictionary.yaml``); its
        exposures count cycles and its groupings derive categorical variables from their source columns.
    """
    if dictionary is None:
        dictionary = read_study_dictionary(DICTIONARY_PATH)
    out = patients.copy()
    start = _as_datetime(out["start_date"])
    death = _as_datetime(out["death_date"])
    last = _as_datetime(out["last_followup_date"])
    out["os_event"] = death.notna().astype(int)
    out["os_months"] = months_between(start, death.fillna(last), days_per_month)
    if "progression_date" in out.columns:
        progression = _as_datetime(out["progression_date"])
        pfs_end = pd.concat([progression, death], axis=1).min(axis=1)
        censor = last
        if "last_assessment_date" in out.columns:
            censor = _as_datetime(out["last_assessment_date"]).fillna(last)
        out["pfs_event"] = pfs_end.notna().astype(int)
        out["pfs_months"] = months_between(start, pfs_end.fillna(censor), days_per_month)
    if cycles is not None and dictionary.exposures:
        counts = cycles.groupby(["patient_id", cycles["agent_class"].astype(object)]).size().unstack(fill_value=0)
        for column, exposure in dictionary.exposures.items():
            series = counts[exposure.agent_class] if exposure.agent_class in counts.columns else pd.Series(dtype=int)
            out[column] = out["patient_id"].map(series).fillna(0).astype(int)
    for column, grouping in dictionary.groupings.items():
        if grouping.source in out.columns:
            out[column] = grouping_values(grouping, out[grouping.source])
    out["start_year"] = start.dt.year
    return out


def worst_grade_per_term(adverse_events: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """One row per patient and adverse event term with the worst grade (and the patient's arm)."""
    worst = (adverse_events.groupby(["patient_id", "term"], observed=True)["grade"].max()
             .rename("worst_grade").reset_index())
    worst["worst_grade"] = worst["worst_grade"].astype(int)
    arm = patients.set_index("patient_id")["arm"]
    worst.insert(1, "arm", pd.Categorical(worst["patient_id"].map(arm).astype(object), categories=arm.cat.categories))
    return worst


# ----------------------------------------------------------------------------- the study
@dataclass
class Study:
    """A validated study: typed tables, derived variables, configuration and input checksums.

    ``adverse_events``, ``ae_worst`` and ``cycles`` are None when their file is absent; ``published`` is
    the data folder's ``published.yaml`` (parsed) or None. ``has(part)`` says which parts are present.
    """

    patients: pd.DataFrame
    adverse_events: pd.DataFrame | None
    ae_worst: pd.DataFrame | None
    cycles: pd.DataFrame | None
    config: StudyConfig
    dictionary: Dictionary
    folder: Path
    sources: dict[str, str]
    rules_checked: int = 0
    published: dict | None = None

    @property
    def arms(self) -> list[str]:
        return list(self.config.arm_order)

    @property
    def pfs_censoring(self) -> str | None:
        """``"last_assessment"`` or ``"last_followup"``: where PFS without an event is censored (None: no PFS)."""
        if "progression_date" not in self.patients.columns:
            return None
        return "last_assessment" if "last_assessment_date" in self.patients.columns else "last_followup"

    def has(self, part: str) -> bool:
        """Is ``part`` (one of ``pfs``, ``response``, ``safety``, ``exposure``, ``replication``) present?"""
        if part not in PARTS:
            raise ValueError(f"part must be one of {list(PARTS)}, got {part!r}")
        columns = self.patients.columns
        return {"pfs": "pfs_months" in columns,
                "response": "best_response" in columns,
                "safety": self.adverse_events is not None,
                "exposure": self.cycles is not None and any(e in columns for e in self.dictionary.exposures),
                "replication": self.published is not None}[part]

    @property
    def parts(self) -> dict[str, bool]:
        """{part: present} for every optional part."""
        return {part: self.has(part) for part in PARTS}


def _optional_file(folder: Path, stem: str) -> Path | None:
    """``stem.csv`` or ``stem.xlsx`` when one exists (both: an error), else None."""
    if not any((folder / f"{stem}.{ext}").exists() for ext in ("csv", "xlsx")):
        return None
    return find_file(folder, stem)


def _blank_missing(frame: pd.DataFrame, missing_values) -> pd.DataFrame:
    """Cells equal to one of ``missing_values`` (other than "") become empty."""
    extra = [v for v in missing_values if v != ""]
    if not extra or frame.empty:
        return frame
    return frame.mask(frame.isin(extra), "")


def _published(folder: Path) -> dict | None:
    path = folder / "published.yaml"
    if not path.exists():
        return None
    try:
        return copy.deepcopy(_parsed_yaml(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise CohortValidationError([Problem(path.name, "", f"not valid YAML: {exc}")], folder) from None


def load_study(folder: Path | str | None = None, dictionary_path: Path | str | None = None) -> Study:
    """Read, validate and derive a study folder (default: ``helpers.config.data_dir()``).

    The dictionary is ``dictionary_path``, else the folder's ``dictionary.yaml``, else the project
    default. ``cohort`` and ``study.yaml`` are required; ``adverse_events`` and ``treatment_cycles``
    are optional.

    Raises
    ------
    CohortValidationError
        listing every violation (file, column, rows, rule) across the files, study.yaml and the dictionary.
    """
    folder = Path(folder or data_dir()).resolve()
    if not folder.is_dir():
        raise CohortValidationError([Problem(str(folder), "", "data folder not found")])
    dict_path = Path(dictionary_path) if dictionary_path is not None else dictionary_path_of(folder)
    config_problems: list[Problem] = []
    try:
        config = load_config(folder)
    except CohortValidationError as exc:
        config, config_problems = None, exc.problems
    try:
        dictionary = read_study_dictionary(dict_path)
    except CohortValidationError as exc:
        raise CohortValidationError(config_problems + exc.problems, folder) from None
    if config is None:
        raise CohortValidationError(config_problems, folder)
    arm_codes = list(config.arm_order)
    problems = _arms_named_by_dictionary(dictionary, arm_codes)
    cutoff = pd.Timestamp(config.cutoff_date)

    raw: dict[str, pd.DataFrame] = {}
    distinct: dict[str, Distinct] = {}
    paths: dict[str, Path] = {}
    files: dict = {}
    for key in FILE_KEYS:
        try:
            path = find_file(folder, key) if key == "cohort" else _optional_file(folder, key)
            if path is None:
                continue
            paths[key] = path
            raw[key] = _blank_missing(read_raw(path), config.missing_values)
        except CohortValidationError as exc:
            problems += exc.problems
            continue
        if key == "cohort":
            dictionary = dictionary.with_arms(arm_codes, list(raw[key].columns))
            files = dictionary.files()
        elif not files:
            continue            # the cohort file could not be read: its problems are reported
        else:                   # optional columns of the other files, when their header has them
            add_optional_columns(key, files[key]["columns"], list(raw[key].columns))
        columns = files[key]["columns"]
        distinct[key] = _distinct_texts(raw[key], columns)
        problems += _validate_text(raw[key], columns, path.name, distinct[key])
    if "cohort" not in raw:
        raise CohortValidationError(problems, folder)

    typed = {key: _typed(frame, files[key]["columns"], distinct[key]) for key, frame in raw.items()}
    rules_checked = sum(len(_text_rules(s)) for k, f in files.items() if k in raw for s in f["columns"].values())
    patients = typed["cohort"]
    cohort_name = paths["cohort"].name
    if set(files["cohort"]["columns"]) <= set(patients.columns):
        rules = _patient_rules(files["cohort"]["columns"], cutoff)
        rules_checked += len(rules)
        problems += _validate_rules(patients, rules, raw["cohort"], cohort_name)
        for key, date_column in (("adverse_events", None), ("treatment_cycles", "cycle_date")):
            if key in typed and set(files[key]["columns"]) <= set(typed[key].columns):
                rules = _child_rules(patients, files[key]["columns"], cutoff, date_column, dictionary.exposures)
                rules_checked += len(rules)
                problems += _validate_rules(typed[key], rules, raw[key], paths[key].name)
    if problems:
        raise CohortValidationError(problems, folder)

    patients["arm"] = patients["arm"].cat.reorder_categories(list(config.arm_order))
    cycles = typed.get("treatment_cycles")
    if cycles is not None:
        cycles["cycle_month"] = months_between(
            cycles["patient_id"].map(patients.set_index("patient_id")["start_date"]), cycles["cycle_date"],
            config.days_per_month)
    patients = derive_endpoints(patients, cycles, config.days_per_month, dictionary)
    adverse = typed.get("adverse_events")
    if adverse is not None:
        adverse["grade"] = adverse["grade"].astype(int)
    sources = {path.name: sha256_of(path) for path in [*paths.values(), folder / "study.yaml"]}
    sources["dictionary.yaml"] = sha256_of(dict_path)
    for optional in ("analysis.yaml", "published.yaml", "excluded.csv"):   # they change what is reported
        if (folder / optional).is_file():
            sources[optional] = sha256_of(folder / optional)
    return Study(patients=patients, adverse_events=adverse,
                 ae_worst=None if adverse is None else worst_grade_per_term(adverse, patients),
                 cycles=cycles, config=config, dictionary=dictionary, folder=folder, sources=sources,
                 rules_checked=rules_checked, published=_published(folder))


def _arms_named_by_dictionary(dictionary: Dictionary, arm_codes: list[str]) -> list[Problem]:
    """Arms the dictionary names (exposure ``arms``, ``required_when: arm == X``) that study.yaml lacks."""
    named = [(a, f"exposure '{e.name}'") for e in dictionary.exposures.values() for a in (e.arms or ())]
    for name, cov in dictionary.covariates.items():
        for key in ("required_when", "empty_when"):
            other, _, value = str(cov.rules.get(key, "")).partition("==")
            if other.strip() == "arm":
                named.append((value.strip(), f"covariate '{name}'"))
    return [Problem("study.yaml", "arms", f"{code!r}, named in the data dictionary ({where}), is not an arm "
                                          f"code here {arm_codes}")
            for code, where in named if code not in arm_codes]


def dictionary_path_of(folder: Path | str) -> Path:
    """The dictionary a data folder uses: its own ``dictionary.yaml``, else the project default."""
    return dictionary_path(folder)


# ----------------------------------------------------------------------------- load once per build
CACHE_FOLDER = ".cache"


def study_key(folder: Path | str) -> str:
    """SHA-256 over the names and contents of the data folder's files, the dictionary it uses and the
    code of :mod:`helpers.data`.

    Any change of an input file (or of the project dictionary, when the folder has none) gives a new key.
    """
    folder = Path(folder).resolve()
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    digest.update(b"dictionary\0" + hashlib.sha256(dictionary_path_of(folder).read_bytes()).digest())
    for path in sorted(Path(__file__).parent.glob("*.py")):   # the loader's code: a changed loader re-validates
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _cache_path(folder: Path, output: Path) -> Path:
    return Path(output) / CACHE_FOLDER / f"study-{study_key(folder)}.pickle"


def cache_study(study: Study, output_dir: Path | str | None = None) -> Path:
    """Store a validated ``study`` under ``output_dir/.cache/`` for :func:`open_study`; returns the path."""
    import pickle

    path = _cache_path(study.folder, Path(output_dir) if output_dir is not None else _default_output())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(study, handle, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return path


def _default_data() -> Path:
    return data_dir()


def _default_output() -> Path:
    return output_dir()


def open_study(data_dir: Path | str | None = None, output_dir: Path | str | None = None) -> Study:
    """The study of ``data_dir``, validated once per build.

    Returns the pickle the pipeline stored with :func:`cache_study` under ``output_dir/.cache/`` when
    its key (checksums of the data folder's files and the dictionary) matches; otherwise loads and
    validates the folder with :func:`load_study` (a notebook opened by hand). ``None`` arguments default
    to ``helpers.config.data_dir()`` and ``helpers.config.output_dir()``.
    """
    import pickle

    folder = Path(data_dir if data_dir is not None else _default_data()).resolve()
    output = Path(output_dir if output_dir is not None else _default_output())
    if folder.is_dir():
        try:
            path = _cache_path(folder, output)
            if path.exists():
                with open(path, "rb") as handle:
                    study = pickle.load(handle)
                if isinstance(study, Study):
                    return study
        except Exception:  # noqa: BLE001  a stale or unreadable cache is ignored: validate again
            pass
    return load_study(folder)
