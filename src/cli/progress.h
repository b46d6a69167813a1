/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * progress.h: the progress line of a long scan (estimate, ksm numa's
 * prediction)
 *
 * On stderr, only when it is a terminal (a log or a pipe gets none),
 * rewritten in place at most 5 times a second, from the second second on
 * (a short scan shows none); the library reports through
 * SpScanOptions.progress and never prints.
 */
#pragma once

#include <glib.h>
#include "samepage/spscan.h"

typedef struct {
    const char *what;           /* "scanning" */
    gint64 start;
    gint64 last;
    gboolean shown;
} SpCliProgress;

void sp_cli_progress_attach(SpCliProgress *progress, const char *what, SpScanOptions *opt);
void sp_cli_progress_done(SpCliProgress *progress);
