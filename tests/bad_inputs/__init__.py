"""The bad-input corpus: malformed cohorts made from the default data by small, named corruptions.

Each :class:`Case` names one corruption (a function that edits a writable copy of ``data/`` in place and
returns the 1-based data row it broke, if any) and the behaviour the loader must show:

* ``expect="error"``: ``load_study`` raises ``CohortValidationError`` with a problem naming ``file``,
  ``column`` (``""`` for a whole-file problem), a rule containing ``rule`` and, when the corruption
  returned a row, that row (``"5 [SYN-0005]"``: data row 5, patient SYN-0005);
* ``expect="accepted"``: a documented normalisation (``note``); the study loads and its derived
  endpoints equal those of the default data.

Everything is generated at test time (Excel workbooks with openpyxl), so the corpus needs no binary
files in the repository. ``python -m tests.bad_inputs OUT`` writes every case to ``OUT/<name>/`` for
trying them by hand (``python -m helpers.build.pipeline --data OUT/<name> --no-render``).
"""
from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable

import pandas as pd

from helpers.config import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data"
DATA_FILES = ("cohort.csv", "adverse_events.csv", "treatment_cycles.csv", "study.yaml")
DATE_COLUMNS = ("start_date", "progression_date", "death_date", "last_followup_date")


@dataclass(frozen=True)
class Case:
    name: str
    corrupt: Callable[[Path], int | None]
    expect: str                 # "error" or "accepted"
    file: str = ""
    column: str = ""
    rule: str = ""
    note: str = ""

    def __str__(self) -> str:
        return self.name


# ----------------------------------------------------------------------------- file helpers
def copy_default(folder: Path) -> Path:
    """A writable copy of the four default data files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in DATA_FILES:
        shutil.copy(DATA_DIR / name, folder / name)
    return folder


def read_table(folder: Path, name: str) -> pd.DataFrame:
    """A CSV of the folder as text cells ('' for empty), comment lines dropped."""
    lines = [ln for ln in (folder / name).read_text(encoding="utf-8").splitlines(keepends=True)
             if not ln.startswith("#")]
    return pd.read_csv(io.StringIO("".join(lines)), dtype=str, keep_default_na=False)


def write_table(folder: Path, name: str, frame: pd.DataFrame) -> None:
    (folder / name).write_text(frame.to_csv(index=False, lineterminator="\n"), encoding="utf-8")


def set_cell(name: str, column: str, row: int, value: str) -> Callable[[Path], int]:
    """Corruption: put ``value`` in ``column`` of data row ``row`` (1-based) of file ``name``."""
    def corrupt(folder: Path) -> int:
        frame = read_table(folder, name)
        frame.loc[row - 1, column] = value
        write_table(folder, name, frame)
        return row
    corrupt.__name__ = f"set_{column}"
    return corrupt


def _edit(name: str, edit: Callable[[pd.DataFrame], int | None]) -> Callable[[Path], int | None]:
    def corrupt(folder: Path) -> int | None:
        frame = read_table(folder, name)
        row = edit(frame)
        write_table(folder, name, frame)
        return row
    return corrupt


def _first(frame: pd.DataFrame, mask) -> int:
    return int(frame.index[mask][0])


def write_excel(folder: Path, stem: str, frame: pd.DataFrame, typed: bool = False,
                title_row: str | None = None, merge_title: bool = False) -> Path:
    """Replace ``stem.csv`` by ``stem.xlsx`` written with openpyxl.

    typed: date columns as Excel dates and number columns as numbers (what a hospital export gives);
    otherwise every cell is text ('numbers stored as text'). title_row: a title line above the header,
    merged across the header's width when ``merge_title``.
    """
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    if title_row is not None:
        sheet.append([title_row] + [None] * (len(frame.columns) - 1))
        if merge_title:
            sheet.merge_cells(f"A1:{get_column_letter(len(frame.columns))}1")
    sheet.append(list(frame.columns))
    for record in frame.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(frame.columns, record):
            if typed and value != "":
                try:  # a cell that is not a valid date or number (a corruption) stays text
                    if column in DATE_COLUMNS or column == "cycle_date":
                        value = datetime.combine(date.fromisoformat(value), datetime.min.time())
                    elif column in ("age", "kps", "grade"):
                        value = int(value)
                    elif column == "liver_met_max_diameter_cm":
                        value = float(value)
                except ValueError:
                    pass
            cells.append(None if value == "" else value)
        sheet.append(cells)
    path = folder / f"{stem}.xlsx"
    workbook.save(path)
    (folder / f"{stem}.csv").unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------------- corruptions
def swap_start_and_death(folder: Path) -> int:
    """A dead patient's start and death dates exchanged (date order reversed)."""
    def edit(f):
        row = _first(f, (f["death_date"] != "") & (f["progression_date"] == ""))
        f.loc[row, ["start_date", "death_date"]] = [f.loc[row, "death_date"], f.loc[row, "start_date"]]
        f.loc[row, "last_followup_date"] = f.loc[row, "death_date"]
        return row + 1
    return _edit("cohort.csv", edit)(folder)


def progression_after_death(folder: Path) -> int:
    def edit(f):
        row = _first(f, (f["death_date"] != "") & (f["progression_date"] != "") & (f["death_date"] != f["progression_date"]))
        f.loc[row, "progression_date"] = f.loc[row, "death_date"]
        f.loc[row, "death_date"] = f.loc[row, "last_followup_date"] = f.loc[row, "start_date"]
        return row + 1
    return _edit("cohort.csv", edit)(folder)


def progression_after_follow_up(folder: Path) -> int:
    """An alive patient progressing after the last follow-up date."""
    def edit(f):
        row = _first(f, (f["death_date"] == "") & (f["progression_date"] != ""))
        f.loc[row, "progression_date"], f.loc[row, "last_followup_date"] = (f.loc[row, "last_followup_date"],
                                                                            f.loc[row, "progression_date"])
        if f.loc[row, "progression_date"] == f.loc[row, "last_followup_date"]:
            f.loc[row, "last_followup_date"] = f.loc[row, "start_date"]
        return row + 1
    return _edit("cohort.csv", edit)(folder)


def duplicate_patient_id(folder: Path) -> int:
    def edit(f):
        f.loc[3, "patient_id"] = f.loc[2, "patient_id"]
        return 4
    return _edit("cohort.csv", edit)(folder)


def drop_column(name: str, column: str):
    def corrupt(folder: Path) -> None:
        frame = read_table(folder, name).drop(columns=[column])
        write_table(folder, name, frame)
    return corrupt


def rename_column(name: str, old: str, new: str):
    def corrupt(folder: Path) -> None:
        write_table(folder, name, read_table(folder, name).rename(columns={old: new}))
    return corrupt


def add_unknown_column(folder: Path) -> None:
    """A column the dictionary does not know (e.g. a hospital number): ignored with a warning."""
    frame = read_table(folder, "cohort.csv")
    frame["hospital_number"] = [f"H{i:06d}" for i in range(len(frame))]
    write_table(folder, "cohort.csv", frame)


def duplicate_column(folder: Path) -> None:
    """The kps column twice (pandas would silently rename the second 'kps.1')."""
    text = read_table(folder, "cohort.csv").to_csv(index=False, lineterminator="\n").splitlines()
    rows = [text[0] + ",kps"] + [line + ",80" for line in text[1:]]
    (folder / "cohort.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def empty_file(name: str):
    def corrupt(folder: Path) -> None:
        (folder / name).write_text("", encoding="utf-8")
    return corrupt


def header_only(name: str):
    def corrupt(folder: Path) -> None:
        header = read_table(folder, name).columns
        (folder / name).write_text(",".join(header) + "\n", encoding="utf-8")
    return corrupt


def remove_file(name: str):
    def corrupt(folder: Path) -> None:
        (folder / name).unlink()
    return corrupt


def latin1_encoding(folder: Path) -> None:
    """An accented AE term saved as Latin-1 (Excel's 'CSV' on Windows) instead of UTF-8."""
    frame = read_table(folder, "adverse_events.csv")
    frame.loc[0, "term"] = "Anémie"
    (folder / "adverse_events.csv").write_bytes(frame.to_csv(index=False, lineterminator="\n").encode("latin-1"))


def utf16_encoding(folder: Path) -> None:
    text = read_table(folder, "cohort.csv").to_csv(index=False, lineterminator="\n")
    (folder / "cohort.csv").write_bytes(text.encode("utf-16"))


def byte_order_mark(folder: Path) -> None:
    """A UTF-8 byte-order mark (Excel's 'CSV UTF-8'): accepted."""
    for name in ("cohort.csv", "adverse_events.csv", "treatment_cycles.csv"):
        (folder / name).write_bytes(b"\xef\xbb\xbf" + (folder / name).read_bytes())


def windows_line_ends(folder: Path) -> None:
    for name in ("cohort.csv", "adverse_events.csv", "treatment_cycles.csv"):
        text = (folder / name).read_text(encoding="utf-8")
        (folder / name).write_bytes(text.replace("\n", "\r\n").encode("utf-8"))


def semicolon_separated(folder: Path) -> None:
    """A European 'CSV' export: semicolons between cells."""
    frame = read_table(folder, "cohort.csv")
    (folder / "cohort.csv").write_text(frame.to_csv(index=False, sep=";", lineterminator="\n"), encoding="utf-8")


def ragged_row(folder: Path) -> None:
    """A data line with one cell more than the header (an unquoted comma)."""
    lines = (folder / "adverse_events.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3] + ",extra"
    (folder / "adverse_events.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def whitespace_around_cells(folder: Path) -> None:
    """Spaces around codes, numbers, dates and column names: trimmed."""
    frame = read_table(folder, "cohort.csv")
    for column in ("arm", "sex", "kps", "start_date"):
        frame[column] = "  " + frame[column] + " "
    frame.columns = [f" {c} " if c in ("arm", "age") else c for c in frame.columns]
    write_table(folder, "cohort.csv", frame)


def lowercase_codes(folder: Path) -> int:
    def edit(f):
        f.loc[4, "sex"] = f.loc[4, "sex"].lower()
        return 5
    return _edit("cohort.csv", edit)(folder)


def trailing_empty_rows(folder: Path) -> None:
    """Empty rows after the data (',,,' lines left by a spreadsheet): dropped."""
    for name in ("cohort.csv", "adverse_events.csv"):
        width = len(read_table(folder, name).columns)
        with open(folder / name, "a", encoding="utf-8") as handle:
            handle.write(("," * (width - 1) + "\n") * 3 + "\n")


def empty_row_inside(folder: Path) -> int:
    """An empty row between patients is not a trailing row: reported as missing values."""
    frame = read_table(folder, "cohort.csv")
    blank = pd.DataFrame([[""] * len(frame.columns)], columns=frame.columns)
    write_table(folder, "cohort.csv", pd.concat([frame.iloc[:9], blank, frame.iloc[9:]], ignore_index=True))
    return 10


def cohort_as_excel(typed: bool, title_row: str | None = None, merge_title: bool = False, edit=None):
    def corrupt(folder: Path) -> int | None:
        frame = read_table(folder, "cohort.csv")
        row = edit(frame) if edit else None
        write_excel(folder, "cohort", frame, typed=typed, title_row=title_row, merge_title=merge_title)
        return row
    return corrupt


def all_files_as_excel(typed: bool):
    def corrupt(folder: Path) -> None:
        for stem in ("cohort", "adverse_events", "treatment_cycles"):
            write_excel(folder, stem, read_table(folder, f"{stem}.csv"), typed=typed)
    return corrupt


def excel_text_date(value: str, row: int = 3):
    def edit(frame):
        frame.loc[row - 1, "start_date"] = value
        return row
    return edit


def excel_text_diameter(value: str, row: int = 1):
    def edit(frame):
        frame.loc[row - 1, "liver_met_max_diameter_cm"] = value
        return row
    return edit


def excel_date_with_time(folder: Path) -> int:
    from openpyxl import load_workbook

    write_excel(folder, "cohort", read_table(folder, "cohort.csv"), typed=True)
    workbook = load_workbook(folder / "cohort.xlsx")
    sheet = workbook.active
    column = [c.value for c in sheet[1]].index("start_date") + 1
    cell = sheet.cell(row=3, column=column)
    cell.value = cell.value.replace(hour=14, minute=30)
    workbook.save(folder / "cohort.xlsx")
    return 2


def csv_and_excel(folder: Path) -> None:
    """Both adverse_events.csv and adverse_events.xlsx: ambiguous, refused."""
    write_excel(folder, "adverse_events", read_table(folder, "adverse_events.csv"))
    shutil.copy(DATA_DIR / "adverse_events.csv", folder / "adverse_events.csv")


def cycle_after_death(folder: Path) -> int:
    """A cycle dated 10 days after the patient's death."""
    cohort = read_table(folder, "cohort.csv")
    dead = cohort.loc[cohort["death_date"] != ""].iloc[0]
    after = date.fromordinal(date.fromisoformat(dead["death_date"]).toordinal() + 10).isoformat()

    def edit(f):
        row = _first(f, f["patient_id"] == dead["patient_id"])
        f.loc[row, "cycle_date"] = after
        return row + 1
    return _edit("treatment_cycles.csv", edit)(folder)


def cycle_before_start(folder: Path) -> int:
    def edit(f):
        f.loc[0, "cycle_date"] = "2010-01-01"
        return 1
    return _edit("treatment_cycles.csv", edit)(folder)


def ici_cycle_in_cmt_arm(folder: Path) -> int:
    cohort = read_table(folder, "cohort.csv")
    cmt = set(cohort.loc[cohort["arm"] == "CMT", "patient_id"])

    def edit(f):
        row = _first(f, f["patient_id"].isin(cmt))
        f.loc[row, "agent_class"] = "ICI"
        return row + 1
    return _edit("treatment_cycles.csv", edit)(folder)


def duplicate_cycle(folder: Path) -> int:
    frame = read_table(folder, "treatment_cycles.csv")
    write_table(folder, "treatment_cycles.csv", pd.concat([frame, frame.iloc[[0]]], ignore_index=True))
    return 1


def ici_agent_in_cmt_arm(folder: Path) -> int:
    def edit(f):
        row = _first(f, f["arm"] == "CMT")
        f.loc[row, "ici_agent"] = "Camrelizumab"
        return row + 1
    return _edit("cohort.csv", edit)(folder)


def ici_agent_missing(folder: Path) -> int:
    def edit(f):
        row = _first(f, f["arm"] == "CMT+ICI")
        f.loc[row, "ici_agent"] = ""
        return row + 1
    return _edit("cohort.csv", edit)(folder)


def local_therapy_type_without_therapy(folder: Path) -> int:
    def edit(f):
        row = _first(f, f["local_therapy_liver"] == "No")
        f.loc[row, "local_therapy_type"] = "TACE"
        return row + 1
    return _edit("cohort.csv", edit)(folder)


def start_after_cutoff(folder: Path) -> int:
    def edit(f):
        f.loc[1, ["start_date", "last_followup_date"]] = ["2025-07-15", "2025-07-20"]
        f.loc[1, ["progression_date", "death_date"]] = ["", ""]
        return 2
    return _edit("cohort.csv", edit)(folder)


def study_yaml(text_edit: Callable[[str], str]):
    def corrupt(folder: Path) -> None:
        path = folder / "study.yaml"
        path.write_text(text_edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return corrupt


def dictionary_yaml(text_edit: Callable[[str], str]):
    """Corruption: a copy of the default dictionary.yaml, edited, placed in the data folder."""
    def corrupt(folder: Path) -> None:
        text = (DATA_DIR / "dictionary.yaml").read_text(encoding="utf-8")
        (folder / "dictionary.yaml").write_text(text_edit(text), encoding="utf-8")
    return corrupt


def old_dictionary(folder: Path) -> None:
    """A dictionary.yaml of the earlier format (files / derived): refused with the new keys named."""
    (folder / "dictionary.yaml").write_text(
        "version: 1\nfiles:\n  cohort:\n    stem: cohort\n    columns:\n"
        "      patient_id: {label: Patient, type: string, required: true}\n", encoding="utf-8")


def declared_missing_na(folder: Path) -> None:
    """'NA' in empty death_date cells, with NA listed under study.yaml's missing_values: accepted."""
    frame = read_table(folder, "cohort.csv")
    frame.loc[frame["death_date"] == "", "death_date"] = "NA"
    write_table(folder, "cohort.csv", frame)
    path = folder / "study.yaml"
    text = path.read_text(encoding="utf-8").replace("missing_values:\n- ''\n", "missing_values: ['', NA]\n")
    assert "NA]" in text
    path.write_text(text, encoding="utf-8")


def _excel_edit(change: Callable) -> Callable[[Path], int | None]:
    """Corruption: write the cohort as a typed Excel workbook, then ``change(workbook, sheet, header, frame)``
    (its return value, the 1-based data row concerned, is returned)."""
    def corrupt(folder: Path) -> int | None:
        from openpyxl import load_workbook

        frame = read_table(folder, "cohort.csv")
        write_excel(folder, "cohort", frame, typed=True)
        workbook = load_workbook(folder / "cohort.xlsx")
        sheet = workbook.worksheets[0]
        header = [c.value for c in sheet[1]]
        row = change(workbook, sheet, header, frame)
        workbook.save(folder / "cohort.xlsx")
        return row
    return corrupt


def _formula_death_date(workbook, sheet, header, frame) -> int:
    """A death date as a formula saved by a script (openpyxl stores no value): Excel shows the date, a
    reader of stored values sees an empty cell, i.e. a censoring (issue 15)."""
    row = _first(frame, frame["death_date"] != "") + 1
    value = date.fromisoformat(frame.loc[row - 1, "death_date"])
    sheet.cell(row=row + 1, column=header.index("death_date") + 1).value = \
        f"=DATE({value.year},{value.month},{value.day})"
    return row


def _formula_age(workbook, sheet, header, frame) -> int:
    sheet.cell(row=6, column=header.index("age") + 1).value = "=60+5"
    return 5


def _error_value(workbook, sheet, header, frame) -> int:
    """An Excel error value (#N/A, as a failed lookup leaves it) in a date cell: read as its text."""
    sheet.cell(row=4, column=header.index("last_followup_date") + 1).value = "#N/A"
    return 3


def _hidden_row(workbook, sheet, header, frame) -> int:
    sheet.row_dimensions[8].hidden = True
    return 7


def _filtered_rows(workbook, sheet, header, frame) -> int:
    sheet.auto_filter.ref = sheet.dimensions
    for r in (12, 13):
        sheet.row_dimensions[r].hidden = True
    return 11


def _hidden_column(workbook, sheet, header, frame) -> None:
    from openpyxl.utils import get_column_letter

    sheet.column_dimensions[get_column_letter(header.index("kps") + 1)].hidden = True


def _hidden_first_sheet(workbook, sheet, header, frame) -> None:
    other = workbook.create_sheet("notes")
    other["A1"] = "exported cohort"
    workbook.active = 1
    sheet.sheet_state = "hidden"


def invisible_in(name: str, column: str, rows: tuple[int, ...], char: str, where: str = "end"):
    """Corruption: a character invisible on screen added to ``column`` of data ``rows`` (1-based) of
    ``name``; ``where``: "end", "start" or "inside" (after the first character)."""
    def corrupt(folder: Path) -> int:
        frame = read_table(folder, name)
        for row in rows:
            value = frame.loc[row - 1, column]
            frame.loc[row - 1, column] = {"end": value + char, "start": char + value,
                                          "inside": value[:1] + char + value[1:]}[where]
        write_table(folder, name, frame)
        return rows[0]
    corrupt.__name__ = f"invisible_{column}"
    return corrupt


# ----------------------------------------------------------------------------- the corpus
C, AE, CY = "cohort.csv", "adverse_events.csv", "treatment_cycles.csv"
ISO = "not a valid date in ISO format YYYY-MM-DD"

CASES: list[Case] = [
    # --- codes
    Case("wrong_arm_code", set_cell(C, "arm", 5, "ICI"), "error", C, "arm", "allowed codes"),
    Case("wrong_response_code", set_cell(C, "best_response", 5, "nCR"), "error", C, "best_response", "allowed codes"),
    Case("lowercase_codes", lowercase_codes, "error", C, "sex", "codes are case-sensitive",
         note="codes are case-sensitive; the message says so and shows the value found"),
    Case("space_inside_code", set_cell(C, "arm", 7, "CMT + ICI"), "error", C, "arm", "allowed codes"),
    Case("whitespace_around_cells", whitespace_around_cells, "accepted",
         note="white space around cells and column names is trimmed"),
    Case("ae_term_empty", set_cell(AE, "term", 3, ""), "error", AE, "term", "missing value"),
    Case("unknown_agent_class", set_cell(CY, "agent_class", 2, "immunotherapy"), "error", CY, "agent_class",
         "allowed codes"),
    # --- dates
    Case("swapped_date_order", swap_start_and_death, "error", C, "death_date", "death_date is before start_date"),
    Case("progression_after_death", progression_after_death, "error", C, "progression_date",
         "progression_date is after death_date"),
    Case("progression_after_last_follow_up", progression_after_follow_up, "error", C, "progression_date",
         "after last_followup_date"),
    Case("last_follow_up_before_start", set_cell(C, "last_followup_date", 1, "2013-01-01"), "error", C,
         "last_followup_date", "last_followup_date is before start_date"),
    Case("ambiguous_date_dd_mm", set_cell(C, "start_date", 5, "03/04/2020"), "error", C, "start_date", ISO,
         note="03/04/2020 could be 3 April or 4 March: never guessed"),
    Case("date_us_order", set_cell(C, "start_date", 5, "02/27/2014"), "error", C, "start_date", ISO),
    Case("date_dotted", set_cell(C, "death_date", 1, "22.04.2014"), "error", C, "death_date", ISO),
    Case("date_compact", set_cell(C, "start_date", 6, "20140227"), "error", C, "start_date", ISO),
    Case("date_month_name", set_cell(C, "start_date", 6, "27 Feb 2014"), "error", C, "start_date", ISO),
    Case("date_slashes_iso_order", set_cell(C, "start_date", 6, "2014/02/27"), "error", C, "start_date", ISO),
    Case("date_impossible_day", set_cell(C, "start_date", 5, "2020-02-30"), "error", C, "start_date", ISO),
    Case("date_na_string", set_cell(C, "death_date", 8, "NA"), "error", C, "death_date", ISO,
         note="an empty cell, not 'NA', means the event did not occur"),
    Case("start_after_cutoff", start_after_cutoff, "error", C, "start_date", "after the data cut-off"),
    Case("follow_up_after_cutoff", set_cell(C, "last_followup_date", 1, "2026-01-01"), "error", C,
         "last_followup_date", "after the data cut-off"),
    Case("cycle_after_cutoff", set_cell(CY, "cycle_date", 4, "2025-12-01"), "error", CY, "cycle_date",
         "after the data cut-off"),
    # --- numbers
    Case("impossible_age_high", set_cell(C, "age", 5, "150"), "error", C, "age", "outside the allowed range"),
    Case("impossible_age_negative", set_cell(C, "age", 5, "-5"), "error", C, "age", "outside the allowed range"),
    Case("age_not_whole", set_cell(C, "age", 5, "65.5"), "error", C, "age", "not a whole number"),
    Case("age_with_unit", set_cell(C, "age", 5, "65 years"), "error", C, "age", "not a whole number"),
    Case("kps_not_multiple_of_10", set_cell(C, "kps", 5, "75"), "error", C, "kps", "not a multiple of 10"),
    Case("kps_out_of_range", set_cell(C, "kps", 5, "110"), "error", C, "kps", "outside the allowed range"),
    Case("decimal_comma", set_cell(C, "liver_met_max_diameter_cm", 5, "3,5"), "error", C,
         "liver_met_max_diameter_cm", "decimal mark"),
    Case("grade_6", set_cell(AE, "grade", 2, "6"), "error", AE, "grade", "outside the allowed range 1 to 5"),
    Case("grade_0", set_cell(AE, "grade", 2, "0"), "error", AE, "grade", "outside the allowed range 1 to 5"),
    Case("grade_text", set_cell(AE, "grade", 2, "3a"), "error", AE, "grade", "not a whole number"),
    # --- identifiers and cross-file rules
    Case("duplicated_ids", duplicate_patient_id, "error", C, "patient_id", "duplicate values"),
    Case("missing_patient_id", set_cell(C, "patient_id", 9, ""), "error", C, "patient_id", "missing value"),
    Case("ae_for_unknown_patient", set_cell(AE, "patient_id", 1, "NOBODY"), "error", AE, "patient_id",
         "not found in the cohort file"),
    Case("cycle_for_unknown_patient", set_cell(CY, "patient_id", 6, "SYN-9999"), "error", CY, "patient_id",
         "not found in the cohort file"),
    Case("cycles_after_death", cycle_after_death, "error", CY, "cycle_date", "after the patient's death"),
    Case("cycle_before_start", cycle_before_start, "error", CY, "cycle_date", "before the patient's start_date"),
    Case("ici_cycle_in_cmt_arm", ici_cycle_in_cmt_arm, "error", CY, "agent_class",
         "ICI cycle given to a patient of the CMT arm"),
    Case("duplicated_cycle_row", duplicate_cycle, "error", CY, "cycle_date", "listed more than once"),
    Case("ici_agent_in_cmt_arm", ici_agent_in_cmt_arm, "error", C, "ici_agent", "must be empty when arm is CMT"),
    Case("ici_agent_missing", ici_agent_missing, "error", C, "ici_agent", "required when arm is CMT+ICI"),
    Case("local_therapy_type_without_therapy", local_therapy_type_without_therapy, "error", C,
         "local_therapy_type", "must be empty when local_therapy_liver is No"),
    Case("required_value_missing", set_cell(C, "sex", 5, ""), "error", C, "sex", "missing value"),
    # --- columns
    Case("missing_column", drop_column(C, "kps"), "error", C, "kps", "required column is missing"),
    Case("column_name_wrong_case", rename_column(C, "patient_id", "Patient_ID"), "error", C, "patient_id",
         "column names are case-sensitive"),
    Case("extra_unknown_column", add_unknown_column, "accepted",
         note="unknown columns are ignored with an UnknownColumnsWarning and never reach the analysis"),
    Case("duplicated_column", duplicate_column, "error", C, "kps", "column appears more than once"),
    # --- files, encodings and layout
    Case("empty_file", empty_file(AE), "error", AE, "", "file is empty"),
    Case("header_only", header_only(CY), "error", CY, "", "header but no data rows"),
    Case("missing_file", remove_file(C), "error", C, "", "file not found"),
    Case("latin1_encoding", latin1_encoding, "error", AE, "", "Latin-1"),
    Case("utf16_encoding", utf16_encoding, "error", C, "", "UTF-16"),
    Case("byte_order_mark", byte_order_mark, "accepted", note="a UTF-8 byte-order mark is dropped"),
    Case("windows_line_ends", windows_line_ends, "accepted", note="CRLF line ends are accepted"),
    Case("semicolon_separated", semicolon_separated, "error", C, "", "separated by semicolons"),
    Case("ragged_row", ragged_row, "error", AE, "", "cannot be parsed as CSV"),
    Case("trailing_empty_rows", trailing_empty_rows, "accepted",
         note="trailing rows whose cells are all empty are dropped"),
    Case("empty_row_inside", empty_row_inside, "error", C, "patient_id", "missing value"),
    Case("csv_and_xlsx_both_present", csv_and_excel, "error", AE, "", "both adverse_events.csv and"),
    # --- Excel
    Case("excel_merged_header_rows", cohort_as_excel(False, "Cohort export (SYNTHETIC)", merge_title=True),
         "error", "cohort.xlsx", "", "merged cells"),
    Case("excel_title_row_above_header", cohort_as_excel(False, "Cohort export (SYNTHETIC)"), "error",
         "cohort.xlsx", "", "column names are on line 2"),
    Case("excel_typed_dates_and_numbers", all_files_as_excel(True), "accepted",
         note="Excel date cells become YYYY-MM-DD and whole numbers lose '.0'"),
    Case("excel_numbers_stored_as_text", all_files_as_excel(False), "accepted",
         note="numbers and ISO dates stored as text in Excel are read as they are"),
    Case("excel_ambiguous_text_date", cohort_as_excel(True, edit=excel_text_date("03/04/2020")), "error",
         "cohort.xlsx", "start_date", ISO),
    Case("excel_date_with_time_of_day", excel_date_with_time, "error", "cohort.xlsx", "start_date", ISO),
    Case("excel_decimal_comma_text", cohort_as_excel(True, edit=excel_text_diameter("4,7")), "error",
         "cohort.xlsx", "liver_met_max_diameter_cm", "decimal mark"),
    # --- Excel as the user sees it (issue 15): refused when what is read differs from what Excel shows
    Case("excel_formula_without_stored_value", _excel_edit(_formula_death_date), "error", "cohort.xlsx",
         "death_date", "without a stored value",
         note="a death date written as a formula by a script would be read as empty: a death as a censoring"),
    Case("excel_formula_without_stored_value_in_a_number", _excel_edit(_formula_age), "error", "cohort.xlsx",
         "age", "without a stored value"),
    Case("excel_error_value_in_a_date", _excel_edit(_error_value), "error", "cohort.xlsx", "last_followup_date",
         ISO),
    Case("excel_hidden_row", _excel_edit(_hidden_row), "error", "cohort.xlsx", "", "rows hidden in Excel"),
    Case("excel_rows_hidden_by_a_filter", _excel_edit(_filtered_rows), "error", "cohort.xlsx", "",
         "rows hidden in Excel"),
    Case("excel_hidden_column", _excel_edit(_hidden_column), "error", "cohort.xlsx", "kps", "is hidden in Excel"),
    Case("excel_hidden_first_worksheet", _excel_edit(_hidden_first_sheet), "error", "cohort.xlsx", "",
         "is hidden in Excel"),
    # --- characters a person cannot see (issue 15): removed with a warning naming the rows
    Case("zero_width_space_after_code", invisible_in(C, "arm", (5,), "\u200b"), "accepted",
         note="'CMT' followed by a zero-width space is read as 'CMT' with a warning naming the rows"),
    Case("no_break_space_after_code", invisible_in(C, "sex", (3, 9), "\u00a0"), "accepted"),
    Case("byte_order_mark_inside_a_cell", invisible_in(C, "arm", (12,), "\ufeff", "start"), "accepted"),
    Case("soft_hyphen_inside_a_code", invisible_in(C, "best_response", (4,), "\u00ad", "inside"), "accepted"),
    Case("right_to_left_mark_in_a_date", invisible_in(C, "start_date", (6,), "\u200f"), "accepted"),
    Case("zero_width_joiner_in_an_ae_term", invisible_in(AE, "term", (2,), "\u200d"), "accepted"),
    Case("left_to_right_mark_in_an_agent_class", invisible_in(CY, "agent_class", (3,), "\u200e", "start"),
         "accepted"),
    # --- study.yaml
    Case("study_yaml_missing", remove_file("study.yaml"), "error", "study.yaml", "", "file not found"),
    Case("study_yaml_cutoff_not_iso", study_yaml(lambda t: t.replace("'2025-06-30'", "30/06/2025")), "error",
         "study.yaml", "cutoff_date", "must be a date"),
    Case("study_yaml_unknown_arm", study_yaml(lambda t: t.replace("code: CMT+ICI", "code: ICI")), "error",
         "study.yaml", "arms", "is not an arm code here"),
    Case("study_yaml_old_arm_keys", study_yaml(lambda t: t + "arm_order: [CMT, CMT+ICI]\nreference_arm: CMT\n"),
         "error", "study.yaml", "arm_order", "list the arms under 'arms'"),
    Case("study_yaml_one_arm", study_yaml(lambda t: t.replace("- code: CMT+ICI", "- name: CMT+ICI")),
         "error", "study.yaml", "arms", "must be a mapping with a code"),
    Case("study_yaml_design_unknown", study_yaml(lambda t: t.replace("design: observational", "design: cohort")),
         "error", "study.yaml", "design", "must be one of"),
    Case("dictionary_old_format", old_dictionary, "error", "dictionary.yaml", "", "old format"),
    Case("dictionary_reference_not_a_level", dictionary_yaml(lambda t: t.replace("reference: ESCC", "reference: SCC")),
         "error", "dictionary.yaml", "covariate 'histology'", "reference 'SCC' is not one of its levels"),
    Case("dictionary_unquoted_yes", dictionary_yaml(lambda t: t.replace('{"Yes": "Yes", "No": "No"}', "{Yes: Yes, No: No}", 1)),
         "error", "dictionary.yaml", "covariate 'underlying_disease'", "quote it"),
    Case("declared_missing_value_na", declared_missing_na, "accepted",
         note="a cell listed in study.yaml's missing_values (here 'NA') is an empty cell"),
    Case("without_treatment_cycles", remove_file(CY), "accepted",
         note="treatment_cycles is optional: without it there are no exposure counts"),
    Case("study_yaml_synthetic_not_boolean", study_yaml(lambda t: t.replace("synthetic: true", "synthetic: maybe")),
         "error", "study.yaml", "synthetic", "must be true or false"),
]


def write_corpus(out: Path) -> list[Path]:
    """Write every case to ``out/<name>/`` (for trying the CLI by hand)."""
    folders = []
    for case in CASES:
        folder = copy_default(out / case.name)
        case.corrupt(folder)
        folders.append(folder)
    return folders


if __name__ == "__main__":
    import sys

    for path in write_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else "_output/bad_inputs")):
        print(path)
