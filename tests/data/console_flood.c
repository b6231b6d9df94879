/* Writes 1.5 MiB to the console (tests/test_containment.py: the machine keeps 1 MiB and says so). */
#include <keusim/keusim.h>
int main(void)
{
    static char b[4096];
    for (int i = 0; i < 4096; i++)
        b[i] = 'x';
    for (int i = 0; i < 384; i++)
        ks_write(b, sizeof b);
    return 0;
}
