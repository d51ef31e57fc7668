"""What the data are: input files and checks, patients and events per arm, missing values.

Feeds notebook 01 and the ``data`` and ``arms`` sections of the results file. Only aggregates leave
this module: no patient identifiers, no dates (calendar years at most).
"""
from __future__ import annotations

import pandas as pd

from helpers.data.load import Study
from helpers.report.formatting import format_n_pct

SYNTHETIC_NOTICE = ("**Synthetic data.** Every number, table and figure below was computed from a synthetic "
                    "cohort generated to resemble the published study (same design and size, Table 1 counts "
                    "reproduced exactly, survival calibrated to the published medians). It contains no patient "
                    "data and must not be read as the study's results.")


def data_notice(study: Study) -> str:
    """Markdown notice for the top of each section: synthetic or real data, and which folder."""
    if study.config.synthetic:
        return SYNTHETIC_NOTICE
    return f"Data: {study.config.title or 'study cohort'} (cut-off {study.config.cutoff_date.year})."


def input_files_table(study: Study) -> pd.DataFrame:
    """Input files with their row counts and SHA-256 (first 16 hex digits)."""
    rows = {"cohort.csv": len(study.patients), "adverse_events.csv": len(study.adverse_events),
            "treatment_cycles.csv": len(study.cycles)}
    table = []
    for name, digest in study.sources.items():
        stem = name.rsplit(".", 1)[0]
        count = next((v for k, v in rows.items() if k.rsplit(".", 1)[0] == stem), None)
        table.append({"File": name, "Rows": "" if count is None else count, "SHA-256 (first 16)": digest[:16]})
    return pd.DataFrame(table)


def cohort_overview(study: Study) -> pd.DataFrame:
    """Patients, events and treatment exposure per arm and overall (counts; years only)."""
    p = study.patients
    groups = [(arm, p[p["arm"] == arm]) for arm in study.arms] + [("Overall", p)]

    def column(frame: pd.DataFrame) -> dict[str, str]:
        n = len(frame)
        ids = set(frame["patient_id"])
        with_ae = study.ae_worst[study.ae_worst["patient_id"].isin(ids)]["patient_id"].nunique()
        return {
            "Patients": str(n),
            "Deaths (OS events)": format_n_pct(frame["os_event"].sum(), n),
            "Progression or death (PFS events)": format_n_pct(frame["pfs_event"].sum(), n),
            "Alive at last follow-up": format_n_pct((frame["os_event"] == 0).sum(), n),
            "Patients with any TRAE": format_n_pct(with_ae, n),
            "Chemotherapy cycles, median (range)":
                f"{frame['chemo_cycles'].median():.0f} ({frame['chemo_cycles'].min()}–{frame['chemo_cycles'].max()})",
            "ICI cycles, median (range)":
                f"{frame['ici_cycles'].median():.0f} ({frame['ici_cycles'].min()}–{frame['ici_cycles'].max()})",
            "Years of treatment start": f"{frame['start_year'].min()}–{frame['start_year'].max()}",
        }

    table = pd.DataFrame({name: column(frame) for name, frame in groups})
    table.index.name = "Characteristic"
    return table.reset_index()


def missingness_table(study: Study) -> pd.DataFrame:
    """Missing values per raw patient variable, overall and per arm, with the rule that allows them."""
    columns = study.dictionary["files"]["cohort"]["columns"]
    p = study.patients
    rows = []
    for name, spec in columns.items():
        if name == "patient_id":
            continue
        missing = p[name].isna()
        if spec.get("missing_means"):
            rule = f"empty = {spec['missing_means']}"
        elif spec.get("required"):
            rule = "required"
        elif spec.get("required_when"):
            rule = f"empty unless {spec['required_when']}"
        else:
            rule = "may be missing"
        row = {"Variable": spec["label"], "Rule": rule, "Missing, n (%)": format_n_pct(missing.sum(), len(p))}
        for arm in study.arms:
            in_arm = p["arm"] == arm
            row[arm] = format_n_pct((missing & in_arm).sum(), in_arm.sum())
        rows.append(row)
    return pd.DataFrame(rows)


def data_results(study: Study) -> dict:
    """The ``data`` section of the results file."""
    return {"synthetic": study.config.synthetic, "sha256": dict(study.sources), "n": len(study.patients),
            "cutoff_year": study.config.cutoff_date.year, "arm_order": study.arms,
            "reference_arm": study.config.reference_arm, "rules_checked": study.rules_checked,
            "n_adverse_event_rows": len(study.adverse_events), "n_cycle_rows": len(study.cycles),
            "generator": study.config.extra.get("generator")}


def arms_results(study: Study) -> dict:
    """The ``arms`` section: n and events per arm, with ready-made text for prose."""
    out = {}
    for arm in study.arms:
        frame = study.patients[study.patients["arm"] == arm]
        out[arm] = {"n": len(frame), "os_events": int(frame["os_event"].sum()),
                    "pfs_events": int(frame["pfs_event"].sum()),
                    "text": {"n": str(len(frame)),
                             "os_events": format_n_pct(frame["os_event"].sum(), len(frame)),
                             "pfs_events": format_n_pct(frame["pfs_event"].sum(), len(frame))}}
    return out


def assumptions_table(study: Study) -> pd.DataFrame:
    """Quantities the paper does not publish and the values the synthetic cohort assumes (synthetic data only)."""
    if not study.config.synthetic:
        return pd.DataFrame({"Note": ["Real data: no generator assumptions apply."]})
    from helpers.data.synthetic import ASSUMPTIONS

    return pd.DataFrame(ASSUMPTIONS, columns=["Quantity", "Value assumed", "Source"])
