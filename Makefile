# The two commands: `make demo` and `make test`. Both create .venv when it is
# missing and (re)install the package only when pyproject.toml changed.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: demo test setup lint clean bench notebooks

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP) gdb-multiarch

# The paper's headline claims on this host (quick mode) and the containment demo.
demo: $(STAMP)
	$(VPY) -m keusim demo

# JupyterLab on notebooks/, with this venv's Python registered as the `python3` kernel
# (inside the venv, so it does not touch the user's Jupyter set-up). Ctrl-C stops it.
NBSTAMP := $(VENV)/.notebook
$(NBSTAMP): $(STAMP)
	$(VPY) -m pip install -q -e '.[test,notebook]'
	$(VPY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (keusim .venv)"
	@touch $(NBSTAMP)

# Containers often run as root, which Jupyter refuses without --allow-root.
notebooks: $(NBSTAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(JUPYTER_ARGS)

test: $(STAMP) gdb-multiarch
	$(VPY) -m pytest -n 2 -q tests

lint: $(STAMP)
	$(VPY) -m ruff check keusim tests proofs experiments bench

bench: $(STAMP)
	$(VPY) bench/machine_speed.py

clean:
	rm -rf build .pytest_cache

# gdb-multiarch for `keusim run --gdb` and tests/test_gdb.py (README.md, "Debugging a
# guest"): installed with apt only when missing and when we are root (as CI is);
# otherwise one line says how, and the gdb test skips with the same reason.
.PHONY: gdb-multiarch
gdb-multiarch:
	@if command -v gdb-multiarch >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing gdb-multiarch (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q gdb-multiarch >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gdb-multiarch >/dev/null; } \
		|| echo "setup: could not install gdb-multiarch; the gdb test will skip"; \
	else \
		echo "setup: gdb-multiarch is missing; install it (sudo apt-get install gdb-multiarch) for keusim run --gdb; the gdb test skips until then"; \
	fi
