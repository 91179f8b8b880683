# gatoms — the paper as a build. `make paper` runs every step on PROFILE (default: tiny);
# `make test` runs the tests. Both create .venv and install into it when needed.
#
#   make paper [PROFILE=tiny] [FORCE=1]     all steps 00 → 06, then the report and the atlas
#   make finetune | extract | ekfac | atoms | coherence | ablations | steering    one step (+ upstream)
#   make report | atlas                      figures/<profile>/RESULTS.md and atlas.html from metrics
#   make bench-extract | bench-atoms         benchmarks (side-by-side speed ratios, one run)
#   make test                                the test suite (CPU, no downloads)
#
# Make decides what to re-run: a step depends on its notebook, its upstream step, the profile file and
# the package sources. FORCE=1 rebuilds over artifacts that were made with a different config.

PROFILE ?= tiny
FORCE ?= 0
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gatoms-installed
ART := artifacts/$(PROFILE)
CFG := configs/$(PROFILE).yaml
SRC := $(shell find gatoms -name '*.py' -o -name '*.jsonl' -o -name '*.html' 2>/dev/null) pyproject.toml
RUN := $(PY) -m gatoms run --profile $(PROFILE) $(if $(filter 1 yes true,$(FORCE)),--force,)
export PYTHONHASHSEED := 0
export TOKENIZERS_PARALLELISM := false

.PHONY: paper test install finetune extract ekfac atoms coherence ablations steering report atlas \
        bench-extract bench-atoms clean-profile help

help:
	@sed -n '1,12p' Makefile

# ---- environment --------------------------------------------------------------------------------
# torch first, pinned (a CPU wheel here); then the package. No CUDA wheels, no torchvision/torchaudio.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	@if $(PY) -m pip list 2>/dev/null | grep -qi '^nvidia-'; then \
	  echo "error: nvidia-* packages were installed into $(VENV); install a CPU torch==2.13.0 first" >&2; exit 1; fi
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

install: $(STAMP)

# ---- the pipeline -------------------------------------------------------------------------------
$(ART)/00_finetune/metrics.json: notebooks/00_finetune.ipynb $(CFG) $(SRC) | $(STAMP)
	$(RUN) 00_finetune
$(ART)/01_extract/metrics.json: notebooks/01_extract.ipynb $(ART)/00_finetune/metrics.json $(CFG) $(SRC)
	$(RUN) 01_extract
$(ART)/02_ekfac/metrics.json: notebooks/02_ekfac.ipynb $(ART)/01_extract/metrics.json $(CFG) $(SRC)
	$(RUN) 02_ekfac
$(ART)/03_atoms/metrics.json: notebooks/03_atoms.ipynb $(ART)/02_ekfac/metrics.json $(CFG) $(SRC)
	$(RUN) 03_atoms
$(ART)/04_coherence/metrics.json: notebooks/04_coherence.ipynb $(ART)/03_atoms/metrics.json $(CFG) $(SRC)
	$(RUN) 04_coherence
$(ART)/05_ablations/metrics.json: notebooks/05_ablations.ipynb $(ART)/04_coherence/metrics.json $(CFG) $(SRC)
	$(RUN) 05_ablations
$(ART)/06_steering/metrics.json: notebooks/06_steering.ipynb $(ART)/04_coherence/metrics.json $(CFG) $(SRC)
	$(RUN) 06_steering

finetune: $(ART)/00_finetune/metrics.json
extract: $(ART)/01_extract/metrics.json
ekfac: $(ART)/02_ekfac/metrics.json
atoms: $(ART)/03_atoms/metrics.json
coherence: $(ART)/04_coherence/metrics.json
ablations: $(ART)/05_ablations/metrics.json
steering: $(ART)/06_steering/metrics.json

STEP_METRICS := $(foreach s,00_finetune 01_extract 02_ekfac 03_atoms 04_coherence 05_ablations 06_steering,$(ART)/$(s)/metrics.json)

figures/$(PROFILE)/RESULTS.md: $(STEP_METRICS) $(SRC)
	$(PY) -m gatoms.report --profile $(PROFILE)
figures/$(PROFILE)/atlas.html: $(STEP_METRICS) $(SRC)
	$(PY) -m gatoms.atlas --profile $(PROFILE)

report: figures/$(PROFILE)/RESULTS.md
atlas: figures/$(PROFILE)/atlas.html

paper: report atlas
	@echo "[gatoms] paper done: figures/$(PROFILE)/RESULTS.md, figures/$(PROFILE)/atlas.html"

# ---- benchmarks (speed ratios measured side by side in one run) --------------------------------
bench-extract: $(STAMP)
	$(PY) benchmarks/bench_extract.py
bench-atoms: $(STAMP)
	$(PY) benchmarks/bench_atoms.py

# ---- tests --------------------------------------------------------------------------------------
test: $(STAMP)
	$(PY) -m nbstripout --verify notebooks/*.ipynb
	$(PY) -m pytest -q -p no:cacheprovider tests

clean-profile:
	rm -rf $(ART)
