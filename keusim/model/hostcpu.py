"""The host's CPU: vendor, family, model, and the published profile that matches its cores.

The one place keusim reads ``/proc/cpuinfo`` (calibration, validation and the experiments'
provenance all call :func:`detect`). Under a hypervisor ``/proc/cpuinfo`` shows the CPUID
the guest is given, which is what a native probe would read too; a hypervisor may pass a
model number that is not the physical one (a Sapphire Rapids-class guest seen reporting
family 6 model 167, a client part's number), so the feature flags that only one core
family has (AMX on Intel's server cores) decide before the model number does.

    cpu = detect()                 # this host
    match = core_family(cpu)       # ProfileMatch("zen3", exact=True, ...) on Zen 3
    print(cpu.describe(), match.profile, match.warning)

:func:`parse_cpuinfo` takes recorded ``/proc/cpuinfo`` text, so tests feed both families'
records (tests/data/hosts/) without running on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class HostCPU:
    """What CPUID (through ``/proc/cpuinfo``) says about the host's cores."""

    vendor: str
    """``AuthenticAMD``, ``GenuineIntel``; ``ARM`` for an Arm implementer; else as given."""
    family: int
    """x86 family (e.g. 25 for AMD Zen 3/Zen 4, 6 for Intel cores); Arm: the architecture."""
    model: int
    """x86 model; Arm: the CPU part number (``0xd0c`` Neoverse N1)."""
    model_name: str
    hypervisor: bool
    """The kernel runs under a hypervisor (the ``hypervisor`` CPUID flag)."""
    flags: frozenset[str] = field(default_factory=frozenset, repr=False)

    def describe(self) -> str:
        """One line: ``AMD EPYC (AuthenticAMD family 25 model 17), virtual machine``."""
        num = f"model {self.model:#x}" if self.vendor == "ARM" else f"model {self.model}"
        out = f"{self.model_name} ({self.vendor} family {self.family} {num})"
        return out + (", virtual machine" if self.hypervisor else "")

    def fingerprint(self) -> dict[str, str]:
        """The fields a calibrated profile records in [profile.machine] to name its CPU."""
        return {"vendor": self.vendor, "family": str(self.family), "model": str(self.model),
                "model_name": self.model_name}

    def same_cpu(self, machine: Mapping[str, str]) -> bool:
        """Whether ``machine`` (a profile's [profile.machine]) was recorded on a CPU like
        this one: same vendor, family and model. False when it recorded none of them."""
        try:
            return (machine.get("vendor") == self.vendor
                    and int(machine.get("family", "-1")) == self.family
                    and int(machine.get("model", "-1")) == self.model)
        except ValueError:
            return False


UNKNOWN = HostCPU("unknown", -1, -1, "unknown", False)


def parse_cpuinfo(text: str) -> HostCPU:
    """A :class:`HostCPU` from ``/proc/cpuinfo`` text (the first processor's block).

    Fields it lacks become ``unknown`` / -1, never an error: a machine keusim does not
    know is still described as well as it can be.
    """
    kv: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if kv:
                break      # the first processor's block is enough: all cores are alike
            continue
        k, sep, v = line.partition(":")
        if sep:
            kv.setdefault(k.strip().lower(), v.strip())

    def num(key: str) -> int:
        try:
            return int(kv.get(key, "-1"), 0)
        except ValueError:
            return -1

    flags = frozenset((kv.get("flags") or kv.get("features") or "").split())
    if "cpu implementer" in kv:                         # Arm: MIDR fields
        vendor = "ARM" if num("cpu implementer") == 0x41 else kv["cpu implementer"]
        return HostCPU(vendor, num("cpu architecture"), num("cpu part"),
                       kv.get("model name", f"Arm part {kv.get('cpu part', '?')}"),
                       "hypervisor" in flags, flags)
    return HostCPU(kv.get("vendor_id", "unknown"), num("cpu family"), num("model"),
                   kv.get("model name", "unknown"), "hypervisor" in flags, flags)


def detect(path: Path = CPUINFO) -> HostCPU:
    """This host's CPU (:data:`UNKNOWN` when ``/proc/cpuinfo`` cannot be read)."""
    try:
        return parse_cpuinfo(path.read_text())
    except OSError:
        return UNKNOWN


@dataclass(frozen=True)
class ProfileMatch:
    """The packaged profile whose class tables describe a CPU's cores."""

    profile: str
    exact: bool
    """The CPU is one the profile describes (False: the nearest, see ``warning``)."""
    core: str
    """The core as recognised: ``Zen 3``, ``Zen 4``, ``Golden Cove (server)``, ..."""
    warning: str = ""


# AMD family 25 (19h) model ranges (AMD's revision guides for family 19h, document
# numbers 56683 (models 00h-0Fh, Milan), 57095 (10h-1Fh, Genoa), 56949 (20h-2Fh, Vermeer);
# Linux arch/x86 uses the same ranges): Zen 3 is 00h-0Fh, 20h-5Fh; Zen 4 10h-1Fh, 60h-7Fh,
# A0h-AFh. Family 26 (1Ah) is Zen 5, family 23 (17h) Zen and Zen 2.
_ZEN3_MODELS = (range(0x00, 0x10), range(0x20, 0x60))
_ZEN4_MODELS = (range(0x10, 0x20), range(0x60, 0x80), range(0xA0, 0xB0))

# Intel family 6 models (Intel SDM vol. 4, table 2-1 "CPUID signature values"):
# Sapphire Rapids 8Fh (143), Emerald Rapids CFh (207) -- Golden Cove / Raptor Cove server
# cores; Alder Lake 97h/9Ah (151/154) and Raptor Lake B7h/BAh/BFh (183/186/191) -- Golden
# Cove / Raptor Cove client P-cores.
_INTEL_SERVER_GC = {0x8F, 0xCF}
_INTEL_CLIENT_GC = {0x97, 0x9A, 0xB7, 0xBA, 0xBF}
# AMX tiles and AVX-512 FP16 exist only on Sapphire Rapids and later Xeon cores (Intel
# SDM vol. 1, 18.1 and Intel AVX-512 FP16 architecture specification): a guest whose
# hypervisor hides the real model number is still recognised by them.
_SERVER_GC_FLAGS = {"amx_tile", "avx512_fp16"}

# Arm MIDR part numbers (Arm Technical Reference Manuals, MIDR_EL1): Cortex-A76 D0Bh,
# Neoverse N1 D0Ch.
_ARM_PARTS = {0xD0B: ("cortex-a76", "Cortex-A76"), 0xD0C: ("neoverse-n1", "Neoverse N1")}


def core_family(cpu: HostCPU) -> ProfileMatch:
    """The packaged profile to start a calibration from (or to price this host with).

    A CPU keusim has no profile for gets the nearest one (same vendor, the closest core
    generation) and a warning that says so; so does a CPU it cannot identify at all.
    """
    def nearest(profile: str, core: str, why: str) -> ProfileMatch:
        return ProfileMatch(profile, False, core,
                            f"no profile describes {cpu.describe()} ({core}); starting from "
                            f"the nearest, {profile!r} ({why}). The calibration replaces the "
                            "clock, memory, hand-off and system-call numbers; instruction "
                            f"classes stay {profile}'s")

    if cpu.vendor == "AuthenticAMD":
        if cpu.family == 25 and any(cpu.model in r for r in _ZEN3_MODELS):
            return ProfileMatch("zen3", True, "Zen 3")
        if cpu.family == 25 and any(cpu.model in r for r in _ZEN4_MODELS):
            return nearest("zen3", "Zen 4", "Zen 4 keeps Zen 3's integer pipes, load/store "
                           "unit and latencies but for a larger L2")
        gen = {23: "Zen or Zen 2", 26: "Zen 5"}.get(cpu.family, f"AMD family {cpu.family}")
        return nearest("zen3", gen, "the AMD core keusim has a profile for")
    if cpu.vendor == "GenuineIntel":
        if cpu.family == 6 and (cpu.model in _INTEL_SERVER_GC
                                or _SERVER_GC_FLAGS <= cpu.flags):
            return ProfileMatch("goldencove-server", True, "Golden Cove (server)")
        if cpu.family == 6 and cpu.model in _INTEL_CLIENT_GC:
            return ProfileMatch("raptorlake", True, "Golden Cove / Raptor Cove (client)")
        if "avx512f" in cpu.flags:
            return nearest("goldencove-server", f"Intel family {cpu.family} model "
                           f"{cpu.model}", "an AVX-512 Intel server core")
        return nearest("raptorlake", f"Intel family {cpu.family} model {cpu.model}",
                       "the Intel client core keusim has a profile for")
    if cpu.vendor == "ARM" and cpu.model in _ARM_PARTS:
        name, core = _ARM_PARTS[cpu.model]
        return ProfileMatch(name, True, core)
    if cpu.vendor == "ARM":
        return nearest("neoverse-n1", f"Arm part {cpu.model:#x}", "an Arm server core")
    return nearest("zen3", "unidentified", "the default x86-64 profile")


__all__ = ["CPUINFO", "HostCPU", "ProfileMatch", "UNKNOWN", "core_family", "detect",
           "parse_cpuinfo"]
