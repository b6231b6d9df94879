/* Compile-time limits. The loader (keusim/machine/loader.py) checks manifests against these. */
#pragma once
#define MAXCPU      8
#define MAXPROC     32
#define MAXCHAN     32
#define MAXNAME     32
#define KSTACKSIZE  (4 * 4096)   /* per-process kernel stack */
#define USTACKPAGES 4            /* per-process user stack, plus one guard page */
