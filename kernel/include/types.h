/* Basic types for the freestanding kernel. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef uint64_t pte_t;
typedef pte_t *pagetable_t; /* 512 entries, one 4 KiB page */
