# The two commands: `make demo` and `make test`. Both create .venv when it is
# missing and (re)install the package only when pyproject.toml changed.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: venv-owner demo test setup lint clean bench sysdeps docs-check docs-update notebooks unicorn

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# The venv's editable install must run this checkout: a venv that another clone re-installed
# itself into would silently run that clone's code from bench/ and experiments/ scripts.
venv-owner: $(STAMP)
	@here=$$(pwd -P); got=$$(cd / && $(abspath $(VPY)) -c 'import keusim, os; print(os.path.realpath(os.path.dirname(os.path.dirname(keusim.__file__))))' 2>/dev/null); \
	if [ "$$got" != "$$here" ]; then \
	  echo "keusim: .venv runs the package from '$$got', not $$here: installing this checkout"; \
	  $(VPY) -m pip install -q -e '.[test]'; fi

# keusim's libunicorn (tools/unicorn/build.sh, about a minute): the same results as the
# wheel's, with only pages under a memory hook on the slow path. Built once per venv and
# patch; if it cannot be built, the wheel's library stays in use and a line says why.
UCSTAMP := $(VENV)/.unicorn
$(UCSTAMP): $(STAMP) tools/unicorn/hooked-pages.patch tools/unicorn/build.sh
	@sh tools/unicorn/build.sh $(abspath $(VPY)) $(abspath $(VENV))/lib/keusim-unicorn
	@touch $@

unicorn:
	@rm -f $(UCSTAMP)
	@$(MAKE) --no-print-directory $(UCSTAMP)

setup: venv-owner sysdeps $(UCSTAMP)

# The paper's headline claims on this host (quick mode) and the containment demo.
demo: venv-owner $(UCSTAMP)
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

test: venv-owner sysdeps $(UCSTAMP)
	$(VPY) -m pytest -n 2 -q tests

lint: $(STAMP)
	$(VPY) -m ruff check keusim tests proofs experiments bench

# Regenerate every table in README.md and docs/ marked <!-- docs-check: NAME --> and the
# simulated column of docs/experiments.md's experiment tables, and fail when a documented
# number no longer reproduces (keusim/doccheck.py; under a minute).
docs-check: $(STAMP)
	$(VPY) -c 'import sys; from keusim.doccheck import run; sys.exit(run())'

# Rewrite those tables with freshly measured numbers (then read the diff: prose that cites a
# number is not rewritten).
docs-update: $(STAMP)
	$(VPY) -c 'from keusim.doccheck import doc_files, update; print(*update(doc_files()), sep="\n")'

bench: $(STAMP)
	$(VPY) bench/machine_speed.py

clean:
	rm -rf build .pytest_cache

# System packages (scripts/sysdeps.sh installs them when missing and root, as in CI):
# gdb-multiarch for `keusim run --gdb` (tests/test_gdb.py); iproute2 and ping for the NetD
# TAP tests; tcpdump to check that keusim's pcap files parse.
sysdeps:
	@sh scripts/sysdeps.sh "gdb-multiarch:gdb-multiarch:keusim run --gdb and tests/test_gdb.py" \
		"ip:iproute2:the NetD TAP tests" "ping:iputils-ping:the NetD TAP ping test" \
		"tcpdump:tcpdump:the pcap check"
