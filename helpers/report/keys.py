"""Every results key the prose may quote, declared literally in one place.

The prose (``report.qmd`` and ``sections/*.qmd``) quotes numbers and generated sentences from
``_output/results.json`` with the shortcode ``{{< res section.text.name >}}``. Each key it may quote is
declared here, in the block of the section that writes it, with a short description. A key that
exists once per arm is declared as a pattern with ``{arm}`` (the arm's code with every
non-alphanumeric character replaced by ``_``, e.g. ``A+B`` -> ``A_B``); new prose should prefer
the role keys ``..._reference`` / ``..._experimental``, which read the same for any study.

``tests/test_keys.py`` checks that every ``{{< res X >}}`` in the prose matches a declared key.
Section engineers: add your section's keys to your block only.
"""
from __future__ import annotations

import re

# --- arms and data (notebook 01-cohort; the pipeline) ------------------------------------------
ARMS_DATA: dict[str, str] = {
    "data.synthetic": "true when the analysed cohort is synthetic (switches the synthetic-data notice on)",
    "data.text.title": "the supplement's title (study.yaml `title`)",
    "data.text.parts_present": "sentence naming the optional parts present in the data (PFS, response, ...)",
    # the `study` section is written by the pipeline (helpers.build.pipeline.study_section)
    "study.text.title": "the supplement's title (study.yaml `title`)",
    "study.text.setting": "the study's setting (study.yaml `setting`)",
    "study.text.design": "the design in words with its article: a randomised trial, an observational cohort study",
    "study.text.allocation": "sentence on how patients were allocated to the arms",
    "study.text.n_total": "number of patients analysed",
    "study.text.reference_label": "label of the reference arm",
    "study.text.experimental_label": "label of the experimental arm",
    "study.text.n_reference": "patients analysed in the reference arm",
    "study.text.n_experimental": "patients analysed in the experimental arm",
    "arms.text.reference_label": "label of the reference arm (study.yaml `arms[0].label`)",
    "arms.text.experimental_label": "label of the experimental arm",
    "arms.text.reference_description": "description of the reference arm",
    "arms.text.experimental_description": "description of the experimental arm",
    "arms.text.n_reference": "number of patients in the reference arm",
    "arms.text.n_experimental": "number of patients in the experimental arm",
    "arms.text.n_total": "number of patients analysed",
    "arms.text.composition": "sentence: patients analysed and per arm, with each arm's description when it has one",
    "arms.text.os_events_reference": "deaths in the reference arm, n (%)",
    "arms.text.os_events_experimental": "deaths in the experimental arm, n (%)",
    "flow.text.excluded_sentence": "sentence on the patients excluded before analysis (excluded.csv), or that none are listed",
    "flow.text.lost_months": "months without contact after which a living patient counts as lost to follow-up",
    "flow.text.lost_reference": "patients lost to follow-up of those alive, reference arm ('6 of 8')",
    "flow.text.lost_experimental": "patients lost to follow-up of those alive, experimental arm",
}

# --- baseline characteristics (notebook 02-baseline) -------------------------------------------
BASELINE: dict[str, str] = {
    "baseline.text.n_overall": "number of patients in Table 1",
    "baseline.text.n_{arm}": "number of patients of the arm in Table 1",
    "baseline.text.n_rows": "number of rows of Table 1",
    "baseline.text.max_smd": "largest absolute standardised mean difference",
    "baseline.text.max_smd_variable": "label of the variable with the largest SMD",
    "baseline.text.min_p": "smallest P value of Table 1",
    "baseline.text.min_p_variable": "label of the variable with the smallest P value",
    "baseline.text.n_p_below_005": "number of Table 1 tests with P < 0.05",
    "baseline.text.p_below_005_sentence": "clause: how many of the characteristics had P < 0.05 (\"none of the 18 ...\")",
    "baseline.text.level_mismatch_sentence": "clause: how many published level counts differ (replication)",
    "baseline.text.test_mismatch_sentence": "clause: how many published statistics and P values differ (replication)",
    "baseline.text.n_smd_above_01": "number of variables with |SMD| > 0.1",
    "baseline.text.smd_above_01_variables": "labels of the variables with |SMD| > 0.1",
    "baseline.text.smd_above_01_sentence": "sentence: how many and which variables have |SMD| >= 0.1",
    "baseline.text.n_level_mismatches": "published level counts that differ (replication)",
    "baseline.text.n_levels_compared": "published level counts compared (replication)",
    "baseline.text.n_test_mismatches": "published tests that differ (replication)",
    "baseline.text.n_tests_compared": "published tests compared (replication)",
    "baseline.text.histology_corrected": "corrected cells of the published histology row (replication; key from the correction's data)",
    "baseline.text.histology_printed": "printed cells of the published histology row (replication)",
    "baseline.text.histology_published_p": "published histology P value (replication)",
    "baseline.text.histology_published_statistic": "published histology statistic (replication)",
    "baseline.text.histology_correction": "the histology correction with its reason (replication)",
    "baseline.text.n_reference": "number of patients of the reference arm in Table 1",
    "baseline.text.n_experimental": "number of patients of the experimental arm in Table 1",
    "baseline.text.rule": "the test-selection rule in words",
    "baseline.text.rows_sentence": "the Table 1 characteristics with their levels, as a list in words",
    "baseline.text.continuous_sentence": "the continuous characteristics and how they are summarised",
    "baseline.text.continuous_test": "name of the test comparing continuous characteristics",
    "baseline.text.not_computed": "characteristics without test or SMD, with the reason ('none' if none)",
    "baseline.text.design_caveat": "what the tests can show given the design (randomised or not)",
    "baseline.text.imbalance_sentence": "how imbalances are read given the design",
    "baseline.text.correction_correction": "first correction of the published table with its reason (replication)",
    "baseline.text.correction_printed": "printed cells of the first correction (replication)",
    "baseline.text.correction_corrected": "corrected cells of the first correction (replication)",
    "baseline.text.correction_variable": "variable of the first correction (replication)",
    "baseline.text.correction_column": "published column of the first correction (replication)",
    "baseline.text.correction_reason": "reason of the first correction (replication)",
    "baseline.text.correction_published_statistic": "published statistic of the corrected variable (replication)",
    "baseline.text.correction_published_p": "published P of the corrected variable (replication)",
}

# --- overall and progression-free survival (notebook 03-survival) ------------------------------
SURVIVAL: dict[str, str] = {
    # arm-code keys (kept for earlier prose; {arm} = arm code with non-alphanumerics as "_")
    "os.text.events_{arm}": "OS events of the arm",
    "os.text.followup_{arm}": "median follow-up of the arm (reverse Kaplan-Meier)",
    "os.text.median_{arm}": "median OS of the arm with its CI",
    "os.text.rate_12m_{arm}": "12-month OS rate of the arm with its CI",
    "os.text.rate_24m_{arm}": "24-month OS rate of the arm with its CI",
    "os.text.rmst_{arm}": "restricted mean OS time of the arm",
    "pfs.text.events_{arm}": "PFS events of the arm",
    "pfs.text.median_{arm}": "median PFS of the arm with its CI",
    "pfs.text.rate_12m_{arm}": "12-month PFS rate of the arm with its CI",
    # role keys (generic prose), comparisons and generated sentences; the same names exist under pfs
    **{f"{ep}.text.{name}_{role}": f"{what} ({ep.upper()}) of the {role} arm"
       for ep in ("os", "pfs") for role in ("reference", "experimental")
       for name, what in (("events", "events of n"), ("median", "median with its CI"),
                          ("median_estimate", "median"), ("followup", "median reverse-KM follow-up"),
                          ("rmst", "restricted mean survival time with its CI"), ("label", "label"),
                          ("n", "patients"), ("rate_6m", "6-month rate"), ("rate_12m", "12-month rate"),
                          ("rate_24m", "24-month rate"))},
    **{f"{ep}.text.{name}": f"{what} ({ep.upper()})" for ep in ("os", "pfs") for name, what in (
        ("ci_scale", "transform of the Kaplan-Meier confidence intervals, in words"),
        ("rate_times", "the landmark times of the rates, in words"),
        ("rmst_horizon", "RMST horizon (months)"),
        ("logrank_p", "log-rank P value"),
        ("logrank_chisq", "log-rank chi-square"),
        ("hr", "unadjusted hazard ratio of the experimental vs the reference arm with its CI"),
        ("hr_p", "Wald P value of the hazard ratio"),
        ("hr_lr_p", "likelihood-ratio P value of the hazard ratio"),
        ("hr_comparison", "the hazard ratio's comparison with arm labels"),
        ("rmst_difference", "difference of restricted mean survival times with its CI"),
        ("rmst_difference_p", "P value of the RMST difference"),
        ("followup_overall", "median follow-up of all patients (reverse Kaplan-Meier)"),
        ("events_total", "events of n, both arms"),
        ("rates_sentence", "generated sentence: the landmark rates of both arms"),
        ("rates_unless_in_summary", "the landmark-rate sentence when the summary does not already give it"),
        ("design_caveat", "generated sentence: how to read the comparison, from the study design"),
        ("caveats", "generated sentences: statistical caveats (empty when none)"),
        ("technical_note", "R equivalents of the estimators, for a technical appendix"),
        ("ph_test_p", "P of the proportional-hazards test of the arm (cox.zph, km transform)"),
        ("ph_rejected", "'rejected' or 'not rejected': the PH test of the arm at 5%"),
        ("summary_sentence", "generated lead sentences of the comparison, chosen by the PH test"),
        ("piecewise_sentence", "generated sentence: hazard ratios by period (empty unless PH rejected)"),
        ("censoring_sentence", "generated sentence: the censoring rule used (PFS; empty for OS)"))},
    # time-to-event summary per arm (role and arm-code keys)
    **{f"{ep}.text.{name}_{who}": f"{what} ({ep.upper()}) of the arm"
       for ep in ("os", "pfs") for who in ("reference", "experimental", "{arm}")
       for name, what in (("events_by_cause", "events by earliest contributing event, in words"),
                          ("range", "observed range, + = censored"),
                          ("q25", "25th percentile with its CI"), ("q75", "75th percentile with its CI"))},
    # follow-up (section "followup"; {arm} = arm code key)
    "followup.text.lost_months": "months before the cut-off beyond which an alive patient is lost to follow-up",
    **{f"followup.text.{name}_{who}": what
       for who in ("reference", "experimental", "overall", "{arm}")
       for name, what in (("reverse_km", "median follow-up by reverse Kaplan-Meier with its CI"),
                          ("potential", "potential follow-up (start to cut-off), median (range)"),
                          ("lost", "patients lost to follow-up of those alive ('k of n')"),
                          ("censored_range", "range of censored follow-up times"))},
    **{f"followup.{who}.{name}": what for who in ("reference", "experimental", "overall", "{arm}")
       for name, what in (("lost_to_followup", "number of patients lost to follow-up"),
                          ("alive", "number of patients alive at last contact"))},
    "os.text.axis_note": "generated sentence: where the Kaplan-Meier axis ends and how far follow-up continues",
    "pfs.text.axis_note": "generated sentence: where the Kaplan-Meier axis ends and how far follow-up continues",
}

# --- tumour response (notebook 04-response) ----------------------------------------------------
RESPONSE: dict[str, str] = {
    "response.text.n_{arm}": "patients of the arm in the response analysis",
    "response.text.ne_{arm}": "non-evaluable patients of the arm",
    "response.text.orr_{arm}": "objective response rate of the arm with its CI",
    "response.text.dcr_{arm}": "disease control rate of the arm with its CI",
    "response.text.orr_difference": "difference of objective response rates",
    "response.text.dcr_difference": "difference of disease control rates",
    "response.text.orr_odds_ratio": "odds ratio of objective response",
    "response.text.dcr_odds_ratio": "odds ratio of disease control",
    "response.text.orr_p": "P value of the ORR comparison",
    "response.text.dcr_p": "P value of the DCR comparison",
    "response.text.orr_test": "name of the test of the ORR comparison",
    "response.text.dcr_test": "name of the test of the DCR comparison",
    "response.text.orr_direction": "direction of the ORR difference, in words",
    "response.text.dcr_direction": "direction of the DCR difference, in words",
    "response.text.orr_significance": "whether the ORR difference is significant, in words",
    "response.text.dcr_significance": "whether the DCR difference is significant, in words",
    "response.text.orr_agrees": "agreement of the ORR result with the publication (replication)",
    "response.text.dcr_agrees": "agreement of the DCR result with the publication (replication)",
    "response.text.orr_sensitivity_{arm}": "ORR of the arm among evaluable patients",
    "response.text.dcr_sensitivity_{arm}": "DCR of the arm among evaluable patients",
    "response.text.orr_sensitivity_p": "P value of the ORR among evaluable patients",
    "response.text.dcr_sensitivity_p": "P value of the DCR among evaluable patients",
    "response.text.sensitivity_denominator": "denominator of the sensitivity analysis, in words",
    "response.text.denominator": "denominator of the main analysis, in words",
    "response.text.difference_method": "CI method of the difference of rates, in words",
    "response.text.level": "confidence level of the section's intervals (\"95%\")",
    "response.text.test_rule": "test-selection rule of the between-arm comparison, in words",
    "response.text.missing_sentence": "generated sentence on patients without a recorded response (may be empty)",
    "response.text.orr_k_{arm}": "responders / patients of the arm (ORR)",
    "response.text.dcr_k_{arm}": "patients with disease control / patients of the arm (DCR)",
    "response.text.label_{arm}": "label of the arm",
    # role keys (the {arm} patterns above with {arm} = reference / experimental), for generic prose
    "response.text.n_reference": "patients of the reference arm in the response analysis",
    "response.text.n_experimental": "patients of the experimental arm in the response analysis",
    "response.text.ne_reference": "non-evaluable patients of the reference arm",
    "response.text.ne_experimental": "non-evaluable patients of the experimental arm",
    "response.text.orr_reference": "objective response rate of the reference arm with its CI",
    "response.text.orr_experimental": "objective response rate of the experimental arm with its CI",
    "response.text.dcr_reference": "disease control rate of the reference arm with its CI",
    "response.text.dcr_experimental": "disease control rate of the experimental arm with its CI",
    "response.text.orr_sensitivity_reference": "ORR of the reference arm, other denominator",
    "response.text.orr_sensitivity_experimental": "ORR of the experimental arm, other denominator",
    "response.text.dcr_sensitivity_reference": "DCR of the reference arm, other denominator",
    "response.text.dcr_sensitivity_experimental": "DCR of the experimental arm, other denominator",
    "response.text.orr_published": "the publication's statement on ORR (replication)",
    "response.text.dcr_published": "the publication's statement on DCR (replication)",
}

# --- prognostic factors: Cox models (notebook 05-prognostic) -----------------------------------
COX: dict[str, str] = {
    "cox.text.concordance": "concordance of the multivariable model",
    "cox.text.entry_p": "P value threshold for entry into the multivariable model",
    "cox.text.epv": "events per variable of the multivariable model",
    "cox.text.events": "events in the multivariable model",
    "cox.text.firth_sentence": "generated sentence on Firth-penalised fits",
    "cox.text.global_lr": "global likelihood-ratio test of the multivariable model",
    "cox.text.n": "patients in the multivariable model",
    "cox.text.n_candidates": "number of candidate covariates",
    "cox.text.n_missing": "patients excluded for missing covariates",
    "cox.text.ph_global_p": "global P value of the proportional-hazards test",
    "cox.text.ph_violated": "terms violating proportional hazards, in words",
    "cox.text.reference_levels": "reference levels of the categorical covariates, in words",
    "cox.text.selected": "terms selected for the multivariable model, in words",
    "cox.text.selected_vs_paper": "generated sentence comparing the selection with the publication",
    "cox.text.sparse_levels": "generated sentence on sparse levels",
    # exposure-dependent analyses (landmark, time-varying, published model) and single terms
    "cox.text.landmark_months": "landmark time (months)",
    "cox.text.landmark_n": "patients alive at the landmark",
    "cox.text.landmark_chemo_cycles": "landmark HR of the chemotherapy cycle count",
    "cox.text.landmark_ici_cycles": "landmark HR of the immunotherapy cycle count",
    "cox.text.paper_chemo_cycles": "HR of the chemotherapy cycle count in the published model",
    "cox.text.paper_ici_cycles": "HR of the immunotherapy cycle count in the published model",
    "cox.text.pm_chemo_cycles": "HR of the chemotherapy cycle count in the published-specification model",
    "cox.text.pm_ici_cycles": "HR of the immunotherapy cycle count in the published-specification model",
    "cox.text.pm_kps_group_lt_70": "HR of KPS < 70 in the published-specification model",
    "cox.text.pm_kps_group_lt_70_n": "patients with KPS < 70",
    "cox.text.pm_local_therapy_liver_Yes": "HR of local liver therapy in the published-specification model",
    "cox.text.tv_chemo_cycles": "time-varying HR of the chemotherapy cycle count",
    "cox.text.tv_ici_cycles": "time-varying HR of the immunotherapy cycle count",
    "cox.text.mi_m": "number of imputations",
    "cox.text.mi_n": "patients in the multiple-imputation analysis",
    "cox.text.mi_local_therapy_liver_Yes": "HR of local liver therapy after multiple imputation",
    "cox.text.pfs_mv_epv": "events per variable of the multivariable PFS model",
    "cox.text.pfs_mv_events": "events in the multivariable PFS model",
    "cox.text.pfs_mv_selected": "terms of the multivariable PFS model, in words",
    "cox.text.pfs_mv_local_therapy_liver_Yes": "HR of local liver therapy in the multivariable PFS model",
    # generated sentences and paragraphs for generic prose ("" when the part is absent)
    "cox.text.published_paragraph": "generated paragraph: the published model specification vs the rule",
    "cox.text.published_methods": "generated methods sentence on the published model specification",
    "cox.text.exposure_paragraph": "generated paragraph: landmark and time-varying exposure estimates",
    "cox.text.exposure_methods": "generated methods paragraph on post-baseline exposure counts",
    "cox.text.pfs_paragraph": "generated paragraph: the rule-selected PFS model",
    "cox.text.checks_paragraph": "generated paragraph: proportional hazards and its remedy",
    "cox.text.mi_sentence": "generated sentence: the multiple-imputation estimates",
    "cox.text.mi_methods": "generated methods paragraph on missing data",
    # issue 13: baseline-only model, discrimination, calibration, REMARK, published specification
    "cox.text.modelled_as": "every candidate variable as modelled (levels vs reference, or linear with unit)",
    "cox.text.post_baseline_sentence": "generated sentence: post-baseline variables and where they enter",
    "cox.text.epv_candidates": "events per candidate parameter",
    "cox.text.candidate_parameters": "number of parameters of all candidates",
    "cox.text.bootstrap_replicates": "bootstrap replicates of the optimism-corrected C-index",
    "cox.text.bootstrap_rule": "generated sentence: how many bootstrap replicates were drawn and why",
    "cox.text.c_apparent": "apparent Harrell's C of the multivariable model",
    "cox.text.c_corrected": "optimism-corrected Harrell's C of the selection procedure",
    "cox.text.validation_sentence": "generated sentence: events per candidate parameter and C-index",
    "cox.text.calibration_months": "milestone of the calibration plot (months)",
    "cox.text.replication_biases": "generated sentences: the biases of the published specification",
    "cox.text.immortal_time_note": "generated note on the landmark and time-varying models",
}

# --- treatment-related adverse events (notebook 06-safety) -------------------------------------
SAFETY: dict[str, str] = {
    "safety.text.agrees": "agreement with the publication (replication)",
    "safety.text.any_grade_{arm}": "patients with any-grade events in the arm",
    "safety.text.any_grade_p": "P value of the any-grade comparison",
    "safety.text.any_grade_significance": "whether the any-grade difference is significant, in words",
    "safety.text.any_grade_test": "name of the test of the any-grade comparison",
    "safety.text.grade3plus_{arm}": "patients with grade >= 3 events in the arm",
    "safety.text.grade3plus_p": "P value of the grade >= 3 comparison",
    "safety.text.grade3plus_significance": "whether the grade >= 3 difference is significant, in words",
    "safety.text.grade3plus_test": "name of the test of the grade >= 3 comparison",
    "safety.text.irae_any_grade_{arm}": "patients with any-grade immune-related events in the arm",
    "safety.text.irae_any_grade_p": "P value of the any-grade immune-related comparison",
    "safety.text.irae_grade3plus_{arm}": "patients with grade >= 3 immune-related events in the arm",
    "safety.text.irae_grade3plus_p": "P value of the grade >= 3 immune-related comparison",
    "safety.text.irae_terms": "immune-related terms, in words",
    "safety.text.min_term_percent": "smallest percentage of a listed term",
    "safety.text.most_common_term": "most common term",
    "safety.text.most_common_term_percent": "percentage of the most common term",
    "safety.text.n_terms": "number of event terms",
    "safety.text.n_terms_listed": "number of event terms listed",
    "safety.text.n_{arm}": "patients of the arm (denominator of the safety analysis)",
    "safety.text.grading": "grading system of the adverse events, in words, with its citation",
    "safety.text.test_rule": "the test of every row (summary and terms), in words",
    "safety.text.grades_sentence": "generated sentence on the patients by highest grade 3, 4 and 5 (treatment-related deaths)",
    "safety.text.actions_sentence": "generated sentence on discontinuation, dose reduction and interruption (or that the data lack them)",
    "safety.text.grade_5_reference": "treatment-related deaths (grade 5) in the reference arm, n (%)",
    "safety.text.grade_5_experimental": "treatment-related deaths (grade 5) in the experimental arm, n (%)",
    "safety.text.grade_5_p": "P value of the comparison of treatment-related deaths",
    "safety.text.terms_sentence": "generated sentence on the number of terms and the most frequent one",
    "safety.text.published": "the publication's statement on adverse events (replication)",
    "safety.text.irae_any_grade_significance": "whether the any-grade immune-related difference is significant",
    "safety.text.irae_grade3plus_significance": "whether the grade >= 3 immune-related difference is significant",
    # events of special interest (analysis plan safety.special_interest); irae_* are their former names
    "safety.text.special_interest_method": "generated methods sentence defining the events of special interest",
    "safety.text.special_interest_sentence": "generated results sentence on the events of special interest (may be empty)",
    "safety.text.special_label": "label of the events of special interest (e.g. \"immune-related\")",
    "safety.text.special_terms": "recorded terms of special interest, in words",
    "safety.text.special_any_grade_{arm}": "patients with any-grade events of special interest in the arm (or not applicable)",
    "safety.text.special_grade3plus_{arm}": "patients with grade >= 3 events of special interest in the arm (or not applicable)",
    "safety.text.special_any_grade_p": "P value of the any-grade special-interest comparison (or not applicable)",
    "safety.text.special_grade3plus_p": "P value of the grade >= 3 special-interest comparison (or not applicable)",
    "safety.text.special_any_grade_significance": "whether the any-grade special-interest difference is significant",
    "safety.text.special_grade3plus_significance": "whether the grade >= 3 special-interest difference is significant",
    # role keys (the {arm} patterns above with {arm} = reference / experimental), for generic prose
    "safety.text.any_grade_reference": "patients with any-grade events in the reference arm",
    "safety.text.any_grade_experimental": "patients with any-grade events in the experimental arm",
    "safety.text.grade3plus_reference": "patients with grade >= 3 events in the reference arm",
    "safety.text.grade3plus_experimental": "patients with grade >= 3 events in the experimental arm",
}

# --- sensitivity analyses (notebook 07-sensitivity) --------------------------------------------
SENSITIVITY: dict[str, str] = {
    "sensitivity.text.balance_ATE": "balance after ATE weighting, in words",
    "sensitivity.text.balance_ATO": "balance after overlap weighting, in words",
    "sensitivity.text.balance_other": "balance of the other weighting, in words",
    "sensitivity.text.ci_sentence": "generated sentence on the CI method of the weighted HRs",
    "sensitivity.text.conclusion": "generated conclusion of the sensitivity analyses",
    "sensitivity.text.era_n": "patients of the treatment-era analysis",
    "sensitivity.text.era_n_cmt": "patients of the reference arm in the era analysis",
    "sensitivity.text.era_n_ici": "patients of the experimental arm in the era analysis",
    "sensitivity.text.balance_information": "which covariates the balance table shows for information only",
    "sensitivity.text.era_methods": "methods sentences of the calendar-era analyses (years when estimable)",
    "sensitivity.text.era_years": "years of the treatment-era analysis",
    "sensitivity.text.evalue_conversion": "how HRs are converted for the E-value, in words",
    "sensitivity.text.evalue_os": "E-value of the OS hazard ratio",
    "sensitivity.text.evalue_pfs": "E-value of the PFS hazard ratio",
    "sensitivity.text.hr_os_era": "OS HR within the treatment era",
    "sensitivity.text.hr_os_secondary": "OS HR of the secondary weighting",
    "sensitivity.text.hr_os_unadjusted": "unadjusted OS HR",
    "sensitivity.text.hr_os_year_adjusted": "OS HR adjusted for start year",
    "sensitivity.text.hr_pfs_era": "PFS HR within the treatment era",
    "sensitivity.text.hr_pfs_unadjusted": "unadjusted PFS HR",
    "sensitivity.text.max_smd_unweighted": "largest unweighted SMD",
    "sensitivity.text.primary": "name of the primary weighting",
    "sensitivity.text.primary_weighted": "weighted HR of the primary weighting",
    "sensitivity.text.ps_covariates": "propensity-score covariates, in words",
    "sensitivity.text.ps_discrimination": "discrimination of the propensity model",
    "sensitivity.text.ps_overlap": "overlap of the propensity scores, in words",
    "sensitivity.text.secondary_weighted": "weighted HR of the secondary weighting",
    "sensitivity.text.statement_os": "generated statement on the OS sensitivity results",
    "sensitivity.text.statement_pfs": "generated statement on the PFS sensitivity results",
    "sensitivity.text.support": "generated sentence on the support of the weighted analysis",
    "sensitivity.text.trim": "trimming of the propensity scores, in words",
    "sensitivity.text.balance_all": "balance over every baseline covariate of the balance table, in words",
    "sensitivity.text.design_sentence": "why an adjusted comparison, by design (randomised or observational)",
    "sensitivity.text.start_year_sentence": "whether the start year predicts the arm (from its c-statistic), in words",
    "sensitivity.text.start_year_c": "c-statistic of the start year for the arm",
    "sensitivity.text.smd_target": "balance target for the absolute SMD",
    "sensitivity.text.hr_sentences": "generated paragraph: unadjusted, weighted and adjusted HRs of every endpoint",
    "sensitivity.text.era_sentence": "generated sentence on the calendar-era analysis (or why it is not estimable)",
    "sensitivity.text.evalue_sentences": "generated E-value sentences of every endpoint",
    "sensitivity.text.endpoints": "the endpoints analysed, in words",
    "sensitivity.text.era_n_reference": "patients of the reference arm in the era analysis",
    "sensitivity.text.era_n_experimental": "patients of the experimental arm in the era analysis",
    "sensitivity.text.treated_label": "label of the experimental arm",
    "sensitivity.text.reference_label": "label of the reference arm",
    "sensitivity.text.c_statistic": "c-statistic of the propensity model",
    "sensitivity.text.robust_os": "yes/no: OS result robust (estimates agree and all baseline covariates balanced)",
    "sensitivity.text.robust_pfs": "yes/no: PFS result robust (estimates agree and all baseline covariates balanced)",
    # stratified and subgroup analyses (same notebook; helpers.report.subgroups)
    "stratified.text.sentence": "generated sentence: stratified HRs, log-rank and CMH results (or that no factor was declared)",
    "stratified.text.factors": "the stratification factors and their strata, in words",
    "subgroups.text.min_events": "fewest events per arm for a subgroup hazard ratio",
    "subgroups.text.sentence": "generated sentence on the subgroup interaction tests (or that no subgroup was declared)",
    "subgroups.text.interaction_os": "generated sentence on the OS interaction tests",
    "subgroups.text.interaction_pfs": "generated sentence on the PFS interaction tests",
}

# --- replication of a publication (notebook 08-reproduction; only with published.yaml) --------
REPRODUCTION: dict[str, str] = {
    "reproduction.text.baseline_variables_compared": "baseline variables with published counts",
    "reproduction.text.baseline_variables_exact": "baseline variables whose counts all agree",
    "reproduction.text.n_analysed": "patients analysed",
    "reproduction.text.n_{arm}": "patients analysed in the arm",
    "reproduction.text.p_values_compared": "log-rank P values compared with the publication",
    "reproduction.text.p_values_same_conclusion": "compared P values leading to the same conclusion",
    "reproduction.text.published_design": "design of the published study, in words",
    "reproduction.text.published_n_total": "published number of patients",
    "reproduction.text.published_n_{arm}": "published number of patients of the arm",
    "reproduction.text.published_period": "published period of treatment",
    "reproduction.text.published_setting": "published setting (centre)",
    "reproduction.text.statements_agree": "qualitative statements of the abstract reproduced",
    "reproduction.text.statements_compared": "qualitative statements of the abstract compared",
    "reproduction.text.summary_sentence": "the comparison in one metric (matches as printed), calibration targets apart",
    "reproduction.text.not_computed_sentence": "sentence on entries not computed ('' when there are none)",
    "reproduction.text.compared": "published values compared (rows of the headline table)",
    "reproduction.text.matched": "published values that match as printed",
    "reproduction.text.calibration_targets": "compared values that were calibration targets of the synthetic data",
    "reproduction.text.independent_compared": "compared values that were not calibration targets",
    "reproduction.text.independent_matched": "of those, the values that match as printed",
}

#: every block, in report order
BLOCKS: dict[str, dict[str, str]] = {
    "arms/data": ARMS_DATA,
    "baseline": BASELINE,
    "os/pfs": SURVIVAL,
    "response": RESPONSE,
    "cox": COX,
    "safety": SAFETY,
    "sensitivity": SENSITIVITY,
    "reproduction": REPRODUCTION,
}

#: every declared key (or ``{arm}`` pattern) -> short description
KEYS: dict[str, str] = {key: text for block in BLOCKS.values() for key, text in block.items()}

#: what ``{arm}`` stands for: an arm code with non-alphanumerics replaced by "_"
ARM_PLACEHOLDER = "{arm}"
_ARM_RE = r"[A-Za-z0-9_]+"

#: ``{{< res X >}}`` in Markdown/Quarto prose
RES_SHORTCODE_RE = re.compile(r"\{\{<\s*res\s+([^\s>]+)\s*>\}\}")


def _pattern(key: str) -> re.Pattern:
    parts = key.split(ARM_PLACEHOLDER)
    return re.compile(_ARM_RE.join(re.escape(part) for part in parts) + r"\Z")


_PATTERNS = [_pattern(key) for key in KEYS if ARM_PLACEHOLDER in key]


def is_declared(key: str) -> bool:
    """Whether ``key`` (a dotted results path) is declared, literally or through an ``{arm}`` pattern."""
    if key in KEYS:
        return True
    return any(pattern.match(key) for pattern in _PATTERNS)


def quoted_keys(text: str) -> list[str]:
    """The results keys quoted by ``{{< res X >}}`` shortcodes in ``text``, in order of appearance."""
    return RES_SHORTCODE_RE.findall(text)


def undeclared(text: str) -> list[str]:
    """The quoted results keys of ``text`` that are not declared (each once, in order)."""
    seen: dict[str, None] = {}
    for key in quoted_keys(text):
        if not is_declared(key):
            seen.setdefault(key, None)
    return list(seen)
