"""The notebooks in notebooks/ run top to bottom in quick mode (nbclient, kernel
`python3` from this venv) and show what they claim to show. Committed notebooks carry no
outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from keusim.toolchain import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# What each notebook must print or display when it ran (besides raising no error; each
# also asserts on its own results in its last cells).
EXPECT = {
    "01_quickstart": ["hello from keusim", "cycles per round trip", "arm64 neoverse-n1"],
    "02_paper_claims": ["| claim | paper | keusim (simulated)", "KeuOS SPSC (data plane only)",
                        "ring+trap+copy+lock", "keusim SPSC round trip"],
    "03_proofs": ["paper.full_reads_empty", "counterexample", "ordering.publish.plain.armv8"],
    "04_sweep": ["coherence.core_to_core", "hand-offs per round trip", "same table: True",
                 "image/png"],
}


def _kernel() -> str:
    """The `python3` kernel; registered from this interpreter if Jupyter does not know it
    (jupyter_client runs a spec whose argv[0] is `python` with sys.executable)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name="python3")
    return "python3"


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= set(EXPECT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{path.name}: strip outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("KEUSIM_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("KEUSIM_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("KEUSIM_EXP_WORKERS", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name=_kernel(),
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{out.ename}: {out.evalue}"
            if out.output_type == "stream":
                text.append(out.text)
            elif "data" in out:
                text += [str(v) for k, v in out.data.items() if k.startswith("text/")]
                text += [k for k in out.data if k.startswith("image/")]
    text = "\n".join(text)
    for s in EXPECT.get(path.stem, []):
        assert s in text, f"{path.name}: output lacks {s!r}"
    if path.stem == "02_paper_claims":
        assert (tmp_path / "paper_table" / "paper_table.json").is_file()
    if path.stem == "04_sweep":
        assert (tmp_path / "sweep" / "sweep.parquet").is_file()
