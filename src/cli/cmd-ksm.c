/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd-ksm.c: samepage ksm [--json] | samepage ksm set [--force] KEY=VALUE...
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "cli.h"
#include "progress.h"
#include "table.h"
#include "samepage/spksm.h"
#include "samepage/spmaps.h"
#include "samepage/spnuma.h"
#include "samepage/spestimate.h"

enum { KSM_KEY, KSM_VALUE, KSM_KIND, KSM_MEANING };
static const SpTableColumn sp_cli_ksm_columns[] = {
    [KSM_KEY] = { "KEY", 20, 0, "the file in /sys/kernel/mm/ksm" },
    [KSM_VALUE] = { "VALUE", 10, 0, "its value, or 'unsupported' where this kernel lacks it" },
    [KSM_KIND] = { "KIND", 6, SP_TABLE_EXTRA, "knob (written by ksm set) or figure (read-only)" },
    [KSM_MEANING] = { "MEANING", 0.4, SP_TABLE_WRAP, "what it is" },
};

/* @only_supported: leave out the keys @state lacks (another host's KSM
 * through libvirt: they are out of libvirt's reach, not unsupported). */
static int
sp_cli_ksm_print_table(const SpKsmState *state, gboolean only_supported, SpTable *table)
{
    for (guint i = 0; i < SP_KSM_N_KEYS; i++) {
        const SpKsmKeyInfo *info = sp_ksm_key_info(i);
        const SpKsmEntry *e = &state->entry[i];
        if (only_supported && !e->supported)
            continue;
        g_autofree char *v = e->supported ? sp_ksm_format_value(i, e->value)
                                          : g_strdup("unsupported");

        sp_table_add_row(table);
        sp_table_set(table, KSM_KEY, info->name);
        sp_table_set(table, KSM_VALUE, v);
        sp_table_set(table, KSM_KIND, info->writable ? "knob" : "figure");
        /* Without the KIND column, the meaning says what is read-only. */
        sp_table_setf(table, KSM_MEANING, "%s%s",
                      info->writable || sp_table_shows(table, KSM_KIND) ? "" : "(figure) ",
                      info->help);
    }
    return sp_cli_table_print(table);
}

static int
sp_cli_ksm_set(const SpCliGlobal *global, int argc, char **argv)
{
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(GError) error = NULL;
    g_autofree SpKsmSetting *settings = NULL;
    SpKsmState before, after;
    g_autofree char *uri = NULL, *why = NULL;
    SpLibvirtPlace place;

    gboolean json = FALSE, force = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print each change as JSON", NULL },
        { "force", 0, 0, G_OPTION_ARG_NONE, &force,
          "run=2 even if MemAvailable does not cover the unmerge", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("KEY=VALUE... - write KSM knobs");
    int rc;

    g_option_context_set_summary(ctx,
        "Writes knobs of /sys/kernel/mm/ksm: all are validated first, and a failed write\n"
        "restores the others.  run=2 unmerges every merged page on the host: it is refused\n"
        "unless MemAvailable covers pages_sharing x page size + 10% (--force skips the check).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    /* --json and --force may come anywhere among the KEY=VALUE words. */
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK ||
        (rc = sp_cli_refuse_readonly(global, "ksm set", "writes KSM knobs")) != SP_EXIT_OK)
        return rc;
    argc--;
    argv++;
    if (argc < 1) {
        sp_cli_error("ksm set: give at least one KEY=VALUE");
        return SP_EXIT_USAGE;
    }
    settings = g_new0(SpKsmSetting, argc);
    for (int i = 0; i < argc; i++) {
        if (!sp_ksm_parse_setting(argv[i], &settings[i], &error)) {
            sp_cli_error("ksm set: %s", error->message);
            return SP_EXIT_USAGE;
        }
        /* What the command line alone says is wrong is a usage error. */
        if (!sp_ksm_key_info(settings[i].key)->writable) {
            sp_cli_error("ksm set: %s is a read-only figure, not a knob",
                         sp_ksm_key_info(settings[i].key)->name);
            return SP_EXIT_USAGE;
        }
        for (int j = 0; j < i; j++) {
            if (settings[j].key == settings[i].key) {
                sp_cli_error("ksm set: %s is given twice ('%s' and '%s')",
                             sp_ksm_key_info(settings[i].key)->name, argv[j], argv[i]);
                return SP_EXIT_USAGE;
            }
        }
    }
    /* Another host's knobs go through its libvirtd, which passes three. */
    if (!sp_cli_uri_place(global, "ksm set", TRUE, &place, &uri, &why))
        return SP_EXIT_USAGE;
    if (place == SP_LIBVIRT_PLACE_REMOTE) {
        g_autoptr(SpLibvirt) lv = sp_cli_open_libvirt(global, FALSE, &error);
        if (!lv || !sp_libvirt_get_ksm(lv, &before, &error) ||
            !sp_libvirt_set_ksm(lv, settings, argc, &error) ||
            !sp_libvirt_get_ksm(lv, &after, &error)) {
            sp_cli_error("ksm set: %s", error->message);
            return SP_EXIT_FAILURE;
        }
        if (json) {
            g_autoptr(json_object) doc = sp_json_document_new("ksm set");
            json_object_object_add(doc, "uri", json_object_new_string(sp_libvirt_get_uri(lv)));
            json_object_object_add(doc, "changes",
                                   sp_ksm_changes_to_json(settings, argc, &before, &after));
            sp_cli_print_json(doc);
            return SP_EXIT_OK;
        }
        for (int i = 0; i < argc; i++) {
            SpKsmKey k = settings[i].key;
            g_autofree char *was = sp_ksm_format_value(k, before.entry[k].value);
            g_autofree char *now = sp_ksm_format_value(k, after.entry[k].value);
            sp_cli_print(stdout, "%s: %s -> %s (through libvirt on %s)\n", sp_ksm_key_info(k)->name,
                         was, now, sp_libvirt_get_uri(lv));
        }
        return SP_EXIT_OK;
    }
    if (!sp_ksm_read(host, &before, &error)) {
        sp_cli_error("ksm set: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    /* run=2 unmerges every merged page on the host, whoever merged it. */
    if (sp_ksm_settings_unmerge(settings, argc) && before.entry[SP_KSM_PAGES_SHARING].value > 0) {
        guint64 bytes, avail;
        if (!sp_ksm_unmerge_all_check(host, &before, &bytes, &avail, &error) && !force) {
            sp_cli_error("ksm set: run=2: %s", error->message);
            return SP_EXIT_FAILURE;
        }
        g_clear_error(&error);
        fprintf(stderr, "samepage: warning: run=2 unmerges the %" G_GINT64_FORMAT " pages merged "
                "on this host (every process's, %.1f MiB of copies; MemAvailable %.1f MiB)\n",
                before.entry[SP_KSM_PAGES_SHARING].value, bytes / 1048576.0, avail / 1048576.0);
    }
    if (!sp_ksm_apply(host, settings, argc, &error) ||
        !sp_ksm_read(host, &after, &error)) {
        sp_cli_error("ksm set: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (json) {
        g_autoptr(json_object) doc = sp_json_document_new("ksm set");
        json_object_object_add(doc, "uri", NULL);
        json_object_object_add(doc, "changes", sp_ksm_changes_to_json(settings, argc, &before, &after));
        sp_cli_print_json(doc);
        return SP_EXIT_OK;
    }
    for (int i = 0; i < argc; i++) {
        SpKsmKey k = settings[i].key;
        g_autofree char *was = sp_ksm_format_value(k, before.entry[k].value);
        g_autofree char *now = sp_ksm_format_value(k, after.entry[k].value);
        sp_cli_print(stdout, "%s: %s -> %s\n", sp_ksm_key_info(k)->name, was, now);
    }
    return SP_EXIT_OK;
}

/* pages_sharing the model predicts for the registered processes with the
 * given merge_across_nodes, or -1. */
static gint64
sp_cli_predict_sharing(const SpHost *host, GArray *pids, gboolean man)
{
    SpScanOptions sopt;
    SpEstimateOptions eopt;
    g_autoptr(GError) error = NULL;

    if (pids->len == 0)
        return 0;
    sp_scan_options_init(&sopt);
    sopt.passes = 1;
    sopt.interval_ms = 0;
    sopt.want_nodes = TRUE;
    /* A process that cannot be read (gone, say) is left out. */
    g_autofree SpEstimateTarget *targets = g_new0(SpEstimateTarget, pids->len);
    for (guint i = 0; i < pids->len; i++) {
        targets[i].pid = g_array_index(pids, pid_t, i);
        targets[i].optional = TRUE;
    }
    if (!sp_estimate_options_from_host(&eopt, host, NULL))
        sp_estimate_options_init(&eopt);
    eopt.merge_across_nodes = man;
    SpCliProgress progress;
    sp_cli_progress_attach(&progress, man ? "model, merge_across_nodes=1"
                                          : "model, merge_across_nodes=0", &sopt);
    g_autoptr(SpEstimate) est = sp_estimate_targets(host, targets, pids->len, &sopt, &eopt, NULL,
                                                    &error);
    sp_cli_progress_done(&progress);
    return est ? (gint64)sp_estimate_get_counters(est)->pages_sharing : -1;
}

static void
sp_cli_numa_progress(gint64 shared, double elapsed, gpointer data)
{
    gboolean *shown = data;

    /* A line rewritten in place is for a terminal; a log gets none. */
    if (!isatty(STDERR_FILENO))
        return;
    fprintf(stderr, "\r  unmerging: pages_shared=%-10" G_GINT64_FORMAT " %5.1f s", shared, elapsed);
    *shown = TRUE;
}

typedef struct {
    GCancellable *cancel;
    const char *name;
    const char **caught;   /* the first signal's name */
} SpCliNumaSignal;

static gboolean
sp_cli_numa_timeout(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Waits @ms, running the default main context meanwhile (so that the
 * signal handlers run and may cancel); FALSE at once when @cancel is
 * cancelled. */
static gboolean
sp_cli_numa_wait(guint ms, GCancellable *cancel)
{
    gboolean fired = FALSE;
    GSource *timeout = g_timeout_source_new(ms);

    g_source_set_callback(timeout, sp_cli_numa_timeout, &fired, NULL);
    g_source_attach(timeout, NULL);
    while (!fired && !g_cancellable_is_cancelled(cancel))
        g_main_context_iteration(NULL, TRUE);
    g_source_destroy(timeout);
    g_source_unref(timeout);
    return !g_cancellable_is_cancelled(cancel);
}

/*
 * The switch's steps one after the other, SP_NUMA_STEP_MS apart while the
 * kernel unmerges, showing pages_shared; a signal (@cancel cancelled) stops
 * it at the next step and restores KSM (sp_numa_switch_abort()).  The run=2
 * write itself is not cut short: the kernel unmerges before it returns.
 * This loop is the CLI's: the library's steps never wait.
 */
static gboolean
sp_cli_numa_switch(const SpHost *host, gboolean want, gboolean force, guint timeout_s,
                   gboolean *shown, GCancellable *cancel, SpNumaPlan *plan, GError **error)
{
    g_autoptr(SpNumaSwitch) sw = sp_numa_switch_new(host, want, force, timeout_s, error);
    gboolean done = FALSE;

    if (!sw)
        return FALSE;
    *plan = *sp_numa_switch_get_plan(sw);
    while (!done) {
        gint64 shared;
        double el;
        if (g_cancellable_is_cancelled(cancel))
            return sp_numa_switch_abort(sw, error);
        if (!sp_numa_switch_step(sw, &done, &shared, &el, error))
            return FALSE;
        if (shared >= 0)
            sp_cli_numa_progress(shared, el, shown);
        /* still unmerging: pages_shared is not 0 yet */
        if (!done && shared != 0)
            sp_cli_numa_wait(SP_NUMA_STEP_MS, cancel);
    }
    return TRUE;
}

static gboolean
sp_cli_numa_signal(gpointer data)
{
    const SpCliNumaSignal *sig = data;

    if (!*sig->caught) {
        *sig->caught = sig->name;
        fprintf(stderr, "\nsamepage: %s: stopping the switch and restoring KSM\n", sig->name);
    }
    g_cancellable_cancel(sig->cancel);
    return G_SOURCE_CONTINUE;
}

/* ksm numa --json's "before" and "after": the knob and what it changes. */
static json_object *
sp_cli_numa_state_json(const SpKsmState *st)
{
    static const SpKsmKey keys[] = { SP_KSM_MERGE_ACROSS_NODES, SP_KSM_RUN, SP_KSM_PAGES_SHARED,
                                     SP_KSM_PAGES_SHARING };
    json_object *o = json_object_new_object();

    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
        json_object_object_add(o, sp_ksm_key_info(keys[i])->name,
                               json_object_new_int64(st->entry[keys[i]].value));
    return o;
}

static json_object *
sp_cli_numa_pages_json(gint64 pages)
{
    return pages >= 0 ? json_object_new_int64(pages) : NULL;
}

static int
sp_cli_ksm_numa(const SpCliGlobal *global, int argc, char **argv)
{
    g_autofree char *want_text = NULL, *timeout_text = NULL;
    guint64 want_v = 0, timeout_v = 600;
    gint want;
    guint timeout;
    gboolean force = FALSE, dry_run = FALSE, json = FALSE;
    GOptionEntry entries[] = {
        { "merge-across-nodes", 0, 0, G_OPTION_ARG_STRING, &want_text, "0: one tree per node; 1: one tree", "0|1" },
        { "force", 0, 0, G_OPTION_ARG_NONE, &force, "skip the free-memory check", NULL },
        { "timeout", 0, 0, G_OPTION_ARG_STRING, &timeout_text, "seconds to wait for the unmerge (600)", "S" },
        { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, "predict and check, change nothing", NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- switch merge_across_nodes safely");
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) pids = NULL;
    SpKsmState before, after;
    SpNumaPlan plan;
    int rc;

    g_option_context_set_summary(ctx,
        "Predicts the sharing the new setting keeps, checks that free memory covers the\n"
        "unmerge, then run=2, waits for pages_shared=0, writes the knob and restores run.\n"
        "Any failure restores the previous state.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (!want_text) {
        sp_cli_error("ksm numa: give --merge-across-nodes 0 or 1");
        return SP_EXIT_USAGE;
    }
    if ((rc = sp_cli_require_local(global, "ksm numa", TRUE,
                                   "runs the switch through /sys/kernel/mm/ksm and models the "
                                   "memory of the processes")) != SP_EXIT_OK ||
        (!dry_run && (rc = sp_cli_refuse_readonly(global, "ksm numa", "writes KSM knobs "
                                                  "(--dry-run changes nothing)")) != SP_EXIT_OK))
        return rc;
    if (!sp_cli_parse_uint("ksm numa", "--merge-across-nodes", want_text, 0, 1, &want_v) ||
        (timeout_text &&
         !sp_cli_parse_uint("ksm numa", "--timeout", timeout_text, 1, G_MAXUINT32, &timeout_v)))
        return SP_EXIT_USAGE;
    want = (gint)want_v;
    timeout = (guint)timeout_v;
    if (!sp_ksm_read(host, &before, &error) ||
        !sp_numa_plan(&before, sp_host_mem_available(host), want, force, &plan, &error)) {
        sp_cli_error("ksm numa: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    g_autoptr(json_object) doc = sp_json_document_new("ksm numa");
    json_object_object_add(doc, "merge_across_nodes", json_object_new_int(want));
    json_object_object_add(doc, "dry_run", json_object_new_boolean(dry_run));
    json_object_object_add(doc, "nothing_to_do", json_object_new_boolean(plan.nothing_to_do));
    json_object_object_add(doc, "before", sp_cli_numa_state_json(&before));
    if (plan.nothing_to_do) {
        if (json) {
            json_object_object_add(doc, "model", NULL);
            json_object_object_add(doc, "unmerge_needed", json_object_new_boolean(FALSE));
            json_object_object_add(doc, "unmerge_bytes", json_object_new_int64(0));
            json_object_object_add(doc, "mem_available_bytes",
                                   json_object_new_int64((gint64)sp_host_mem_available(host)));
            json_object_object_add(doc, "after", NULL);
            sp_cli_print_json(doc);
        } else {
            sp_cli_print(stdout, "merge_across_nodes is already %d: nothing to do\n", want);
        }
        return SP_EXIT_OK;
    }
    pids = sp_maps_mergeable_pids(host);
    gint64 now_sharing = sp_cli_predict_sharing(host, pids, before.entry[SP_KSM_MERGE_ACROSS_NODES].value);
    gint64 new_sharing = sp_cli_predict_sharing(host, pids, want);
    json_object *model = json_object_new_object();
    json_object_object_add(model, "processes", json_object_new_int(pids->len));
    json_object_object_add(model, "pages_sharing_now", sp_cli_numa_pages_json(now_sharing));
    json_object_object_add(model, "pages_sharing_after", sp_cli_numa_pages_json(new_sharing));
    json_object_object_add(doc, "model", model);
    json_object_object_add(doc, "unmerge_needed", json_object_new_boolean(plan.unmerge));
    json_object_object_add(doc, "unmerge_bytes", json_object_new_int64((gint64)plan.unmerge_bytes));
    json_object_object_add(doc, "mem_available_bytes",
                           json_object_new_int64((gint64)sp_host_mem_available(host)));
    if (!json) {
        sp_cli_print(stdout, "before: merge_across_nodes=%" G_GINT64_FORMAT " run=%" G_GINT64_FORMAT
               " pages_shared=%" G_GINT64_FORMAT " pages_sharing=%" G_GINT64_FORMAT "\n",
               before.entry[SP_KSM_MERGE_ACROSS_NODES].value, before.entry[SP_KSM_RUN].value,
               before.entry[SP_KSM_PAGES_SHARED].value, before.entry[SP_KSM_PAGES_SHARING].value);
        sp_cli_print(stdout, "model (%u processes registered with KSM): pages_sharing %" G_GINT64_FORMAT
               " now, %" G_GINT64_FORMAT " with merge_across_nodes=%d (%.0f%% kept)\n",
               pids->len, now_sharing, new_sharing, want,
               now_sharing > 0 ? 100.0 * new_sharing / now_sharing : 100.0);
        sp_cli_print(stdout, "unmerge: %s (%.1f MiB to copy, MemAvailable %.1f MiB)\n",
               plan.unmerge ? "needed" : "not needed", plan.unmerge_bytes / 1048576.0,
               sp_host_mem_available(host) / 1048576.0);
    }
    if (dry_run) {
        if (json) {
            json_object_object_add(doc, "after", NULL);
            sp_cli_print_json(doc);
        }
        return SP_EXIT_OK;
    }

    /* From the first write on, a signal restores KSM instead of leaving
     * run=2 (the switch checks between its steps and while it waits). */
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    const char *caught = NULL;
    SpCliNumaSignal sigs[] = { { cancel, "SIGINT", &caught }, { cancel, "SIGTERM", &caught },
                               { cancel, "SIGHUP", &caught } };
    guint sig[] = { g_unix_signal_add(SIGINT, sp_cli_numa_signal, &sigs[0]),
                    g_unix_signal_add(SIGTERM, sp_cli_numa_signal, &sigs[1]),
                    g_unix_signal_add(SIGHUP, sp_cli_numa_signal, &sigs[2]) };
    gboolean shown = FALSE;
    gboolean ok = sp_cli_numa_switch(host, want, force, timeout, &shown, cancel, &plan, &error);
    for (gsize i = 0; i < G_N_ELEMENTS(sig); i++)
        g_source_remove(sig[i]);
    if (shown)
        sp_cli_print(stderr, "\n");
    if (!ok) {
        if (caught && g_error_matches(error, SP_NUMA_ERROR, SP_NUMA_ERROR_INTERRUPTED))
            sp_cli_error("ksm numa: interrupted by %s: %s", caught, error->message);
        else
            sp_cli_error("ksm numa: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (caught)
        sp_cli_print(stderr, "samepage: %s came after merge_across_nodes was written: the switch is "
                        "complete\n", caught);
    if (!sp_ksm_read(host, &after, &error)) {
        sp_cli_error("ksm numa: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (json) {
        json_object_object_add(doc, "after", sp_cli_numa_state_json(&after));
        sp_cli_print_json(doc);
        return SP_EXIT_OK;
    }
    sp_cli_print(stdout, "after: merge_across_nodes=%" G_GINT64_FORMAT " run=%" G_GINT64_FORMAT
           " pages_shared=%" G_GINT64_FORMAT " pages_sharing=%" G_GINT64_FORMAT "\n",
           after.entry[SP_KSM_MERGE_ACROSS_NODES].value, after.entry[SP_KSM_RUN].value,
           after.entry[SP_KSM_PAGES_SHARED].value, after.entry[SP_KSM_PAGES_SHARING].value);
    return SP_EXIT_OK;
}

int
sp_cli_ksm(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean json = FALSE;
    g_auto(SpTableOptions) topt = { 0 };
    g_autoptr(SpTable) table = NULL;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON (\"ksm\": the sysfs names)", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[set KEY=VALUE... | numa --merge-across-nodes 0|1 ...]");
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(GError) error = NULL;
    SpKsmState state;
    int rc;

    g_option_context_set_summary(ctx,
        "Show every file of /sys/kernel/mm/ksm (a key this kernel lacks is 'unsupported'),\n"
        "or write knobs: all are validated first, and a failed write restores the others.\n"
        "set run=2 unmerges every merged page on the host: it is refused unless MemAvailable\n"
        "covers pages_sharing x page size + 10% (ksm set --force KEY=VALUE... skips the check).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    sp_table_add_options(ctx, &topt, sp_cli_ksm_columns, G_N_ELEMENTS(sp_cli_ksm_columns),
        "Subcommands ('samepage help ksm SUBCOMMAND' shows one's options):\n"
        "  set KEY=VALUE...  write knobs, validated as a whole first\n"
        "  numa              switch merge_across_nodes safely (--merge-across-nodes 0|1)");
    /* "set" takes KEY=VALUE words that must not be parsed as options. */
    if (argc >= 2 && g_str_equal(argv[1], "set"))
        return sp_cli_ksm_set(global, argc - 1, argv + 1);
    if (argc >= 2 && g_str_equal(argv[1], "numa"))
        return sp_cli_ksm_numa(global, argc - 1, argv + 1);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (argc > 1) {
        sp_cli_error("ksm: unexpected argument '%s'", argv[1]);
        return SP_EXIT_USAGE;
    }
    if (!json && !(table = sp_cli_table_new("ksm", sp_cli_ksm_columns,
                                            G_N_ELEMENTS(sp_cli_ksm_columns), &topt)))
        return SP_EXIT_USAGE;
    /* Another host's KSM, as far as its libvirtd tells. */
    g_autofree char *uri = NULL, *why = NULL;
    SpLibvirtPlace place;
    if (!sp_cli_uri_place(global, "ksm", TRUE, &place, &uri, &why))
        return SP_EXIT_USAGE;
    if (place == SP_LIBVIRT_PLACE_REMOTE) {
        g_autoptr(SpLibvirt) lv = sp_cli_open_libvirt(global, FALSE, &error);
        if (!lv || !sp_libvirt_get_ksm(lv, &state, &error)) {
            sp_cli_error("ksm: %s", error->message);
            return SP_EXIT_FAILURE;
        }
        if (json) {
            g_autoptr(json_object) doc = sp_json_document_new("ksm");
            json_object_object_add(doc, "uri", json_object_new_string(sp_libvirt_get_uri(lv)));
            json_object_object_add(doc, "ksm", sp_ksm_state_to_json(&state));
            sp_cli_print_json(doc);
            return SP_EXIT_OK;
        }
        sp_cli_print(stderr, "samepage: KSM of %s, through libvirt: only the keys its node "
                     "memory parameters pass\n", sp_libvirt_get_uri(lv));
        return sp_cli_ksm_print_table(&state, TRUE, table);
    }
    if (!sp_ksm_read(host, &state, &error)) {
        sp_cli_error("ksm: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (json) {
        g_autoptr(json_object) doc = sp_json_document_new("ksm");
        json_object_object_add(doc, "ksm", sp_ksm_state_to_json(&state));
        sp_cli_print_json(doc);
        return SP_EXIT_OK;
    }
    return sp_cli_ksm_print_table(&state, FALSE, table);
}
