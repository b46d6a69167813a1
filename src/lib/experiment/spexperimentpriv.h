/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spexperimentpriv.h: the pure helpers of the experiment runner
 * (spexperiment.c) and of its clones (spclones.c), for unit tests
 */
#pragma once

#include <glib.h>

#include "samepage/spexperiment.h"

G_BEGIN_DECLS

/* /proc/PID/status: VmRSS in kB (0 for a kernel thread, or a bad line). */
guint64 sp_exp_parse_vmrss(const char *text);

/* The template with every @KEY@ replaced by the XML-escaped value of KEY in
 * @vars; a placeholder left over is an error. */
char *sp_exp_fill_template(const char *tmpl, GHashTable *vars, GError **error);

/* The plan's KSM writes for a host in @cur (advisor_mode=none added when
 * pages_to_scan needs it). */
GArray *sp_exp_ksm_plan_settings(const SpPlan *plan, const SpKsmState *cur);

/* What differs from the plan's KSM knobs (and run) in @st; NULL if nothing. */
char *sp_exp_ksm_disturbed(const SpPlan *plan, const SpKsmState *st, gboolean running, double t);

/* A domain name: sp-PLAN-TAG-RUN-GUEST, PLAN reduced to [a-z0-9-]. */
char *sp_exp_domain_name(const char *plan_name, const char *tag, guint run, guint guest);

/* The sampling schedule, in whole microseconds: slot k (1-based) is due at
 * k * @interval_us after run=1, up to @duration_us plus 1 ms (at most half an
 * interval).  An interval
 * below 1 us counts as 1 us. */
guint64 sp_exp_slot_count(gint64 interval_us, gint64 duration_us);
/* The slot to sample after slot @k when @elapsed_us have passed since
 * run=1: the next one still ahead, skipping the ones a slow sample ate, but
 * never the last; always more than @k; 0 when @k was the last. */
guint64 sp_exp_next_slot(gint64 interval_us, gint64 duration_us, guint64 k, gint64 elapsed_us,
                         gboolean *last);

G_END_DECLS
