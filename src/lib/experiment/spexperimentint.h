/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spexperimentint.h: the runner's state, shared by the two files that make
 * up SpExperiment
 *
 * spexperiment.c is the runner (KSM reset, the sampling loop, run
 * sequencing, output directories); spclones.c is the clones' lifecycle
 * (overlay, define and start through SpLibvirt, the guest agents, guest
 * RAM through SpGuest, the workload, teardown).  Not API and not for
 * tests (their helpers are in spexperimentpriv.h).
 */
#pragma once

#include <glib.h>

#include "samepage/spexperiment.h"
#include "samepage/spjournal.h"
#include "samepage/splibvirt.h"
#include "samepage/spprocess.h"

G_BEGIN_DECLS

typedef struct {
    guint64 busy, total;             /* /proc/stat */
    guint64 ksmd, guests, self;      /* ticks */
    gint64 when;                     /* monotonic us */
    gboolean valid;
} SpExpCpu;

/* One clone of the current run, as far as it got. */
typedef struct {
    SpLibvirtDomain *dom;
    gboolean defined;
    gboolean started;
    SpProcess *qemu;                 /* its QEMU, held by a pidfd */
} SpExpDomain;

struct _SpExperiment {
    SpPlan *plan;                    /* a copy's owner: the caller's stays theirs */
    const SpPlan *plan_ref;
    SpHost *host;
    char *uri;
    char *output_dir;
    char *plan_text;
    char *image_dir;
    char *template_path;
    char *overlay_parent;            /* the plan's overlay_dir, or NULL: $TMPDIR */
    char *overlay_dir;               /* made by the run, under overlay_parent */
    gboolean overlay_dir_made;
    char *tag;
    char *state_dir;                 /* journals; NULL: none kept */
    SpJournal *journal;              /* what exists now, for `experiment clean` */
    gboolean force_unmerge;          /* skip the MemAvailable check of run=2 */
    guint64 page_size;
    const char *accelerator;         /* from the template's domain type */

    SpExperimentProgressFunc progress;
    gpointer progress_data;
    gint interrupted;
    GMainContext *context;           /* the runner's own: what it iterates while it
                                      * waits (never the caller's) */

    SpLibvirt *lv;
    gboolean ksm_touched;
    SpKsmState ksm_orig;
    pid_t ksmd_pid;
    long clk_tck;

    GPtrArray *runs;                 /* SpExpRun */
    GArray *domains;                 /* SpExpDomain of the current run */
    SpExpCpu cpu;

    gint64 t_start;                  /* monotonic, experiment */
    gint64 wall_start;
    gint64 wall_end;
    gboolean complete;
    char *error_message;
    char *teardown_problems;
};

/* spexperiment.c: what the clones' steps use of the runner. */
void sp_exp_progress(SpExperiment *exp, SpExpRun *run, const char *stage, guint ready, double t,
                     const SpExpSample *s);
gboolean sp_exp_wait_until(SpExperiment *exp, gint64 deadline);
gboolean sp_exp_check_interrupt(SpExperiment *exp, GError **error);
gboolean sp_exp_journal_save(SpExperiment *exp, GError **error);

/* spclones.c: the clones' lifecycle, step by step. */
void sp_exp_domain_clear(gpointer data);
gboolean sp_exp_create_guests(SpExperiment *exp, SpExpRun *run, const char *tmpl,
                              GError **error);
gboolean sp_exp_domain_running(SpExperiment *exp, SpExpRun *run, guint i, const char *doing,
                               GError **error);
gboolean sp_exp_wait_agents(SpExperiment *exp, SpExpRun *run, GError **error);
gboolean sp_exp_find_ram(SpExperiment *exp, SpExpRun *run, GError **error);
gboolean sp_exp_start_workload(SpExperiment *exp, SpExpRun *run, GError **error);
gboolean sp_exp_check_workload(SpExperiment *exp, SpExpRun *run, guint i, gboolean at_start,
                               GError **error);
void sp_exp_teardown_guests(SpExperiment *exp, SpExpRun *run, GString *problems);

G_END_DECLS
