#include "common/buffer.h"

#include <stdint.h>
#include <stdlib.h>

bool syn_buffer_reserve(char **data, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return true;
    if (need > SIZE_MAX / 2)
        return false;
    size_t grown_cap = *cap ? *cap : (first ? first : 1);
    while (grown_cap < need)
        grown_cap *= 2;
    char *grown = realloc(*data, grown_cap);
    if (!grown)
        return false;
    *data = grown;
    *cap = grown_cap;
    return true;
}
