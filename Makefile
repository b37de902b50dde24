# gr00t_exp developer commands. `make setup` then `make test` on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DDS_PREFIX := $(CURDIR)/$(VENV)/cyclonedds
STAMP := $(VENV)/.setup-done
CLIENT_VENV ?= .venv-client
CLIENT_BIN := $(CLIENT_VENV)/bin
CLIENT_STAMP := $(CLIENT_VENV)/.setup-done
LINT_PATHS := gr00t_exp tests client run.py

.PHONY: setup test test-client test-fast lint format demo clean system-deps

## setup: system packages (ffmpeg, cyclonedds C library), a venv with the project and its extras
setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(MAKE) system-deps
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch (CI has no GPU); torchcodec 0.13 pairs with torch 2.13 and Debian's FFmpeg 5.1.
	$(BIN)/pip install -q "torch==2.13.0" "torchcodec==0.13.*"
	$(BIN)/pip install -q -e ./client
	$(BIN)/pip install -q -e ".[dev,deploy]"
	# cyclonedds 0.10.2 (the robot's version) is built against Debian's libddsc through a prefix dir.
	mkdir -p $(DDS_PREFIX)/lib
	ln -sf /usr/lib/x86_64-linux-gnu/libddsc* /usr/lib/x86_64-linux-gnu/libcycloneddsidl* $(DDS_PREFIX)/lib/
	ln -sfn /usr/include $(DDS_PREFIX)/include
	ln -sfn /usr/bin $(DDS_PREFIX)/bin
	CYCLONEDDS_HOME=$(DDS_PREFIX) $(BIN)/pip install -q "cyclonedds==0.10.2"
	touch $(STAMP)

system-deps:
	@if ! command -v ffmpeg >/dev/null || ! test -e /usr/include/dds/dds.h; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg cyclonedds-dev >/dev/null; \
	fi

## test: the whole suite (CPU; the slow end-to-end tests included), then the client on its own
test: $(STAMP)
	$(BIN)/python -m pytest -q -x --timeout=900 -p no:cacheprovider tests
	$(MAKE) test-client

## test-client: the robot-side client installed as the robot installs it (no torch), client/tests run there
$(CLIENT_STAMP): client/pyproject.toml Makefile
	rm -rf $(CLIENT_VENV)
	$(PY) -m venv $(CLIENT_VENV)
	$(CLIENT_BIN)/pip install -q ./client pytest
	touch $(CLIENT_STAMP) $(CLIENT_VENV)/.fresh

test-client: $(CLIENT_STAMP)
	# Always the current sources, installed (not editable) like on the robot (a venv built just now has them).
	@if [ -e $(CLIENT_VENV)/.fresh ]; then rm $(CLIENT_VENV)/.fresh; else $(CLIENT_BIN)/pip install -q --no-deps --force-reinstall ./client; fi
	@$(CLIENT_BIN)/python -I -c "import importlib.util as u, sys; bad = [m for m in ('torch', 'omegaconf', 'gr00t_exp') if u.find_spec(m)]; sys.exit(f'{bad} importable in $(CLIENT_VENV): the client must install without them' if bad else 0)"
	cd client && $(abspath $(CLIENT_BIN))/pytest -q -p no:cacheprovider tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

format: $(STAMP)
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

## demo: the main job on the embedded default (synthetic data, tiny model, CPU)
demo: $(STAMP)
	$(BIN)/python run.py

clean:
	rm -rf outputs multirun .cache
