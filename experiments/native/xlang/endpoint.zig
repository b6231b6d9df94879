//! The Zig endpoint of the cross-language ring experiment (xlang.h has the protocol):
//!   endpoint_zig SHM ROLE ITERS WARMUP SIZE
//! The ring algorithm is ported to Zig here (guests/lib/ring.c, docs/ring.md): the
//! same layout, records, WRAP marker and acquire/release order, so a Zig process and a
//! C, C++ or Python one interoperate on the ABI alone. libc is used only for mmap, the
//! clock and printing, through plain extern declarations (no translate-c).

const PAGE: usize = 4096;
const CAPACITY: u32 = 16384;
const RING_PAGES: usize = 2 + CAPACITY / PAGE;
const FILE_SIZE: usize = PAGE * (1 + 2 * RING_PAGES);
const HDR: u32 = 4; // RING_HDR_SIZE
const ALIGN: u32 = 8; // RING_ALIGN
const WRAP: u32 = 0xFFFF_FFFF; // RING_WRAP

extern "c" fn open(path: [*:0]const u8, flags: c_int, ...) c_int;
extern "c" fn mmap(addr: ?*anyopaque, len: usize, prot: c_int, flags: c_int, fd: c_int, off: i64) ?*anyopaque;
extern "c" fn clock_gettime(clk: c_int, ts: *Timespec) c_int;
extern "c" fn printf(fmt: [*:0]const u8, ...) c_int;
extern "c" fn fprintf(f: *anyopaque, fmt: [*:0]const u8, ...) c_int;
extern "c" fn strtol(s: [*:0]const u8, end: ?*?[*:0]u8, base: c_int) c_long;
extern "c" fn calloc(n: usize, size: usize) ?*anyopaque;
extern "c" fn exit(code: c_int) noreturn;
extern "c" fn fflush(f: ?*anyopaque) c_int;

const Timespec = extern struct { sec: c_long, nsec: c_long };
const O_RDWR: c_int = 2;
const PROT_RW: c_int = 3; // PROT_READ | PROT_WRITE
const MAP_SHARED: c_int = 1;
const CLOCK_MONOTONIC: c_int = 1;

fn fail(what: [*:0]const u8) noreturn {
    _ = printf("{\"lang\": \"zig\", \"error\": \"%s\"}\n", what);
    exit(2);
}

fn nowNs() u64 {
    var ts: Timespec = undefined;
    _ = clock_gettime(CLOCK_MONOTONIC, &ts);
    return @as(u64, @intCast(ts.sec)) * 1_000_000_000 + @as(u64, @intCast(ts.nsec));
}

fn word(x: u64) u64 {
    var z = x +% 0x9E3779B97F4A7C15;
    z = (z ^ (z >> 30)) *% 0xBF58476D1CE4E5B9;
    z = (z ^ (z >> 27)) *% 0x94D049BB133111EB;
    return z ^ (z >> 31);
}

fn recSize(len: u64) u64 {
    return (HDR + len + ALIGN - 1) & ~@as(u64, ALIGN - 1);
}

/// One side of a ring; the producer owns head, the consumer tail (docs/ring.md).
const Ring = struct {
    head: *u32,
    tail: *u32,
    data: [*]u8,

    fn at(base: [*]u8, r: usize) Ring {
        const p = base + PAGE * (1 + r * RING_PAGES);
        return .{ .head = @ptrCast(@alignCast(p)), .tail = @ptrCast(@alignCast(p + PAGE)), .data = p + 2 * PAGE };
    }

    fn hdr(self: Ring, off: u32) *u32 {
        return @ptrCast(@alignCast(self.data + off));
    }

    /// ring_send: 0, or -1 (full: try again), or -4 (corrupt index).
    fn send(self: Ring, buf: []const u8) i32 {
        const len: u32 = @intCast(buf.len);
        const h = @atomicLoad(u32, self.head, .monotonic); // our own index
        const t = @atomicLoad(u32, self.tail, .acquire);
        const used = h -% t;
        if (used > CAPACITY or h & (ALIGN - 1) != 0) return -4;
        const rec: u32 = @intCast(recSize(len));
        const off = h & (CAPACITY - 1);
        const contig = CAPACITY - off;
        const need = if (rec > contig) contig + rec else rec;
        if (need > CAPACITY - used) {
            if (rec > contig and contig <= CAPACITY - used) {
                @atomicStore(u32, self.hdr(off), WRAP, .monotonic);
                @atomicStore(u32, self.head, h +% contig, .release);
            }
            return -1;
        }
        var start = h;
        if (rec > contig) {
            @atomicStore(u32, self.hdr(off), WRAP, .monotonic);
            start +%= contig;
        }
        const o = start & (CAPACITY - 1);
        @memcpy(self.data[o + HDR .. o + HDR + len], buf);
        @atomicStore(u32, self.hdr(o), len, .monotonic);
        @atomicStore(u32, self.head, start +% rec, .release); // payload, header before head
        return 0;
    }

    /// ring_recv: 0 with out[0..len.*] filled, -1 (empty), -4/-5 (corrupt), -3 (too long).
    fn recv(self: Ring, out: []u8, len: *u32) i32 {
        var t = @atomicLoad(u32, self.tail, .monotonic); // our own index
        var off: u32 = undefined;
        var n: u32 = undefined;
        var used: u32 = undefined;
        while (true) {
            const h = @atomicLoad(u32, self.head, .acquire);
            used = h -% t;
            if (used == 0) return -1;
            if (used > CAPACITY or (h | t) & (ALIGN - 1) != 0) return -4;
            off = t & (CAPACITY - 1);
            n = @atomicLoad(u32, self.hdr(off), .monotonic); // read once
            if (n != WRAP) break;
            const skip = CAPACITY - off;
            if (skip > used) return -5;
            t +%= skip;
            @atomicStore(u32, self.tail, t, .release);
        }
        const rec = recSize(n);
        if (n > CAPACITY - ALIGN or rec > CAPACITY - off or rec > used) return -5;
        len.* = n;
        if (n > out.len) return -3;
        @memcpy(out[0..n], self.data[off + HDR .. off + HDR + n]);
        @atomicStore(u32, self.tail, t +% @as(u32, @intCast(rec)), .release);
        return 0;
    }
};

fn spinPause() void {
    @import("std").atomic.spinLoopHint(); // PAUSE on x86-64, as cpu_relax() in C
}

fn arg(argv: [*][*:0]u8, i: usize) i64 {
    return strtol(argv[i], null, 10);
}

fn printSamples(name: [*:0]const u8, v: [*]u64, n: usize) void {
    _ = printf("\"%s\": [", name);
    var i: usize = 0;
    while (i < n) : (i += 1) {
        const sep: [*:0]const u8 = if (i == 0) "" else ",";
        _ = printf("%s%llu", sep, @as(c_ulonglong, v[i]));
    }
    _ = printf("]");
}

pub export fn main(argc: c_int, argv: [*][*:0]u8) c_int {
    if (argc != 6) fail("usage: endpoint_zig SHM ROLE ITERS WARMUP SIZE");
    const role: usize = @intCast(arg(argv, 2));
    const iters: usize = @intCast(arg(argv, 3));
    const warmup: usize = @intCast(arg(argv, 4));
    const size: usize = @intCast(arg(argv, 5));
    if (role > 1 or iters < 1 or size < 16 or size % 8 != 0 or size > 4096) fail("bad arguments");
    const fd = open(argv[1], O_RDWR);
    if (fd < 0) fail("cannot open the shared file");
    const m = mmap(null, FILE_SIZE, PROT_RW, MAP_SHARED, fd, 0) orelse fail("mmap");
    if (@intFromPtr(m) == ~@as(usize, 0)) fail("mmap");
    const base: [*]u8 = @ptrCast(m);
    const tx = Ring.at(base, role);
    const rx = Ring.at(base, 1 - role);
    const rt: [*]u64 = @ptrCast(@alignCast(calloc(iters, 8) orelse fail("calloc")));
    const ow: [*]u64 = @ptrCast(@alignCast(calloc(iters, 8) orelse fail("calloc")));
    var msg: [512]u64 = undefined;
    var in: [512]u64 = undefined;
    const words = size / 8;
    const total = warmup + iters;
    var good: usize = 0;
    var bad: usize = 0;

    const mine: *u32 = @ptrCast(@alignCast(base + role * 64));
    const peer: *u32 = @ptrCast(@alignCast(base + (1 - role) * 64));
    @atomicStore(u32, mine, 1, .release);
    while (@atomicLoad(u32, peer, .acquire) == 0) spinPause();

    const msg_bytes = @as([*]u8, @ptrCast(&msg))[0..size];
    const in_bytes = @as([*]u8, @ptrCast(&in))[0 .. 8 * in.len];
    var i: usize = 0;
    while (i < total) : (i += 1) {
        var n: u32 = 0;
        const seq: u64 = i;
        if (role == 0) {
            msg[0] = seq;
            var k: usize = 2;
            while (k < words) : (k += 1) msg[k] = word(seq << 16 | k);
            const t0 = nowNs();
            msg[1] = t0;
            while (true) {
                const r = tx.send(msg_bytes);
                if (r == 0) break;
                if (r != -1) fail("ring error");
                spinPause();
            }
            while (true) {
                const r = rx.recv(in_bytes, &n);
                if (r == 0) break;
                if (r != -1) fail("ring error");
                spinPause();
            }
            const t1 = nowNs();
            if (i >= warmup) {
                rt[i - warmup] = t1 - t0;
                ow[i - warmup] = t1 -% in[1];
            }
        } else {
            while (true) {
                const r = rx.recv(in_bytes, &n);
                if (r == 0) break;
                if (r != -1) fail("ring error");
                spinPause();
            }
            const t1 = nowNs();
            if (i >= warmup) ow[i - warmup] = t1 -% in[1];
            in[1] = nowNs();
            while (true) {
                const r = tx.send(@as([*]u8, @ptrCast(&in))[0..size]);
                if (r == 0) break;
                if (r != -1) fail("ring error");
                spinPause();
            }
        }
        var ok = n == size and in[0] == seq;
        var k: usize = 2;
        while (k < words) : (k += 1) ok = ok and in[k] == word(seq << 16 | k);
        if (ok) good += 1 else bad += 1;
    }
    _ = printf("{\"lang\": \"zig\", \"role\": %d, \"msgs\": %llu, \"verified_bytes\": %llu, \"mismatches\": %llu, ", @as(c_int, @intCast(role)), @as(c_ulonglong, total), @as(c_ulonglong, good * size), @as(c_ulonglong, bad));
    printSamples("rt_ns", rt, if (role == 0) iters else 0);
    _ = printf(", ");
    printSamples("oneway_ns", ow, iters);
    _ = printf("}\n");
    _ = fflush(null);
    return if (bad == 0) 0 else 1;
}
