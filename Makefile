# bootsep: `make demo` (set up, build the demo data, run the demo experiment) and `make test`.
# Override the torch requirement with e.g. `make TORCH='torch==2.5.1' test`.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bootsep-installed
DEMO_RUNS ?= runs/demo
export PYTHONUNBUFFERED := 1

.PHONY: install system-deps demo demo-chimera demo-chorales chorales test lint bench help unsupervised

help:
	@echo "make demo   - set up .venv, build demo data, run the paper in miniature, print the comparison"
	@echo "make demo-chimera - the 5-minute engine demo: a chimera on the demo ground truth"
	@echo "make test   - set up .venv, lint with ruff, run the test suite"
	@echo "make bench  - run the benchmarks in bench/"
	@echo "make demo-chorales - the same pipeline on the development Bach chorales (FluidSynth renders)"
	@echo "make unsupervised - bootstrapping vs RemixIT vs MixIT on the demo (after make demo)"

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

# Debian packages the tests and tools use: task-spooler (tsp), tmux, ffmpeg (MUSDB .stem.mp4).
# Installed only when missing and when we are root with apt-get; otherwise the dependent tests skip.
SYSTEM_PKGS := task-spooler tmux ffmpeg
system-deps:
	@missing=""; \
	command -v tsp >/dev/null 2>&1 || command -v ts >/dev/null 2>&1 || missing="$$missing task-spooler"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "note: missing$$missing (install them with apt-get as root); dependent tests will skip"; \
	  fi; \
	fi

lint: install
	$(BIN)/ruff check src tests bench main.py allocate.py logs.py

# One torch/OpenMP thread per process: several tests run 2+ processes at once (torchrun, tsp
# slots, DataLoader workers) and oversubscribed OpenMP threads spin-wait on a 2-core machine.
test: install system-deps lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

# The paper in miniature (musdb/demo/paper_demo.sh): `main.py bootstrap` with the tiny recipe
# (musdb/recipes/tiny.gin: the primitive ensemble, `separate` over the training + unlabelled
# mixtures, `organize` (top 80 % by confidence), a student trained on that), a supervised model;
# prints the comparison table and, last, runs/demo/comparison.md.
# Rerunning resumes/skips what is done.
demo: install
	@PY=$(BIN)/python BOOTSEP_DEMO_RUNS=$(DEMO_RUNS) sh musdb/demo/paper_demo.sh

# The paper in miniature on real-instrument music (musdb/demo/chorales_demo.sh): the development
# chorales of ../shared/devdata (12 train / 6 test songs, FluidR3) plus 40 unlabelled dev-pool
# songs whose tunes are not in the test set, built once with the devdata generator (Debian's
# fluidsynth + FluidR3 soundfont, music21 in .devdata-venv). Last line: the comparison table.
DEVDATA ?= ../shared/devdata
CHORALES_RUNS ?= runs/demo_chorales
chorales:
	@command -v fluidsynth >/dev/null 2>&1 && test -f /usr/share/sounds/sf2/FluidR3_GM.sf2 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends fluidsynth fluid-soundfont-gm >/dev/null; }
	@test -x .devdata-venv/bin/python || { $(PYTHON) -m venv .devdata-venv && \
	  .devdata-venv/bin/pip install -q music21 musdb museval soundfile numpy scipy mido; }
	@test -f data/chorales/manifest.json || .devdata-venv/bin/python $(DEVDATA)/make_chorales_musdb.py \
	  --out data/chorales --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2 --n-train 12 --n-test 6 --seed 1
	@test -f data/chorales_pool/manifest.json || .devdata-venv/bin/python $(DEVDATA)/make_chorales_musdb.py \
	  --out data/chorales_pool --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2 \
	  --exclude data/chorales/manifest.json --n-train 40 --n-test 0 --n-valid 0 --seed 31 --jobs 2

demo-chorales: install chorales
	@PY=$(BIN)/python BOOTSEP_DEMO_RUNS=$(CHORALES_RUNS) sh musdb/demo/chorales_demo.sh

# The quick engine demo (5 min): a small chimera trained on the demo songs' ground truth;
# last line: its report card.
demo-chimera: install
	@$(BIN)/python main.py prepare -c musdb/demo/env.gin musdb/demo/prepare.gin
	@$(BIN)/python main.py all -c musdb/demo/env.gin musdb/demo/data.gin musdb/demo/chimera.gin \
	    -o $(DEMO_RUNS)/chimera
	@echo "$(DEMO_RUNS)/chimera/report_card.txt"

# Bootstrapping vs RemixIT vs MixIT on the demo's unlabelled mixtures, same model and budget
# (runs `make demo` first when its comparison is missing); last line: the table as JSON.
unsupervised: install
	@PY=$(BIN)/python BOOTSEP_DEMO_RUNS=$(DEMO_RUNS) $(BIN)/python bench/unsupervised.py --demo-runs $(DEMO_RUNS)

bench: install
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/primitives.py
