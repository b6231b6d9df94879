"""Cycle attribution (keusim.analysis.attribution): the parts add up to the report's totals."""

from __future__ import annotations

import pytest

import keusim
from keusim.analysis.attribution import CATEGORY_NAMES, attribute, kernel_path
from keusim.model.profiles import load_profile


@pytest.fixture(scope="module", params=[False, True], ids=["poll", "verified"])
def att(request):
    return attribute("pingpong", params={"messages": 40}, verified=request.param,
                     profile="host")


def test_core_parts_add_up_to_the_report(att):
    rep = att.report
    assert rep.ok
    for c, rc in zip(att.cores, rep.cores, strict=True):
        assert c.cycles == rc.cycles
        assert c.block_cycles + c.coherence_cycles + c.delivery_cycles + c.idle_cycles == c.cycles
        assert c.coherence_cycles == rc.coherence_cycles
        assert c.delivery_cycles >= 0 and c.idle_cycles >= 0
        assert c.delivery_cycles % load_profile("host").cycles("trap.exception_entry") == 0
        assert sum(r.cycles for r in att.rows if r.core == c.core) == c.block_cycles
        cat = att.by_category(c.core)
        assert sum(cat.values()) == c.cycles
    assert sum(att.by_category().values()) == att.total_cycles == sum(c.cycles for c in rep.cores)


def test_rows_are_the_reports_function_rows_split_by_category(att):
    assert len(att.rows) == len(att.report.functions)
    for r, f in zip(att.rows, att.report.functions, strict=True):
        assert (r.core, r.image, r.function, r.instructions, r.cycles, r.block_executions) == \
            (f["core"], f["image"], f["function"], f["instructions"], f["cycles"],
             f["block_executions"])
        assert r.compute + r.memory + r.trap == r.cycles
    assert not att.notes
    procs = att.by_process()
    assert set(procs) == {"kernel", "ping", "pong"}
    assert sum(d["cycles"] for d in procs.values()) == sum(r.cycles for r in att.rows)


def test_every_kernel_function_that_ran_has_a_path(att):
    paths = att.by_kernel_path()
    assert "other kernel" not in paths, paths.get("other kernel")
    assert paths["trap entry/exit"]["cycles"] > 0
    verified = att.report.channels[0].verified
    notify_fns = paths.get("notify (verify, wake)", {}).get("functions", [])
    assert ("sys_notify" in notify_fns) == verified
    if verified:
        # Verified mode: kernel entries to notify and wait, IPIs to wake the peer.
        assert sum(c.delivery_cycles for c in att.cores) > 0
        assert "siphash24" in paths["notify (verify, wake)"]["functions"]
    cats = att.by_category()
    assert set(cats) == set(CATEGORY_NAMES) and cats["coherence"] > 0
    assert "kernel path" in att.table()


def test_kernel_path_names():
    assert kernel_path("siphash24") == "notify (verify, wake)"
    assert kernel_path("vec14") == "trap entry/exit"
    assert kernel_path("brand_new_function") == "other kernel"


def test_flat_profile_is_all_compute():
    a = attribute("hello", profile=None)
    cats = a.by_category()
    assert cats["memory"] == cats["trap"] == cats["coherence"] == 0
    assert cats["compute"] + cats["idle"] == a.total_cycles


@pytest.mark.parametrize("profile", [None, "host"])
def test_attribute_and_run_agree_to_the_cycle(profile):
    """One boot path: the analysis front and `run` see the same machine, cycle for cycle."""
    params = {"messages": 60}
    att = attribute("pingpong", params=params, profile=profile)
    rep = keusim.run("pingpong", params=params, profile=profile)
    assert [c.cycles for c in att.report.cores] == [c.cycles for c in rep.cores]
    assert att.report.to_json() == keusim.run("pingpong", params=params, profile=profile,
                                              attribution=True).to_json()
