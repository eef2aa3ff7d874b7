# `make repro` runs the pipeline, `make test` runs the tests, `make review BASE=ref` compares
# HEAD's committed results with BASE's. Each creates the virtual environment it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)

.PHONY: install repro test review bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

repro: $(STAMP)
	dvc repro

test: $(STAMP)
	python -m pytest

# Sets HEAD's committed results beside those of BASE, e.g. `make review BASE=origin/main`:
# writes review/review.md and its images, reruns nothing.
BASE ?= main
review: $(STAMP)
	python -m dcgan.review --base "$(BASE)" --out review

clean:
	rm -rf $(VENV)
