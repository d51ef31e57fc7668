# Reproducible supplement: `make` lists the targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   ?= data
OUTPUT ?= _output
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv report test check data lab bench lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS=":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'
	@echo "  variables: DATA=<cohort folder> (default data/, the synthetic cohort), OUTPUT=<folder> (default _output/),"
	@echo "             STRICT=1 (make report exits non-zero, writing nothing, when an analysis was not estimable)"

$(STAMP): requirements.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the pinned dependencies (done automatically by the other targets)

report: $(STAMP)  ## validate DATA, execute the notebooks, render _output/report.{html,pdf,docx} (STRICT=1: refuse if anything is not estimable)
	$(PY) -m helpers.build.pipeline --data $(DATA) --output $(OUTPUT) $(if $(filter 1 yes true,$(STRICT)),--strict,)

test: $(STAMP)  ## fast tests: units, R golden values, one small end-to-end build (no Quarto, no R needed)
	$(PY) -m pytest -q

check: $(STAMP)  ## slow tests: every end-to-end build (default data, other cohorts, determinism, bad inputs)
	$(PY) -m pytest -q -m slow || [ $$? -eq 5 ]

data: $(STAMP)  ## regenerate the synthetic cohort in data/ (byte-identical with the committed one)
	$(PY) -m helpers.data.synthetic data --first-attempt $$(sed -n 's/^ *attempt: *//p' data/study.yaml)

lab: $(STAMP)  ## open the notebooks in JupyterLab with the project's environment
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-lab.txt
	SUPPLEMENT_DATA=$(abspath $(DATA)) SUPPLEMENT_OUTPUT=$(abspath $(OUTPUT)) $(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)  ## run the benchmarks, each against its target: Cox, Kaplan-Meier and Table 1 side by side with R, render, scale, make report on 100,000 patients
	@for s in scripts/benchmark_*.py; do echo "== $$s"; $(PY) $$s || exit 1; done

lock: $(STAMP)  ## regenerate requirements.txt (the lock) from pyproject.toml, keeping pinned versions
	$(PY) -m helpers.build.lock

clean:  ## remove _output/ and caches (keeps .venv)
	rm -rf $(OUTPUT) .$(notdir $(OUTPUT)).staging .pytest_cache
