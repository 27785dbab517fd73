# Bootstraps the virtual environment and calls llmkit; the CLI itself is `llmkit` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIMES := $(VENV)/.mbxp-runtimes

.PHONY: run test clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==26.3
	$(BIN)/python -m pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The sandbox and language runtimes MBXP evaluation executes model-written code with.
$(RUNTIMES): $(STAMP) evaluation/mbxp/install-runtimes.sh
	bash evaluation/mbxp/install-runtimes.sh $(VENV)
	touch $(RUNTIMES)

run: $(STAMP) $(RUNTIMES)
	$(BIN)/llmkit pipeline $(ARGS)

test: $(STAMP) $(RUNTIMES)
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy sut/backends/trtllm.py sut/backends/trtllm_pytorch.py sut/backends/trtllm_common.py
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV)
