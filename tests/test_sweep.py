"""Sweeps (keusim.workflow.sweep) and profile overrides (keusim.model.profiles.override).

Every assertion is about model results (deterministic) or about what was written: the
same table from a local pool and from a Dask cluster, resumption that runs only the
missing points, a failing point recorded with its cause while the others finish."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from keusim.model.profiles import ProfileError, load_profile, override, parse_profile
from keusim.workflow import sweep as sw

SMALL = {"size": [64, 256], "coherence.core_to_core": [20, 200]}
FIXED = {"messages": 50, "profile": "raptorlake"}


# --------------------------------------------------------------------------- overrides


def test_override_replaces_a_number_and_says_where_it_came_from():
    base = load_profile("raptorlake")
    p = override(base, {"coherence.core_to_core": 20})
    assert p.cycles("coherence.core_to_core") == 20
    assert p.coherence()[:2] == (10, 10)           # invalidate_share 0.5 of the hand-off
    assert base.cycles("coherence.core_to_core") == 162   # the original is untouched
    src = p.param("coherence.core_to_core").source
    assert src.startswith("override") and "was 30 ns" in src
    # Everything else is as it was.
    assert {k: v for k, v in p.params.items() if k != "coherence.core_to_core"} == \
        {k: v for k, v in base.params.items() if k != "coherence.core_to_core"}


def test_override_units_classes_and_clock():
    p = override("raptorlake", {"trap.ipi.ns": 500, "classes.alu.latency": 2})
    assert p.ipi_cycles == 2700                    # 500 ns at 5.4 GHz
    assert p.classes["alu"].latency == 2 and "was 1" in p.classes["alu"].source
    slow = override(p, {"clock.ghz": 2.7})
    assert slow.ipi_cycles == 1350                 # ns-given timings follow the clock
    assert slow.cycles("memory.l1") == 5           # cycle-given ones do not
    # The overridden profile survives its own TOML (what a sweep ships to a worker).
    again = parse_profile(slow.to_toml())
    assert again.ipi_cycles == 1350 and again.classes["alu"].latency == 2
    assert again.coherence() == slow.coherence()


@pytest.mark.parametrize("key,value,words", [
    ("coherence.core_to_cor", 20, "coherence.core_to_cor"),
    ("classes.nosuch.latency", 1, "nosuch"),
    ("coherence.invalidate_share.ns", 1, "not a timing"),
    ("coherence.core_to_core", -1, "non-negative"),
])
def test_override_rejects_bad_keys_with_one_line(key, value, words):
    with pytest.raises(ProfileError) as e:
        override("raptorlake", {key: value})
    assert words in str(e.value) and "\n" not in str(e.value)


# --------------------------------------------------------------------------- spec


@pytest.mark.parametrize("text,values", [
    ("64,256,1024", [64, 256, 1024]),
    ("20..200", [20, 65, 110, 155, 200]),
    ("20..200/3", [20, 110, 200]),
    ("0..100:40", [0, 40, 80]),
    ("x86_64,arm64", ["x86_64", "arm64"]),
    ("0.5..1.0/2", [0.5, 1.0]),
])
def test_parse_values(text, values):
    assert sw.parse_values(text) == values


def test_expand_pairs_profiles_with_their_isa():
    pts, axes, skipped = sw.expand("pingpong", {"arch": ["x86_64", "arm64"],
                                                "profile": ["raptorlake", "neoverse-n1"]})
    assert [(p.arch, p.profile) for p in pts] == [("x86_64", "raptorlake"),
                                                  ("arm64", "neoverse-n1")]
    assert skipped == 2 and axes == ["arch", "profile"]
    assert len({p.id for p in pts}) == 2


@pytest.mark.parametrize("grid,words", [
    ({"sise": [64]}, "no parameter 'sise'"),
    ({"mode": ["sometimes"]}, "mode 'sometimes'"),
    ({"coherence.core_to_core": [20]}, "needs a profile"),
    ({"lookahead": [0]}, "lookahead 0"),
])
def test_bad_sweeps_are_one_error(grid, words):
    with pytest.raises(sw.SweepError) as e:
        sw.expand("pingpong", grid)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_plotting_against_a_missing_axis_fails_before_running(tmp_path):
    with pytest.raises(sw.SweepError, match="cannot plot against 'sise'"):
        sw.sweep("pingpong", {"size": [64]}, x="sise", out=tmp_path, progress=False)
    assert not (tmp_path / "sweep.csv").exists()


def test_cli_bad_axis_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "keusim", "sweep", "pingpong", "--grid", "sise=64",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.startswith("keusim: error:") and "sise" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- running


def _read(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return sw.sweep("pingpong", SMALL, fixed=FIXED, out=out, workers=2, progress=False)


def test_local_sweep_table(local):
    r = local
    assert len(r.rows) == 4 and not r.errors
    assert [(x["size"], x["coherence.core_to_core"]) for x in r.rows] == \
        [(64, 20), (64, 200), (256, 20), (256, 200)]
    for x in r.rows:
        assert x["ok"] and x["intact"] and x["recv_msgs"] > 0
        assert x["rt_ns"] == pytest.approx(x["rt_cycles"] / 5.4)
    # A dearer line hand-off makes every round trip slower; a bigger message too.
    rt = {(x["size"], x["coherence.core_to_core"]): x["rt_cycles"] for x in r.rows}
    assert rt[(64, 200)] > rt[(64, 20)] and rt[(256, 200)] > rt[(256, 20)]
    assert rt[(256, 20)] > rt[(64, 20)]
    # Each point's profile hash is the hash of the overridden profile it ran with.
    shas = {x["profile_sha256"] for x in r.rows}
    assert len(shas) == 2
    assert set(r.provenance["profiles_sha256"].values()) == shas
    assert r.provenance["keusim_version"] and r.provenance["host"]["cpus"] >= 1


def test_local_sweep_files(local):
    import pyarrow.parquet as pq

    d = local.outdir
    rows = _read(d / "sweep.csv")
    assert list(rows[0]) == local.columns and len(rows) == 4
    t = pq.read_table(d / "sweep.parquet")
    assert t.column_names == local.columns
    assert t.column("rt_cycles").to_pylist() == local.column("rt_cycles")
    prov = json.loads(t.schema.metadata[b"keusim.provenance"])
    assert prov == json.loads((d / "sweep.json").read_text())["provenance"]
    assert (d / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_gives_the_same_table(local, tmp_path):
    again = sw.sweep("pingpong", SMALL, fixed=FIXED, out=tmp_path, workers=1, progress=False)
    assert (tmp_path / "sweep.csv").read_bytes() == (local.outdir / "sweep.csv").read_bytes()
    assert again.rows == local.rows


def test_dask_cluster_gives_the_same_table(local, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        r = sw.sweep("pingpong", SMALL, fixed=FIXED, out=tmp_path, executor="dask",
                     scheduler=cluster.scheduler_address, progress=False)
    assert r.executor == "dask"
    assert (tmp_path / "sweep.csv").read_bytes() == (local.outdir / "sweep.csv").read_bytes()


def test_small_sweep_runs_locally_and_says_so(tmp_path):
    msgs = []
    r = sw.sweep("pingpong", {"size": [64]}, fixed=FIXED, out=tmp_path, executor="dask",
                 scheduler="tcp://127.0.0.1:1", progress=False, log=msgs.append)
    assert r.executor == "local" and r.rows[0]["ok"]
    assert any("running locally" in m for m in msgs)


def test_resume_runs_only_the_missing_points(local, tmp_path, monkeypatch):
    full = (local.outdir / "sweep.csv").read_text().splitlines(keepends=True)
    (tmp_path / "sweep.csv").write_text("".join(full[:3]))   # header + 2 of 4 points
    (tmp_path / "sweep.json").write_text((local.outdir / "sweep.json").read_text())
    ran = []
    real = sw.run_point
    monkeypatch.setattr(sw, "run_point", lambda t: ran.append(t["id"]) or real(t))
    msgs = []
    r = sw.sweep("pingpong", SMALL, fixed=FIXED, out=tmp_path, workers=1, progress=False,
                 log=msgs.append)
    assert r.resumed == 2 and len(ran) == 2
    assert set(ran) == {x["point"] for x in local.rows[2:]}
    assert any("resuming" in m for m in msgs)
    # The resumed rows' provenance (the first run's) is kept beside this run's.
    assert r.provenance["earlier_runs"] == [local.provenance]
    assert (tmp_path / "sweep.csv").read_bytes() == (local.outdir / "sweep.csv").read_bytes()


def test_results_of_another_sweep_are_not_mixed_in(local, tmp_path):
    (tmp_path / "sweep.csv").write_text((local.outdir / "sweep.csv").read_text())
    with pytest.raises(sw.SweepError, match="points not in this sweep"):
        sw.sweep("pingpong", {"size": [64], "coherence.core_to_core": [90]}, fixed=FIXED,
                 out=tmp_path, workers=1, progress=False)
    with pytest.raises(sw.SweepError, match="columns differ"):
        sw.sweep("pingpong", {"size": [64]}, fixed=FIXED, out=tmp_path, workers=1,
                 progress=False)


BAD_GUEST = """
#include <keusim/keusim.h>
#if SIZE > 100
#error SIZE above 100 is not supported by this guest
#endif
int main(void) { ks_printf("size %d\\n", SIZE); return 0; }
"""


def test_a_failing_point_is_recorded_and_the_others_finish(tmp_path):
    (tmp_path / "g.c").write_text(BAD_GUEST)
    (tmp_path / "m.toml").write_text(f"""
[system]
name = "fragile"
[params]
size = 64
[[process]]
name = "g"
image = "{tmp_path / 'g.c'}"
core = 0
""")
    msgs = []
    r = sw.sweep(str(tmp_path / "m.toml"), {"size": [64, 200, 96]}, out=tmp_path / "out",
                 workers=2, progress=False, metric="instructions", log=msgs.append)
    by = {x["size"]: x for x in r.rows}
    assert by[64]["ok"] and by[96]["ok"] and by[64]["error"] == ""
    bad = by[200]
    assert not bad["ok"] and bad["instructions"] is None
    assert bad["error"].startswith("BuildError") and "SIZE above 100" in bad["error"]
    assert "\n" not in bad["error"]
    assert r.errors == [bad] and any("failed" in m and "SIZE above 100" in m for m in msgs)
    rows = _read(tmp_path / "out" / "sweep.csv")
    assert [x["size"] for x in rows] == ["64", "200", "96"]


def test_wakeup_mode_axis(tmp_path):
    r = sw.sweep("pingpong", {"mode": ["poll", "notify", "verified"]},
                 fixed={"messages": 40}, out=tmp_path, workers=1, progress=False)
    k = {x["mode"]: x for x in r.rows}
    assert all(x["ok"] and x["intact"] for x in r.rows)
    # A notify is a system call; a verified one also computes a SipHash tag.
    assert k["poll"]["kernel_cycles"] < k["notify"]["kernel_cycles"] < \
        k["verified"]["kernel_cycles"]


def test_cli_sweep(tmp_path):
    p = subprocess.run([sys.executable, "-m", "keusim", "sweep", "pingpong",
                        "--grid", "lookahead=20,200", "--set", "messages=40",
                        "--out", str(tmp_path), "--no-progress", "--workers", "1"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "lookahead" in p.stdout and "2 points (0 resumed, 0 failed)" in p.stdout
    assert len(_read(tmp_path / "sweep.csv")) == 2


def test_list_sweep_runs_the_points_given(tmp_path):
    import keusim

    pts = [{"size": 256, "arch": "arm64", "profile": "neoverse-n1"}, {"messages": 20}]
    r = keusim.sweep("pingpong", points=pts, fixed={"messages": 30}, out=tmp_path, workers=1,
                     progress=False)
    # A point that leaves a parameter out runs (and shows) the manifest's value (64 B).
    assert [(x["arch"], x["profile"], x["size"], x["messages"]) for x in r.rows] == \
        [("arm64", "neoverse-n1", 256, 30), ("x86_64", "flat", 64, 20)]
    assert all(x["ok"] for x in r.rows) and r.column("recv_msgs") == [30, 20]
    assert r.rows[1]["rt_ns"] is None          # the flat model has no clock
