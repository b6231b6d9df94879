# The two commands: `make demo` and `make test`. Both create .venv when it is
# missing and (re)install the package only when pyproject.toml changed.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: demo test setup lint clean bench

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)
	@# iproute2 (`ip`) for the NetD TAP tests (tests/test_netd_tap.py); installed only when absent.
	@command -v ip >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then apt-get install -y iproute2 || { apt-get update && apt-get install -y iproute2; }; else echo "make setup: iproute2 (the ip tool) is missing and we are not root; run 'sudo apt-get install -y iproute2' (the NetD TAP tests skip without it)"; fi; }

demo: $(STAMP)
	$(VPY) -m keusim demo

test: $(STAMP)
	$(VPY) -m pytest -n 2 -q tests

lint: $(STAMP)
	$(VPY) -m ruff check keusim tests proofs experiments bench

bench: $(STAMP)
	$(VPY) bench/machine_speed.py

clean:
	rm -rf build .pytest_cache
