"""arm64 facts that need no emulator: toolchain flags and memory layout constants."""

from keusim.arch import ToolchainFacts

_COMMON = (
    "-O2", "-g", "-ffreestanding", "-fno-stack-protector", "-fno-pic", "-fno-pie",
    # No FP/SIMD in compiled code (docs/unicorn.md: -mcpu=generic-neon-fp_armv8 gives
    # no SIMD at all), so the kernel never touches those registers; hand-written user
    # code may still use them, and the kernel saves them per process (docs/security.md).
    "-mcpu=generic-neon-fp_armv8",
    "-fno-builtin", "-fno-omit-frame-pointer", "-Wall", "-Werror=implicit-function-declaration",
)

TOOLCHAIN = ToolchainFacts(
    zig_target="aarch64-freestanding-none",
    cflags=_COMMON,
    kernel_cflags=_COMMON,
    host_target="aarch64-linux-gnu",
)
