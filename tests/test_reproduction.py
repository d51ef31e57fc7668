"""Published versus reproduced: the comparison tables tolerate missing sections, compute the
differences as documented (reproduced minus published) and use one agreement metric everywhere
(matches as printed), with calibration targets of synthetic data marked as such."""
from __future__ import annotations

import json

import pytest

from helpers.config import PROJECT_ROOT

from helpers.analyses.reproduction import (NOT_COMPUTED, NOT_PUBLISHED, compare_baseline, compare_headline,
                                  compare_number, compare_p, load_published, make_checksum_table,
                                  make_software_table, matches_printed, reproduction_results, widen_table)
from helpers.config import load_plan


@pytest.fixture(scope="module")
def published() -> dict:
    return load_published()


def _results() -> dict:
    """A results file as the analysis notebooks write it (only the keys this module reads)."""
    return {
        "data": {"n": 126, "synthetic": True, "sha256": {"cohort.csv": "ab" * 32, "study.yaml": "cd" * 32}},
        "arms": {"CMT": {"n": 87}, "CMT+ICI": {"n": 39}},
        "os": {"median": {"CMT": {"estimate": 10.5}, "CMT+ICI": {"estimate": 21.3}}, "logrank_p": 0.0021},
        "pfs": {"median": {"CMT": {"estimate": 6.2}, "CMT+ICI": {"estimate": 11.7}}, "logrank_p": 0.00004},
        "safety": {"any_grade": {"CMT": {"rate": 0.8}, "CMT+ICI": {"rate": 0.85}, "p": 0.6,
                                 "test": "Pearson chi-square"}},
        "cox": {"multivariable": [{"term": "age_group[> 60]", "hr": 1.1, "p": 0.01}],
                "replication": {"label": "published specification",
                                "terms": [{"term": "kps_group[< 70]", "hr": 3.1, "p": 0.01},
                                          {"term": "chemo_cycles", "hr": 0.8, "p": 0.6}]}},
        "response": {ep: {"CMT": {"rate": 0.2}, "CMT+ICI": {"rate": 0.5}, "p": 0.001,
                          "test": "Pearson chi-square"} for ep in ("orr", "dcr")},
        "baseline": {"n": {"Overall": 126, "CMT": 87, "CMT+ICI": 39}, "rows": {
            "age_group": {"label": "Age (years)", "p": 0.502, "test": "chi-square",
                          "levels": {"> 60": {"CMT": {"n": 39}, "CMT+ICI": {"n": 20}},
                                     "<= 60": {"CMT": {"n": 48}, "CMT+ICI": {"n": 19}}}},
            "sex": {"label": "Sex", "p": 0.03, "test": "Fisher's exact",
                    "levels": {"Male": {"CMT": {"n": 84}, "CMT+ICI": {"n": 36}},
                               "Female": {"CMT": {"n": 3}, "CMT+ICI": {"n": 3}}}}}},
    }


def test_published_numbers_are_read_from_the_yaml_file(published):
    assert published["abstract"]["os_median_months"] == {"CMT": 10.8, "CMT+ICI": 20.8}


def test_with_no_results_every_reproduced_cell_says_not_computed(published):
    table = compare_headline({}, published)
    assert set(table["Reproduced"]) == {NOT_COMPUTED}
    assert table.loc[0, "Published"] == "10.8"
    base = compare_baseline({}, published)
    assert set(base["Reproduced n (CMT/CMT+ICI)"]) == {NOT_COMPUTED}


def test_median_differences_are_reproduced_minus_published_in_months(published):
    table = compare_headline(_results(), published).set_index("Quantity")
    assert table.loc["Median overall survival, CMT (months)", "Difference"] == "−0.3 months (−3%)"
    assert table.loc["Median overall survival, CMT+ICI (months)", "Difference"] == "+0.5 months (+2%)"
    cmt_pfs = table.loc["Median progression-free survival, CMT (months)"]
    assert (cmt_pfs["Published"], cmt_pfs["Reproduced"], cmt_pfs["Difference"]) == (NOT_PUBLISHED, "6.2", "–")


def test_qualitative_statements_are_checked_for_direction_and_significance(published):
    table = compare_headline(_results(), published).set_index("Quantity")
    assert table.loc["Objective response rate", "Status"] == "reproduced"
    counts = table.loc["Published Table 1: patients per level and arm"]
    assert (counts["Reproduced"], counts["Difference"], counts["Status"]) == \
        ("6 of 8 cells identical as printed", "2 differ as printed (see the baseline section and its corrections)",
         "not reproduced")
    assert table.loc["Objective response rate", "Reproduced"].startswith("ORR: CMT 20.0% vs CMT+ICI 50.0%")
    assert table.loc["Treatment-related adverse events", "Status"] == "reproduced"


def test_the_published_model_is_named_published_specification_and_read_from_cox_replication(published):
    table = compare_headline(_results(), published).set_index("Quantity")
    cox = table.loc["Independent factors for overall survival (published specification, multivariable Cox)"]
    assert cox["Reproduced"] == "kps_group[< 70]"          # not the rule-selected model's age_group
    assert cox["Difference"] == "1 of 2 terms with P < 0.05"
    assert cox["Status"] == "not reproduced"


@pytest.mark.parametrize("printed, ours, expected", [
    (0.004, 0.0041, True), (0.004, 0.0046, False), (0.004, 0.0035, True), ("<0.001", 0.00004, True),
    ("<0.001", 0.0012, False), (10.8, 10.84, True), (10.8, 10.86, False), (0.9, 0.9004, True),
    (0.9, 0.95, False), (None, 0.1, None), (0.5, None, None),
])
def test_a_value_matches_when_it_rounds_to_the_printed_value(printed, ours, expected):
    """P values are compared at 3 decimals at least (YAML reads a printed 0.900 as 0.9)."""
    assert matches_printed(printed, ours, 3 if isinstance(printed, str) or (printed or 1) < 1 else 1) is expected


@pytest.mark.parametrize("printed, ours, expected", [
    (0.004, 0.0021, "differs as printed (−0.002)"),
    (0.004, 0.0041, "matches as printed (+0.000)"),
    ("<0.001", 0.00004, "matches as printed"),
    ("<0.001", 0.01, "differs as printed"),
    (0.502, None, NOT_COMPUTED),
])
def test_p_values_are_compared_by_the_one_metric(printed, ours, expected):
    assert compare_p(printed, ours) == expected


def test_calibration_targets_are_marked_as_such_never_reproduced(published):
    targets = load_plan(PROJECT_ROOT / "data")["reproduction"]["calibration_targets"]
    results = _results()
    results["os"]["median"]["CMT"]["estimate"] = 10.8
    table = compare_headline(results, published, targets).set_index("Quantity")
    assert table.loc["Median overall survival, CMT (months)", "Status"] == "calibration target (matches)"
    assert table.loc["Median overall survival, CMT+ICI (months)", "Status"] == "calibration target (differs)"
    assert not table["Status"].eq("reproduced").any()
    # the assumed CMT median PFS was a calibration input, not a published value: never "reproduced"
    assert table.loc["Median progression-free survival, CMT (months)", "Status"] == \
        "calibration target (assumed; not published)"
    payload = reproduction_results(table.reset_index(), compare_baseline(results, published), results, published)
    assert payload["calibration_targets"] == payload["compared"]
    assert "calibration targets of the generator" in payload["text"]["summary_sentence"]
    assert "No compared value is independent of the calibration." in payload["text"]["summary_sentence"]
    # real data: the plan's calibration targets do not apply
    results["data"]["synthetic"] = False
    real = compare_headline(results, published, targets)
    assert not real["Status"].str.startswith("calibration").any()


def test_the_summary_has_no_clause_for_cases_that_do_not_occur(published):
    results = _results()
    payload = reproduction_results(compare_headline(results, published), compare_baseline(results, published),
                                   results, published)
    sentence = payload["text"]["summary_sentence"]
    assert "calibration" not in sentence
    assert sentence == f"Of {payload['compared']} published values compared, {payload['matched']} match as printed."
    assert payload["not_computed"] == 0 and payload["text"]["not_computed_sentence"] == ""
    empty = reproduction_results(compare_headline({}, published), compare_baseline({}, published), {}, published)
    assert empty["text"]["summary_sentence"] == "No published value could be compared with this re-analysis."
    assert empty["text"]["not_computed_sentence"].endswith("not available when this document was produced.")


@pytest.mark.parametrize("published, reproduced, expected", [
    (10.8, 10.8, "+0.0 (+0%)"),
    (20.0, 19.0, "−1.0 (−5%)"),
    (20.8, 20.7, "−0.1 (−0.5%)"),
    (None, 3.0, "–"),
    (3.0, None, NOT_COMPUTED),
])
def test_numbers_are_compared_as_reproduced_minus_published(published, reproduced, expected):
    assert compare_number(published, reproduced) == expected


def test_baseline_counts_are_compared_per_level_and_arm(published):
    table = compare_baseline(_results(), published)
    age = table[table["Characteristic"] == "Age (years)"].index[0]
    assert table.loc[age, "Difference"] == "0/0" and table.loc[age + 1, "Difference"] == "0/0"
    assert table.loc[age, "Published P"] == "0.502"
    assert table.loc[age, "P comparison"] == "matches as printed (+0.000)"
    sex = table[table["Characteristic"] == "Sex"].index[0]
    assert table.loc[sex, "Difference"] == "+1/0" and table.loc[sex + 1, "Difference"] == "−1/0"
    assert table.loc[sex, "P comparison"] == "differs as printed (−0.749)"
    radio = table[table["Characteristic"] == "Primary lesion radiotherapy"].iloc[0]
    assert radio["Published n (CMT/CMT+ICI)"] == NOT_PUBLISHED


def test_results_section_counts_agreement_and_carries_the_design_facts(published):
    results = _results()
    payload = reproduction_results(compare_headline(results, published),
                                   compare_baseline(results, published), results, published)
    assert payload["baseline_variables_compared"] == 2
    assert payload["baseline_variables_exact"] == 1
    # one metric: the OS log-rank P 0.0021 does not match the printed 0.004; the PFS one (< 0.001) does
    assert payload["p_values_compared"] == 2 and payload["p_values_same_conclusion"] == 1
    assert payload["statements_agree"] == 3 and payload["statements_compared"] == 3
    assert payload["compared"] == payload["independent_compared"] and payload["calibration_targets"] == 0
    text = payload["text"]
    assert (text["published_period"], text["published_n_CMT_ICI"], text["n_analysed"], text["n_CMT_ICI"]) == \
        ("2014–2024", "39", "126", "39")
    json.dumps(payload, allow_nan=False)  # storable as it is


def test_software_table_lists_python_each_pinned_package_and_the_r_used_for_reference_values(tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("pandas==2.3.3\n# a comment\nnot-a-real-package-xyz==1.0\n")
    ref = tmp_path / "reference"
    ref.mkdir()
    (ref / "a.json").write_text(json.dumps({"r_version": "R version 4.2.2 Patched (2022-11-10 r83330)",
                                            "survival_version": "3.5.3"}))
    (ref / "b.json").write_text(json.dumps({"meta": {"R": "R version 4.2.2 Patched (2022-11-10 r83330)",
                                                     "cohort_md5": "87810fdd", "cohort_n": 126}}))
    table = make_software_table(reqs, ref).set_index("Software")
    assert table.loc["pandas", "Version"] == "2.3.3"
    assert table.loc["not-a-real-package-xyz", "Version"] == "not installed"
    assert table.loc["R", "Version"] == "4.2.2 Patched (2022-11-10 r83330)"
    assert table.loc["survival", "Version"] == "3.5.3"
    assert "cohort_md5" not in table.index and "cohort_n" not in table.index
    assert table.index[0] == "Python"


def test_a_long_two_column_table_is_laid_out_in_side_by_side_blocks():
    import pandas as pd

    long = pd.DataFrame({"Software": list("abcdefg"), "Version": list("1234567")})
    wide = widen_table(long, blocks=3)
    assert wide.shape == (3, 6)
    assert list(wide.iloc[0]) == ["a", "1", "d", "4", "g", "7"]
    assert list(wide.iloc[2]) == ["c", "3", "f", "6", "", ""]


def test_checksum_table_lists_every_input_file_with_its_full_digest():
    table = make_checksum_table(_results())
    assert list(table["Input file"]) == ["cohort.csv", "study.yaml"]
    assert table["SHA-256"].str.len().eq(64).all()
    assert make_checksum_table({}).iloc[0, 0] == NOT_COMPUTED


def test_the_software_table_lists_the_direct_dependencies_not_the_whole_lock():
    from helpers.analyses.reproduction import direct_dependencies

    names = set(make_software_table(reference_dir=PROJECT_ROOT / "tests" / "reference")["Software"])
    assert set(direct_dependencies()) <= names
    assert "pandas" in names and "pytest" not in names and "tzdata" not in names


def test_published_values_are_read_only_from_the_data_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_published(data_dir=tmp_path)
    (tmp_path / "published.yaml").write_text("total_n: 3\n")
    assert load_published(data_dir=tmp_path) == {"total_n": 3}


def test_model_terms_are_named_in_words_with_the_study_dictionary(published):
    from helpers.analyses.reproduction import term_label
    from helpers.data.load import load_study

    dictionary = load_study(PROJECT_ROOT / "data").dictionary
    assert term_label("kps_group[< 70]", dictionary) == "KPS score: < 70"
    assert term_label("chemo_cycles", dictionary) == "Chemotherapy cycles received"
    assert term_label("kps_group[< 70]") == "kps_group[< 70]"
    table = compare_headline(_results(), published, dictionary=dictionary).set_index("Quantity")
    cox = table.loc["Independent factors for overall survival (published specification, multivariable Cox)"]
    assert cox["Reproduced"] == "KPS score: < 70"
