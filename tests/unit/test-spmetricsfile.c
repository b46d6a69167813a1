/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spmetricsfile.c: the atomic textfile writer against hostile directories
 */
#include "config.h"

#include <sys/stat.h>
#include <unistd.h>

#include "samepage/spmetricsfile.h"
#include "sptest.h"

#define TEXT "# HELP samepage_guests Guests.\n# TYPE samepage_guests gauge\nsamepage_guests 2\n"

static int
setup(void **state)
{
    char *dir = g_dir_make_tmp("samepage-textfile-XXXXXX", NULL);

    if (!dir)
        return -1;
    chmod(dir, 0755);
    *state = dir;
    return 0;
}

static int
teardown(void **state)
{
    char *dir = *state;

    chmod(dir, 0700);
    sp_test_remove_tree(dir);
    g_free(dir);
    return 0;
}

/* The names in @dir, sorted, joined by spaces. */
static gint
cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *
listing(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *n;

    assert_non_null(d);
    while ((n = g_dir_read_name(d)))
        g_ptr_array_add(names, g_strdup(n));
    g_ptr_array_sort(names, cmp_names);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

static char *
contents(const char *path)
{
    char *text = NULL;

    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    return text;
}

static void
assert_refused(const char *path, SpMetricsFileErrorCode code, const char *words)
{
    g_autoptr(GError) error = NULL;

    assert_false(sp_metrics_textfile_write(path, TEXT, &error));
    assert_non_null(error);
    print_message("refused: %s\n", error->message);
    assert_true(g_error_matches(error, SP_METRICS_FILE_ERROR, code));
    if (!strstr(error->message, words))
        fail_msg("error lacks \"%s\": %s", words, error->message);
}

static void
test_write_and_replace(void **state)
{
    const char *dir = *state;
    g_autofree char *target = g_build_filename(dir, "samepage.prom", NULL);
    g_autofree char *text = NULL, *list = NULL;
    g_autoptr(GError) error = NULL;
    struct stat st1, st2;

    assert_true(sp_metrics_textfile_write(dir, TEXT, &error));
    text = contents(target);
    assert_string_equal(text, SP_METRICS_TEXTFILE_HEADER TEXT);
    assert_int_equal(stat(target, &st1), 0);
    assert_int_equal(st1.st_mode & 07777, 0644);
    assert_int_equal(st1.st_uid, geteuid());
    /* again: a new file renamed over the old one (another inode) */
    assert_true(sp_metrics_textfile_write(dir, "samepage_guests 3\n", &error));
    assert_int_equal(stat(target, &st2), 0);
    assert_int_not_equal(st1.st_ino, st2.st_ino);
    g_free(text);
    text = contents(target);
    assert_string_equal(text, SP_METRICS_TEXTFILE_HEADER "samepage_guests 3\n");
    list = listing(dir);
    assert_string_equal(list, "samepage.prom");      /* no temporary file left */
}

static void
test_named_file(void **state)
{
    const char *dir = *state;
    g_autofree char *target = g_build_filename(dir, "host-a.prom", NULL);
    g_autofree char *txt = g_build_filename(dir, "samepage.txt", NULL);
    g_autofree char *bare = g_build_filename(dir, ".prom", NULL);
    g_autofree char *missing = g_build_filename(dir, "nowhere", "samepage.prom", NULL);
    g_autofree char *list = NULL;
    g_autoptr(GError) error = NULL;

    assert_true(sp_metrics_textfile_write(target, TEXT, &error));
    assert_refused(txt, SP_METRICS_FILE_ERROR_PATH, "ending in .prom");
    assert_refused(bare, SP_METRICS_FILE_ERROR_PATH, ".prom");
    assert_refused(missing, SP_METRICS_FILE_ERROR_PATH, "nowhere");
    list = listing(dir);
    assert_string_equal(list, "host-a.prom");
}

static void
test_world_writable(void **state)
{
    const char *dir = *state;
    g_autofree char *list = NULL;
    g_autoptr(GError) error = NULL;

    assert_int_equal(chmod(dir, 0777), 0);
    assert_refused(dir, SP_METRICS_FILE_ERROR_UNSAFE, "world-writable without the sticky bit");
    list = listing(dir);
    assert_string_equal(list, "");
    /* the sticky bit (others cannot replace our file): allowed, as in /tmp */
    assert_int_equal(chmod(dir, 01777), 0);
    assert_true(sp_metrics_textfile_write(dir, TEXT, &error));
}

static void
test_foreign_owner(void **state)
{
    const char *dir = *state;
    g_autofree char *target = g_build_filename(dir, "samepage.prom", NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;

    if (geteuid() != 0) {
        print_message("not root: cannot make a directory owned by someone else\n");
        skip();
    }
    /* a file of ours, then its owner changes: not ours any more */
    assert_true(sp_metrics_textfile_write(dir, TEXT, &error));
    assert_int_equal(chown(target, 65534, 65534), 0);
    assert_refused(dir, SP_METRICS_FILE_ERROR_NOT_OURS, "belongs to uid 65534");
    assert_int_equal(unlink(target), 0);
    /* a directory nobody owns */
    assert_int_equal(chown(dir, 65534, 65534), 0);
    assert_refused(dir, SP_METRICS_FILE_ERROR_UNSAFE, "owned by uid 65534");
    assert_false(g_file_test(target, G_FILE_TEST_EXISTS));
    assert_int_equal(chown(dir, 0, 0), 0);
}

static void
test_symlink_target(void **state)
{
    const char *dir = *state;
    g_autofree char *target = g_build_filename(dir, "samepage.prom", NULL);
    g_autofree char *victim = g_build_filename(dir, "victim", NULL);
    g_autofree char *text = NULL, *list = NULL;
    char link[256];
    gssize n;

    /* a symlink to a file that even starts with our header */
    assert_true(g_file_set_contents(victim, SP_METRICS_TEXTFILE_HEADER "precious\n", -1, NULL));
    assert_int_equal(symlink(victim, target), 0);
    assert_refused(dir, SP_METRICS_FILE_ERROR_NOT_OURS, "a symbolic link");
    text = contents(victim);
    assert_string_equal(text, SP_METRICS_TEXTFILE_HEADER "precious\n");
    n = readlink(target, link, sizeof link - 1);
    assert_true(n > 0);
    link[n] = 0;
    assert_string_equal(link, victim);
    /* dangling */
    assert_int_equal(unlink(target), 0);
    assert_int_equal(symlink("/nonexistent/samepage", target), 0);
    assert_refused(dir, SP_METRICS_FILE_ERROR_NOT_OURS, "a symbolic link");
    list = listing(dir);
    assert_string_equal(list, "samepage.prom victim");
}

static void
test_special_targets(void **state)
{
    const char *dir = *state;
    g_autofree char *target = g_build_filename(dir, "samepage.prom", NULL);

    assert_int_equal(g_mkdir(target, 0755), 0);
    assert_refused(dir, SP_METRICS_FILE_ERROR_NOT_OURS, "a directory");
    assert_true(g_file_test(target, G_FILE_TEST_IS_DIR));
    assert_int_equal(g_rmdir(target), 0);
    /* a FIFO: refused without opening it (which would block) */
    assert_int_equal(mkfifo(target, 0644), 0);
    assert_refused(dir, SP_METRICS_FILE_ERROR_NOT_OURS, "a special file");
}

static void
test_not_written_by_us(void **state)
{
    const char *dir = *state;
    g_autofree char *target = g_build_filename(dir, "samepage.prom", NULL);
    g_autofree char *text = NULL, *list = NULL;
    static const char *const others[] = {
        "# HELP node_foo Someone else's.\nnode_foo 1\n",
        "",                                              /* empty */
        "# samepage metrics",                            /* our header, cut short */
    };

    for (gsize i = 0; i < G_N_ELEMENTS(others); i++) {
        assert_true(g_file_set_contents(target, others[i], -1, NULL));
        assert_refused(dir, SP_METRICS_FILE_ERROR_NOT_OURS, "not written by samepaged");
        g_free(text);
        text = contents(target);
        assert_string_equal(text, others[i]);
    }
    list = listing(dir);
    assert_string_equal(list, "samepage.prom");
}

typedef struct {
    GMainLoop *loop;
    gboolean ok;
    GError *error;
} AsyncResult;

static void
written(GObject *source, GAsyncResult *res, gpointer data)
{
    AsyncResult *r = data;

    (void)source;
    r->ok = sp_metrics_textfile_write_finish(res, &r->error);
    g_main_loop_quit(r->loop);
}

/* The thread variant: the same file, the same refusals, on a main loop. */
static void
test_async(void **state)
{
    const char *dir = *state;
    g_autofree char *target = g_build_filename(dir, "samepage.prom", NULL);
    g_autofree char *text = NULL;
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    AsyncResult r = { .loop = loop };

    sp_metrics_textfile_write_async(dir, TEXT, NULL, written, &r);
    g_main_loop_run(loop);
    assert_true(r.ok);
    assert_null(r.error);
    text = contents(target);
    assert_string_equal(text, SP_METRICS_TEXTFILE_HEADER TEXT);

    assert_int_equal(chmod(dir, 0777), 0);
    sp_metrics_textfile_write_async(dir, TEXT, NULL, written, &r);
    g_main_loop_run(loop);
    assert_false(r.ok);
    assert_true(g_error_matches(r.error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_UNSAFE));
    g_clear_error(&r.error);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_named_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_world_writable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_written_by_us, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
