/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * table.c: the tables samepage prints, through libsmartcols (see table.h)
 *
 * Cells come from others (domain names, backend ids, error text).  In the
 * default output they go through sp_text_escape(), as every other line of
 * the CLI does, and libsmartcols' own encoding is off; with --raw,
 * libsmartcols encodes them itself (blanks, backslashes and control
 * characters as \xNN), so that a raw line splits on spaces.
 *
 * Width: libsmartcols fits a table to the terminal only when its output is
 * one; otherwise (a pipe, a file, a log) it prints every cell whole, with
 * no width limit.  That is asked for explicitly here (SCOLS_TERMFORCE_NEVER
 * when @out is not a terminal), so that $COLUMNS or a narrow terminal
 * elsewhere never truncates a line a script reads.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <libsmartcols.h>

#include "samepage/sptext.h"
#include "table.h"

G_DEFINE_QUARK(sp-table-error-quark, sp_table_error)

struct _SpTable {
    struct libscols_table *tb;
    const SpTableColumn *columns;
    guint n_columns;
    struct libscols_column **shown;   /* per column of the table: NULL if hidden */
    struct libscols_line *line;       /* the row being filled */
    gboolean raw;
};

void
sp_table_options_clear(SpTableOptions *opt)
{
    g_clear_pointer(&opt->output, g_free);
}

void
sp_table_add_options(GOptionContext *ctx, SpTableOptions *opt, const SpTableColumn *columns,
                     guint n_columns, const char *extra)
{
    GOptionEntry entries[] = {
        { "raw", 0, 0, G_OPTION_ARG_NONE, &opt->raw,
          "raw table: cells one space apart, blanks escaped (\\x20)", NULL },
        { "output", 'o', 0, G_OPTION_ARG_STRING, &opt->output,
          "the columns to print, comma-separated (+COLUMNS adds to the default ones)", "COLUMNS" },
        { "noheadings", 'n', 0, G_OPTION_ARG_NONE, &opt->noheadings, "no header line", NULL },
        { NULL }
    };
    g_autoptr(GString) desc = g_string_new(NULL);
    gsize width = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (extra)
        g_string_append_printf(desc, "%s\n\n", extra);
    for (guint i = 0; i < n_columns; i++)
        width = MAX(width, strlen(columns[i].name));
    g_string_append(desc, "Columns (-o, --output; * not shown by default):\n");
    for (guint i = 0; i < n_columns; i++)
        g_string_append_printf(desc, "  %-*s %c %s\n", (int)width, columns[i].name,
                               columns[i].flags & SP_TABLE_EXTRA ? '*' : ' ', columns[i].help);
    g_option_context_set_description(ctx, desc->str);
}

gboolean
sp_table_options_given(const SpTableOptions *opt)
{
    return opt->raw || opt->noheadings || opt->output;
}

static gint
sp_table_find_column(const SpTableColumn *columns, guint n_columns, const char *name)
{
    for (guint i = 0; i < n_columns; i++)
        if (g_ascii_strcasecmp(columns[i].name, name) == 0)
            return (gint)i;
    return -1;
}

/* The columns -o asks for, in its order, as indexes into @columns. */
static GArray *
sp_table_select(const SpTableColumn *columns, guint n_columns, const char *output,
                GError **error)
{
    g_autoptr(GArray) sel = g_array_new(FALSE, FALSE, sizeof(guint));
    g_auto(GStrv) names = NULL;
    const char *list = output;

    if (!output || output[0] == '+') {
        for (guint i = 0; i < n_columns; i++)
            if (!(columns[i].flags & SP_TABLE_EXTRA))
                g_array_append_val(sel, i);
        if (!output)
            return g_steal_pointer(&sel);
        list = output + 1;
    }
    /* "" is one empty name, an error like any unknown one. */
    names = *list ? g_strsplit(list, ",", -1) : g_strdupv((char *[]){ (char *)"", NULL });
    for (char **n = names; *n; n++) {
        g_autofree char *name = g_strstrip(g_strdup(*n));
        gint c = sp_table_find_column(columns, n_columns, name);

        if (c < 0) {
            g_autoptr(GString) all = g_string_new(NULL);
            for (guint i = 0; i < n_columns; i++)
                g_string_append_printf(all, "%s%s", i ? ", " : "", columns[i].name);
            g_set_error(error, SP_TABLE_ERROR, SP_TABLE_ERROR_COLUMN,
                        "--output: unknown column '%s' (the columns are %s)", name, all->str);
            return NULL;
        }
        guint ci = (guint)c;
        g_array_append_val(sel, ci);
    }
    return g_steal_pointer(&sel);
}

/*
 * Free text wraps between words (libsmartcols' own wrap cuts anywhere):
 * the column is at least as wide as its longest word, and each line takes
 * as many words as fit.  Widths count characters (cells are escaped text,
 * UTF-8).
 */
static size_t
sp_table_wrap_chunksize(const struct libscols_column *cl, const char *data, void *user_data)
{
    size_t best = 0, cur = 0;

    for (const char *p = data; *p; p = g_utf8_next_char(p)) {
        cur = *p == ' ' ? 0 : cur + 1;
        best = MAX(best, cur);
    }
    return best;
}

static char *
sp_table_wrap_nextchunk(const struct libscols_column *cl, char *data, void *user_data)
{
    size_t width = scols_column_get_width(cl), n = 0;
    char *space = NULL;

    if (!data || (size_t)g_utf8_strlen(data, -1) <= width)
        return NULL;    /* it fits */
    /* the last space with at most @width characters before it */
    for (char *p = data; *p && n <= width; p = g_utf8_next_char(p), n++)
        if (*p == ' ')
            space = p;
    if (!space)
        return NULL;    /* one word wider than the column: libsmartcols cuts it */
    *space = '\0';
    return space + 1;
}

/**
 * sp_table_new:
 * @columns: (array length=n_columns): every column the table has
 * @opt: the table options of the command line
 *
 * Returns: (transfer full): an empty table, or NULL when -o names a column
 *   that is not one of @columns (SP_TABLE_ERROR_COLUMN: a usage error).
 */
SpTable *
sp_table_new(const SpTableColumn *columns, guint n_columns, const SpTableOptions *opt,
             GError **error)
{
    g_autoptr(GArray) sel = sp_table_select(columns, n_columns, opt->output, error);
    SpTable *t;

    if (!sel)
        return NULL;
    t = g_new0(SpTable, 1);
    t->tb = scols_new_table();
    t->columns = columns;
    t->n_columns = n_columns;
    t->shown = g_new0(struct libscols_column *, n_columns);
    t->raw = opt->raw;
    scols_table_enable_raw(t->tb, opt->raw);
    scols_table_enable_noheadings(t->tb, opt->noheadings);
    scols_table_enable_noencoding(t->tb, !opt->raw);
    for (guint i = 0; i < sel->len; i++) {
        guint c = g_array_index(sel, guint, i);
        int flags = 0;

        if (t->shown[c])
            continue;   /* named twice: shown once */
        if (columns[c].flags & SP_TABLE_RIGHT)
            flags |= SCOLS_FL_RIGHT;
        t->shown[c] = scols_table_new_column(t->tb, columns[c].name, columns[c].width, flags);
    }
    return t;
}

void
sp_table_free(SpTable *table)
{
    if (!table)
        return;
    scols_unref_table(table->tb);
    g_free(table->shown);
    g_free(table);
}

/* Whether @column is printed: a command may skip what it costs to fill
 * the others. */
gboolean
sp_table_shows(const SpTable *table, guint column)
{
    g_return_val_if_fail(column < table->n_columns, FALSE);
    return table->shown[column] != NULL;
}

void
sp_table_add_row(SpTable *table)
{
    table->line = scols_table_new_line(table->tb, NULL);
}

/* Sets a cell of the last row; a hidden column's is dropped. */
void
sp_table_set(SpTable *table, guint column, const char *text)
{
    g_return_if_fail(table->line && column < table->n_columns);
    if (!table->shown[column] || !text)
        return;
    if (table->raw) {
        scols_line_set_column_data(table->line, table->shown[column], text);
    } else {
        g_autofree char *safe = sp_text_escape(text, SP_TEXT_ESCAPE_DEFAULT);
        scols_line_set_column_data(table->line, table->shown[column], safe);
    }
}

void
sp_table_setf(SpTable *table, guint column, const char *fmt, ...)
{
    g_autofree char *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    sp_table_set(table, column, text);
}

/* Prints the table to @out; FALSE if it could not be written. */
gboolean
sp_table_print(SpTable *table, FILE *out)
{
    gboolean tty = isatty(fileno(out));

    scols_table_set_stream(table->tb, out);
    scols_table_set_termforce(table->tb, tty ? SCOLS_TERMFORCE_AUTO : SCOLS_TERMFORCE_NEVER);
    /* Wrapping is for a terminal: libsmartcols would wrap at the column's
     * width hint anywhere else. */
    for (guint c = 0; tty && c < table->n_columns; c++) {
        struct libscols_column *cl = table->shown[c];
        if (!cl || !(table->columns[c].flags & SP_TABLE_WRAP))
            continue;
        scols_column_set_flags(cl, scols_column_get_flags(cl) | SCOLS_FL_WRAP);
        scols_column_set_wrapfunc(cl, sp_table_wrap_chunksize, sp_table_wrap_nextchunk, NULL);
    }
    return scols_print_table(table->tb) == 0 && fflush(out) == 0;
}

/* ---------------------------------------------------------------- commands */

/**
 * sp_cli_table_new:
 * @command: the command, for the error message ("list")
 *
 * sp_table_new() for a command: an unknown -o column is printed as
 * samepage's usage error, naming it.
 *
 * Returns: (transfer full): the table, or NULL (the command exits 2).
 */
SpTable *
sp_cli_table_new(const char *command, const SpTableColumn *columns, guint n_columns,
                 const SpTableOptions *opt)
{
    g_autoptr(GError) error = NULL;
    SpTable *t = sp_table_new(columns, n_columns, opt, &error);

    if (!t) {
        g_autofree char *msg = g_strdup_printf("samepage: error: %s: %s\n", command,
                                               error->message);
        g_autofree char *safe = sp_text_escape(msg, SP_TEXT_ESCAPE_KEEP_LINES);
        fputs(safe, stderr);
    }
    return t;
}

/* Prints @table on stdout; returns the exit code (1 if stdout failed). */
int
sp_cli_table_print(SpTable *table)
{
    if (!sp_table_print(table, stdout)) {
        fprintf(stderr, "samepage: error: cannot write the table: %s\n", g_strerror(errno));
        return 1;
    }
    return 0;
}
