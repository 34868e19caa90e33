# safety-hub: `make demo` runs the hub with embedded defaults, `make test` runs the tests.
# `make setup` is what both run first: a .venv with the pinned Python packages and, when run
# as root, the Debian packages the hub and its tests use (mosquitto, influxdb, victoria-metrics,
# chromium and a CJK font for the console's browser test and screenshots, the sqlite3 shell
# that the advice for a damaged state file names, and postgresql, whose server binaries the
# tests run as private clusters for the redundant pair's shared state).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEBS   := mosquitto mosquitto-clients influxdb victoria-metrics chromium fonts-noto-cjk sqlite3 postgresql openssl
PYTEST_ARGS ?=
BENCH_ARGS ?=
# test files run on this many workers (pytest-xdist, whole files per worker); 0 runs them in order
PYTEST_WORKERS ?= 2

.PHONY: setup system-deps demo run test lint typecheck bench dashboards clean help

help:
	@echo "make demo    run the hub in local mode with simulated gateways (Ctrl-C stops)"
	@echo "make test    lint, type-check and run the whole test suite"
	@echo "make setup   create .venv and install what is missing (Debian packages when root)"
	@echo "make bench   run the benchmarks (bench/); make bench BENCH_ARGS=--quick for a short pass"
	@echo "make dashboards  regenerate the Grafana boards in dashboards/json/ (commit them)"

setup: system-deps $(VENV)/.installed

system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v mosquitto_pub >/dev/null 2>&1 || missing="$$missing mosquitto-clients"; \
	command -v influxd >/dev/null 2>&1 || missing="$$missing influxdb"; \
	command -v victoria-metrics >/dev/null 2>&1 || missing="$$missing victoria-metrics"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v sqlite3 >/dev/null 2>&1 || missing="$$missing sqlite3"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "setup: installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	    rc=$$?; [ $$rc = 0 ] || { echo "setup: apt-get install failed ($$rc)"; exit $$rc; }; \
	  else \
	    echo "setup: missing Debian packages:$$missing"; \
	    echo "setup: install them with: sudo apt-get install$$missing"; \
	    case "$$missing" in *mosquitto\ *|*mosquitto) exit 1;; esac; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "safety-hub needs Python >= 3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	@# setuptools warns at every editable install that folders named like the package shadow
	@# it; that is the point of an editable install of this checkout.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

demo: setup
	$(BIN)/safety-hub demo

run: setup
	$(BIN)/safety-hub run

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

dashboards: $(VENV)/.installed
	$(BIN)/safety-hub dashboards build

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hub-data
