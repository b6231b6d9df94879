"""The researcher's workflow: `keusim reproduce` (the experiments from the library and the
CLI, the same files as `python experiments/run_all.py`) and `keusim demo` (the paper's
headline claims in one table, every cell from the experiments' results)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import keusim
from keusim.toolchain import ROOT
from keusim.workflow import demo as demo_mod
from keusim.workflow import reproduce as repro

ENV = {**os.environ, "KEUSIM_EXP_WORKERS": "1"}


def keusim_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "keusim", *args], capture_output=True,
                          text=True, env=ENV, timeout=timeout)


def test_registry_finds_the_papers_experiments_first():
    names = list(repro.registry())
    assert names[:5] == list(repro.ORDER)
    for name, mod in repro.registry().items():
        assert mod.NAME == name and callable(mod.run)
        assert (ROOT / "experiments" / f"{mod.__name__.split('.')[-1]}.py").is_file()


def test_unknown_experiment_is_one_error_line():
    with pytest.raises(repro.ExperimentError, match="unknown experiment 'paper_tabel'"):
        keusim.reproduce(["paper_tabel"])
    p = keusim_cli("reproduce", "paper_tabel")
    assert p.returncode == 2 and p.stderr.startswith("keusim: error: unknown experiment")
    assert len(p.stderr.strip().splitlines()) == 1
    p = keusim_cli("reproduce")
    assert p.returncode == 2 and "--all" in p.stderr


def test_reproduce_from_the_cli_writes_what_the_script_writes(tmp_path):
    """`keusim reproduce NAME` and `python experiments/NAME.py` write the same files,
    the same model results and the same provenance keys; the summary is run_all's."""
    p = keusim_cli("reproduce", "tag_check", "--quick", "--no-native", "--out", str(tmp_path / "cli"))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "claim" in p.stdout and "summary:" in p.stdout
    s = subprocess.run([sys.executable, str(ROOT / "experiments" / "tag_check.py"), "--quick",
                        "--no-native", "--out", str(tmp_path / "script")], capture_output=True,
                       text=True, env=ENV, timeout=600)
    assert s.returncode == 0, s.stderr[-2000:]
    cli_dir, script_dir = tmp_path / "cli" / "tag_check", tmp_path / "script"
    assert sorted(f.name for f in cli_dir.iterdir()) == sorted(f.name for f in script_dir.iterdir())
    a = json.loads((cli_dir / "tag_check.json").read_text())
    b = json.loads((script_dir / "tag_check.json").read_text())
    assert a["measurements"] == b["measurements"]          # deterministic model results
    assert set(a["provenance"]) == set(b["provenance"])
    assert a["provenance"]["command"].startswith("__main__.py reproduce") or \
        "reproduce" in a["provenance"]["command"]
    summary = json.loads((tmp_path / "cli" / "run_all" / "summary.json").read_text())
    assert [e["experiment"] for e in summary["experiments"]] == ["tag_check"]
    assert summary["provenance"]["experiment"] == "run_all"
    assert summary["provenance"]["parameters"]["experiments"] == ["tag_check"]


def test_reproduce_library_returns_the_experiments(tmp_path):
    r = keusim.reproduce("coherence", quick=True, out=tmp_path, native=False)
    exp = r.experiments["coherence"]
    # The model's count: a ring round trip moves 4 index lines each way (docs/experiments.md).
    assert exp.details["per_round_trip"]["mode 0: indices only"]["transfers"] == \
        pytest.approx(4.0, abs=0.05)
    assert r.figures() == [tmp_path / "coherence" / "coherence.png"]
    assert r.outdir == tmp_path / "run_all"


def test_headline_phrase_must_match_one_row():
    from experiments._common import Experiment, Row

    exp = Experiment("paper_table", "t", [Row("KeuOS SPSC (x)", "150", "1", "2", "w")], [], {})
    with pytest.raises(demo_mod.DemoError, match="0 comparison rows"):
        demo_mod._row(exp, "Linux pipe")


def test_first_sentences_keeps_whole_sentences():
    t = "One a.b (x, y). Two is here; still two. Three is long " + "x" * 300 + "."
    assert demo_mod._first_sentences(t, 60) == "One a.b (x, y). Two is here; still two."
    assert demo_mod._first_sentences("x" * 500, 60) == "x" * 500


def test_demo_prints_the_headline_table(tmp_path):
    """`keusim demo` on this host: containment on both architectures, then one table
    whose every row has a paper, a keusim and a native number, and the figures."""
    p = keusim_cli("demo", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    assert out.count("OK  'hello from keusim") == 2
    assert out.count("4 killed and recorded") == 2
    assert "demo: all scenarios behaved as expected" in out
    d = json.loads((tmp_path / "demo" / "demo.json").read_text())
    rows = d["comparison"]
    assert len(rows) == len(demo_mod.HEADLINES)
    for r in rows:
        for col in ("paper", "keusim", "native"):
            assert r[col] and not r[col].startswith("n/a"), (col, r)
        for col in ("keusim", "native"):
            assert any(ch.isdigit() for ch in r[col]), (col, r)
    assert "raptorlake" in rows[1]["keusim"] and "host" in rows[1]["keusim"]
    for f in d["figures"]:
        assert f in out and open(f, "rb").read(4) == b"\x89PNG"
    assert len(d["figures"]) == len(demo_mod.EXPERIMENTS)
    for part in ("containment", *demo_mod.EXPERIMENTS, "total"):
        assert part in d["seconds"]
    # The table's cells are the experiments' own (here: the SPSC row).
    pt = json.loads((tmp_path / "paper_table" / "paper_table.json").read_text())
    spsc = [r for r in pt["comparison"] if r["claim"].startswith("KeuOS SPSC")][0]
    assert rows[1]["keusim"] == spsc["keusim"] and rows[1]["native"] == spsc["native"]
