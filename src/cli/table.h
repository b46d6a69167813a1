/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * table.h: the tables samepage prints, through libsmartcols
 *
 * Every table of the CLI is one SpTable: a command names its columns once
 * (name, width hint, alignment, help), adds the lsblk-style options
 * (--raw, -o/--output COLUMNS, -n/--noheadings) to its option context, and
 * fills rows by column.  Widths follow the longest cell (a long domain name
 * widens its column instead of shifting the others); on a terminal, free
 * text columns wrap at its width; anywhere else (a pipe, a log) nothing is
 * truncated or wrapped.
 */
#pragma once

#include <stdio.h>
#include <glib.h>

typedef enum {
    SP_TABLE_RIGHT = 1 << 0,    /* right-aligned: numbers */
    SP_TABLE_WRAP = 1 << 1,     /* free text: wrapped at a terminal's width */
    SP_TABLE_EXTRA = 1 << 2,    /* shown only when -o names it */
} SpTableColumnFlags;

typedef struct {
    const char *name;           /* the header, and the name -o takes (any case) */
    double width;               /* libsmartcols width hint: columns, or a fraction
                                 * of the terminal when below 1 */
    guint flags;                /* SpTableColumnFlags */
    const char *help;           /* one phrase, for --help and samepage(1) */
} SpTableColumn;

/* What the table options said; filled by the option parser. */
typedef struct {
    gboolean raw;               /* --raw: one space between cells, blanks and
                                 * control characters hex-escaped (\x20) */
    gboolean noheadings;        /* -n/--noheadings */
    char *output;               /* -o/--output: "NAME,NAME", "+NAME" adds to the
                                 * defaults; NULL: the defaults */
} SpTableOptions;

void sp_table_options_clear(SpTableOptions *opt);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SpTableOptions, sp_table_options_clear)

/* Adds --raw, -o/--output and -n/--noheadings to @ctx, and sets its
 * description to the list of @columns (after @extra, when not NULL). */
void sp_table_add_options(GOptionContext *ctx, SpTableOptions *opt, const SpTableColumn *columns,
                          guint n_columns, const char *extra);
/* Any of the options given: the command prints this one table only. */
gboolean sp_table_options_given(const SpTableOptions *opt);

typedef struct _SpTable SpTable;

SpTable *sp_table_new(const SpTableColumn *columns, guint n_columns, const SpTableOptions *opt,
                      GError **error);
void sp_table_free(SpTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpTable, sp_table_free)

gboolean sp_table_shows(const SpTable *table, guint column);
void sp_table_add_row(SpTable *table);
void sp_table_set(SpTable *table, guint column, const char *text);
void sp_table_setf(SpTable *table, guint column, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
gboolean sp_table_print(SpTable *table, FILE *out);

/* For the commands: sp_table_new() printing samepage's usage error, and
 * sp_table_print() on stdout returning the exit code. */
SpTable *sp_cli_table_new(const char *command, const SpTableColumn *columns, guint n_columns,
                          const SpTableOptions *opt);
int sp_cli_table_print(SpTable *table);

/* A "-o NAME" that no column has (the message names it and the choices). */
#define SP_TABLE_ERROR (sp_table_error_quark())
GQuark sp_table_error_quark(void);
enum { SP_TABLE_ERROR_COLUMN };
