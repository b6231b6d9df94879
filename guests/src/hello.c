/* The `hello` scenario: greet on the console and exit 0. */
#include <keusim/keusim.h>

int main(void)
{
    ks_printf("hello from keusim: pid %d on core %lu\n", ks_getpid(), ks_info->core);
    return 0;
}
