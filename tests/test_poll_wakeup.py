"""Poll versus wake-up (experiments/poll_wakeup.py, guests/src/poll_wakeup.c).

The scenario's three receivers deliver and verify every byte; the wake-up receiver
really sleeps (its core halts, and every message costs a notification and a wait),
the polling one never does; the quick experiment finds the crossover where polling's
CPU per message meets waking's. All model time: deterministic, no host timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from keusim.analysis.attribution import attribute
from keusim.toolchain import ROOT

N = 12


@pytest.fixture(scope="module")
def runs():
    out = {}
    for mode in (0, 1, 2):
        out[mode] = attribute("poll-wakeup", arch="x86_64", profile="raptorlake",
                              params={"mode": mode, "messages": N, "interval": 8000,
                                      "spin": 2000})
    return out


def test_every_mode_delivers_and_verifies(runs):
    for a in runs.values():
        r = a.report
        assert r.ok, r.summary()
        for ch in r.channels:
            assert ch.intact and ch.consumer_stats["verified_bytes"] == N * 64
        assert r.channel(0).producer_stats["round_trips"] == N


def test_poll_spins_and_wake_sleeps(runs):
    poll, wake, hybrid = runs[0], runs[1], runs[2]
    # Polling: no notification is sent or waited for.
    assert poll.report.channel(0).notifications["accepted"] == 0
    assert poll.report.channel(0).consumer_stats["notified"] == 0
    # Wake-up: one verified notification per message, and the receiver slept for each
    # (the sender waits for the echo, so the ring is empty whenever the receiver looks).
    assert wake.report.channel(0).notifications["accepted"] == N
    assert wake.report.channel(0).consumer_stats["notified"] == N
    # The hybrid catches the first message while it spins (sender and receiver start
    # together); every later one comes 8,000 cycles after the previous, longer than its
    # 2,000-cycle spin, so it sleeps for those.
    assert hybrid.report.channel(0).consumer_stats["notified"] == N - 1
    busy = {m: a.cores[1].cycles - a.cores[1].idle_cycles for m, a in runs.items()}
    assert busy[0] > busy[2] > busy[1]
    assert runs[1].cores[1].idle_cycles > N * 4000
    rt = {m: a.report.channel(0).producer_stats["rt_cycles"] for m, a in runs.items()}
    assert rt[1] > rt[0]


def test_same_inputs_same_cycles(runs):
    again = attribute("poll-wakeup", arch="x86_64", profile="raptorlake",
                      params={"mode": 1, "messages": N, "interval": 8000, "spin": 2000})
    assert again.report.to_json() == runs[1].report.to_json()


def test_quick_experiment_finds_a_crossover(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "experiments" / "poll_wakeup.py"), "--quick",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Crossover" in p.stdout
    d = json.loads((tmp_path / "poll_wakeup.json").read_text())
    s = d["details"]["summary"]["x86_64/raptorlake"]
    pts = {(x["mode"], x["interval"]): x for x in d["details"]["points"]}
    # Polling burns (nearly) the whole gap between messages; waking a fixed cost.
    slow = max(x["interval"] for x in d["details"]["points"])
    assert pts[("poll", slow)]["share"] > 0.9
    assert pts[("wake", slow)]["share"] < 0.5
    # The crossover lies where polling's CPU per message meets waking's.
    assert s["crossover_interval"] is not None
    fast = min(x["interval"] for x in d["details"]["points"])
    assert fast <= s["crossover_interval"] <= slow
    # The hybrid keeps polling's round trip when messages come faster than its spin, and
    # wake-up's when they come slower.
    assert pts[("hybrid", fast)]["rt_cycles"] < pts[("wake", fast)]["rt_cycles"] / 2
    assert pts[("hybrid", slow)]["rt_cycles"] > pts[("poll", slow)]["rt_cycles"] * 2
    for suffix in ("json", "csv", "png", "svg"):
        assert (tmp_path / f"poll_wakeup.{suffix}").exists()
