"""`keusim new NAME` writes a project that runs as created on both architectures, and
its notebook executes (nbclient, as tests/test_notebooks.py does)."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

import keusim
from keusim.template import FILES, ProjectError


def _kernel() -> str:
    """The `python3` Jupyter kernel, registered from this interpreter if missing
    (the same set-up as tests/test_notebooks.py)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name="python3")
    return "python3"


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "keusim", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """`keusim new demo` in a fresh folder (the CLI, as a user would)."""
    where = tmp_path_factory.mktemp("new")
    res = _cli("new", "demo", cwd=where)
    assert res.returncode == 0, res.stderr
    assert "keusim run demo/system.toml" in res.stdout
    return where


def test_writes_the_promised_files(project):
    d = project / "demo"
    assert sorted(p.name for p in d.iterdir()) == sorted(p.name for p in FILES.iterdir())
    for p in d.iterdir():
        assert "@NAME@" not in p.read_text(), p.name
    assert 'name = "demo"' in (d / "system.toml").read_text()
    nb = nbformat.read(d / "explore.ipynb", as_version=4)
    nbformat.validate(nb)
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_runs_as_created(project, arch):
    res = _cli("run", "demo/system.toml", "--arch", arch, "--json", cwd=project)
    assert res.returncode == 0, res.stderr + res.stdout
    rep = json.loads(res.stdout)
    assert rep["ok"] and rep["arch"] == arch
    assert [p["name"] for p in rep["processes"]] == ["client", "server"]
    ch = rep["channels"][0]
    # Every byte the client sent arrived and matched its seeded payload.
    assert ch["complete"] and ch["consumer_stats"]["verified_bytes"] == 200 * 64
    assert "0 mismatched" in rep["processes"][1]["console"]


def test_notebook_runs_and_plots(project, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("KEUSIM_NOTEBOOK_QUICK", "1")
    d = project / "demo"
    nb = nbformat.read(d / "explore.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name=_kernel(),
                   resources={"metadata": {"path": str(d)}}).execute()
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{out.ename}: {out.evalue}"
            if out.output_type == "stream":
                text.append(out.text)
            images += "image/png" in out.get("data", {})
    text = "".join(text)
    for arch in ("x86_64", "arm64"):
        assert f"{arch:7} {1024:5} B:" in text
    assert "0 mismatched" in text
    assert images == 1


def test_library_api_and_refusals(tmp_path):
    m = keusim.new_project(tmp_path / "mine")
    assert m == tmp_path / "mine" / "system.toml" and m.is_file()
    with pytest.raises(ProjectError, match="already exists and is not an empty folder"):
        keusim.new_project(tmp_path / "mine")
    with pytest.raises(ProjectError, match="project name '9 lives'"):
        keusim.new_project(tmp_path / "9 lives")
    # An empty folder is fine (e.g. one made by a git clone of an empty repository).
    (tmp_path / "empty").mkdir()
    assert keusim.new_project(tmp_path / "empty").is_file()


def test_cli_refusal_is_one_line(project):
    res = _cli("new", "demo", cwd=project)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "keusim: error: demo: already exists and is not an empty folder; choose another "
        "name or remove it"]
