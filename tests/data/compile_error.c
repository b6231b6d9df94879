#include <keusim/keusim.h>

int main(void)
{
    return undefined_thing + 1;
}
