/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-cli.c: the samepage binary's number options, what it prints and
 * its exit status (samepage(1), EXIT STATUS)
 *
 * Runs the built src/cli/samepage with arguments that fail or finish before
 * anything needs root, libvirt or a real /sys: SAMEPAGE_SYSFS and
 * SAMEPAGE_PROCFS point at a directory that does not exist, or SAMEPAGE_SYSFS
 * at a copy of tests/data/sysfs-6.18, with libvirt's test driver.
 */
#include "config.h"

#include "sptest.h"

/* Runs samepage with the arguments in @ap, with SAMEPAGE_SYSFS @sysfs and
 * LIBVIRT_DEFAULT_URI @uri. */
static void
run_v(SpTestRun *r, const char *sysfs, const char *uri, va_list ap)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) env = sp_test_cli_environ(sysfs);
    const char *a;

    g_ptr_array_add(argv, sp_test_cli_path());
    while ((a = va_arg(ap, const char *)))
        g_ptr_array_add(argv, g_strdup(a));
    g_ptr_array_add(argv, NULL);
    env = g_environ_setenv(env, "LIBVIRT_DEFAULT_URI", uri, TRUE);
    sp_test_spawn(r, argv, env, G_SPAWN_DEFAULT);
}

/* Runs samepage with the NULL-terminated arguments after it. */
static void
run(SpTestRun *r, ...)
{
    va_list ap;

    va_start(ap, r);
    run_v(r, "/nonexistent/sys", "test:///default", ap);
    va_end(ap);
}

/* The same on the fake KSM tree @sysfs and libvirt's test driver @uri. */
static void
run_on(SpTestRun *r, const char *sysfs, const char *uri, ...)
{
    va_list ap;

    va_start(ap, uri);
    run_v(r, sysfs, uri, ap);
    va_end(ap);
}

static void
assert_usage_error(const SpTestRun *r, const char *option, const char *value)
{
    if (r->status != 2 || !strstr(r->err, option) || !strstr(r->err, value))
        fail_msg("%s %s: expected exit 2 and an error naming both, got %d: %s",
                 option, value, r->status, r->err);
}

/* Number options are decimal, the whole string, and range-checked. */
static void
test_number_options(void **state)
{
    static const struct {
        const char *option;
        const char *value;
    } bad[] = {
        { "--passes", "0x10" },
        { "--passes", "010x" },
        { "--passes", " 5" },
        { "--passes", "+5" },
        { "--passes", "-1" },
        { "--passes", "0" },
        { "--passes", "101" },
        { "--passes", "99999999999999999999" },
        { "--max-page-sharing", "0x10" },
        { "--max-page-sharing", "1" },
        { "--max-page-sharing", "4294967296" },
        { "--interval", "0x10" },
        { "--interval", "1e3" },
        { "--interval", "inf" },
        { "--interval", "nan" },
        { "--interval", "3601" },
        { "--interval", "1.5s" },
    };
    g_autofree char *dir = g_dir_make_tmp("samepage-cli-XXXXXX", NULL);
    g_autofree char *missing = g_build_filename(dir, "missing.img", NULL);

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_auto(SpTestRun) r = { 0 };

        run(&r, "estimate", "--image", missing, bad[i].option, bad[i].value, NULL);
        assert_usage_error(&r, bad[i].option, bad[i].value);
    }
    {
        /* Decimal values in range get past the options (to the missing image). */
        g_auto(SpTestRun) r = { 0 };

        run(&r, "estimate", "--image", missing, "--passes", "16", "--max-page-sharing", "256",
            "--interval", "0.25", NULL);
        if (r.status != 1 || !strstr(r.err, "missing.img"))
            fail_msg("expected exit 1 about the image, got %d: %s", r.status, r.err);
    }
    {
        g_auto(SpTestRun) r = { 0 };

        run(&r, "ksm", "numa", "--merge-across-nodes", "0x1", NULL);
        assert_usage_error(&r, "--merge-across-nodes", "0x1");
    }
    {
        g_auto(SpTestRun) r = { 0 };

        run(&r, "ksm", "numa", "--merge-across-nodes", "1", "--timeout", "0x10", NULL);
        assert_usage_error(&r, "--timeout", "0x10");
    }
    sp_test_remove_tree(dir);
}

/* No byte of text from outside reaches the terminal as a control character. */
static void
assert_no_controls(const char *what, const char *text)
{
    for (const char *p = text; *p; p++)
        if (((guchar)*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
            fail_msg("%s holds control byte 0x%02x: %s", what, (guchar)*p, text);
}

static void
test_control_bytes(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("samepage-cli-XXXXXX", NULL);
    g_autofree char *image = g_build_filename(dir, "evil\x1b]0;owned\x07\x1b[2J.img", NULL);
    g_autofree char *page = g_malloc0(2 * 4096);

    (void)state;
    {
        /* An unknown command is echoed in the error. */
        g_auto(SpTestRun) r = { 0 };

        run(&r, "help", "x\x1b[31mred\r", NULL);
        assert_int_equal(r.status, 2);
        assert_no_controls("stderr", r.err);
        assert_non_null(strstr(r.err, "x\\x1b[31mred\\x0d"));
    }
    {
        /* A name in an error message. */
        g_auto(SpTestRun) r = { 0 };
        g_autofree char *missing = g_build_filename(dir, "no\x1b[2Jsuch.img", NULL);

        run(&r, "estimate", "--image", missing, NULL);
        assert_int_equal(r.status, 1);
        assert_no_controls("stderr", r.err);
        assert_non_null(strstr(r.err, "no\\x1b[2Jsuch.img"));
    }
    {
        /* A name in a table. */
        g_auto(SpTestRun) r = { 0 };

        assert_true(g_file_set_contents(image, page, 2 * 4096, NULL));
        run(&r, "estimate", "--image", image, NULL);
        if (r.status != 0)
            fail_msg("estimate failed (%d): %s", r.status, r.err);
        assert_no_controls("stdout", r.out);
        assert_non_null(strstr(r.out, "evil\\x1b]0;owned\\x07"));
    }
    sp_test_remove_tree(dir);
}

/* The tables' options: an unknown column is a usage error naming it; the
 * names alone come from libvirt, no guest is read (shell completion). */
static void
test_tables(void **state)
{
    (void)state;
    {
        g_auto(SpTestRun) r = { 0 };
        run(&r, "list", "-o", "DOMAIN,NOSUCH", NULL);
        assert_usage_error(&r, "--output", "'NOSUCH'");
    }
    {
        g_auto(SpTestRun) r = { 0 };
        run(&r, "estimate", "--image", "/nonexistent", "-o", "pid,bogus", NULL);
        assert_usage_error(&r, "--output", "'bogus'");
    }
    {
        /* test:///default has one running domain, "test", with no QEMU. */
        g_auto(SpTestRun) r = { 0 };
        run(&r, "list", "--raw", "-n", "-o", "domain", NULL);
        if (r.status != 0)
            fail_msg("list -o domain failed (%d): %s", r.status, r.err);
        assert_string_equal(r.out, "test\n");
    }
    {
        /* The other columns read the guest: its error is a cell, not fatal. */
        g_auto(SpTestRun) r = { 0 };
        run(&r, "list", "--raw", "-o", "DOMAIN,PID,ERROR", NULL);
        assert_int_equal(r.status, 0);
        assert_true(g_str_has_prefix(r.out, "DOMAIN PID ERROR\ntest  domain\\x20'test'"));
    }
}

/* A long estimate's progress line goes to a terminal only: stderr is a
 * pipe here, and the scan lasts over a second (two passes 1.2 s apart). */
static void
test_no_progress_in_logs(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("samepage-cli-XXXXXX", NULL);
    g_autofree char *image = g_build_filename(dir, "mem.img", NULL);
    g_autofree char *page = g_malloc0(64 * 4096);
    g_auto(SpTestRun) r = { 0 };

    (void)state;
    assert_true(g_file_set_contents(image, page, 64 * 4096, NULL));
    run(&r, "estimate", "--image", image, "--passes", "2", "--interval", "1.2", NULL);
    if (r.status != 0)
        fail_msg("estimate failed (%d): %s", r.status, r.err);
    assert_null(strchr(r.err, '\r'));
    assert_null(strstr(r.err, "scanning"));
    sp_test_remove_tree(dir);
}

/* Exit status 2: what the command line alone says is wrong, before
 * anything is read; nothing on stdout. */
static void
test_exit_usage(void **state)
{
    static const char *const bad[][6] = {
        { "ksm", "set", "run=1", "run=0", NULL },
        { "ksm", "set", "pages_to_scan=100", "--json", "pages_to_scan=200", NULL },
        { "ksm", "set", "pages_shared=5", NULL },
        { "ksm", "set", "no_such_knob=1", NULL },
        { "ksm", "set", NULL },
        { "ksm", "surprise", NULL },
        { "ksm", "numa", "--json", NULL },
        { "estimate", "--pid", "5", "--pid", "5", NULL },
        { "estimate", "--pid", "5", "--pid", "05", NULL },
        { "estimate", NULL },
        { "list", "--no-such-option", NULL },
        { "regions", NULL },
        { "mark", "a", "b", NULL },
        { "experiment", NULL },
        { "experiment", "clean", "extra", NULL },
        { "status", "extra", NULL },
        { "no-such-command", NULL },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_auto(SpTestRun) r = { 0 };
        g_autofree char *line = g_strjoinv(" ", (char **)bad[i]);

        run(&r, bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], bad[i][5], NULL);
        if (r.status != 2 || *r.out || !strstr(r.err, "samepage: error: "))
            fail_msg("samepage %s: expected exit 2, an error and no output, got %d: %s%s",
                     line, r.status, r.out, r.err);
    }
    {
        /* A key given twice is named, with both words. */
        g_auto(SpTestRun) r = { 0 };

        run(&r, "ksm", "set", "run=1", "run=0", NULL);
        assert_non_null(strstr(r.err, "run is given twice ('run=1' and 'run=0')"));
    }
}

/* Exit status 1: the command line is right, the run failed (no KSM here). */
static void
test_exit_failure(void **state)
{
    static const char *const failing[][4] = {
        { "ksm", NULL },
        { "ksm", "--json", NULL },
        { "ksm", "set", "run=1", NULL },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(failing); i++) {
        g_auto(SpTestRun) r = { 0 };

        run(&r, failing[i][0], failing[i][1], failing[i][2], NULL);
        if (r.status != 1 || *r.out || !strstr(r.err, "this kernel has no KSM"))
            fail_msg("samepage %s %s: expected exit 1 naming the missing KSM, got %d: %s",
                     failing[i][0], failing[i][1] ? failing[i][1] : "", r.status, r.err);
    }
}

/* doctor: 3 when a finding is an error (KSM stopped), 0 when none is;
 * the JSON's "errors" says the same. */
static void
test_exit_doctor(void **state)
{
    g_autofree char *sysfs = sp_test_tree_new("sysfs-6.18");
    g_autofree char *xml = sp_test_data_path("libvirt-empty.xml");
    g_autofree char *uri = g_strconcat("test://", xml, NULL);

    (void)state;
    sp_test_write(sysfs, "kernel/mm/ksm/run", "0\n");
    {
        g_auto(SpTestRun) r = { 0 };

        run_on(&r, sysfs, uri, "doctor", "--no-estimate", NULL);
        if (r.status != 3 || !strstr(r.out, "KSM is not running"))
            fail_msg("doctor with KSM stopped: expected exit 3, got %d: %s%s", r.status, r.out,
                     r.err);
    }
    {
        g_auto(SpTestRun) r = { 0 };

        run_on(&r, sysfs, uri, "doctor", "--no-estimate", "--json", NULL);
        assert_int_equal(r.status, 3);
        assert_non_null(strstr(r.out, "\"errors\":1,"));
    }
    sp_test_write(sysfs, "kernel/mm/ksm/run", "1\n");
    {
        g_auto(SpTestRun) r = { 0 };

        run_on(&r, sysfs, uri, "doctor", "--no-estimate", "--json", NULL);
        if (r.status != 0 || !strstr(r.out, "\"errors\":0,"))
            fail_msg("doctor with KSM running: expected exit 0, got %d: %s%s", r.status, r.out,
                     r.err);
    }
    {
        /* The exit status of a run that worked. */
        g_auto(SpTestRun) r = { 0 };

        run_on(&r, sysfs, uri, "ksm", "--json", NULL);
        assert_int_equal(r.status, 0);
    }
    sp_test_remove_tree(sysfs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_options),
        cmocka_unit_test(test_control_bytes),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_no_progress_in_logs),
        cmocka_unit_test(test_exit_usage),
        cmocka_unit_test(test_exit_failure),
        cmocka_unit_test(test_exit_doctor),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
