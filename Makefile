# Parley: `make run` brings up the whole thing, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install tools bench-tools run demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m devstack.stack

# With `make run` going in another terminal.
demo: $(STAMP)
	$(PY) -m devstack.demo

# promtool (Debian's prometheus package) checks the metrics and the alert rules, and the
# Prometheus end-to-end test runs the real server; Debian's chromium is the browser the
# inbox page's tests drive headless (nothing here may download a browser), with Noto's
# colour emoji so that reactions show in the screenshots. Installed when missing and
# allowed.
tools:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing="$$missing fonts-noto-color-emoji"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "make test needs:$$missing (apt-get install$$missing)" >&2; exit 1; fi; \
	fi

test: $(STAMP) tools
	$(PY) -m pytest -q

# wrk (Debian's package) loads the receiver in make bench: a load generator in C, because
# a Python one saturates before the bare aiohttp baseline does. Installed when missing and
# allowed, like the test tools.
bench-tools:
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; \
	  else echo "make bench needs: wrk (apt-get install wrk)" >&2; exit 1; fi; \
	fi

bench: $(STAMP) bench-tools
	$(PY) -m tests.bench

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
