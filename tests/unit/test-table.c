/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-table.c: samepage's tables (src/cli/table.c, libsmartcols)
 *
 * Each table is printed to a temporary file, as to a pipe: widths follow
 * the longest cell, nothing is truncated, -o picks and orders columns,
 * --raw escapes blanks and control characters, -n drops the header.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sptest.h"
#include "../../src/cli/table.h"

enum { C_NAME, C_PID, C_NOTE, C_EXTRA };
static const SpTableColumn columns[] = {
    [C_NAME] = { "NAME", 8, 0, "a name" },
    [C_PID] = { "PID", 5, SP_TABLE_RIGHT, "a number" },
    [C_NOTE] = { "NOTE", 0.3, SP_TABLE_WRAP, "free text" },
    [C_EXTRA] = { "EXTRA", 5, SP_TABLE_EXTRA, "only with -o" },
};

/* Prints @rows (name, pid, note, extra) with @opt; returns the text. */
static char *
render(const SpTableOptions *opt, const char *const rows[][4], gsize n_rows)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpTable) t = sp_table_new(columns, G_N_ELEMENTS(columns), opt, &error);
    FILE *f = tmpfile();
    char *text;
    long len;

    assert_null(error);
    assert_non_null(t);
    assert_non_null(f);
    for (gsize i = 0; i < n_rows; i++) {
        sp_table_add_row(t);
        for (guint c = 0; c < 4; c++)
            sp_table_set(t, c, rows[i][c]);
    }
    assert_true(sp_table_print(t, f));
    len = ftell(f);
    rewind(f);
    text = g_malloc0(len + 1);
    assert_int_equal(fread(text, 1, len, f), len);
    fclose(f);
    return text;
}

/* Column of the first character of @word in @line, or -1. */
static long
col_of(const char *line, const char *word)
{
    const char *p = strstr(line, word);
    return p ? p - line : -1;
}

static void
test_widths(void **state)
{
    g_autofree char *long_name = g_strnfill(150, 'x');
    const char *const rows[][4] = {
        { "web1", "12", "ok", "e1" },
        { long_name, "123456", "a note long enough to be wrapped on a narrow terminal, "
                                "which a file never is", "e2" },
    };
    SpTableOptions opt = { 0 };
    g_autofree char *out = render(&opt, rows, G_N_ELEMENTS(rows));
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);

    (void)state;
    assert_int_equal(g_strv_length(lines), 4);   /* header, 2 rows, "" */
    /* The long name widens its column: every line's NOTE starts at one place,
     * and nothing is cut. */
    long note = col_of(lines[0], "NOTE");
    assert_true(note > 150);
    assert_int_equal(col_of(lines[1], "ok"), note);
    assert_int_equal(col_of(lines[2], "a note"), note);
    assert_non_null(strstr(lines[2], long_name));
    assert_non_null(strstr(lines[2], "which a file never is"));
    /* Numbers are right-aligned: their last digits line up under PID's D. */
    assert_int_equal(col_of(lines[1], "12 ") + 2, col_of(lines[0], "PID") + 3);
    assert_int_equal(col_of(lines[2], "123456") + 6, col_of(lines[0], "PID") + 3);
    /* EXTRA is not a default column. */
    assert_null(strstr(out, "EXTRA"));
    assert_null(strstr(out, "e1"));
}

static void
test_output_columns(void **state)
{
    const char *const rows[][4] = { { "web1", "12", "ok", "e1" } };
    (void)state;
    {
        /* -o picks and orders, in any case; the header is the column names. */
        SpTableOptions opt = { .output = (char *)"extra,Name" };
        g_autofree char *out = render(&opt, rows, 1);
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        assert_true(g_str_has_prefix(lines[0], "EXTRA NAME"));
        assert_true(g_str_has_prefix(lines[1], "e1    web1"));
        assert_null(strstr(out, "PID"));
    }
    {
        /* +COLUMNS adds to the defaults. */
        SpTableOptions opt = { .output = (char *)"+EXTRA" };
        g_autofree char *out = render(&opt, rows, 1);
        assert_true(col_of(out, "NAME") < col_of(out, "PID"));
        assert_true(col_of(out, "NOTE") < col_of(out, "EXTRA"));
    }
    {
        /* A column -o does not name is not shown, and a command can skip it. */
        SpTableOptions opt = { .output = (char *)"NAME" };
        g_autoptr(SpTable) t = sp_table_new(columns, G_N_ELEMENTS(columns), &opt, NULL);
        assert_true(sp_table_shows(t, C_NAME));
        assert_false(sp_table_shows(t, C_PID));
        assert_false(sp_table_shows(t, C_EXTRA));
    }
    {
        /* An unknown column is an error naming it and the choices. */
        SpTableOptions opt = { .output = (char *)"NAME,BOGUS" };
        g_autoptr(GError) error = NULL;
        g_autoptr(SpTable) t = sp_table_new(columns, G_N_ELEMENTS(columns), &opt, &error);
        assert_null(t);
        assert_true(g_error_matches(error, SP_TABLE_ERROR, SP_TABLE_ERROR_COLUMN));
        assert_non_null(strstr(error->message, "'BOGUS'"));
        assert_non_null(strstr(error->message, "NAME, PID, NOTE, EXTRA"));
    }
    {
        SpTableOptions opt = { .output = (char *)"" };
        g_autoptr(GError) error = NULL;
        g_autoptr(SpTable) t = sp_table_new(columns, G_N_ELEMENTS(columns), &opt, &error);
        assert_null(t);
        assert_non_null(strstr(error->message, "unknown column ''"));
    }
}

static void
test_raw_and_headings(void **state)
{
    const char *const rows[][4] = {
        { "a b\\c", "1", "esc\x1b[2J here", "" },
        { "web2", "22", NULL, NULL },
    };
    (void)state;
    {
        SpTableOptions opt = { .raw = TRUE };
        g_autofree char *out = render(&opt, rows, G_N_ELEMENTS(rows));
        /* One space between cells; blanks, backslashes and controls escaped,
         * so that each line splits into its columns on spaces. */
        assert_string_equal(out, "NAME PID NOTE\n"
                                 "a\\x20b\\x5cc 1 esc\\x1b[2J\\x20here\n"
                                 "web2 22 \n");
    }
    {
        SpTableOptions opt = { .raw = TRUE, .noheadings = TRUE, .output = (char *)"name" };
        g_autofree char *out = render(&opt, rows, G_N_ELEMENTS(rows));
        assert_string_equal(out, "a\\x20b\\x5cc\nweb2\n");
    }
    {
        /* The default output escapes control characters as every line of
         * samepage does (sp_text_escape), and keeps blanks. */
        SpTableOptions opt = { .noheadings = TRUE };
        g_autofree char *out = render(&opt, rows, G_N_ELEMENTS(rows));
        assert_null(strchr(out, '\x1b'));
        assert_non_null(strstr(out, "esc\\x1b[2J here"));
        assert_non_null(strstr(out, "a b\\c"));
        assert_null(strstr(out, "NAME"));
    }
}

/* On a terminal (a pty here, $COLUMNS its width), free text wraps between
 * words at the terminal's width; nothing else is cut. */
static void
test_wrap_on_terminal(void **state)
{
    const char *note = "every reason merging cannot happen or is slow with the evidence "
                       "and the fix for each guest";
    const char *const rows[][4] = { { "web1", "12", note, "" } };
    SpTableOptions opt = { .noheadings = TRUE };
    g_autoptr(SpTable) t = sp_table_new(columns, G_N_ELEMENTS(columns), &opt, NULL);
    g_autoptr(GString) got = g_string_new(NULL);
    g_autoptr(GString) words = g_string_new(NULL);
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    FILE *slave;
    char buf[4096];
    ssize_t n;

    (void)state;
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    slave = fopen(ptsname(master), "w");
    assert_non_null(slave);
    g_setenv("COLUMNS", "40", TRUE);
    sp_table_add_row(t);
    for (guint c = 0; c < 4; c++)
        sp_table_set(t, c, rows[0][c]);
    assert_true(sp_table_print(t, slave));
    fclose(slave);
    g_unsetenv("COLUMNS");
    while ((n = read(master, buf, sizeof(buf))) > 0)
        g_string_append_len(got, buf, n);
    close(master);

    g_auto(GStrv) lines = g_strsplit(got->str, "\n", -1);
    guint n_lines = 0;
    long note_col = col_of(lines[0], "every");
    assert_true(note_col > 0);
    for (guint i = 0; lines[i]; i++) {
        g_strchomp(g_strdelimit(lines[i], "\r", ' '));
        if (!*lines[i])
            continue;
        n_lines++;
        assert_true(strlen(lines[i]) <= 40);
        /* the note's part of the line: whole words, from the NOTE column on */
        assert_true((long)strlen(lines[i]) > note_col);
        g_string_append_printf(words, "%s%s", words->len ? " " : "", lines[i] + note_col);
    }
    assert_true(n_lines >= 3);
    assert_string_equal(words->str, note);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_widths),
        cmocka_unit_test(test_output_columns),
        cmocka_unit_test(test_raw_and_headings),
        cmocka_unit_test(test_wrap_on_terminal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
