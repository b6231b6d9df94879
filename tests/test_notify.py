"""The verified notify path (kernel/notify.c, guests/lib/notify.c; docs/notify.md).

- `pingpong --verified`: every notification accepted, every byte verified, and two
  runs give byte-identical JSON.
- Poll mode never enters the kernel on the data path.
- `notify-attacks`: each attacker is killed with the right reason, the rejection is
  counted on the right channel, and the honest channels stay intact.
- The per-notify kernel cost split (keusim.analysis.notifycost) is non-zero in every part and
  the tag check costs what docs/notify.md says SipHash-2-4 costs.
Both architectures; arm64 is skipped, with the reason, if it does not boot yet.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest

from keusim.analysis import notifycost
from keusim.manifest import load, resolve
from keusim.system import run

MESSAGES = 40


@functools.cache
def pingpong(arch: str, verified: bool, messages: int = MESSAGES):
    return run("pingpong", arch=arch, params={"messages": messages}, verified=verified)


@functools.cache
def attacks(arch: str):
    return run("notify-attacks", arch=arch, params={"messages": MESSAGES})


@functools.cache
def cost(arch: str):
    return notifycost.measure(arch, notifications=100)


# -- pingpong --------------------------------------------------------------------------
def test_verified_pingpong_accepts_every_notification(arch):
    r = pingpong(arch, True)
    assert r.ok, r.summary()
    for c in r.channels:
        assert c.mode == "notify" and c.verified
        assert c.intact, c
        assert c.consumer_stats["verified_bytes"] == MESSAGES * r.params["size"]
        assert c.notifications == {"accepted": MESSAGES, "rejected": {}}
        assert c.producer_stats["notified"] == MESSAGES
        # A consumer waits at most once per message (it checks the ring first).
        assert 0 < c.consumer_stats["notified"] <= MESSAGES


def test_verified_pingpong_is_deterministic(arch):
    a = pingpong(arch, True).to_json()
    b = run("pingpong", arch=arch, params={"messages": MESSAGES}, verified=True).to_json()
    assert a == b


def test_poll_mode_never_enters_the_kernel_on_the_data_path(arch):
    # Pong's core runs only pong: the system calls it makes (counted as executions of
    # arch_tf_sysno, called once per system call) must not grow with the messages. Total kernel
    # instructions may: spinning on the kernel lock at exit depends on timing.

    def dispatches(messages: int) -> int:
        r = run("pingpong", arch=arch, params={"messages": messages}, attribution=True)
        assert r.ok
        assert all(c.notifications.get("accepted", 0) == 0 for c in r.channels)
        return sum(f["block_executions"] for f in r.functions
                   if f["core"] == 1 and f["image"] == "kernel" and f["function"] == "arch_tf_sysno")

    small, big = dispatches(MESSAGES), dispatches(2 * MESSAGES)
    assert small == big > 0


def test_unverified_notify_mode_needs_no_tag(arch):
    spec = resolve("pingpong")
    spec = dataclasses.replace(
        spec, channels=tuple(dataclasses.replace(c, mode="notify") for c in spec.channels))
    r = run(spec, arch=arch, params={"messages": MESSAGES})
    assert r.ok, r.summary()
    for c in r.channels:
        assert not c.verified and c.intact
        assert c.notifications == {"accepted": MESSAGES, "rejected": {}}


PROBE = """
[system]
name = "notify-probe"
cores = 2
[[process]]
name = "probe"
image = "@/guests/src/notify_attacks.c"
cflags = ["-DROLE=R_PROBE", "-DTARGET=1"]
core = 0
[[process]]
name = "other"
image = "@/guests/src/hello.c"
core = 1
[[channel]]
producer = "probe"
consumer = "other"
capacity = 4096
mode = "poll"
verified = true
[[channel]]
producer = "other"
consumer = "probe"
capacity = 4096
mode = "poll"
"""


def test_refusals_that_do_not_kill(arch, tmp_path):
    """wait() on a poll-mode or unknown channel and notify() on a poll-mode channel the
    caller produces return EPERM; the caller lives on."""
    m = tmp_path / "probe.toml"
    m.write_text(PROBE)
    r = run(load(m), arch=arch)
    assert r.ok, r.summary()
    assert "probe: wait -1, wait -1, notify -1" in r.process("probe").console
    assert r.channel(0).notifications == {"accepted": 0, "rejected": {}}


# -- attacks ---------------------------------------------------------------------------
EXPECTED = {  # attacker -> (fault kind, channel it is counted on)
    "forge": ("bad-tag", 2),
    "crosskey": ("bad-tag", 3),
    "replay": ("replay", 5),
    "oob": ("bad-descriptor", 6),
    "hugelen": ("bad-descriptor", 7),
    "thief": ("no-capability", 0),
    "badptr": ("bad-pointer", None),
}


@pytest.mark.parametrize("attacker", sorted(EXPECTED))
def test_attacker_is_killed_with_the_right_reason(arch, attacker):
    r = attacks(arch)
    kind, ch = EXPECTED[attacker]
    p = r.process(attacker)
    assert p.fault is not None and p.fault.kind == kind, r.summary()
    assert p.expectation_met
    assert "was not stopped" not in p.console
    if ch is not None:
        assert r.channel(ch).notifications["rejected"] == {kind: 1}


def test_honest_channels_carry_on_intact(arch):
    r = attacks(arch)
    assert r.ok and r.status == "poweroff", r.summary()
    for i in (0, 1):
        c = r.channel(i)
        assert c.intact and c.consumer_stats["recv_msgs"] == MESSAGES, c
        assert c.notifications["accepted"] == MESSAGES
    assert r.channel(1).notifications["rejected"] == {}
    for name in ("honest-a-tx", "honest-a-rx", "honest-b-tx", "honest-b-rx", "sink"):
        assert r.process(name).exit_code == 0


def test_what_attackers_sent_before_the_attack_arrives_intact(arch):
    r = attacks(arch)
    pre = r.params["pre"]
    for i in range(2, 8):
        c = r.channel(i)
        assert c.intact, c
        assert c.consumer_stats["recv_msgs"] >= pre
    assert r.channel(4).notifications == {"accepted": pre, "rejected": {}}


# -- cost ------------------------------------------------------------------------------
SIPHASH_INSNS = {"x86_64": 212, "arm64": 168}  # docs/notify.md, "What one tag check costs"


def test_notify_cost_split_is_nonzero_and_plausible(arch):
    c = cost(arch)
    assert c.baseline and c.notifications == 100
    for part in (c.trap, c.tag, c.routing):
        assert part.instructions > 0 and part.cycles > 0
    assert 150 <= c.tag.instructions <= 400
    assert 20 <= c.trap.instructions <= 200
    # SipHash over the 24-byte encoding has no data-dependent branch: the same count
    # as the bare-instance measurement in docs/notify.md, on every notification.
    assert c.functions["siphash24"]["instructions"] == SIPHASH_INSNS[arch]
    assert "tag verification" in c.table() and "~15 cycles" in c.table()


def test_notify_cost_from_a_single_run():
    r = run("pingpong", params={"messages": MESSAGES}, verified=True, attribution=True)
    c = notifycost.notify_cost(r)
    assert c.notifications == 2 * MESSAGES and c.cores == (0, 1) and not c.baseline
    assert c.tag.instructions >= 239  # at least one full tag check per notification
    with pytest.raises(ValueError):
        notifycost.notify_cost(pingpong("x86_64", True))  # no attribution rows
