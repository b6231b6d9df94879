"""The boot loader: puts the kernel, the process images and the boot-info block
in physical memory, builds the boot page tables and starts every core.

It plays the part of firmware plus a boot loader (like Limine or the seL4
Microkit loader). It makes no kernel decision: the kernel itself builds every
process address space, lays out the rings and generates the keys.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from keusim.errors import ImageError
from keusim.machine.devices import DEV_PA, NIC_DEVICE_PAGES
from keusim.machine.pagetable import DEV, PAGE, R, TableBuilder, W, X

BOOTINFO_PA = 0x1000
BOOTINFO_MAGIC = 0x4B4555534F4F5442
BOOTINFO_VERSION = 2
KERNEL_PA = 0x100000
MAXPROC, MAXCHAN, MAXNAME, MAXCPU = 32, 32, 32, 8
BOOT_STACK = 16 * 1024
BOOT_FLAG_BROKEN_LAYOUT = 1
BOOT_FLAG_KERNEL_FAULT = 2   # kernel/include/bootinfo.h: test-only kernel-mode #PF at boot
CHAN_MIN, CHAN_MAX = 4096, 1 << 20


def _up(x: int, a: int = PAGE) -> int:
    return (x + a - 1) & ~(a - 1)


@dataclass(frozen=True)
class Segment:
    vaddr: int
    data: bytes
    memsz: int
    flags: int


class ElfImage:
    """An ELF file checked for one architecture, with its symbols."""

    def __init__(self, path: Path, elf_machine: str, what: str = "image"):
        self.path = Path(path)
        try:
            self.raw = self.path.read_bytes()
        except OSError as e:
            raise ImageError(f"{path}: cannot read {what} ({e.strerror}); check the path") from e
        self._check_headers(what)
        try:
            import io
            elf = ELFFile(io.BytesIO(self.raw))
            machine = elf["e_machine"]
            self.entry = elf["e_entry"]
            self.segments = [
                Segment(s["p_vaddr"], s.data()[: s["p_filesz"]], s["p_memsz"], s["p_flags"])
                for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_memsz"]]
            syms = elf.get_section_by_name(".symtab")
            # arm64 mapping symbols ($x code, $d data; AAELF64 5.4) mark ranges, not names.
            self.symbols = sorted(
                (s["st_value"], s.name) for s in (syms.iter_symbols() if syms else [])
                if s.name and not s.name.startswith("$")
                and s["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE", "STT_OBJECT"))
        except (ELFError, KeyError, ValueError, struct.error) as e:
            raise ImageError(f"{path}: not a valid ELF file ({e}); build it with "
                             f"`zig cc` or give a C source instead") from e
        if elf["e_ident"]["EI_CLASS"] != "ELFCLASS64":
            raise ImageError(f"{path}: a 32-bit ELF; keusim runs 64-bit images only")
        if machine != elf_machine:
            raise ImageError(f"{path}: ELF for {machine}, but the run is for {elf_machine}; "
                             f"rebuild it for that architecture or change --arch")
        self._addrs = [a for a, _ in self.symbols]

    def _check_headers(self, what: str) -> None:
        """Check the ELF64 header and program headers byte by byte, before any parser.

        The kernel's loader (kernel/elf.c) trusts nothing and panics at boot on an image
        it refuses; every rule it applies is checked here first so the user gets one
        line naming the file instead (ELF-64 Object File Format, sections 3 and 5).
        """
        raw, path = self.raw, self.path
        if len(raw) < 64 or raw[:4] != b"\x7fELF":
            raise ImageError(f"{path}: not a valid ELF file (no ELF header); build the {what} "
                             f"with `zig cc` or give a C source instead")
        if raw[4] != 2:
            raise ImageError(f"{path}: a 32-bit ELF; keusim runs 64-bit images only")
        if raw[5] != 1:
            raise ImageError(f"{path}: a big-endian ELF; keusim runs little-endian images only")
        phoff, = struct.unpack_from("<Q", raw, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", raw, 0x36)
        if phnum and phentsize != 56:
            raise ImageError(f"{path}: program header entries are {phentsize} bytes, not 56 "
                             f"(ELF64); the file is corrupt, rebuild it")
        if phoff > len(raw) or phnum * 56 > len(raw) - phoff:
            raise ImageError(f"{path}: the program header table ({phnum} entries at offset "
                             f"{phoff:#x}) runs past the end of the file ({len(raw)} bytes); "
                             f"the file is truncated or corrupt, rebuild it")
        for i in range(phnum):
            typ, _fl, off, vaddr, _pa, filesz, memsz, _al = struct.unpack_from(
                "<IIQQQQQQ", raw, phoff + 56 * i)
            if typ != 1 or memsz == 0:   # PT_LOAD with memory
                continue
            if filesz > memsz:
                raise ImageError(f"{path}: segment {i} has more file bytes ({filesz}) than "
                                 f"memory bytes ({memsz}); the file is corrupt, rebuild it")
            if off > len(raw) or filesz > len(raw) - off:
                raise ImageError(f"{path}: segment {i} (file offset {off:#x}, {filesz} bytes) "
                                 f"runs past the end of the file ({len(raw)} bytes); the file "
                                 f"is truncated or corrupt, rebuild it")
            if vaddr + memsz > 1 << 64:
                raise ImageError(f"{path}: segment {i} at {vaddr:#x} ({memsz} bytes) wraps "
                                 f"around the address space; the file is corrupt")

    def symbol(self, name: str) -> int:
        for a, n in self.symbols:
            if n == name:
                return a
        raise ImageError(f"{self.path}: symbol {name!r} not found")

    def lookup(self, addr: int) -> tuple[str, int]:
        """(symbol, offset) of the symbol at or below addr; ("?", addr) below every one."""
        i = bisect_right(self._addrs, addr) - 1
        if i < 0:
            return "?", addr
        a, n = self.symbols[i]
        return n, addr - a

    def function(self, addr: int) -> str:
        """The name of the symbol that contains addr (no offset), or '?'."""
        return self.lookup(addr)[0]

    def symbolize(self, addr: int) -> str:
        """``function+0xoff`` (``function`` at its start), or the hex address."""
        n, off = self.lookup(addr)
        if n == "?":
            return f"{addr:#x}"
        return f"{n}+{off:#x}" if off else n

    def contains(self, addr: int) -> bool:
        """addr lies in one of the image's loadable segments."""
        return any(s.vaddr <= addr < s.vaddr + s.memsz for s in self.segments)

    def where(self, addr: int) -> str:
        """symbol+offset of addr if the image holds it, else a note that it does not
        (a pc on the stack or in a ring page has no symbol)."""
        return self.symbolize(addr) if self.contains(addr) else "(outside the image)"

    def check_user(self, user_base: int, user_limit: int) -> None:
        """Refuse images the kernel could not map safely, with a clear reason."""
        if not self.segments:
            raise ImageError(f"{self.path}: no loadable segments")
        pages: dict[int, int] = {}
        spans = sorted((s.vaddr, s.vaddr + s.memsz) for s in self.segments)
        for (a0, a1), (b0, b1) in zip(spans, spans[1:], strict=False):
            if b0 < a1:
                raise ImageError(f"{self.path}: segments [{a0:#x}, {a1:#x}) and [{b0:#x}, "
                                 f"{b1:#x}) overlap; link with keusim's guests/lib/user.ld")
        for s in self.segments:
            if s.flags & 1 and s.flags & 2:
                raise ImageError(f"{self.path}: a segment is both writable and executable "
                                 f"(W^X); link with keusim's guests/lib/user.ld")
            if s.vaddr < user_base or s.vaddr + s.memsz > user_limit:
                raise ImageError(f"{self.path}: segment at {s.vaddr:#x} is outside the user "
                                 f"image range [{user_base:#x}, {user_limit:#x})")
            for p in range(s.vaddr & ~(PAGE - 1), _up(s.vaddr + s.memsz), PAGE):
                if p in pages:
                    raise ImageError(f"{self.path}: two segments share the page {p:#x}; "
                                     f"page-align segments (guests/lib/user.ld does)")
                pages[p] = s.flags
        if not any(s.flags & 1 and s.vaddr <= self.entry < s.vaddr + s.memsz
                   for s in self.segments):
            raise ImageError(f"{self.path}: the entry point {self.entry:#x} is not inside an "
                             f"executable segment; check the linker script's ENTRY")


@dataclass(frozen=True)
class BootProc:
    name: str
    image: ElfImage
    core: int
    nic: int = 0        # NIC_CAP_* (kernel/include/bootinfo.h)


@dataclass(frozen=True)
class BootChan:
    producer: int
    consumer: int
    capacity: int
    mode: int
    verified: bool


def pool_bytes(chans: list[BootChan]) -> int:
    """Bytes of IPC pool the channels need (invalid ones need none)."""
    total = 0
    for c in chans:
        if CHAN_MIN <= c.capacity <= CHAN_MAX and c.capacity & (c.capacity - 1) == 0:
            total += c.capacity + 2 * PAGE
    return total + PAGE


def pool_region(ram_size: int, chans: list[BootChan]) -> tuple[int, int]:
    """(base, size) of the IPC pool: the top of RAM, sized for the channels."""
    size = _up(pool_bytes(chans))
    return ram_size - size, size


def boot(machine, kernel: ElfImage, procs: list[BootProc], chans: list[BootChan],
         seed: bytes, flags: int = 0, timeslice: int = 0, nic: bool = False) -> None:
    """Load everything into machine.ram and set every core at the kernel entry.

    ``nic``: the machine has the NIC and IOMMU (keusim/machine/nic.py); the kernel then
    programs them and hands out queues to the processes whose ``BootProc.nic`` says so."""
    arch, ram = machine.arch, machine.ram
    kb = arch.kernbase
    # Kernel image at its physical load address (vaddr - KERNBASE).
    kend = 0
    for s in kernel.segments:
        pa = s.vaddr - kb
        ram.write(pa, s.data)
        kend = max(kend, pa + s.memsz)
    # Boot modules: the raw ELF files of the processes.
    cur = _up(kend)
    mods = []
    for p in procs:
        ram.write(cur, p.image.raw)
        mods.append((cur, len(p.image.raw)))
        cur = _up(cur + len(p.image.raw))
    # Boot stacks, then page tables.
    stacks = []
    for _ in machine.cores:
        cur += BOOT_STACK
        stacks.append(cur)
    nxt = [cur]

    def alloc() -> int:
        pa = nxt[0]
        nxt[0] += PAGE
        ram.write(pa, bytes(PAGE))
        return pa

    pool_pa, pool = pool_region(ram.size, chans)
    tb = TableBuilder(ram, arch.pte, alloc)
    # Kernel half: a direct map of RAM (RW, NX, supervisor) with the kernel image's
    # own segment permissions, plus the device page.
    text = {}
    for s in kernel.segments:
        perm = R | (W if s.flags & 2 else 0) | (X if s.flags & 1 else 0)
        for p in range((s.vaddr - kb) & ~(PAGE - 1), _up(s.vaddr - kb + s.memsz), PAGE):
            text[p] = perm
    tb.map_pages(kb, 0, ram.size // PAGE, lambda pa: text.get(pa, R | W))
    tb.map_page(kb + DEV_PA, DEV_PA, R | W | DEV)
    for pa in NIC_DEVICE_PAGES:   # the IOMMU and NIC pages (used only when bootinfo.nic)
        tb.map_page(kb + pa, pa, R | W | DEV)
    free_pa = _up(nxt[0])
    if free_pa >= pool_pa:
        raise ImageError("the images do not fit in RAM; raise ram_mb in the manifest")
    arch.finish_boot_tables(machine, tb, alloc)
    free_pa = _up(nxt[0])
    # Boot-info block (kernel/include/bootinfo.h).
    hdr = struct.pack("<QQQQQQQQ16sQQII", BOOTINFO_MAGIC, BOOTINFO_VERSION, ram.size,
                      len(machine.cores), free_pa, pool_pa, pool, tb.root, seed, flags,
                      timeslice, len(procs), len(chans))
    body = b""
    for i in range(MAXPROC):
        if i < len(procs):
            p = procs[i]
            body += struct.pack("<32sQQII", p.name.encode()[:MAXNAME - 1], mods[i][0],
                                mods[i][1], p.core, p.nic)
        else:
            body += bytes(56)
    for i in range(MAXCHAN):
        if i < len(chans):
            c = chans[i]
            body += struct.pack("<IIIIII", c.producer, c.consumer, c.capacity, c.mode,
                                int(c.verified), 0)
        else:
            body += bytes(24)
    body += struct.pack("<Q", 1 if nic else 0)
    ram.write(BOOTINFO_PA, hdr + body)
    machine.symbolize = kernel.symbolize
    machine.proc_names = [p.name for p in procs]
    machine.proc_images = [p.image for p in procs]
    machine.pool = (pool_pa, pool)
    for core in machine.cores:
        arch.boot_core(core, kernel.entry, kb + stacks[core.id], kb + BOOTINFO_PA, tb.root)
    try:
        machine.watch_root_switch(kernel.symbol(arch.root_symbol))
    except ImageError:
        pass
