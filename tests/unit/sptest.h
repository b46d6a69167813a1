/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sptest.h: helpers shared by the cmocka unit tests
 *
 * A test that needs a fake sysfs or procfs copies a tree from tests/data
 * into a fresh temporary directory, changes it as the case requires, points
 * an SpHost at it and removes it afterwards.
 */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

static inline char *
sp_test_data_path(const char *rel)
{
    return g_build_filename(SP_TOP_SRCDIR, "tests", "data", rel, NULL);
}

static inline void
sp_test_copy_tree(const char *src, const char *dst)
{
    g_autoptr(GDir) dir = g_dir_open(src, 0, NULL);
    const char *name;

    assert_non_null(dir);
    assert_int_equal(g_mkdir_with_parents(dst, 0755), 0);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *s = g_build_filename(src, name, NULL);
        g_autofree char *d = g_build_filename(dst, name, NULL);

        if (g_file_test(s, G_FILE_TEST_IS_DIR)) {
            sp_test_copy_tree(s, d);
        } else {
            g_autofree char *text = NULL;
            gsize len;
            assert_true(g_file_get_contents(s, &text, &len, NULL));
            assert_true(g_file_set_contents(d, text, len, NULL));
        }
    }
}

static inline void
sp_test_remove_tree(const char *path)
{
    g_autoptr(GDir) dir = NULL;
    const char *name;

    if (!g_file_test(path, G_FILE_TEST_IS_DIR) || g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        g_unlink(path);
        return;
    }
    dir = g_dir_open(path, 0, NULL);
    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *p = g_build_filename(path, name, NULL);
        sp_test_remove_tree(p);
    }
    g_rmdir(path);
}

/* A temporary copy of tests/data/<rel>; returns its path. */
static inline char *
sp_test_tree_new(const char *rel)
{
    g_autofree char *src = sp_test_data_path(rel);
    char *tmp = g_dir_make_tmp("samepage-test-XXXXXX", NULL);

    assert_non_null(tmp);
    sp_test_copy_tree(src, tmp);
    return tmp;
}

static inline void
sp_test_write(const char *dir, const char *rel, const char *text)
{
    g_autofree char *p = g_build_filename(dir, rel, NULL);
    assert_true(g_file_set_contents(p, text, -1, NULL));
}

static inline char *
sp_test_read(const char *dir, const char *rel)
{
    g_autofree char *p = g_build_filename(dir, rel, NULL);
    char *text = NULL;
    assert_true(g_file_get_contents(p, &text, NULL, NULL));
    return g_strstrip(text);
}

/* ------------------------------------------------- running the programs */

/* How a program run ended and what it printed (sp_test_spawn()). */
typedef struct {
    int status;                 /* exit code, or -1 if it did not exit */
    char *out;
    char *err;
} SpTestRun;

static inline void
sp_test_run_clear(SpTestRun *r)
{
    g_free(r->out);
    g_free(r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SpTestRun, sp_test_run_clear)

/* The environment the built samepage runs in: this one, with its KSM tree
 * at @sysfs, no procfs and the C locale. */
static inline char **
sp_test_cli_environ(const char *sysfs)
{
    char **env = g_get_environ();

    env = g_environ_setenv(env, "SAMEPAGE_SYSFS", sysfs, TRUE);
    env = g_environ_setenv(env, "SAMEPAGE_PROCFS", "/nonexistent/proc", TRUE);
    env = g_environ_setenv(env, "LC_ALL", "C.UTF-8", TRUE);
    return env;
}

/* The built src/cli/samepage, for argv[0]. */
static inline char *
sp_test_cli_path(void)
{
    return g_build_filename(SP_TOP_BUILDDIR, "src", "cli", "samepage", NULL);
}

/* Runs @argv (NULL-terminated) in @env and waits; fails the test when it
 * cannot be started. */
static inline void
sp_test_spawn(SpTestRun *r, GPtrArray *argv, char **env, GSpawnFlags flags)
{
    g_autoptr(GError) error = NULL;
    int wait = 0;

    if (!g_spawn_sync(NULL, (char **)argv->pdata, env, flags, NULL, NULL, &r->out, &r->err,
                      &wait, &error))
        fail_msg("cannot run %s: %s", (const char *)argv->pdata[0], error->message);
    r->status = WIFEXITED(wait) ? WEXITSTATUS(wait) : -1;
}
