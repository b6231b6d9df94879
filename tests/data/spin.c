#include <keusim/keusim.h>
int main(void)
{
    uint64_t t0 = ks_rdcycles(), last = t0, switches = 0;
    while (ks_rdcycles() - t0 < 2000000) {
        uint64_t now = ks_rdcycles();
        if (now - last > 5000) switches++;   /* we were preempted */
        last = now;
    }
    ks_printf("pid %d saw %lu preemptions\n", ks_getpid(), switches);
    return 0;
}
