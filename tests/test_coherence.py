"""The shared-line coherence hook's rules (fastpath.c fast_mem / handoff / poll_note).

fast_mem is driven directly through ctypes (its Uc argument is unused), so each test is a
deterministic sequence of line accesses by two cores.
"""

from __future__ import annotations

import ctypes as C

import pytest

from keusim.machine import fastpath
from keusim.model.profiles import list_profiles, load_profile

BASE, SIZE = 0x100000, 64 * 64
READ, WRITE = 16, 17          # UC_MEM_READ, UC_MEM_WRITE
XFER, INVAL, FILL, STREAM = 70, 60, 40, 15


def _setup(stream=STREAM, stride=fastpath.STREAM_STRIDE, posted=False, poll_max=0,
           stream_access=0.0, overlap=False):
    coh, keep = fastpath.make_coherence(BASE, SIZE, XFER, INVAL, FILL, stream=stream,
                                        stride=stride, posted=posted, poll_max=poll_max,
                                        stream_access=stream_access, overlap=overlap)
    cores = []
    for i in range(2):
        k = fastpath.FastCore()
        k.id = i
        k.coh = C.pointer(coh)
        cores.append(k)
    return coh, keep, cores


def _access(core, kind, lines, per_line=1):
    fn = fastpath.lib().fast_mem
    fn.argtypes = [C.c_void_p, C.c_int, C.c_uint64, C.c_int, C.c_int64,
                   C.POINTER(fastpath.FastCore)]
    fn.restype = None
    before = core.clock
    for ln in lines:
        for k in range(per_line):
            fn(None, kind, BASE + 64 * ln + 4 * k, 4, 0, C.byref(core))
    return core.clock - before


def test_sequential_transfers_are_charged_stream_cycles():
    _, _keep, (a, b) = _setup()
    assert _access(a, WRITE, range(8)) == 8 * FILL          # first touch: no hand-off
    # The reader fetches 8 consecutive modified lines: the first in full, then streamed.
    assert _access(b, READ, range(8)) == XFER + 7 * STREAM
    assert (b.coh_xfers, b.coh_streamed) == (8, 7)
    # The writer upgrades them again (the reader holds them shared): invalidations.
    assert _access(a, WRITE, range(8)) == INVAL + 7 * STREAM
    assert a.coh_streamed == 7


def test_scattered_transfers_are_charged_in_full():
    _, _keep, (a, b) = _setup()
    lines = range(0, 64, 8)
    _access(a, WRITE, lines)
    assert _access(b, READ, lines) == 8 * XFER and b.coh_streamed == 0
    assert _access(a, WRITE, lines) == 8 * INVAL and a.coh_streamed == 0


def test_stride_direction_and_repeats():
    _, _keep, (a, b) = _setup(stride=2)
    seq = [10, 12, 11, 9, 30, 31]     # +2, -1, -2 stream; 30 breaks it; 31 streams
    _access(a, WRITE, seq)
    assert _access(b, READ, seq) == 2 * XFER + 4 * STREAM
    # A second hand-off of the same line is never a stream continuation.
    _, _keep2, (a, b) = _setup()
    for _ in range(3):
        _access(a, WRITE, [5])
        _access(b, READ, [5])
    assert a.coh_streamed == b.coh_streamed == 0


def test_stream_state_is_per_core():
    _, _keep, (a, b) = _setup()
    _access(a, WRITE, [0, 20])
    _access(b, READ, [0])             # b's previous event: line 0
    assert _access(b, READ, [20]) == XFER   # 20 is not near 0 (a's 20 does not count)


def test_default_is_the_serial_model():
    coh, keep = fastpath.make_coherence(BASE, SIZE, XFER, INVAL, FILL)
    assert coh.stream_stride == 0
    cores = []
    for i in range(2):
        k = fastpath.FastCore()
        k.id, k.coh = i, C.pointer(coh)
        cores.append(k)
    a, b = cores
    _access(a, WRITE, range(8))
    assert _access(b, READ, range(8)) == 8 * XFER and b.coh_streamed == 0


def test_stream_never_costs_more_than_the_full_hand_off():
    _, _keep, (a, b) = _setup(stream=500)
    _access(a, WRITE, range(4))
    assert _access(b, READ, range(4)) == 4 * XFER


def test_struct_fields_keep_their_offsets():
    # New fields go at the end: fastpath.c's offsets of the old ones are unchanged.
    assert fastpath.KCoh.owner.offset == 40 and fastpath.KCoh.sharers.offset == 48
    assert fastpath.KCoh.stream_cycles.offset == 56 and fastpath.KCoh.stream_stride.offset == 64
    assert fastpath.FastCore.nblocks.offset == 200 and fastpath.FastCore.coh_last.offset == 208


def test_posted_write_does_not_stall_and_the_reader_waits_for_it():
    _, _keep, (a, b) = _setup(posted=True)
    _access(a, WRITE, [3])
    _access(b, READ, [3])                  # b holds line 3 shared
    a.clock = b.clock = 1000
    assert _access(a, WRITE, [3]) == 0     # the upgrade retires into the store buffer
    assert a.coh_posted == 1 and a.wready == 1000 + INVAL
    # b reads at once: it waits for the invalidation to complete, then fetches the line.
    assert _access(b, READ, [3]) == INVAL + XFER and b.coh_waited == INVAL
    # Read later than that: the transfer only.
    a.clock, b.clock = 2000, 2000
    _access(a, WRITE, [3])
    b.clock = 2000 + 500
    assert _access(b, READ, [3]) == XFER


def test_posted_writes_become_visible_in_program_order():
    _, _keep, (a, b) = _setup(posted=True)
    _access(a, WRITE, [0, 40])
    _access(b, READ, [0, 40])
    a.clock = b.clock = 100
    # Two isolated lines (record, then flag): both posted; the flag is visible no
    # earlier than the record, and both after one invalidation, not two in sequence.
    assert _access(a, WRITE, [0, 40]) == 0 and a.coh_posted == 2
    assert a.wready == 100 + INVAL
    assert _access(b, READ, [40]) == INVAL + XFER
    # A run of lines still stalls the writer at the stream rate (the store buffer fills).
    _, _keep2, (a, b) = _setup(posted=True)
    _access(a, WRITE, range(8))
    _access(b, READ, range(8))
    assert _access(a, WRITE, range(8)) == 7 * STREAM
    assert a.wready >= a.clock


def test_posted_writes_are_deterministic_and_off_by_default():
    coh, _keep = fastpath.make_coherence(BASE, SIZE, XFER, INVAL, FILL)
    assert coh.posted == 0
    runs = []
    for _ in range(2):
        _, _k, (a, b) = _setup(posted=True)
        for r in range(5):
            _access(a, WRITE, [r, r + 1, 30])
            b.clock = a.clock + 7 * r
            _access(b, READ, [30, r, r + 1])
        runs.append((a.clock, b.clock, a.wready, b.coh_waited))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", list_profiles())
def test_every_profile_prices_a_stream_line(name):
    p = load_profile(name)
    assert "coherence.stream_line" in p.params and p.param("coherence.stream_line").source
    xfer, inval, _ = p.coherence()
    assert 0 < p.coherence_stream() < min(xfer, inval)


def test_a_guest_ring_copy_streams_its_payload_lines(tmp_path):
    from keusim.system import run

    serial = tmp_path / "serial.toml"
    serial.write_text('[profile]\nname = "serial"\ninherits = "host"\n\n[coherence]\n'
                      'stream_line = { cycles = 1000, source = "test: never cheaper than '
                      'a full hand-off, i.e. the serial model" }\n')
    p = {"messages": 20, "size": 1024}
    fast = run("pingpong", arch="x86_64", params=p, profile="host")
    slow = run("pingpong", arch="x86_64", params=p, profile=str(serial))
    assert fast.ok and slow.ok
    xfer, inval, _ = load_profile("host").coherence()
    saved = slow.cores[0].coherence_cycles - fast.cores[0].coherence_cycles
    # Each round trip streams most of 2 x 16 payload lines per core.
    assert saved > 20 * 16 * (min(xfer, inval) - load_profile("host").coherence_stream())
    assert fast.cores[0].coherence_transfers == slow.cores[0].coherence_transfers
    assert fast.channel(0).producer_stats["rt_cycles"] < slow.channel(0).producer_stats[
        "rt_cycles"]


def test_block_costs_accumulate_in_fractions_of_a_cycle():
    """fast_block charges costs in 1/256 cycles: a 5.5-cycle block run ten times advances
    the clock 55 cycles (not 60), whole cycles reach the clock, the rest waits in frac."""
    from keusim.model.costmodel import FRACTION
    so = fastpath.lib()
    k = fastpath.FastCore()
    assert so.fastcore_init(C.byref(k), 4) == 0
    try:
        fp = int(5.5 * FRACTION)
        miss = fastpath.MISS_FN(lambda core, va, size, root: (fp << 32) | 3)
        k.miss = miss
        k.slice_end = 1 << 62
        k.kbase = 1 << 63
        k.root = 7
        blk = so.fast_block
        blk.argtypes = [C.c_void_p, C.c_uint64, C.c_uint32, C.POINTER(fastpath.FastCore)]
        blk.restype = None
        for n in range(1, 11):
            blk(None, 0x1000, 12, C.byref(k))
            assert k.clock == (n * fp) // FRACTION and k.frac == (n * fp) % FRACTION
        assert k.clock == 55 and k.insns == 30 and k.nblocks == 10
    finally:
        so.fastcore_free(C.byref(k))


def test_a_poll_sees_a_store_at_its_first_read_after_it_is_visible():
    """A core re-reading a line every 100 cycles reads at 300 while a store made at 250
    becomes visible at 250 + INVAL: natively that read returns the old value and the next
    one, at 400, the new value. So the wait is rounded up to a whole poll period."""
    coh, _keep, (a, b) = _setup(posted=True, poll_max=1000)
    _access(a, WRITE, [3])
    for t in (0, 100, 200):
        b.clock = t
        _access(b, READ, [3])                 # the old value: hits after the first
    a.clock = 250
    assert _access(a, WRITE, [3]) == 0 and a.wready == 250 + INVAL
    b.clock = 300
    assert _access(b, READ, [3]) == 100 + XFER      # sees it at 400, then fetches it
    assert b.coh_waited == 100
    # Without polling (the last read of the line is older than poll_max) the wait is
    # exact, as it is with the rule off.
    for poll_max, last in ((1000, -2000), (0, 200)):
        coh, _keep, (a, b) = _setup(posted=True, poll_max=poll_max)
        _access(a, WRITE, [3])
        b.clock = 2000 + last
        _access(b, READ, [3])
        a.clock = 2250
        _access(a, WRITE, [3])
        b.clock = 2300
        assert _access(b, READ, [3]) == 250 + INVAL - 300 + XFER


def test_the_poll_period_is_per_line_and_defaults_on_with_posted_writes():
    on, _k1 = fastpath.make_coherence(BASE, SIZE, XFER, INVAL, FILL, posted=True)
    off, _k2 = fastpath.make_coherence(BASE, SIZE, XFER, INVAL, FILL)
    assert on.poll_max == fastpath.POLL_PERIOD_MAX and off.poll_max == 0
    # A loop that reads its own index line and then the polled line: the period of the
    # polled line is the time between two reads of it, whatever was read in between.
    coh, _keep, (a, b) = _setup(posted=True, poll_max=1000)
    _access(a, WRITE, [3])
    _access(b, WRITE, [9])
    for t in (0, 120, 240):
        b.clock = t
        _access(b, READ, [9])
        _access(b, READ, [3])
    a.clock = 300
    _access(a, WRITE, [3])                      # visible at 360
    b.clock = 350
    _access(b, READ, [9])
    assert _access(b, READ, [3]) == 110 + XFER  # period 350 - 240 = 110: seen at 460


def test_accesses_to_a_streamed_line_in_flight_cost_stream_access():
    """Per line of a run: stream_line once, plus stream_access for each access to it
    while it is the core's line in flight (the first line of a run, charged the full
    hand-off, is not in flight). Narrower copies touch a line more often: slower."""
    costs = {}
    for per_line in (2, 16):
        _, _keep, (a, b) = _setup(posted=False, stream_access=1.5)
        _access(a, WRITE, range(8), per_line)
        costs[per_line] = _access(b, READ, range(8), per_line)
    assert costs[2] == XFER + 7 * (STREAM + 2 * 1.5)
    assert costs[16] == XFER + 7 * (STREAM + 16 * 1.5)
    # Without stream: the serial model has no runs, so no per-access cost either.
    _, _keep, (a, b) = _setup(stream=None, stream_access=1.5)
    _access(a, WRITE, range(4), 4)
    assert _access(b, READ, range(4), 4) == 4 * XFER


def test_a_streaming_readers_transfer_hides_under_its_work_and_a_poll_exit_does_not():
    """A reader whose previous read of a line also fetched a new value (it found data,
    so its branch predicts data) issued this load early: the work since that read hides
    the transfer. After a poll loop ends (its read fetched a line it had been re-reading
    unchanged), the branch mispredicted: later misses are charged in full."""
    coh, _keep, (a, b) = _setup(posted=True, poll_max=1000, overlap=True)
    a.clock = 0
    _access(a, WRITE, [3])
    b.clock = 500
    assert _access(b, READ, [3]) == XFER        # first read: nothing to overlap with
    a.clock = 600
    _access(a, WRITE, [3])
    b.clock = 1000                              # ~430 cycles of work since its last read
    assert _access(b, READ, [3]) == 0           # streaming: hidden
    a.clock = 1010
    _access(a, WRITE, [3])
    b.clock = 1100                              # 100 cycles since: XFER 70 hidden
    assert _access(b, READ, [3]) == 0
    a.clock = 1105
    _access(a, WRITE, [3])                      # visible at 1165
    b.clock = 1165                              # 65 since: 5 of it left
    assert _access(b, READ, [3]) == XFER - 65
    # A poll exit on line 20 (read unchanged, then fetched) is a mispredicted branch: the
    # next fetch of line 3 is not overlapped with anything before it.
    _access(a, WRITE, [20])
    for t in (1300, 1400):
        b.clock = t
        _access(b, READ, [20])
    a.clock = 1450
    _access(a, WRITE, [20, 3])
    b.clock = 1600
    assert _access(b, READ, [20]) == XFER        # the poll exit (visible long ago)
    b.clock = 1800
    assert _access(b, READ, [3]) == XFER
    on, _k = fastpath.make_coherence(BASE, SIZE, XFER, INVAL, FILL, posted=True)
    assert on.mlp == 1


def test_a_run_is_a_pipe_the_work_between_lines_overlaps_with():
    """Each streamed line adds stream_line (and stream_access per access) to the run's
    pipe; the core stalls only when it is ahead of the pipe, so work between the lines
    hides part of the run, and all of it once the work per line exceeds the pipe's."""
    stalls = {}
    for work in (0, 10, 40):
        _, _keep, (a, b) = _setup(posted=False, stream_access=1.0)
        _access(a, WRITE, range(9), 4)
        b.clock = 1000
        total = _access(b, READ, [0], 4)        # starts the run: a full transfer
        assert total == XFER
        for ln in range(1, 9):
            b.clock += work
            total += _access(b, READ, [ln], 4)
        stalls[work] = total - XFER
    per_line = STREAM + 4 * 1.0                 # 19 cycles per line event
    assert stalls[0] == 8 * per_line
    assert stalls[10] == 8 * (per_line - 10)
    assert stalls[40] == 0
