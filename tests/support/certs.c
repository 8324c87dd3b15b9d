#include "tests/support/certs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

zcert_t *testcerts_make(const char *dir, const char *name, bool authorize)
{
    zcert_t *cert = zcert_new();
    assert_non_null(cert);
    if (authorize) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.key", dir, name);
        assert_int_equal(zcert_save_public(cert, path), 0);
    }
    return cert;
}
