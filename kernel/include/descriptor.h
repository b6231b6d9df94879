/*
 * Notification descriptors and their SipHash-2-4 tags (docs/notify.md). The descriptor is
 * ABI the kernel shares with every sender, so it has one definition: the guest SDK's
 * <keusim/descriptor.h> (the kernel builds with guests/include on its include path).
 */
#pragma once
#include <keusim/descriptor.h>
