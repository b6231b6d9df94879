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

setup: $(STAMP)

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

test: $(STAMP)
	$(VPY) -m pytest -n 2 -q tests

lint: $(STAMP)
	$(VPY) -m ruff check keusim tests proofs experiments bench

bench: $(STAMP)
	$(VPY) bench/machine_speed.py

clean:
	rm -rf build .pytest_cache
