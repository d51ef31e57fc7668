"""The data contract: fixed core columns, the study's data dictionary and the column rules they give.

A data folder holds ``cohort.csv|xlsx`` (one row per patient), optionally ``adverse_events.csv|xlsx`` and
``treatment_cycles.csv|xlsx``, a ``study.yaml`` and, optionally, a ``dictionary.yaml`` (when absent, the
project's default ``data/dictionary.yaml`` is used).

Core columns (fixed, generic names; defined here, not in the dictionary):

* required: ``patient_id``, ``arm``, ``start_date``, ``last_followup_date``, ``death_date`` (may be empty);
* optional, each switching a part of the analysis on: ``progression_date`` (progression-free survival),
  ``last_assessment_date`` (PFS censored at the last tumour assessment), ``best_response`` (response),
  ``end_of_treatment_reason`` (free text; discontinuations by reason in the disposition table).

Optional columns of the other files (:data:`OPTIONAL_CHILD_COLUMNS`): ``adverse_events.action`` (``none``,
``dose_reduced``, ``interrupted``, ``discontinued``: what was done with the treatment because of the event).

The dictionary (``dictionary.yaml``) describes the study's own variables::

    covariates:            # columns of cohort.csv
      celltype: {label: Cell type, type: categorical, levels: {squamous: Squamous, ...}, reference: squamous,
                 timing: baseline, missing: false, subgroup: true}
      karno: {label: Karnofsky performance score, type: continuous, unit: points, timing: baseline}
    groupings:             # derived categorical variables (table rows, model terms)
      age_group: {label: Age (years), source: age, levels: {"> 60": "age > 60", "<= 60": "age <= 60"},
                  reference: "<= 60"}
    exposures:             # cycle counts derived from treatment_cycles (post-baseline)
      drug_b_cycles: {label: Drug B cycles, agent_class: drug_b, arms: [experimental]}   # given only in these arms

Covariate keys: ``label``; ``type`` (``categorical``, ``continuous`` or ``count``); ``levels`` (code ->
label, in table order; a list when codes are their own labels) and ``reference`` (a level code) for
categorical ones; ``unit``; ``timing`` (``baseline`` or ``post-baseline``, default baseline); ``missing``
(may a cell be empty, default false); ``subgroup`` (bool); validation extras ``integer`` (whole numbers
only), ``min``, ``max``, ``multiple_of``, ``required_when`` / ``empty_when`` (``"<column> == <value>"``),
``source`` (where the variable comes from).

:func:`file_columns` translates the contract into the column rules of each file (the internal form
the validator in :mod:`helpers.data.load` applies): type ``string | code | integer | number | date``,
``codes``, ``required``, ``unique``, ``min``/``max``/``multiple_of``, ``required_when``/``empty_when``.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: Months per day: a month is 365.25 / 12 = 30.4375 days.
DAYS_PER_MONTH = 365.25 / 12
#: The response categories of best_response (RECIST-style), in table order.
RESPONSE_CODES = ("CR", "PR", "SD", "PD", "NE")
COVARIATE_TYPES = ("categorical", "continuous", "count")
TIMINGS = ("baseline", "post-baseline")
#: Parts of a study that may be absent (see ``Study.has``).
PARTS = ("pfs", "response", "safety", "exposure", "replication")

#: Core columns of cohort.csv in file order; ``optional`` ones switch analyses on when present.
CORE_COLUMNS: dict[str, dict] = {
    "patient_id": {"label": "Patient identifier", "type": "string", "required": True, "unique": True},
    "arm": {"label": "Treatment arm", "type": "code", "required": True},
    "start_date": {"label": "Start of treatment (time zero)", "type": "date", "required": True},
    "progression_date": {"label": "Date of first progression", "type": "date", "required": False,
                         "missing_means": "no progression observed", "optional": True},
    "last_assessment_date": {"label": "Date of the last tumour assessment", "type": "date", "required": False,
                             "missing_means": "censored at last follow-up", "optional": True},
    "death_date": {"label": "Date of death from any cause", "type": "date", "required": False,
                   "missing_means": "alive at last follow-up"},
    "last_followup_date": {"label": "Date last known alive or date of death", "type": "date", "required": True},
    "best_response": {"label": "Best overall response", "type": "code", "codes": list(RESPONSE_CODES),
                      "required": True, "optional": True},
    "end_of_treatment_reason": {"label": "Reason treatment ended", "type": "string", "required": False,
                                "missing_means": "treatment not ended or reason not recorded", "optional": True},
}
OPTIONAL_CORE = tuple(name for name, spec in CORE_COLUMNS.items() if spec.get("optional"))
DATE_COLUMNS = tuple(name for name, spec in CORE_COLUMNS.items() if spec["type"] == "date")

#: The optional files: key -> description and columns (agent_class codes come from the exposures).
CHILD_FILES: dict[str, dict] = {
    "adverse_events": {
        "description": "One row per patient and adverse event term; several rows of one term are allowed "
                       "(the worst grade counts).",
        "stem": "adverse_events",
        "columns": {
            "patient_id": {"label": "Patient identifier", "type": "string", "required": True,
                           "references": "cohort.patient_id"},
            "term": {"label": "Adverse event term", "type": "string", "required": True},
            "grade": {"label": "Grade", "type": "integer", "min": 1, "max": 5, "required": True},
        }},
    "treatment_cycles": {
        "description": "One row per administered cycle of treatment; cycle counts derive from it.",
        "stem": "treatment_cycles",
        "columns": {
            "patient_id": {"label": "Patient identifier", "type": "string", "required": True,
                           "references": "cohort.patient_id"},
            "agent_class": {"label": "Agent class", "type": "code", "required": True},
            "cycle_date": {"label": "Date the cycle was given", "type": "date", "required": True},
        }},
}
FILE_KEYS = ("cohort", "adverse_events", "treatment_cycles")

#: Variables derived by the loader from the core columns (generic labels).
DERIVED: dict[str, dict] = {
    "os_months": {"label": "Overall survival", "unit": "months",
                  "rule": "start_date to death_date (event) or last_followup_date (censored)"},
    "os_event": {"label": "Death", "rule": "1 if death_date present else 0"},
    "pfs_months": {"label": "Progression-free survival", "unit": "months",
                   "rule": "start_date to the earlier of progression_date and death_date (event), else "
                           "last_assessment_date when that column is present, else last_followup_date (censored)"},
    "pfs_event": {"label": "Progression or death", "rule": "1 if progression_date or death_date present else 0"},
    "start_year": {"label": "Year of treatment start", "rule": "calendar year of start_date"},
}

_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$")


class DictionaryError(ValueError):
    """``dictionary.yaml`` breaks the contract; ``problems`` lists (column, rule) pairs."""

    def __init__(self, problems: list[tuple[str, str]], path: str = "dictionary.yaml"):
        self.problems = list(problems)
        self.path = path
        super().__init__("\n".join(f"{path}, {c}: {r}" if c else f"{path}: {r}" for c, r in self.problems))


# ----------------------------------------------------------------------------- typed dictionary
@dataclass(frozen=True)
class Covariate:
    """One study variable of cohort.csv (see the module docstring for the keys)."""

    name: str
    label: str
    type: str                                   # categorical | continuous | count
    levels: dict = field(default_factory=dict)  # code -> label (categorical), in table order
    reference: str | None = None
    unit: str | None = None
    timing: str = "baseline"
    missing: bool = False
    subgroup: bool = False
    rules: dict = field(default_factory=dict)   # integer, min, max, multiple_of, required_when, empty_when, source

    @property
    def categorical(self) -> bool:
        return self.type == "categorical"


@dataclass(frozen=True)
class Grouping:
    """A derived categorical variable: levels are lists of source codes or conditions ``"age > 60"``."""

    name: str
    label: str
    source: str
    levels: dict                                 # level -> condition text or list of source codes
    reference: str | None = None
    subgroup: bool = False
    timing: str = "baseline"
    level_labels: dict = field(default_factory=dict)

    @property
    def type(self) -> str:
        return "categorical"

    @property
    def categorical(self) -> bool:
        return True


@dataclass(frozen=True)
class Exposure:
    """A cycle count derived from treatment_cycles rows of one agent class (post-baseline)."""

    name: str
    label: str
    agent_class: str
    arms: tuple[str, ...] | None = None          # None: any arm may receive it
    unit: str = "cycles"
    timing: str = "post-baseline"

    @property
    def type(self) -> str:
        return "count"

    @property
    def categorical(self) -> bool:
        return False


@dataclass
class Dictionary:
    """The study's data dictionary, typed.

    ``dictionary["files"]`` and ``dictionary["derived"]`` give the internal column rules (the form of
    earlier versions of ``dictionary.yaml``) for code that reads them.
    """

    covariates: dict[str, Covariate]
    groupings: dict[str, Grouping] = field(default_factory=dict)
    exposures: dict[str, Exposure] = field(default_factory=dict)
    path: str = ""
    arm_codes: tuple[str, ...] = ()
    present: tuple[str, ...] | None = None      # columns of the cohort file (None: every core column)

    # -- lookups
    def variable(self, name: str):
        """The Covariate, Grouping or Exposure called ``name`` (KeyError if none)."""
        for table in (self.covariates, self.groupings, self.exposures):
            if name in table:
                return table[name]
        raise KeyError(name)

    def label(self, name: str) -> str:
        """Label of a covariate, grouping, exposure, core or derived column (``name`` if unknown)."""
        try:
            return self.variable(name).label
        except KeyError:
            spec = CORE_COLUMNS.get(name) or DERIVED.get(name)
            return spec["label"] if spec else name

    def level_label(self, name: str, code) -> str:
        """Label of level ``code`` of variable ``name`` (the code itself when the dictionary has none)."""
        try:
            var = self.variable(name)
        except KeyError:
            return str(code)
        labels = var.levels if isinstance(var, Covariate) else getattr(var, "level_labels", {})
        return str(labels.get(str(code), code)) if labels else str(code)

    def levels(self, name: str) -> list[str]:
        """Level codes of a categorical variable in dictionary order ([] for others)."""
        var = self.variable(name)
        return [str(c) for c in var.levels] if var.categorical else []

    def reference(self, name: str) -> str | None:
        """Reference level code of a categorical variable (None when unset or not categorical)."""
        var = self.variable(name)
        return var.reference if var.categorical else None

    def references(self) -> dict[str, str]:
        """{variable: reference level} for every categorical covariate and grouping that names one."""
        out = {}
        for table in (self.covariates, self.groupings):
            for name, var in table.items():
                if var.categorical and var.reference is not None:
                    out[name] = var.reference
        return out

    def baseline(self, grouped: bool = True) -> list[str]:
        """Baseline variables in dictionary order, as tabulated and modelled.

        With ``grouped`` a covariate that is the source of groupings is replaced by them (``age`` ->
        ``age_group``); post-baseline covariates and exposures are left out.
        """
        by_source: dict[str, list[str]] = {}
        for name, g in self.groupings.items():
            by_source.setdefault(g.source, []).append(name)
        out = []
        for name, cov in self.covariates.items():
            if cov.timing != "baseline":
                continue
            out += by_source.get(name, [name]) if grouped else [name]
        return out

    def post_baseline(self) -> list[str]:
        """Post-baseline covariates and every exposure."""
        return [n for n, c in self.covariates.items() if c.timing == "post-baseline"] + list(self.exposures)

    def subgroups(self) -> list[str]:
        """Variables flagged ``subgroup: true`` (covariates and groupings, dictionary order)."""
        return [n for t in (self.covariates, self.groupings) for n, v in t.items() if v.subgroup]

    # -- internal column rules
    def files(self, arm_codes=None, present=None) -> dict:
        return file_columns(self, self.arm_codes if arm_codes is None else arm_codes,
                            self.present if present is None else present)

    def derived(self) -> dict:
        out = copy.deepcopy(DERIVED)
        for name, e in self.exposures.items():
            out[name] = {"label": e.label, "unit": e.unit,
                         "rule": f"count of treatment_cycles rows with agent_class {e.agent_class}"}
        for name, g in self.groupings.items():
            out[name] = {"label": g.label, "source": g.source, "levels": copy.deepcopy(g.levels)}
        return out

    def __getitem__(self, key: str):
        if key == "files":
            return self.files()
        if key == "derived":
            return self.derived()
        raise KeyError(key)

    def get(self, key: str, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def with_arms(self, arm_codes, present=None) -> "Dictionary":
        """A copy bound to the study's arm codes and the cohort file's columns."""
        return Dictionary(self.covariates, self.groupings, self.exposures, self.path, tuple(arm_codes),
                          None if present is None else tuple(present))


# ----------------------------------------------------------------------------- parsing
def _level_code(value, where: str, problems: list) -> str | None:
    if isinstance(value, bool):
        problems.append((where, f"level {value!r} was read as a boolean: quote it (e.g. \"Yes\")"))
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _levels(raw, where: str, problems: list) -> dict:
    if isinstance(raw, list):
        raw = {v: v for v in raw}
    if not isinstance(raw, dict) or not raw:
        problems.append((where, "levels must be a mapping code -> label (or a list of codes)"))
        return {}
    out = {}
    for code, label in raw.items():
        key = _level_code(code, where, problems)
        if key is None:
            continue
        out[key] = str(label) if not isinstance(label, bool) else key
    return out


RULE_KEYS = ("integer", "min", "max", "multiple_of", "required_when", "empty_when", "source")
COVARIATE_KEYS = {"label", "type", "levels", "reference", "unit", "timing", "missing", "subgroup", *RULE_KEYS}


def parse_dictionary(raw: dict, path: str = "dictionary.yaml") -> Dictionary:
    """The typed :class:`Dictionary` of a parsed ``dictionary.yaml``.

    Raises
    ------
    DictionaryError
        listing every problem (old-format file, unknown type, reference not a level, ...).
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(raw, dict):
        raise DictionaryError([("", "must be a mapping with a 'covariates' key")], path)
    if "files" in raw and "covariates" not in raw:
        raise DictionaryError([("", "this is the old format ('files'/'derived'); write 'covariates', "
                                    "'groupings' and 'exposures' (see helpers/data/contract.py)")], path)
    covariates: dict[str, Covariate] = {}
    for name, spec in (raw.get("covariates") or {}).items():
        name = str(name)
        where = f"covariate '{name}'"
        if name in CORE_COLUMNS or name in DERIVED:
            problems.append((where, "is a core or derived column name; choose another name"))
            continue
        if not isinstance(spec, dict):
            problems.append((where, "must be a mapping"))
            continue
        unknown = set(spec) - COVARIATE_KEYS
        if unknown:
            problems.append((where, f"unknown keys {sorted(unknown)}"))
        kind = spec.get("type")
        if kind not in COVARIATE_TYPES:
            problems.append((where, f"type must be one of {list(COVARIATE_TYPES)}, got {kind!r}"))
            continue
        timing = spec.get("timing", "baseline")
        if timing not in TIMINGS:
            problems.append((where, f"timing must be one of {list(TIMINGS)}, got {timing!r}"))
        levels, reference = {}, None
        if kind == "categorical":
            levels = _levels(spec.get("levels"), where, problems)
            reference = spec.get("reference")
            if reference is not None:
                reference = _level_code(reference, where, problems)
                if reference is not None and reference not in levels:
                    problems.append((where, f"reference {reference!r} is not one of its levels {list(levels)}"))
        elif "levels" in spec:
            problems.append((where, f"levels are only for categorical covariates (type is {kind})"))
        rules = {k: spec[k] for k in RULE_KEYS if k in spec}
        for key in ("required_when", "empty_when"):
            if key in rules and "==" not in str(rules[key]):
                problems.append((where, f"{key} must read '<column> == <value>'"))
        covariates[name] = Covariate(name=name, label=str(spec.get("label", name)), type=kind, levels=levels,
                                     reference=reference, unit=spec.get("unit"), timing=timing,
                                     missing=bool(spec.get("missing", False)), subgroup=bool(spec.get("subgroup", False)),
                                     rules=rules)
    if not covariates and "covariates" not in raw:
        problems.append(("", "has no 'covariates' key"))
    groupings: dict[str, Grouping] = {}
    for name, spec in (raw.get("groupings") or {}).items():
        name = str(name)
        where = f"grouping '{name}'"
        if not isinstance(spec, dict):
            problems.append((where, "must be a mapping"))
            continue
        source = spec.get("source")
        if source not in covariates:
            problems.append((where, f"source {source!r} is not a covariate"))
            continue
        levels = {}
        for level, rule in (spec.get("levels") or {}).items():
            level = _level_code(level, where, problems)
            if level is None:
                continue
            if isinstance(rule, list):
                codes = [str(c) for c in rule]
                bad = [c for c in codes if covariates[source].categorical and c not in covariates[source].levels]
                if bad:
                    problems.append((where, f"level {level!r}: {bad} are not levels of {source}"))
                levels[level] = codes
            else:
                match = _CONDITION.match(str(rule))
                if not match or match.group(1) != source:
                    problems.append((where, f"level {level!r}: {rule!r} must be a list of {source} codes or a "
                                            f"condition such as '{source} > 60'"))
                levels[level] = str(rule)
        if not levels:
            problems.append((where, "has no levels"))
        reference = spec.get("reference")
        if reference is not None:
            reference = str(reference)
            if reference not in levels:
                problems.append((where, f"reference {reference!r} is not one of its levels {list(levels)}"))
        groupings[name] = Grouping(name=name, label=str(spec.get("label", name)), source=source, levels=levels,
                                   reference=reference, subgroup=bool(spec.get("subgroup", False)),
                                   timing=covariates[source].timing,
                                   level_labels={str(k): str(v) for k, v in (spec.get("level_labels") or {}).items()})
    exposures: dict[str, Exposure] = {}
    for name, spec in (raw.get("exposures") or {}).items():
        name = str(name)
        where = f"exposure '{name}'"
        if not isinstance(spec, dict) or "agent_class" not in spec:
            problems.append((where, "must give an agent_class (the treatment_cycles code it counts)"))
            continue
        arms = spec.get("arms")
        exposures[name] = Exposure(name=name, label=str(spec.get("label", name)), agent_class=str(spec["agent_class"]),
                                   arms=None if arms is None else tuple(str(a) for a in arms),
                                   unit=str(spec.get("unit", "cycles")))
    names = list(covariates) + list(groupings) + list(exposures)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        problems.append(("", f"names used twice: {duplicated}"))
    for cov in covariates.values():
        for key in ("required_when", "empty_when"):
            if key in cov.rules and "==" in str(cov.rules[key]):
                other = str(cov.rules[key]).split("==")[0].strip()
                if other not in covariates and other not in CORE_COLUMNS:
                    problems.append((f"covariate '{cov.name}'", f"{key} names an unknown column {other!r}"))
    if problems:
        raise DictionaryError(problems, path)
    return Dictionary(covariates, groupings, exposures, path)


def read_dictionary(path: Path | str) -> Dictionary:
    """Parse the ``dictionary.yaml`` at ``path`` (:class:`DictionaryError` when it breaks the contract)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DictionaryError([("", f"not valid YAML: {exc}")], path.name) from None
    return parse_dictionary(raw, path.name)


# ----------------------------------------------------------------------------- translation to column rules
def covariate_column(cov: Covariate) -> dict:
    """The column rule of a covariate (internal form used by the validator)."""
    spec: dict = {"label": cov.label}
    if cov.categorical:
        spec.update(type="code", codes=list(cov.levels))
    elif cov.type == "count" or cov.rules.get("integer"):
        spec["type"] = "integer"
    else:
        spec["type"] = "number"
    if cov.unit:
        spec["unit"] = cov.unit
    for key in ("min", "max", "multiple_of"):
        if key in cov.rules:
            spec[key] = cov.rules[key]
    if cov.type == "count" and "min" not in spec:
        spec["min"] = 0
    conditional = False
    for key in ("required_when", "empty_when"):
        if key in cov.rules:
            spec[key] = str(cov.rules[key])
            conditional = True
    if not conditional:
        spec["required"] = not cov.missing
    if "source" in cov.rules:
        spec["source"] = cov.rules["source"]
    return spec


def file_columns(dictionary: Dictionary, arm_codes, present=None) -> dict:
    """Column rules of each file: {key: {"stem", "description", "columns": {name: rule}}}.

    ``present``: the cohort file's columns; optional core columns absent from it are left out (None:
    every core column is listed).
    """
    cohort = {}
    for name, spec in CORE_COLUMNS.items():
        if spec.get("optional") and present is not None and name not in present:
            continue
        rule = {k: copy.deepcopy(v) for k, v in spec.items() if k != "optional"}
        if name == "arm":
            rule["codes"] = [str(a) for a in arm_codes]
        cohort[name] = rule
    for name, cov in dictionary.covariates.items():
        cohort[name] = covariate_column(cov)
    files = {"cohort": {"description": "One row per patient.", "stem": "cohort", "columns": cohort}}
    for key, spec in CHILD_FILES.items():
        files[key] = copy.deepcopy(spec)
    classes = list(dict.fromkeys(e.agent_class for e in dictionary.exposures.values()))
    agent = files["treatment_cycles"]["columns"]["agent_class"]
    if classes:
        agent["codes"] = classes
    else:
        agent["type"] = "string"
    return files


def grouping_values(grouping: Grouping, source):
    """The grouping's level of each value of ``source`` (a pandas Series); missing where none applies.

    A condition ``"age > 60"`` compares the numeric value; a list selects source codes. The first level
    that applies wins.
    """
    import numpy as np
    import pandas as pd

    values = source.astype(object)
    out = np.full(len(values), None, dtype=object)
    assigned = np.zeros(len(values), dtype=bool)
    numeric = None
    for level, rule in grouping.levels.items():
        if isinstance(rule, list):
            hit = values.isin(rule).to_numpy()
        else:
            if numeric is None:
                numeric = pd.to_numeric(source, errors="coerce").astype(float).to_numpy()
            _, op, number = _CONDITION.match(rule).groups()
            x = float(number)
            with np.errstate(invalid="ignore"):
                hit = {"<": numeric < x, "<=": numeric <= x, ">": numeric > x, ">=": numeric >= x,
                       "==": numeric == x, "!=": numeric != x}[op] & ~np.isnan(numeric)
        take = hit & ~assigned
        out[take] = level
        assigned |= take
    return pd.Categorical(out, categories=list(grouping.levels))


#: Optional columns of the optional files: used when the file has them, never required.
#: ``adverse_events.action``: what was done with the treatment because of the event (AET01 rows).
AE_ACTIONS = ("none", "dose_reduced", "interrupted", "discontinued")
OPTIONAL_CHILD_COLUMNS: dict[str, dict[str, dict]] = {
    "adverse_events": {
        "action": {"label": "Action taken with the treatment", "type": "code", "codes": list(AE_ACTIONS),
                   "required": False, "missing_means": "not recorded"},
    },
    "treatment_cycles": {},
}


def add_optional_columns(key: str, columns: dict, present) -> dict:
    """Add to ``columns`` (in place; also returned) the optional columns of file ``key`` that the
    file's header ``present`` holds. The loader calls it after reading each optional file, so a
    file without them validates as before."""
    present = set(present)
    for name, spec in OPTIONAL_CHILD_COLUMNS.get(key, {}).items():
        if name in present and name not in columns:
            columns[name] = copy.deepcopy(spec)
    return columns
