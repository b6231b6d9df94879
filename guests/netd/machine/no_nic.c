/* A process without the NIC capability (tests/test_nic.py): every NIC system call is
 * refused (EPERM), nothing is mapped at NIC_VA, and it carries on. */
#include <keusim/keusim.h>
#include <keusim/nic.h>

static uint8_t buf[8192] __attribute__((aligned(4096)));

int main(void)
{
    ks_printf("no-nic: attach %ld wait %ld send %ld recv %ld\n",
              (long)ks_nic_attach(buf, sizeof(buf), 4096, 16), (long)ks_nic_wait(),
              (long)ks_net_send(buf, 60), (long)ks_net_recv(buf, sizeof(buf)));
    return 0;
}
