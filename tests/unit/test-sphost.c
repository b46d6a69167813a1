/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "samepage/sphost.h"
#include "sptest.h"

static void
test_paths(void **state)
{
    g_autoptr(SpHost) host = sp_host_new_with_roots("/tmp/fake/sys", "/tmp/fake/proc");
    g_autofree char *a = sp_host_sysfs_path(host, "kernel/mm/ksm/%s", "run");
    g_autofree char *b = sp_host_procfs_path(host, "%d/smaps", 42);

    assert_string_equal(a, "/tmp/fake/sys/kernel/mm/ksm/run");
    assert_string_equal(b, "/tmp/fake/proc/42/smaps");
}

static void
test_production_roots(void **state)
{
    g_autoptr(SpHost) host = sp_host_new();

    assert_string_equal(sp_host_get_sysfs_root(host), "/sys");
    assert_string_equal(sp_host_get_procfs_root(host), "/proc");
}

static void
test_env_roots(void **state)
{
    g_setenv("SAMEPAGE_SYSFS", "/x/sys", TRUE);
    g_setenv("SAMEPAGE_PROCFS", "", TRUE);
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_unsetenv("SAMEPAGE_SYSFS");
    g_unsetenv("SAMEPAGE_PROCFS");

    assert_string_equal(sp_host_get_sysfs_root(host), "/x/sys");
    /* An empty variable means "not set". */
    assert_string_equal(sp_host_get_procfs_root(host), "/proc");
}

static void
test_read_write(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("samepage-host-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "knob", NULL);
    g_autofree char *missing = g_build_filename(dir, "nothing", NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;

    assert_true(g_file_set_contents(file, "100\n", -1, NULL));
    assert_true(sp_host_write_file(file, "250", &error));
    assert_null(error);
    assert_true(sp_host_read_file(file, &text, &error));
    assert_string_equal(text, "250");

    /* A missing attribute is never created. */
    assert_false(sp_host_write_file(missing, "1", &error));
    assert_true(g_error_matches(error, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
    assert_non_null(strstr(error->message, missing));
    assert_false(g_file_test(missing, G_FILE_TEST_EXISTS));
    g_clear_error(&error);

    g_clear_pointer(&text, g_free);
    assert_false(sp_host_read_file(missing, &text, &error));
    assert_true(g_error_matches(error, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
    g_clear_error(&error);

    /* Binary garbage is refused, not truncated at the NUL. */
    assert_true(g_file_set_contents(file, "12\0" "34", 5, NULL));
    assert_false(sp_host_read_file(file, &text, &error));
    assert_true(g_error_matches(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE));
    assert_null(text);

    g_unlink(file);
    g_rmdir(dir);
}

/* libvirt's pid files live under /run: a root tests redirect too. */
static void
test_run_root(void **state)
{
    g_autoptr(SpHost) host = sp_host_new();
    g_autofree char *a = sp_host_run_path(host, "libvirt/qemu/%s.pid", "g1");

    assert_string_equal(a, "/run/libvirt/qemu/g1.pid");
    sp_host_set_run_root(host, "/tmp/fake/run");
    g_autofree char *b = sp_host_run_path(host, "libvirt/qemu/%s.pid", "g1");
    assert_string_equal(b, "/tmp/fake/run/libvirt/qemu/g1.pid");

    g_setenv("SAMEPAGE_RUNDIR", "/x/run", TRUE);
    g_autoptr(SpHost) env = sp_host_new_from_env();
    g_unsetenv("SAMEPAGE_RUNDIR");
    g_autofree char *c = sp_host_run_path(env, "%s", "libvirt");
    assert_string_equal(c, "/x/run/libvirt");
}

/* libvirt's QEMU logs live under /var/log: a root tests redirect too. */
static void
test_log_root(void **state)
{
    g_autoptr(SpHost) host = sp_host_new();
    g_autofree char *a = sp_host_log_path(host, "libvirt/qemu/%s.log", "g1");

    assert_string_equal(a, "/var/log/libvirt/qemu/g1.log");
    sp_host_set_log_root(host, "/tmp/fake/log");
    g_autofree char *b = sp_host_log_path(host, "libvirt/qemu/%s.log", "g1");
    assert_string_equal(b, "/tmp/fake/log/libvirt/qemu/g1.log");
    /* The other roots stay where they were. */
    g_autofree char *c = sp_host_run_path(host, "%s", "libvirt");
    assert_string_equal(c, "/run/libvirt");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_production_roots),
        cmocka_unit_test(test_env_roots),
        cmocka_unit_test(test_run_root),
        cmocka_unit_test(test_log_root),
        cmocka_unit_test(test_read_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
