/* Prototypes of the common kernel. One section per file. */
#pragma once
#include "types.h"

struct proc;
struct trapframe;
struct bootinfo;

/* main.c */
extern struct bootinfo *bootinfo;

/* platform.c: the platform device */
uint64_t plat_read(uint64_t reg);
void plat_write(uint64_t reg, uint64_t v);
int cpuid(void);
void console_write(int pid, const void *buf, uint64_t len);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void panic(const char *msg);
void plat_wait(void);
void poweroff(uint64_t status);

/* klog.c */
void klog(uint32_t type, uint32_t pid, uint64_t a, uint64_t b, uint64_t c);

/* kalloc.c */
void kinit(uint64_t start, uint64_t end, uint64_t pool_start, uint64_t pool_end);
void *kalloc(void);
void *kalloc_pool(void);

/* vm.c */
pte_t *walk(pagetable_t root, uint64_t va, int alloc);
int mappages(pagetable_t root, uint64_t va, uint64_t size, uint64_t pa, int perm);
pagetable_t uvm_create(void);
int copyin(pagetable_t root, void *dst, uint64_t srcva, uint64_t len);
int copyout(pagetable_t root, uint64_t dstva, const void *src, uint64_t len);
int user_range_ok(pagetable_t root, uint64_t va, uint64_t len, int perm);

/* elf.c */
int elf_load(struct proc *p, const void *image, uint64_t len, uint64_t *entry);

/* proc.c */
void procinit(void);
void scheduler(void) __attribute__((noreturn));
void yield(void);
void sleep_on(void *chan);
void wakeup(void *chan);
_Noreturn void proc_exit(int64_t code);
_Noreturn void proc_kill(uint32_t kind, uint64_t addr, uint64_t pc);
struct proc *myproc(void);
void usertrapret(void);
void arm_timeslice(void);
int slice_over(void);

/* trap.c */
void syscall(struct trapframe *tf);
void user_fault(struct trapframe *tf, int access, uint64_t addr, int hw_kind);
void interrupt(void);

/* channel.c */
void channels_init(void);
void channels_report(void);
int64_t chan_report(struct proc *p, uint64_t ch, uint64_t key, uint64_t value);
int64_t chan_fault(struct proc *p, uint64_t ch, int64_t code);
void chan_flush_stats(struct proc *p);

/* notify.c */
int64_t sys_notify(uint64_t desc_va);
int64_t sys_wait(uint64_t ch);
void notify_exit(struct proc *p);

/* nic.c: the NIC and its IOMMU */
void nic_init(void);
void nic_intr(void);
extern int nic_owners;   /* processes holding a NIC queue (0: the notify path skips the NIC) */
extern char nic_chan[]; /* a NIC owner (process index i) sleeps in SYS_NIC_WAIT on &nic_chan[i] */
int64_t sys_nic_attach(uint64_t va, uint64_t len, uint64_t rings_off, uint64_t size);
int64_t sys_nic_wait(void);
int64_t sys_net_send(uint64_t va, uint64_t len);
int64_t sys_net_recv(uint64_t va, uint64_t max);

/* string.c (guests/lib/string.c, shared) */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strnlen(const char *s, size_t max);

/* Fault access types, given by the architecture to user_fault(). */
#define ACC_READ  1
#define ACC_WRITE 2
#define ACC_EXEC  3
