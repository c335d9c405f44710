# videochat developer commands. torch is pinned to the CPU wheel first: a bare `torch` requirement would pull a
# multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0

.PHONY: install test demo bench parity clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[test]"

test: install
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/videochat demo

parity: install
	$(BIN)/python -m videochat.parity ../shared/fixtures/internvideo2_chat/*/ ../shared/fixtures/videochat2/*/ ../shared/fixtures/internvideo2/*/

bench: install
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_generate.py --compile
	$(BIN)/python bench/bench_generate_memory.py
	$(BIN)/python bench/bench_preprocess.py
	$(BIN)/python bench/bench_convert.py
	$(BIN)/python bench/bench_internvideo2.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
