"""The fast paths of the loader and of Table 1 give exactly what the straightforward code gives.

helpers.data.load skips pandera when every rule holds, converts each column's distinct values once and
looks patients up by position. Each test compares a fast path with the plain computation it replaces
(the one the module used before), on small hand-made or random inputs. (Table 1's fast paths are
tested with helpers.analyses.baseline, in tests/test_baseline.py.)
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

from helpers.data import load as data
from tests.bad_inputs import CASES, copy_default

#: The column rules of the shipped files (optional core columns as in the shipped cohort).
DICTIONARY = data.load_dictionary(present=list(data.read_raw(data.PROJECT_ROOT / "data" / "cohort.csv").columns))
FILES = DICTIONARY["files"]
EXPOSURES = data.read_study_dictionary().exposures


# ----------------------------------------------------------------------------- reading
@pytest.mark.parametrize("text", [
    "a,b\n1,2\n",
    "# notice\n#another\n\n  \na,b\n1,2\n",
    "  # indented comment\r\n\r\na,b\r\n1,2\r\n",
    "# c\n\n# not skipped: after a blank line\na,b\n",
    "\n\n\n",
    "",
    "# only a comment",
    "#c\x0b#d\x0ca,b\n1,2",
    "#c\u2028a,b\u2029\x85x\n",
])
def test_the_header_is_found_where_splitlines_finds_it(text):
    lines = text.splitlines(keepends=True)
    while lines and lines[0].lstrip().startswith("#"):
        lines.pop(0)
    while lines and not lines[0].strip():
        lines.pop(0)
    start = data._body_start(text)
    assert text[start:] == "".join(lines)
    if lines:
        assert data._line_at(text, start)[0] == lines[0]


@pytest.mark.parametrize("body,expected", [
    ("a,b\n1,2\n", False), ("a,b\n1 ,2\n", True), ("a,b\n1, 2\n", True), ("a,b\n1,2 \n", True),
    ("a,b\n 1,2\n", True), ("a,b\r\n1,2 \r\n", True), ('a,b\n"x" ,2\n', True), ("a\tb\n", True),
    (" a,b\n", True), ("a,b\n1,2 " + "\n" * 300, True), ("a,b\n1 2,3\n", False), ("a b,c\n", False),
])
def test_the_trimming_hint_is_as_before(body, expected):
    before = (body[:1] in (" ", "\t") or body.rstrip("\r\n")[-1:] in (" ", "\t")
              or any(pair in body for pair in data.SPACE_AT_CELL_EDGE))
    assert data._may_need_trimming(body) == before == expected


def test_csv_cells_are_read_as_text_with_empty_cells_as_empty_text(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes("\ufeff# notice\n\na,b,c\n1,,3\n4,5\n\n,,\nNA,nan,é\n".encode("utf-8"))
    frame = data._read_csv(path)
    body = "a,b,c\n1,,3\n4,5\n\n,,\nNA,nan,é\n"
    expected = pd.read_csv(io.StringIO(body), dtype=str, keep_default_na=False,
                           skip_blank_lines=True).fillna("")
    pd.testing.assert_frame_equal(frame, expected)


# ----------------------------------------------------------------------------- text rules and typing
def _typed_cell_by_cell(frame: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """The typing as written before the distinct-value version (one conversion per cell)."""
    out = pd.DataFrame(index=frame.index)
    for name, spec in columns.items():
        s = frame[name].replace("", np.nan)
        kind = spec["type"]
        if kind == "date":
            out[name] = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
        elif kind == "integer":
            out[name] = pd.to_numeric(s.where(data._int_ok(s.fillna(""))), errors="coerce").astype("Int64")
        elif kind == "number":
            out[name] = pd.to_numeric(s.where(data._number_ok(s.fillna(""))), errors="coerce").astype(float)
        elif kind == "code":
            out[name] = pd.Categorical(s, categories=[str(c) for c in spec["codes"]])
        else:
            out[name] = s.astype(object)
    return out


def _raw_cohort(study_folder) -> pd.DataFrame:
    return data.read_raw(study_folder / "cohort.csv")


def test_typing_distinct_values_equals_typing_every_cell(tmp_path):
    columns = FILES["cohort"]["columns"]
    raw = _raw_cohort(copy_default(tmp_path))
    odd = {"age": ["", "65.5", "abc", "+65", "070"], "kps": ["", "75", "NaN", "1e2", "80"],
           "start_date": ["", "2020-02-30", "03/04/2020", "NA", "2019-12-31"],
           "liver_met_max_diameter_cm": ["", "3,5", "inf", "1e1", ".5"], "sex": ["", "male", "Male", "X", "Female"],
           "patient_id": ["", "SYN-0001", "x", "y", "z"]}
    for column, values in odd.items():
        raw.loc[: len(values) - 1, column] = values
    expected = _typed_cell_by_cell(raw, columns)
    got = data._typed(raw, columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.dtypes) == list(expected.dtypes)


def test_typing_keeps_missing_cells_missing():
    frame = pd.DataFrame({"a": ["1", None, "", "2"], "d": ["2020-01-01", np.nan, "", "x"]}, dtype=object)
    columns = {"a": {"type": "integer"}, "d": {"type": "date"}}
    pd.testing.assert_frame_equal(data._typed(frame, columns), _typed_cell_by_cell(frame, columns),
                                  check_exact=True)


@pytest.mark.parametrize("key", ["cohort", "adverse_events", "treatment_cycles"])
def test_the_text_rules_hold_on_the_shipped_files(key):
    raw = data.read_raw(data.find_file(data.PROJECT_ROOT / "data", FILES[key]["stem"]))
    columns = FILES[key]["columns"]
    assert data._text_rules_hold(columns, data._distinct_texts(raw, columns))
    data.text_schema(columns).validate(raw, lazy=True)  # and pandera agrees


@pytest.mark.parametrize("case", [c for c in CASES if c.expect == "error" and c.column
                                  and not c.file.startswith("study")], ids=str)
def test_a_file_pandera_reports_never_passes_the_fast_text_check(case, tmp_path):
    folder = copy_default(tmp_path / case.name)
    case.corrupt(folder)
    key = next((k for k, f in FILES.items() if case.file.startswith(f["stem"] + ".")), None)
    if key is None:           # study.yaml / dictionary.yaml cases: no data file to read
        return
    try:
        raw = data.read_raw(data.find_file(folder, FILES[key]["stem"]))
    except data.CohortValidationError:
        return
    if raw.empty:
        return
    columns = FILES[key]["columns"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", data.UnknownColumnsWarning)
        reported = data._validate_text(raw, columns, case.file, None)
    if any(p.column == case.column and case.rule in p.rule for p in reported):
        assert not (set(columns) <= set(raw.columns)
                    and data._text_rules_hold(columns, data._distinct_texts(raw, columns)))


# ----------------------------------------------------------------------------- cross-file rules
def _cycles_frame(rng, n_patients=30, n=400):
    patients = pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n_patients)],
        "start_date": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 50, n_patients), "D"),
        "death_date": pd.Series(pd.NaT, index=range(n_patients), dtype="datetime64[ns]"),
        "last_followup_date": pd.to_datetime("2021-01-01") + pd.to_timedelta(rng.integers(0, 50, n_patients), "D"),
        "arm": pd.Categorical(rng.choice(["CMT", "CMT+ICI"], n_patients), categories=["CMT", "CMT+ICI"]),
    })
    cycles = pd.DataFrame({
        "patient_id": rng.choice(patients["patient_id"].to_numpy(), n).astype(object),
        "agent_class": pd.Categorical(rng.choice(["chemotherapy", "ICI"], n), categories=["chemotherapy", "ICI"]),
        "cycle_date": pd.to_datetime("2020-02-01") + pd.to_timedelta(rng.integers(0, 20, n), "D"),
    })
    return patients, cycles


@pytest.mark.parametrize("seed", range(6))
def test_cross_file_rules_equal_their_plain_pandas_forms(seed):
    rng = np.random.default_rng(seed)
    patients, cycles = _cycles_frame(rng)
    if seed % 2:
        cycles.loc[rng.choice(len(cycles), 5), "patient_id"] = "NOBODY"
    if seed % 3 == 0:
        cycles.loc[rng.choice(len(cycles), 3), "patient_id"] = np.nan
        cycles.loc[rng.choice(len(cycles), 3), "agent_class"] = np.nan
        cycles.loc[rng.choice(len(cycles), 3), "cycle_date"] = pd.NaT
    cutoff = pd.Timestamp("2025-06-30")
    rules = {text: fn for text, _, fn in data._child_rules(patients, FILES["treatment_cycles"]["columns"],
                                                            cutoff, "cycle_date", EXPOSURES)}
    by_id = patients.set_index("patient_id")
    plain = {
        "patient_id not found in the cohort file":
            cycles["patient_id"].isna() | cycles["patient_id"].isin(set(patients["patient_id"])),
        "ICI cycle given to a patient of the CMT arm":
            ~((cycles["agent_class"].astype(object) == "ICI")
              & (cycles["patient_id"].map(by_id["arm"].astype(object)) == "CMT")),
        "the same cycle (patient_id, agent_class, cycle_date) is listed more than once":
            ~cycles.duplicated(["patient_id", "agent_class", "cycle_date"], keep=False) | cycles["cycle_date"].isna(),
        "cycle_date is before the patient's start_date":
            (cycles["cycle_date"] >= cycles["patient_id"].map(by_id["start_date"]))
            | cycles["cycle_date"].isna() | cycles["patient_id"].map(by_id["start_date"]).isna(),
    }
    for text, expected in plain.items():
        got = rules[text](cycles)
        assert got.dtype == bool
        assert (np.asarray(got) == np.asarray(expected)).all(), text
