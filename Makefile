# The two commands the README opens with. Everything else is built by them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
TOOLS  := .venv-tools
NOX    := $(TOOLS)/bin/nox

.PHONY: run test lint clean

$(NOX):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "nox>=2024.10"

## run: train the Keras digits example, autologged into ./mlflow.db, then say how to look at it
run: $(NOX)
	$(NOX) -s example

## test: lint + types and the whole suite in every environment (TF 2.21/Keras 3, TF 2.15);
## the sessions and their order: tools/run_sessions.py
test: $(NOX)
	$(TOOLS)/bin/python tools/run_sessions.py

lint: $(NOX)
	$(NOX) -s lint

clean:
	rm -rf $(TOOLS) .nox build *.egg-info
