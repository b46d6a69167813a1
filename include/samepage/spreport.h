/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spreport.h: an experiment's results as CSV, JSON, gnuplot plots and a
 * Markdown report
 *
 * Output directory:
 *   plan.ini                 the plan as run
 *   results.json             configuration, host, every run's steady state,
 *                            conclusions, complete or not and why
 *   summary.csv              one row per run (steady state)
 *   report.md                configuration, results table, conclusions, plots
 *   plots/plots.gp, *.png    each metric against time and against VM count
 *   run-NN-Kvm/samples.csv   one row per sample (all figures)
 *   run-NN-Kvm/guests.csv    one row per guest per sample
 *   run-NN-Kvm/run.json      the same, with the guests and the steady state
 *
 * Everything but sp_report_write_*() is a pure function of the results.
 */
#pragma once

#include <glib.h>

#include "samepage/sphost.h"
#include "samepage/spjson.h"
#include "samepage/spplan.h"
#include "samepage/spresults.h"

G_BEGIN_DECLS

#define SP_REPORT_ERROR (sp_report_error_quark())
GQuark sp_report_error_quark(void);

typedef enum {
    SP_REPORT_ERROR_WRITE,          /* a file or directory could not be written */
} SpReportErrorCode;

typedef struct {
    const char *uri;
    const char *image_dir;
    const char *template_path;
    const char *output_dir;
    const char *accelerator;        /* "TCG" or "KVM" */
    gint64 wall_start;              /* g_get_real_time() */
    gint64 wall_end;
    gboolean complete;
    const char *error_message;      /* why not complete */
    const char *teardown_problems;  /* what teardown could not undo */
    char *kernel;                   /* owned: the host's release */
    guint n_cpus;
    guint64 mem_total_kib;
} SpReportInfo;

void sp_report_info_init(SpReportInfo *info);
void sp_report_info_from_host(SpReportInfo *info, const SpHost *host);
void sp_report_info_clear(SpReportInfo *info);

void sp_report_csv_field(GString *out, const char *field);
char *sp_report_samples_csv(const SpExpRun *run);
char *sp_report_guests_csv(const SpExpRun *run);
char *sp_report_summary_csv(GPtrArray *runs);
GPtrArray *sp_report_conclusions(const SpPlan *plan, GPtrArray *runs);
json_object *sp_report_results_json(const SpReportInfo *info, const SpPlan *plan,
                                    GPtrArray *runs);
char *sp_report_gnuplot_script(const SpPlan *plan, GPtrArray *runs, GPtrArray *pngs);
char *sp_report_markdown(const SpReportInfo *info, const SpPlan *plan, GPtrArray *runs,
                         GPtrArray *pngs);
char *sp_report_summary_table(const SpPlan *plan, GPtrArray *runs);

gboolean sp_report_write_run(const SpExpRun *run, GError **error);
gboolean sp_report_write_all(const SpReportInfo *info, const SpPlan *plan, GPtrArray *runs,
                             GError **error);

G_END_DECLS
