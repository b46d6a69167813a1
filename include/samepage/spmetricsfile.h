/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmetricsfile.h: metrics for node_exporter's textfile collector
 *
 * sp_metrics_textfile_write() replaces samepage.prom (or the *.prom file
 * named) atomically: a temporary file in the same directory, fsync, rename,
 * fsync of the directory, so node_exporter never reads half a file.  It
 * refuses a directory others could tamper with (world-writable without the
 * sticky bit, or owned by neither root nor us) and never replaces what it
 * did not write: the target, when it exists, must be a regular file of ours
 * that starts with SP_METRICS_TEXTFILE_HEADER.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define SP_METRICS_FILE_ERROR (sp_metrics_file_error_quark())
GQuark sp_metrics_file_error_quark(void);

typedef enum {
    SP_METRICS_FILE_ERROR_PATH,      /* not a *.prom name, or no such directory */
    SP_METRICS_FILE_ERROR_UNSAFE,    /* a directory others may write in */
    SP_METRICS_FILE_ERROR_NOT_OURS,  /* the target exists and is not our file */
    SP_METRICS_FILE_ERROR_IO,        /* create, write, fsync or rename failed */
} SpMetricsFileErrorCode;

#define SP_METRICS_TEXTFILE_NAME "samepage.prom"
/* The first line of every file written; the mark of "ours". */
#define SP_METRICS_TEXTFILE_HEADER \
    "# samepage metrics, written by samepaged; replaced atomically, do not edit\n"

/* @path: a directory (then SP_METRICS_TEXTFILE_NAME in it) or a file whose
 * name ends in ".prom".  Writes SP_METRICS_TEXTFILE_HEADER then @text, mode
 * 0644. */
gboolean sp_metrics_textfile_write(const char *path, const char *text, GError **error);

/* The same in a worker thread (fsync may take a while on a busy disk), for
 * a caller on a main loop; @callback runs on the thread-default context. */
void sp_metrics_textfile_write_async(const char *path, const char *text,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data);
gboolean sp_metrics_textfile_write_finish(GAsyncResult *result, GError **error);

G_END_DECLS
