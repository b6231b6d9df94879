"""Gate policy on the live system (proofs/gate_policy.py): the proofs on both
architectures, the test-only broken layout, and synthetic mutations of a real mapping
dump that each property must catch, naming the mapping."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import pytest

from keusim.proof import prove
from keusim.toolchain import ROOT

MEMLAYOUT = ROOT / "kernel" / "include" / "memlayout.h"


@pytest.fixture(scope="module")
def gate():
    return prove.load_module("gate_policy")


@pytest.fixture(scope="module")
def results() -> dict[str, prove.ProofResult]:
    return {r.name: r for r in prove.run_proofs(["gate"])}


# ---- the proofs on the live systems ---------------------------------------------------

def test_the_proof_table_is_complete(gate, results) -> None:
    want = {f"gate.{a}.{p}" for a in gate.ARCHES for p in gate.PROPERTIES}
    want |= {f"gate.{a}.broken_layout_caught" for a in gate.ARCHES}
    assert set(results) == want
    assert all(r.ok for r in results.values()), {
        n: (r.outcome, r.counterexample) for n, r in results.items() if not r.ok}


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_every_rule_is_proved_on_the_live_page_tables(gate, results, arch) -> None:
    for prop in gate.PROPERTIES:
        r = results[f"gate.{arch}.{prop}"]
        assert (r.expected, r.outcome) == ("proved", "proved"), r.counterexample


def test_the_dump_carries_what_the_proofs_need(gate, arch) -> None:
    m = gate.live_run(arch, "pingpong").mappings
    assert m["_boot"]["kernel_root"] in m["_page_tables"]
    assert m["_kernel_half_user"] == {"ping": [], "pong": []}
    assert [(c["id"], c["producer"], c["consumer"]) for c in m["_channels"]] == [
        (0, "ping", "pong"), (1, "pong", "ping")]
    f = gate.live_facts(arch, "pingpong")
    assert f.procs == ("ping", "pong")
    assert any(w == "kernel image" for _, _, w in f.forbidden)


def test_constants_match_memlayout_h(gate) -> None:
    defs = dict(re.findall(r"#define\s+(\w+)\s+(0x[0-9A-Fa-f]+)", MEMLAYOUT.read_text()))
    for name in ("KERNBASE", "INFO_VA", "CHAN_VA_BASE", "CHAN_STRIDE", "CHAN_HEAD_OFF",
                 "CHAN_TAIL_OFF", "CHAN_DATA_OFF", "USER_TOP", "DEV_PA"):
        assert int(defs[name], 16) == getattr(gate, name), name


# ---- the broken layout ----------------------------------------------------------------

def test_broken_layout_is_caught_naming_the_consumers_head(gate, arch) -> None:
    o = gate.check_broken(arch)
    assert o.outcome == "counterexample"
    v = next(d for d in o.details if d["process"] == "pong")
    assert (v["va"], v["end"], v["perm"], v["owner"]) == (
        0x20001000, 0x20002000, "rw- u", "channel 0 head")
    assert any("writable by pong" in r for r in v["reasons"])
    assert "pong: 0x20001000-0x20002000" in o.counterexample
    assert "rw- u  (channel 0 head)" in o.counterexample
    # ...and it breaks nothing else: every other rule still holds on that system.
    from keusim.machine.loader import BOOT_FLAG_BROKEN_LAYOUT
    f = gate.live_facts(arch, "pingpong", BOOT_FLAG_BROKEN_LAYOUT)
    for prop in gate.PROPERTIES:
        if prop != "head_producer_only":
            assert gate.find_violations(f, prop)[0] == "proved", prop


# ---- synthetic mutations of a real dump -----------------------------------------------
# pingpong: ping produces channel 0 (window 0x20000000) and consumes channel 1
# (0x20400000); pong the reverse. A mutation edits a copy of the dump and returns the
# (process, va) of the mapping the property must name.

Dump = dict


def _row(d: Dump, proc: str, owner: str) -> dict:
    return next(r for r in d[proc] if r["owner"] == owner)


def _add(d: Dump, proc: str, va: int, pa: int | str, perm: str, owner: str = "mutant",
         where: str | None = None) -> None:
    pa = pa if isinstance(pa, str) else f"{pa:#x}"
    row = {"va": f"{va:#x}", "end": f"{va + 0x1000:#x}", "pa": pa, "perm": perm, "owner": owner}
    (d["_kernel_half_user"].setdefault(proc, []) if where == "kernel half" else
     d.setdefault(proc, [])).append(row)


def _set_perm(proc: str, owner: str, perm: str) -> Callable[[Dump], tuple[str, int]]:
    def mut(d: Dump) -> tuple[str, int]:
        r = _row(d, proc, owner)
        r["perm"] = perm
        return proc, int(r["va"], 16)
    return mut


def _drop(proc: str, owner: str) -> Callable[[Dump], tuple[str, int]]:
    def mut(d: Dump) -> tuple[str, int]:
        r = _row(d, proc, owner)
        d[proc].remove(r)
        return proc, int(r["va"], 16)
    return mut


def _map(proc: str, va: int, pa: Callable[[Dump], str | int], perm: str = "r-- u",
         where: str | None = None) -> Callable[[Dump], tuple[str, int]]:
    def mut(d: Dump) -> tuple[str, int]:
        _add(d, proc, va, pa(d), perm, where=where)
        return proc, va
    return mut


def _info_pa(proc: str) -> Callable[[Dump], str]:
    return lambda d: next(r["pa"] for r in d[proc] if r["va"] == "0x10000000")


def _chan_pa(ch: int, key: str) -> Callable[[Dump], str]:
    return lambda d: d["_channels"][ch][key]


SPARE_PA = 0x3000000   # an ordinary RAM page no row maps

MUTATIONS: dict[str, Callable[[Dump], tuple[str, int]]] = {
    "data_rw_nx:data page made executable": _set_perm("ping", "channel 0 data", "rwx u"),
    "data_rw_nx:data page read-only in the consumer": _set_perm("pong", "channel 0 data", "r-- u"),
    "data_rw_nx:data pages missing in the consumer": _drop("pong", "channel 0 data"),
    "head_producer_only:consumer may write head": _set_perm("pong", "channel 0 head", "rw- u"),
    "head_producer_only:producer cannot write head": _set_perm("ping", "channel 0 head", "r-- u"),
    "head_producer_only:head writable elsewhere": _map("ping", 0x30000000,
                                                       _chan_pa(1, "head_pa"), "rw- u"),
    "tail_consumer_only:producer may write tail": _set_perm("ping", "channel 0 tail", "rw- u"),
    "tail_consumer_only:consumer cannot write tail": _drop("pong", "channel 0 tail"),
    "no_kernel_reach:control page (keys) mapped": _map(
        "ping", 0x30000000, lambda d: d["_kernel_control_pages"][0]),
    "no_kernel_reach:page table mapped": _map("pong", 0x30000000,
                                              lambda d: d["_page_tables"][-1], "rw- u"),
    "no_kernel_reach:boot-info block mapped": _map("ping", 0x30000000, lambda d: 0x1000),
    "no_kernel_reach:device page mapped": _map("ping", 0x30000000, lambda d: 0x40000000),
    "no_kernel_reach:user va in the kernel half": _map(
        "ping", 0xFFFF800000000000, lambda d: SPARE_PA, where="kernel half"),
    "guards_unmapped:guard before the data": _map("ping", 0x20003000, lambda d: SPARE_PA),
    "guards_unmapped:guard after the data": _map("pong", 0x20008000, lambda d: SPARE_PA),
    "guards_unmapped:guard below head": _map("pong", 0x20400000, lambda d: SPARE_PA),
    "w_xor_x:stack made executable": _set_perm("ping", "ping stack", "rwx u"),
    "channel_isolation:data page mapped outside its slot": _map(
        "ping", 0x30000000, _chan_pa(0, "data_pa"), "rw- u"),
    "channel_isolation:tail mapped in a third process": _map(
        "intruder", 0x20002000, _chan_pa(0, "tail_pa")),
    "channel_isolation:third process maps into a window": _map(
        "intruder", 0x20405000, lambda d: SPARE_PA),
    "info_private:info page writable": _set_perm(
        "ping", "ping info page (kernel-written, read-only)", "rw- u"),
    "info_private:info page mapped in another process": _map("pong", 0x10001000,
                                                             _info_pa("ping")),
}


def test_every_property_has_mutations(gate) -> None:
    assert {k.split(":")[0] for k in MUTATIONS} == set(gate.PROPERTIES)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_mutated_dump_is_caught_naming_the_mapping(gate, arch, mutation) -> None:
    prop = mutation.split(":")[0]
    dump = copy.deepcopy(gate.live_run(arch, "pingpong").mappings)
    proc, va = MUTATIONS[mutation](dump)
    facts = gate.facts_from_dump("pingpong", arch, dump, gate.kernel_image_ranges(arch))
    o = gate.check([facts], prop)
    assert o.outcome == "counterexample", mutation
    hit = [v for v in o.details if v["process"] == proc and v["va"] <= va < v["end"]]
    assert hit, o.counterexample
    assert hit[0]["reasons"]
    assert f"{proc}: {hit[0]['va']:#x}-{hit[0]['end']:#x}" in o.counterexample


def test_kernel_image_mapping_is_named_as_such(gate, arch) -> None:
    dump = copy.deepcopy(gate.live_run(arch, "pingpong").mappings)
    lo, _ = gate.kernel_image_ranges(arch)[0]
    _add(dump, "ping", 0x30000000, lo, "r-x u")
    o = gate.check([gate.facts_from_dump("pingpong", arch, dump,
                                         gate.kernel_image_ranges(arch))], "no_kernel_reach")
    assert o.outcome == "counterexample"
    assert "kernel image" in o.details[0]["reasons"][0]
    assert f"-> {lo:#x}  r-x u  (mutant)" in o.counterexample


def test_the_unmodified_dump_proves_every_rule(gate, arch) -> None:
    # The mutation tests' baseline: the same path, with no mutation, finds nothing.
    dump = copy.deepcopy(gate.live_run(arch, "pingpong").mappings)
    facts = gate.facts_from_dump("pingpong", arch, dump, gate.kernel_image_ranges(arch))
    for prop in gate.PROPERTIES:
        assert gate.check([facts], prop).outcome == "proved", prop


def test_overlapping_rows_are_refused(gate) -> None:
    # Contradictory facts would make every query unsat, so the proofs vacuous.
    dump = copy.deepcopy(gate.live_run("x86_64", "pingpong").mappings)
    _add(dump, "ping", 0x20001000, SPARE_PA, "r-- u")
    with pytest.raises(ValueError, match="overlapping rows for ping"):
        gate.facts_from_dump("pingpong", "x86_64", dump, gate.kernel_image_ranges("x86_64"))
