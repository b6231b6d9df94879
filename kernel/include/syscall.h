/*
 * System-call numbers and error codes (docs/abi.md gives the per-architecture register ABI).
 * They are ABI the kernel shares with every guest, so they have one definition: the guest
 * SDK's <keusim/abi.h> (the kernel builds with guests/include on its include path).
 */
#pragma once
#include <keusim/abi.h>
