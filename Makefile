# make quickstart   the whole DetNAS pipeline on the embedded data (CPU)
# make test         the test suite (includes the tiny quickstart end to end)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install quickstart quickstart-tiny test benchmarks

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.cfg tools/install.sh
	VENV=$(VENV) bash tools/install.sh

quickstart: install
	$(BIN)/python tools/quickstart.py

quickstart-tiny: install
	$(BIN)/python tools/quickstart.py --tiny

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

benchmarks: install
	$(BIN)/python benchmarks/run_all.py
