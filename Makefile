# Thin wrappers around the README's commands. `make demo` and `make test` set everything up on a fresh clone.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# The CPU build on machines without a GPU; set TORCH_SPEC=torch (or a CUDA build) elsewhere.
TORCH_SPEC ?= torch==2.13.0
# The trainers the tests run through (their reward or environment code); --no-deps, their import-time needs are the
# 'trainers' extra. openpipe-art 0.5.18 is ART's newest release for Python 3.11 (later ones need Python 3.12).
TRAINER_SPECS ?= verl==0.9.1 openrlhf==0.11.2 verifiers==0.4.0 openpipe-art==0.5.18 skyrl-gym==0.4.0 areal==1.0.4
# Trainers whose metadata asks for Python >= 3.12 (SkyRL's trainer): the modules the tests import run on 3.11.
TRAINER_SPECS_ANY_PYTHON ?= skyrl==0.4.0

.PHONY: setup demo score-demo eval-demo sample-eval test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet "$(TORCH_SPEC)"
	$(PYTHON) -m pip install --quiet -e ".[serve,train,dev,fleet,trainers]"
	$(PYTHON) -m pip install --quiet --no-deps $(TRAINER_SPECS)
	$(PYTHON) -m pip install --quiet --no-deps --ignore-requires-python $(TRAINER_SPECS_ANY_PYTHON)
	touch $@

# GRPO with FLIP rewards on this machine: tiny policy and judge built locally, a few TRL steps (runs/demo).
demo: setup
	PYTHON=$(abspath $(PYTHON)) bash scripts/demo.sh

# Scoring only: the bundled sample scored by a tiny local judge (runs/score_demo).
score-demo: setup
	PYTHON=$(abspath $(PYTHON)) bash scripts/score_demo.sh

# RewardBench-2 evaluation and best-of-N on the bundled samples with a tiny local judge (runs/eval-demo).
eval-demo: setup
	PYTHON=$(abspath $(PYTHON)) bash scripts/eval_demo.sh

# docs/sample_eval/: the sample RewardBench-2 report by the scripted test judge of tests/test_evaluate.py.
sample-eval: setup
	FLIP_WRITE_SAMPLE_EVAL=1 $(PYTHON) -m pytest tests/test_evaluate.py -q -k test_sample_data_report

# Lint and format checks (ruff, configured in pyproject.toml), then the test suite.
test: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest

bench: setup
	$(PYTHON) benchmarks/bench_judge.py

clean:
	rm -rf $(VENV) runs
