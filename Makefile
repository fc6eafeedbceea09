# Two commands on a fresh machine:  make recipe=depth_to_rgb   and   make test
# The virtual environment is created (and the project installed) on first use.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
recipe ?=
comparison ?= depth_to_rgb_losses
RECIPES = $$(cd recipes && ls *.yaml | sed 's/\.yaml//' | tr '\n' ' ')

export WANDB_MODE ?= offline
export HF_HUB_OFFLINE := 1
export NO_ALBUMENTATIONS_UPDATE := 1
export PYTHONUNBUFFERED := 1

.DEFAULT_GOAL := run
.PHONY: run test compare venv clean-cache

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing pldistill (first run only, ~1-2 min)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# pip's local-index warnings are noise here; real errors still show and fail the build
	@$(PY) -m pip install --quiet -e '.[dev]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@$(PY) -c "import pldistill, torch, timm, albumentations, h5py, wandb" 
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	@if [ -z "$(recipe)" ]; then echo "usage: make recipe=NAME   (recipes: $(RECIPES))"; exit 2; fi
	@if [ ! -f recipes/$(recipe).yaml ]; then echo "no recipe recipes/$(recipe).yaml (have: $(RECIPES))"; exit 2; fi
	$(PY) -m pldistill run recipes/$(recipe).yaml

# Every loss on the flagship recipe over 3 seeds (~35 min on 2 CPU cores): one table.
compare: $(STAMP)
	$(PY) -m pldistill compare recipes/compare/$(comparison).yaml

test: $(STAMP)
	$(PY) -m pytest -q tests

clean-cache:
	rm -rf .cache/pldistill
