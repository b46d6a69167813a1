/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd-experiment.c: samepage experiment run PLAN [--output DIR] [--json] [--force]
 *                   samepage experiment clean [--dry-run]
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "cli.h"
#include "datadir.h"
#include "samepage/spcleanup.h"
#include "samepage/spexperiment.h"
#include "samepage/spksm.h"
#include "samepage/spnuma.h"
#include "samepage/spplan.h"
#include "samepage/spreport.h"

/* Where experiments keep their journals: $SAMEPAGE_STATE_DIR, or
 * $(localstatedir)/lib/samepage, plus "experiments". */
static char *
sp_cli_experiment_state_dir(void)
{
    const char *env = g_getenv("SAMEPAGE_STATE_DIR");

    return g_build_filename(env && *env ? env : SP_STATE_DIR, "experiments", NULL);
}

typedef struct {
    const SpJournal *last;
    json_object *experiments;      /* experiment clean --json's, or NULL */
    json_object *actions;          /* the last one's "actions" */
} SpCliCleanupLog;

static void
sp_cli_cleanup_log(const SpJournal *j, const char *line, gpointer user_data)
{
    SpCliCleanupLog *log = user_data;

    if (log->last != j) {
        g_autoptr(GDateTime) when = g_date_time_new_from_unix_local(j->started / G_USEC_PER_SEC);
        g_autofree char *since = when ? g_date_time_format(when, "%F %T") : g_strdup("?");
        sp_cli_print(stderr, "samepage: cleaning up after the experiment \"%s\" (pid %d, started %s), "
                "which no longer runs:\n", j->plan ? j->plan : "?", (int)j->owner_pid, since);
        log->last = j;
        if (log->experiments) {
            g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(j->started / G_USEC_PER_SEC);
            g_autofree char *iso = utc ? g_date_time_format_iso8601(utc) : NULL;
            json_object *e = json_object_new_object();
            json_object_object_add(e, "plan", j->plan ? json_object_new_string(j->plan) : NULL);
            json_object_object_add(e, "owner_pid", json_object_new_int(j->owner_pid));
            json_object_object_add(e, "started", iso ? json_object_new_string(iso) : NULL);
            log->actions = json_object_new_array();
            json_object_object_add(e, "actions", log->actions);
            json_object_array_add(log->experiments, e);
        }
    }
    sp_cli_print(stderr, "  %s\n", line);
    if (log->actions)
        json_object_array_add(log->actions, json_object_new_string(line));
}

/* Undo what killed experiments left; FALSE (with a message printed) if
 * something remains. */
static gboolean
sp_cli_experiment_cleanup(const SpCliGlobal *global, const SpHost *host, const char *state_dir,
                          gboolean dry_run, gboolean bad_journal_ok, guint *n_cleaned,
                          guint *n_running, json_object *experiments)
{
    SpCleanupOptions opt = { global->uri, dry_run, sp_cli_libvirt_flags(global) };
    SpCliCleanupLog log = { NULL, experiments, NULL };
    g_autoptr(GError) error = NULL;

    if (!sp_cleanup_dir(host, state_dir, &opt, sp_cli_cleanup_log, &log, n_cleaned, n_running,
                        &error)) {
        /* A bad journal file names nothing that can be undone: `run` says
         * so and goes on; `clean` fails, naming it. */
        if (bad_journal_ok && g_error_matches(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_JOURNAL)) {
            fprintf(stderr, "samepage: warning: experiment: %s\n", error->message);
            return TRUE;
        }
        sp_cli_error("experiment: cleaning up after a killed experiment: %s", error->message);
        return FALSE;
    }
    return TRUE;
}

static int
sp_cli_experiment_clean(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean dry_run = FALSE, json = FALSE;
    GOptionEntry entries[] = {
        { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "say what would be undone, change nothing",
          NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- undo what killed experiments left");
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autofree char *state_dir = sp_cli_experiment_state_dir();
    guint cleaned = 0, running = 0;
    int rc;

    g_option_context_set_summary(ctx,
        "An experiment tears down its guests and restores KSM itself, on Ctrl-C too, but not\n"
        "when it is killed.  Its journal (in $SAMEPAGE_STATE_DIR/experiments, default\n"
        SP_STATE_DIR "/experiments) names what it had made: the domains are destroyed and\n"
        "undefined, the overlays removed, the KSM knobs put back as they were before it, and its\n"
        "output directory marked INCOMPLETE.  Running experiments are left alone.\n"
        "`experiment run` does this first by itself.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (argc > 1) {
        sp_cli_error("experiment clean: unexpected argument '%s'", argv[1]);
        return SP_EXIT_USAGE;
    }
    if ((rc = sp_cli_require_local(global, "experiment clean", FALSE,
                                   "restores KSM knobs and removes overlay files")) != SP_EXIT_OK ||
        (!dry_run && (rc = sp_cli_refuse_readonly(global, "experiment clean",
                                                  "destroys domains and writes KSM knobs "
                                                  "(--dry-run changes nothing)")) != SP_EXIT_OK))
        return rc;
    g_autoptr(json_object) experiments = json ? json_object_new_array() : NULL;
    if (!sp_cli_experiment_cleanup(global, host, state_dir, dry_run, FALSE, &cleaned, &running,
                                   experiments))
        return SP_EXIT_FAILURE;
    if (json) {
        g_autoptr(json_object) doc = sp_json_document_new("experiment clean");
        json_object_object_add(doc, "state_dir", json_object_new_string(state_dir));
        json_object_object_add(doc, "dry_run", json_object_new_boolean(dry_run));
        json_object_object_add(doc, "cleaned", json_object_new_int(cleaned));
        json_object_object_add(doc, "running", json_object_new_int(running));
        json_object_object_add(doc, "experiments", json_object_get(experiments));
        sp_cli_print_json(doc);
        return SP_EXIT_OK;
    }
    if (running)
        sp_cli_print(stdout, "%u experiment%s running (left alone)\n", running, running == 1 ? " is" : "s are");
    if (dry_run)
        sp_cli_print(stdout, "dry run: nothing was changed\n");
    else if (cleaned)
        sp_cli_print(stdout, "cleaned up after %u killed experiment%s\n", cleaned, cleaned == 1 ? "" : "s");
    else
        sp_cli_print(stdout, "nothing to clean up (%s holds no killed experiment)\n", state_dir);
    return SP_EXIT_OK;
}

typedef struct {
    SpExperiment *exp;
    gboolean tty;
    gboolean interrupted;
    char *last_stage;
    gint64 last_print;
    gboolean line_open;
} SpCliExperiment;

typedef struct {
    SpCliExperiment *c;
    const char *name;
} SpCliSignal;

static gboolean
sp_cli_experiment_signal(gpointer data)
{
    const SpCliSignal *sig = data;
    SpCliExperiment *c = sig->c;

    if (!c->interrupted) {
        if (c->line_open)
            fputc('\n', stderr);
        c->line_open = FALSE;
        sp_cli_print(stderr, "samepage: interrupted by %s: tearing down the guests and restoring KSM "
                        "(the data so far is kept, marked incomplete)\n", sig->name);
    }
    c->interrupted = TRUE;
    sp_experiment_interrupt(c->exp);
    return G_SOURCE_CONTINUE;
}

static void
sp_cli_experiment_progress(const SpExperimentProgress *p, gpointer data)
{
    SpCliExperiment *c = data;
    g_autoptr(GString) line = g_string_new(NULL);
    gint64 now = g_get_monotonic_time();
    guint el = (guint)p->elapsed_s;
    gboolean new_stage = g_strcmp0(c->last_stage, p->stage) != 0;

    g_string_append_printf(line, "run %u/%u: %u VM%s, %s", p->run, p->n_runs, p->n_vms,
                           p->n_vms == 1 ? "" : "s", p->stage);
    if (g_str_equal(p->stage, "booting") || g_str_equal(p->stage, "creating guests") ||
        g_str_equal(p->stage, "starting guests"))
        g_string_append_printf(line, " (%u/%u)", p->ready, p->n_vms);
    if (g_str_equal(p->stage, "sampling"))
        g_string_append_printf(line, " t=%.0f/%.0f s", p->t, p->duration);
    if (p->have_figures)
        g_string_append_printf(line, ", saved %.0f MiB (%.1f%%), model %.0f MiB", p->saved_mib,
                               p->reclaimed_pct, p->pred_saved_mib);
    g_string_append_printf(line, " | elapsed %u:%02u:%02u", el / 3600, el / 60 % 60, el % 60);

    if (c->tty) {
        fputs("\r\033[K", stderr);   /* ours; the line's text goes through the escaper */
        sp_cli_print(stderr, "%s", line->str);
        c->line_open = TRUE;
    } else if (new_stage || now - c->last_print >= 30 * G_USEC_PER_SEC) {
        sp_cli_print(stderr, "%s\n", line->str);
        c->last_print = now;
    }
    fflush(stderr);
    g_free(c->last_stage);
    c->last_stage = g_strdup(p->stage);
}

/* Every run starts with run=2, which unmerges every merged page on the
 * host, other processes' too: say so, and refuse (unless forced) when
 * MemAvailable does not cover the copies.  The runner checks again before
 * each reset. */
static gboolean
sp_cli_experiment_check_unmerge(const SpHost *host, gboolean force)
{
    g_autoptr(GError) error = NULL;
    SpKsmState st;
    gint64 sharing;
    guint64 bytes, avail;

    if (!sp_ksm_read(host, &st, &error))
        return TRUE;        /* the runner's own setup check reports it */
    sharing = st.entry[SP_KSM_PAGES_SHARING].value;
    if (sharing <= 0)
        return TRUE;
    if (!sp_ksm_unmerge_all_check(host, &st, &bytes, &avail, &error) && !force) {
        sp_cli_error("experiment: resetting KSM (run=2) would unmerge the pages other processes "
                     "on this host have merged: %s", error->message);
        return FALSE;
    }
    fprintf(stderr, "samepage: warning: other processes on this host have %" G_GINT64_FORMAT
            " merged pages (%.1f MiB of copies, MemAvailable %.1f MiB): every run's KSM reset "
            "(run=2) unmerges them\n", sharing, bytes / 1048576.0, avail / 1048576.0);
    return TRUE;
}

static char *
sp_cli_experiment_default_output(const SpPlan *plan)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");
    g_autofree char *name = g_strdup(plan->name);

    g_strcanon(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", '-');
    return g_strdup_printf("experiment-%s-%s", name, stamp);
}

int
sp_cli_experiment(const SpCliGlobal *global, int argc, char **argv)
{
    g_autofree char *output = NULL;
    g_autofree char *image_dir = NULL;
    g_autofree char *template_path = NULL;
    /* Installed, or the source tree's vm-images/ when run from the build tree. */
    g_autofree char *data_dir = sp_cli_data_dir();
    g_autofree char *cache_dir = sp_cli_image_dir();
    g_autofree char *image_dir_help = g_strdup_printf(
        "where base.qcow2, vmlinuz and initrd.img are (default: the plan's [guest] "
        "image_dir, $SAMEPAGE_IMAGE_DIR, or %s)", cache_dir);
    g_autofree char *template_help = g_strdup_printf(
        "libvirt domain template (default: %s/domain.xml.in)", data_dir);
    gboolean json = FALSE, force = FALSE;
    GOptionEntry entries[] = {
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
          "directory for the results (default: experiment-NAME-DATE-TIME)", "DIR" },
        { "image-dir", 0, 0, G_OPTION_ARG_FILENAME, &image_dir, image_dir_help, "DIR" },
        { "template", 0, 0, G_OPTION_ARG_FILENAME, &template_path, template_help, "FILE" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print results.json instead of the table", NULL },
        { "force", 0, 0, G_OPTION_ARG_NONE, &force,
          "reset KSM (run=2) even if MemAvailable does not cover unmerging what is merged", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("run PLAN | clean [--dry-run] - run an experiment plan, or undo what killed ones left");
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = NULL;
    g_autoptr(SpExperiment) exp = NULL;
    g_autofree char *plan_text = NULL;
    g_autofree char *default_images = NULL;
    g_autofree char *default_template = NULL;
    g_autofree char *state_dir = sp_cli_experiment_state_dir();
    SpExperimentOptions opt = { 0 };
    SpCliExperiment c = { 0 };
    SpCliSignal sigs[] = { { &c, "SIGINT" }, { &c, "SIGTERM" }, { &c, "SIGHUP" } };
    static const int signums[] = { SIGINT, SIGTERM, SIGHUP };
    GSource *sig[3];
    gboolean ok;
    int rc;

    g_option_context_set_summary(ctx,
        "For every VM count of the plan: reset KSM and apply the plan's knobs, start that many\n"
        "cloned Debian guests under libvirt (qcow2 overlays on one base image), wait for their\n"
        "guest agents, start the workload, turn KSM on and sample the guests' sharing, the\n"
        "model's prediction and CPU.  Writes CSV, JSON, plots and report.md; tears down every\n"
        "guest and restores KSM at the end, on failure and on Ctrl-C.  Needs root.");
    g_option_context_set_description(ctx,
        "Subcommands ('samepage help experiment SUBCOMMAND' shows one's options):\n"
        "  run PLAN  run the plan (the options above)\n"
        "  clean     undo what killed experiments left (--dry-run)\n");
    if (argc >= 2 && g_str_equal(argv[1], "clean"))
        return sp_cli_experiment_clean(global, argc - 1, argv + 1);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (argc < 2 || !g_str_equal(argv[1], "run")) {
        sp_cli_error("experiment: the subcommands are 'run PLAN' and 'clean' (see 'samepage "
                     "help experiment')");
        return SP_EXIT_USAGE;
    }
    if (argc != 3) {
        sp_cli_error(argc < 3 ? "experiment run: give the plan file"
                              : "experiment run: one plan at a time ('%s' is extra)", argv[3]);
        return SP_EXIT_USAGE;
    }
    if ((rc = sp_cli_require_local(global, "experiment run", FALSE,
                                   "drives KSM and reads the guests' memory")) !=
            SP_EXIT_OK ||
        (rc = sp_cli_refuse_readonly(global, "experiment run", "starts domains and writes KSM "
                                     "knobs")) != SP_EXIT_OK)
        return rc;
    if (!g_file_get_contents(argv[2], &plan_text, NULL, &error)) {
        sp_cli_error("experiment: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    plan = sp_plan_load(argv[2], host, &error);
    if (!plan) {
        sp_cli_error("experiment: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (!output)
        output = sp_cli_experiment_default_output(plan);

    default_images = g_strdup(image_dir ? image_dir : cache_dir);
    default_template = template_path ? g_strdup(template_path)
        : g_build_filename(data_dir, "domain.xml.in", NULL);
    /* Command-line paths win over the plan's. */
    if (image_dir)
        g_clear_pointer(&plan->image_dir, g_free);
    if (template_path)
        g_clear_pointer(&plan->template_path, g_free);

    opt.uri = global->uri;
    opt.output_dir = output;
    opt.plan_text = plan_text;
    opt.default_image_dir = default_images;
    opt.default_template = default_template;
    opt.state_dir = state_dir;
    opt.force_unmerge = force;
    if (!sp_cli_experiment_check_unmerge(host, force))
        return SP_EXIT_FAILURE;
    /* What a killed experiment left would disturb this one: undo it first. */
    if (!sp_cli_experiment_cleanup(global, host, state_dir, FALSE, TRUE, NULL, NULL, NULL))
        return SP_EXIT_FAILURE;
    exp = sp_experiment_new(plan, host, &opt);
    c.exp = exp;
    c.tty = isatty(STDERR_FILENO);
    sp_experiment_set_progress_func(exp, sp_cli_experiment_progress, &c);
    /* The runner iterates its own context while it waits: the handlers go there. */
    for (gsize i = 0; i < G_N_ELEMENTS(sig); i++) {
        sig[i] = g_unix_signal_source_new(signums[i]);
        g_source_set_callback(sig[i], sp_cli_experiment_signal, &sigs[i], NULL);
        g_source_attach(sig[i], sp_experiment_get_context(exp));
    }

    sp_cli_print(stderr, "samepage: experiment \"%s\": VM counts", plan->name);
    for (guint i = 0; i < plan->vm_counts->len; i++)
        sp_cli_print(stderr, "%s%u", i ? "," : " ", g_array_index(plan->vm_counts, guint, i));
    sp_cli_print(stderr, ", %u MiB guests, %g s per run; results in %s\n", plan->memory_mib,
            plan->duration_s, output);

    ok = sp_experiment_run(exp, &error);
    for (gsize i = 0; i < G_N_ELEMENTS(sig); i++) {
        g_source_destroy(sig[i]);
        g_source_unref(sig[i]);
    }
    if (c.line_open)
        fputc('\n', stderr);
    g_free(c.last_stage);

    if (json) {
        g_autoptr(json_object) doc = sp_json_document_take(sp_json_document_new("experiment run"),
                                                           sp_experiment_results_json(exp));
        json_object *err = NULL;
        /* An experiment that failed before its first run has no error of
         * its own in the results: the document carries the reason. */
        if (!ok && json_object_object_get_ex(doc, "error", &err) && !err)
            json_object_object_add(doc, "error", json_object_new_string(error->message));
        sp_cli_print_json(doc);
    } else if (sp_experiment_get_runs(exp)->len) {
        g_autofree char *table = sp_report_summary_table(plan, sp_experiment_get_runs(exp));
        g_autoptr(GPtrArray) conc = sp_report_conclusions(plan, sp_experiment_get_runs(exp));
        double el = sp_experiment_get_elapsed(exp);

        sp_cli_print(stdout, "\n%s\n", table);
        for (guint i = 0; i < conc->len; i++)
            sp_cli_print(stdout, "- %s\n", (const char *)g_ptr_array_index(conc, i));
        sp_cli_print(stdout, "\nTook %.0f s (%u:%02u). Results: %s/report.md (CSV, JSON, plots beside it)\n",
               el, (guint)el / 60, (guint)el % 60, output);
    }
    if (!ok) {
        sp_cli_error("experiment: %s", error->message);
        if (sp_experiment_get_runs(exp)->len)
            sp_cli_print(stderr, "samepage: the data collected so far is in %s, marked incomplete\n",
                    output);
        return SP_EXIT_FAILURE;
    }
    return SP_EXIT_OK;
}
