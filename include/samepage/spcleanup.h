/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcleanup.h: undo what a killed experiment left behind
 *
 * From its journal (SpJournal): the QEMU processes and libvirt domains
 * (destroyed and undefined through libvirt, or the processes stopped by
 * PID when libvirtd does not answer), the overlays and their directory,
 * the KSM knobs as they were before it (not after a reboot: the boot reset
 * them), and a note in its output directory that the data is incomplete.
 * The journal is deleted only when nothing is left.
 */
#pragma once

#include <glib.h>

#include "samepage/sphost.h"
#include "samepage/spjournal.h"

G_BEGIN_DECLS

#define SP_CLEANUP_ERROR (sp_cleanup_error_quark())
GQuark sp_cleanup_error_quark(void);

typedef enum {
    SP_CLEANUP_ERROR_LEFT,     /* something could not be undone (named) */
    SP_CLEANUP_ERROR_RUNNING,  /* an experiment runs: its journal is its own */
    SP_CLEANUP_ERROR_JOURNAL,  /* a journal cannot be read (only that: the
                                * others were undone) */
} SpCleanupErrorCode;

typedef struct {
    const char *uri;           /* libvirt; NULL: each journal's own */
    gboolean dry_run;          /* say what would be done, change nothing */
    guint libvirt_flags;       /* SpLibvirtOpenFlags (read-only for a dry run, say) */
} SpCleanupOptions;

/* One line per action ("undefined domain sp-x-1", ...). */
typedef void (*SpCleanupLogFunc)(const SpJournal *j, const char *line, gpointer user_data);

/* Undo one dead experiment's journal.  FALSE with what is left in @error;
 * the journal is then kept (and rewritten with what remains). */
gboolean sp_cleanup_journal(const SpHost *host, SpJournal *j, const SpCleanupOptions *opt,
                            SpCleanupLogFunc log, gpointer user_data, GError **error);

/* Every dead experiment's journal in @dir, newest first (so that KSM ends
 * as it was before the oldest).  *n_cleaned counts the journals undone,
 * *n_running the live experiments found (left alone).  Goes on after a
 * journal that cannot be undone, and past a file that is no good journal
 * (left in place); the error names each.  Its code is
 * SP_CLEANUP_ERROR_JOURNAL when bad files were all that went wrong. */
gboolean sp_cleanup_dir(const SpHost *host, const char *dir, const SpCleanupOptions *opt,
                        SpCleanupLogFunc log, gpointer user_data, guint *n_cleaned,
                        guint *n_running, GError **error);

G_END_DECLS
