#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "data/error.h"

static void fail_formats_and_returns_minus_one(void **state) {
    (void)state;
    et_error e;
    assert_int_equal(et_fail(&e, "file %s: key '%s'", "a.yaml", "lora.r"), -1);
    assert_string_equal(e.msg, "file a.yaml: key 'lora.r'");
    assert_int_equal(et_wrap(&e, "loading %s", "recipe"), -1);
    assert_string_equal(e.msg, "loading recipe: file a.yaml: key 'lora.r'");
    assert_int_equal(et_fail(NULL, "ignored"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(fail_formats_and_returns_minus_one)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
