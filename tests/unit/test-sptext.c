/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "samepage/sptext.h"
#include "sptest.h"

static void
test_escape(void **state)
{
    static const struct {
        const char *in;
        const char *out;
        const char *out_lines;          /* with SP_TEXT_ESCAPE_KEEP_LINES */
    } cases[] = {
        { "", "", "" },
        { "debian-12 (pc.ram)", "debian-12 (pc.ram)", "debian-12 (pc.ram)" },
        { "a\x1b[2Jb", "a\\x1b[2Jb", "a\\x1b[2Jb" },
        { "\x1b]0;title\x07", "\\x1b]0;title\\x07", "\\x1b]0;title\\x07" },
        { "one\ntwo\tthree\r", "one\\x0atwo\\x09three\\x0d", "one\ntwo\tthree\\x0d" },
        { "\x7f\x01", "\\x7f\\x01", "\\x7f\\x01" },
        { "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" },
        { "csi\xc2\x9b" "2J", "csi\\u009b2J", "csi\\u009b2J" },     /* U+009B, C1 CSI */
        { "raw\x9b" "2J", "raw\\x9b2J", "raw\\x9b2J" },             /* not UTF-8 */
        { "cut\xe2\x82", "cut\\xe2\\x82", "cut\\xe2\\x82" },
        { "back\\slash", "back\\slash", "back\\slash" },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *a = sp_text_escape(cases[i].in, SP_TEXT_ESCAPE_DEFAULT);
        g_autofree char *b = sp_text_escape(cases[i].in, SP_TEXT_ESCAPE_KEEP_LINES);

        assert_string_equal(a, cases[i].out);
        assert_string_equal(b, cases[i].out_lines);
        assert_true(g_utf8_validate(a, -1, NULL));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
