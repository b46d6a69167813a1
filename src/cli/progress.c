/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * progress.c: the progress line of a long scan (see progress.h)
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "progress.h"

static void
sp_cli_progress_line(const SpScanProgress *p, gpointer data)
{
    SpCliProgress *pr = data;
    gint64 now = g_get_monotonic_time();
    double el = (now - pr->start) / (double)G_USEC_PER_SEC;

    if (el < 1.0 || now - pr->last < G_USEC_PER_SEC / 5)
        return;
    pr->last = now;
    pr->shown = TRUE;
    fprintf(stderr, "\r\033[K%s: pass %u/%u%s, %.2f GiB read, %.0f MiB/s, %.0f s", pr->what,
            p->pass, p->passes, p->waiting ? " (waiting)" : "", p->bytes_read / 1073741824.0,
            p->bytes_read / 1048576.0 / el, el);
    fflush(stderr);
}

/* Shows @opt's scan's progress as @what, when stderr is a terminal. */
void
sp_cli_progress_attach(SpCliProgress *progress, const char *what, SpScanOptions *opt)
{
    *progress = (SpCliProgress){ what, g_get_monotonic_time(), 0, FALSE };
    if (!isatty(STDERR_FILENO))
        return;
    opt->progress = sp_cli_progress_line;
    opt->progress_data = progress;
}

/* Clears the line, once the scan is over. */
void
sp_cli_progress_done(SpCliProgress *progress)
{
    if (progress->shown)
        fputs("\r\033[K", stderr);
    progress->shown = FALSE;
}
