/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-datadir.c: where samepage looks for its data and image cache,
 * installed, run from its build tree, and overridden by the environment
 */
#include "config.h"

#include "../../src/cli/datadir.h"
#include "sptest.h"

static SpCliDataDirs
dirs_for(const char *exe)
{
    SpCliDataDirs d = {
        .exe = exe,
        .builddir = "/home/u/samepage/_build",
        .srcdir = "/home/u/samepage",
        .pkgdatadir = "/usr/share/samepage",
        .image_cache = "/var/cache/samepage",
    };
    return d;
}

static void
assert_dirs(const SpCliDataDirs *d, const char *data, const char *images)
{
    g_autofree char *got_data = sp_cli_data_dirs_data(d);
    g_autofree char *got_images = sp_cli_data_dirs_images(d);

    assert_string_equal(got_data, data);
    assert_string_equal(got_images, images);
}

static void
test_installed(void **state)
{
    SpCliDataDirs d = dirs_for("/usr/bin/samepage");

    assert_false(sp_cli_data_dirs_uninstalled(&d));
    assert_dirs(&d, "/usr/share/samepage", "/var/cache/samepage");
}

static void
test_build_tree(void **state)
{
    SpCliDataDirs d = dirs_for("/home/u/samepage/_build/src/cli/samepage");

    assert_true(sp_cli_data_dirs_uninstalled(&d));
    assert_dirs(&d, "/home/u/samepage/vm-images", "/home/u/samepage/vm-images/cache");
    /* A trailing slash on the build tree changes nothing. */
    d.builddir = "/home/u/samepage/_build/";
    assert_true(sp_cli_data_dirs_uninstalled(&d));
}

/* A sibling whose name starts like the build tree is not inside it, nor is
 * the build tree's parent. */
static void
test_prefix_is_not_inside(void **state)
{
    SpCliDataDirs d = dirs_for("/home/u/samepage/_build2/src/cli/samepage");

    assert_false(sp_cli_data_dirs_uninstalled(&d));
    assert_dirs(&d, "/usr/share/samepage", "/var/cache/samepage");
    d.exe = "/home/u/samepage/samepage";
    assert_false(sp_cli_data_dirs_uninstalled(&d));
    d.exe = "/home/u/samepage/_build";
    assert_false(sp_cli_data_dirs_uninstalled(&d));
}

/* No /proc/self/exe (no /proc mounted), or no build tree left: installed. */
static void
test_unknown_exe(void **state)
{
    SpCliDataDirs d = dirs_for(NULL);

    assert_false(sp_cli_data_dirs_uninstalled(&d));
    assert_dirs(&d, "/usr/share/samepage", "/var/cache/samepage");
    d.exe = "/home/u/samepage/_build/src/cli/samepage";
    d.builddir = NULL;
    assert_false(sp_cli_data_dirs_uninstalled(&d));
    d.builddir = "";
    assert_false(sp_cli_data_dirs_uninstalled(&d));
}

static void
test_environment_wins(void **state)
{
    SpCliDataDirs d = dirs_for("/home/u/samepage/_build/src/cli/samepage");

    d.env_datadir = "/tmp/dest/usr/share/samepage";
    d.env_image_dir = "/srv/images";
    assert_dirs(&d, "/tmp/dest/usr/share/samepage", "/srv/images");
    d.exe = "/usr/bin/samepage";
    assert_dirs(&d, "/tmp/dest/usr/share/samepage", "/srv/images");
    /* Set but empty is unset. */
    d.env_datadir = "";
    d.env_image_dir = "";
    assert_dirs(&d, "/usr/share/samepage", "/var/cache/samepage");
}

/* This very test runs from the build tree: the source tree's data. */
static void
test_this_process(void **state)
{
    g_autofree char *data = NULL;
    g_autofree char *images = NULL;
    g_autofree char *want_data = g_build_filename(SP_TOP_SRCDIR, "vm-images", NULL);
    g_autofree char *want_images = g_build_filename(SP_TOP_SRCDIR, "vm-images", "cache", NULL);

    g_unsetenv("SAMEPAGE_DATADIR");
    g_unsetenv("SAMEPAGE_IMAGE_DIR");
    data = sp_cli_data_dir();
    images = sp_cli_image_dir();
    assert_string_equal(data, want_data);
    assert_string_equal(images, want_images);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_installed),
        cmocka_unit_test(test_build_tree),
        cmocka_unit_test(test_prefix_is_not_inside),
        cmocka_unit_test(test_unknown_exe),
        cmocka_unit_test(test_environment_wins),
        cmocka_unit_test(test_this_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
