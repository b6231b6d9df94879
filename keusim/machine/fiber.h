/*
 * Host fibers for the resident-core switch (fastpath.c, fiber_wait). See fiber.c.
 */
#ifndef KEUSIM_FIBER_H
#define KEUSIM_FIBER_H

#include <stddef.h>

/* 1 when this host has fibers (x86-64 ELF); else 0, and nothing below may be called. */
int fiber_available(void);

/* Save the current context, its stack pointer into *from, and resume the one saved at
 * to. Returns when another switch names *from's context again. */
void keusim_fiber_switch(void **from, void *to);

/* A stack of `size` bytes (a guard page below it): 0 and *base set, or -1. */
int fiber_stack_new(void **base, size_t size);
void fiber_stack_free(void *base, size_t size);

/* The saved context of a new fiber on [base, base + size): the first switch to it calls
 * fn(arg), which must never return. */
void *fiber_prepare(void *base, size_t size, void (*fn)(void *), void *arg);

#endif
