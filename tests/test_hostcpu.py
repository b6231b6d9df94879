"""Host core-family detection (keusim.model.hostcpu) on recorded /proc/cpuinfo text.

tests/data/hosts/ holds the two machine types keusim sessions run on:
``amd-epyc-zen4-kvm.cpuinfo`` is this host's first processor block, copied verbatim (AMD
family 25 model 17 = 11h, a Zen 4 "Genoa" part, under KVM); ``intel-spr-kvm.cpuinfo`` is
rebuilt from what was recorded on the Intel machine type (GenuineIntel family 6 model 167
with AMX and AVX-512 FP16, TSC 2600 MHz, under KVM; its model-name line was not recorded).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keusim.model import hostcpu
from keusim.model.hostcpu import HostCPU, core_family, parse_cpuinfo
from keusim.model.profiles import list_profiles

DATA = Path(__file__).parent / "data" / "hosts"


def cpuinfo(vendor: str, family: int, model: int, flags: str = "fpu hypervisor",
            name: str = "X") -> str:
    return (f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: "
            f"{model}\nmodel name\t: {name}\nflags\t\t: {flags}\n\nprocessor\t: 1\n"
            "vendor_id\t: SomethingElse\n")


def test_the_recorded_amd_host_is_zen4_and_starts_from_zen3_with_a_warning():
    cpu = parse_cpuinfo((DATA / "amd-epyc-zen4-kvm.cpuinfo").read_text())
    assert (cpu.vendor, cpu.family, cpu.model, cpu.hypervisor) == ("AuthenticAMD", 25, 17, True)
    assert cpu.describe() == "AMD EPYC (AuthenticAMD family 25 model 17), virtual machine"
    m = core_family(cpu)
    assert (m.profile, m.exact, m.core) == ("zen3", False, "Zen 4")
    assert "nearest" in m.warning and "zen3" in m.warning and "Zen 4" in m.warning


def test_the_recorded_intel_host_is_a_golden_cove_server_core_despite_its_model_number():
    cpu = parse_cpuinfo((DATA / "intel-spr-kvm.cpuinfo").read_text())
    assert (cpu.vendor, cpu.family, cpu.model) == ("GenuineIntel", 6, 167)
    # Model 167 (A7h) is a client part's number; AMX and AVX-512 FP16 say server Golden Cove.
    m = core_family(cpu)
    assert (m.profile, m.exact, m.warning) == ("goldencove-server", True, "")
    # Without those flags the same model number is not taken for a server core.
    plain = HostCPU(cpu.vendor, 6, 167, "x", True, frozenset({"avx2"}))
    assert (core_family(plain).profile, core_family(plain).exact) == ("raptorlake", False)


@pytest.mark.parametrize("vendor,family,model,flags,profile,exact", [
    ("AuthenticAMD", 25, 1, "", "zen3", True),             # EPYC 7003 Milan
    ("AuthenticAMD", 25, 0x21, "", "zen3", True),          # Ryzen 5000 Vermeer
    ("AuthenticAMD", 25, 0x61, "", "zen3", False),         # Zen 4 Raphael: nearest
    ("AuthenticAMD", 26, 2, "", "zen3", False),            # Zen 5: nearest
    ("GenuineIntel", 6, 143, "", "goldencove-server", True),   # Sapphire Rapids
    ("GenuineIntel", 6, 207, "", "goldencove-server", True),   # Emerald Rapids
    ("GenuineIntel", 6, 183, "", "raptorlake", True),          # Raptor Lake (the paper's)
    ("GenuineIntel", 6, 106, "avx512f", "goldencove-server", False),  # Ice Lake-SP: nearest
    ("GenuineIntel", 6, 165, "avx2", "raptorlake", False),     # Comet Lake: nearest
    ("HygonGenuine", 24, 1, "", "zen3", False),                # unidentified x86
])
def test_families_map_to_profiles(vendor, family, model, flags, profile, exact):
    m = core_family(parse_cpuinfo(cpuinfo(vendor, family, model, flags)))
    assert (m.profile, m.exact) == (profile, exact)
    assert bool(m.warning) == (not exact)
    assert m.profile in list_profiles()


def test_arm_parts_are_recognised_from_midr_fields():
    text = ("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm\n"
            "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\n"
            "CPU part\t: 0xd0c\nCPU revision\t: 1\n")
    cpu = parse_cpuinfo(text)
    assert (cpu.vendor, cpu.model) == ("ARM", 0xD0C)
    assert core_family(cpu).profile == "neoverse-n1" and core_family(cpu).exact


def test_only_the_first_processor_block_counts_and_missing_fields_are_unknown():
    cpu = parse_cpuinfo(cpuinfo("AuthenticAMD", 25, 1))
    assert cpu.vendor == "AuthenticAMD"
    empty = parse_cpuinfo("")
    assert (empty.vendor, empty.family, empty.model) == ("unknown", -1, -1)
    assert not core_family(empty).exact and core_family(empty).warning


def test_same_cpu_compares_vendor_family_and_model():
    cpu = parse_cpuinfo(cpuinfo("AuthenticAMD", 25, 17))
    assert cpu.same_cpu(cpu.fingerprint())
    assert not cpu.same_cpu({**cpu.fingerprint(), "model": "1"})
    assert not cpu.same_cpu({"cpu": "AMD EPYC (family 25 model 17)"})   # nothing comparable
    assert not cpu.same_cpu({**cpu.fingerprint(), "family": "twenty-five"})


def test_detect_reads_the_given_file_and_survives_a_missing_one(tmp_path):
    p = tmp_path / "cpuinfo"
    p.write_text(cpuinfo("GenuineIntel", 6, 143))
    assert hostcpu.detect(p).model == 143
    assert hostcpu.detect(tmp_path / "absent") == hostcpu.UNKNOWN
