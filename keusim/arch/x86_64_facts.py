"""x86-64 facts that need no emulator: toolchain flags and memory layout constants."""

from keusim.arch import ToolchainFacts

_COMMON = (
    "-O2", "-g", "-ffreestanding", "-fno-stack-protector", "-fno-pic", "-fno-pie",
    # No SSE/AVX in compiled code: the kernel never touches those registers; hand-written
    # user code may, and the kernel saves them per process with FXSAVE (docs/security.md).
    "-mcpu=baseline-sse-sse2", "-mno-red-zone",
    "-fno-builtin", "-fno-omit-frame-pointer", "-Wall", "-Werror=implicit-function-declaration",
)

TOOLCHAIN = ToolchainFacts(
    zig_target="x86_64-freestanding-none",
    cflags=_COMMON + ("-mcmodel=small",),
    # The kernel lives in the top 2 GiB of the address space (KERNBASE).
    kernel_cflags=_COMMON + ("-mcmodel=kernel",),
    host_target="x86_64-linux-gnu",
)
