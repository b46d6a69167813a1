/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd-estimate.c: samepage estimate --pid PID... | --image FILE...
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "progress.h"
#include "table.h"
#include "samepage/spestimate.h"

#define MIB(pages) ((double)(pages) * SP_PAGE_SIZE / (1024.0 * 1024.0))

static gboolean
sp_cli_parse_bool(const char *opt, const char *text, gboolean *out)
{
    if (g_str_equal(text, "0") || g_str_equal(text, "1")) {
        *out = text[0] == '1';
        return TRUE;
    }
    sp_cli_error("estimate: %s must be 0 or 1, not '%s'", opt, text);
    return FALSE;
}

enum { EP_PID, EP_PROCESS, EP_SCANNED, EP_MERGING, EP_PROFIT, EP_VOLATILE, EP_PRESENT,
       EP_ZERO_MAPPED, EP_UNMERGED, EP_PARTIAL };
static const SpTableColumn sp_cli_estimate_columns[] = {
    [EP_PID] = { "PID", 7, SP_TABLE_RIGHT, "the process (0 for an image)" },
    [EP_PROCESS] = { "PROCESS", 20, 0, "the guest, process or image file" },
    [EP_SCANNED] = { "SCANNED_MIB", 11, SP_TABLE_RIGHT, "memory the model scanned, MiB" },
    [EP_MERGING] = { "MERGING_MIB", 11, SP_TABLE_RIGHT, "predicted ksm_merging_pages, MiB" },
    [EP_PROFIT] = { "PROFIT_MIB", 10, SP_TABLE_RIGHT, "predicted ksm_process_profit, MiB" },
    [EP_VOLATILE] = { "VOLATILE", 8, SP_TABLE_RIGHT, "pages that changed between passes" },
    [EP_PRESENT] = { "PRESENT_MIB", 11, SP_TABLE_RIGHT | SP_TABLE_EXTRA,
                     "present anonymous memory in the scanned mappings, MiB" },
    [EP_ZERO_MAPPED] = { "ZERO_MAPPED_MIB", 15, SP_TABLE_RIGHT | SP_TABLE_EXTRA,
                         "present, mapping the shared zero page (not scanned), MiB" },
    [EP_UNMERGED] = { "UNMERGED_MIB", 12, SP_TABLE_RIGHT | SP_TABLE_EXTRA,
                      "merged by the model but not KSM pages when read, MiB" },
    [EP_PARTIAL] = { "PARTIAL", 0.2, SP_TABLE_WRAP, "why the result is partial, if it is" },
};

static int
sp_cli_estimate_print_processes(const SpEstimate *est, SpTable *t)
{
    for (guint i = 0; i < sp_estimate_get_n_processes(est); i++) {
        const SpEstimateProcess *p = sp_estimate_get_process(est, i);

        sp_table_add_row(t);
        sp_table_setf(t, EP_PID, "%d", p->pid);
        sp_table_set(t, EP_PROCESS, p->label);
        sp_table_setf(t, EP_SCANNED, "%.1f", MIB(p->scanned_pages));
        sp_table_setf(t, EP_MERGING, "%.1f", MIB(p->ksm.ksm_merging_pages));
        sp_table_setf(t, EP_PROFIT, "%.1f", (double)p->ksm.ksm_process_profit / (1024.0 * 1024.0));
        sp_table_setf(t, EP_VOLATILE, "%" G_GUINT64_FORMAT, p->volatile_pages);
        sp_table_setf(t, EP_PRESENT, "%.1f", MIB(p->present_pages));
        sp_table_setf(t, EP_ZERO_MAPPED, "%.1f", MIB(p->zero_mapped_pages));
        sp_table_setf(t, EP_UNMERGED, "%.1f", MIB(p->unmerged_pages));
        if (p->partial)
            sp_table_set(t, EP_PARTIAL, p->partial_reason);
    }
    return sp_cli_table_print(t);
}

static void
sp_cli_estimate_print(const SpEstimate *est, const SpScanOptions *sopt, SpTable *procs)
{
    const SpModelCounters *c = sp_estimate_get_counters(est);
    guint np = sp_estimate_get_n_processes(est);
    const guint64 *matrix = sp_estimate_get_matrix(est);
    guint64 scanned = 0;
    gboolean converged;
    guint passes = sp_estimate_get_passes(est, &converged);
    guint64 saved = sp_estimate_get_saved_zero(est) + sp_estimate_get_saved_nonzero(est);
    guint64 present = sp_estimate_get_present_pages(est), zero_mapped = 0;
    const char *guess_reason = NULL;

    for (guint i = 0; i < np; i++) {
        scanned += sp_estimate_get_process(est, i)->scanned_pages;
        zero_mapped += sp_estimate_get_process(est, i)->zero_mapped_pages;
    }

    sp_cli_print(stdout, "Scanned %.1f MiB (%" G_GUINT64_FORMAT " pages) in %u process%s, %u pass%s%s\n",
           MIB(scanned), scanned, np, np == 1 ? "" : "es", sopt->passes,
           sopt->passes == 1 ? "" : "es", sopt->mode == SP_SCAN_WHAT_IF ?
           " (what-if: every private anonymous mapping)" : "");
    sp_cli_print(stdout, "Present %.1f MiB (%" G_GUINT64_FORMAT " anonymous pages), and %.1f MiB mapping "
           "the shared zero page%s\n", MIB(present), present, MIB(zero_mapped),
           sp_estimate_get_zero_method(est, &guess_reason) == SP_SCAN_ZERO_KPAGEFLAGS
               ? " (kpageflags)" : " (guessed: a shared page reading as zeros)");
    if (guess_reason)
        sp_cli_print(stdout, "  zero page guessed because %s\n", guess_reason);
    sp_cli_print(stdout, "KSM would save %.1f MiB = %.1f%% of present memory; %.1f MiB after its metadata\n",
           MIB(saved), present ? 100.0 * saved / present : 0.0,
           (double)c->general_profit / (1024.0 * 1024.0));
    sp_cli_print(stdout, "  zero-filled pages %.1f MiB, other contents %.1f MiB\n",
           MIB(sp_estimate_get_saved_zero(est)), MIB(sp_estimate_get_saved_nonzero(est)));
    if (sp_estimate_get_unmerged_pages(est) && c->pages_sharing + c->ksm_zero_pages > 0)
        sp_cli_print(stdout, "  of the pages it merges, %.1f MiB were not KSM pages when read (not merged yet)\n",
               MIB(sp_estimate_get_unmerged_pages(est)));
    if (sp_estimate_get_thp_zero_remapped(est))
        sp_cli_print(stdout, "  (of the zero-filled, %.1f MiB are THP subpages the split maps to the zero page:\n"
               "   freed, but counted in no KSM figure)\n", MIB(sp_estimate_get_thp_zero_remapped(est)));
    sp_cli_print(stdout, "  converged after %u ksmd passes%s\n\n", passes,
           converged ? "" : " (NOT converged: raise the limit)");
    if (sp_estimate_is_partial(est))
        sp_cli_print(stdout, "PARTIAL RESULT: some memory could not be read (see below)\n\n");

    {
        static const SpTableColumn fig_cols[] = {
            { "FIGURE", 18, 0, "" }, { "VALUE", 12, SP_TABLE_RIGHT, "" },
        };
        const struct { const char *name; gint64 value; } figs[] = {
            { "pages_shared", (gint64)c->pages_shared },
            { "pages_sharing", (gint64)c->pages_sharing },
            { "pages_unshared", (gint64)c->pages_unshared },
            { "pages_volatile", (gint64)c->pages_volatile },
            { "ksm_zero_pages", (gint64)c->ksm_zero_pages },
            { "stable_node_chains", (gint64)c->stable_node_chains },
            { "stable_node_dups", (gint64)c->stable_node_dups },
            { "general_profit", c->general_profit },
        };
        SpTableOptions dflt = { 0 };
        g_autoptr(SpTable) t = sp_table_new(fig_cols, G_N_ELEMENTS(fig_cols), &dflt, NULL);

        for (gsize i = 0; i < G_N_ELEMENTS(figs); i++) {
            sp_table_add_row(t);
            sp_table_set(t, 0, figs[i].name);
            sp_table_setf(t, 1, "%" G_GINT64_FORMAT, figs[i].value);
        }
        sp_cli_table_print(t);
        sp_cli_print(stdout, "\n");
    }
    sp_cli_estimate_print_processes(est, procs);
    if (np > 1) {
        /* One column per process: its pid. */
        g_autoptr(GArray) cols = g_array_new(FALSE, TRUE, sizeof(SpTableColumn));
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        SpTableOptions dflt = { 0 };
        SpTableColumn first = { "PID", 8, 0, "" };

        g_array_append_val(cols, first);
        for (guint j = 0; j < np; j++) {
            char *name = g_strdup_printf("%d", sp_estimate_get_process(est, j)->pid);
            SpTableColumn col = { name, 8, SP_TABLE_RIGHT, "" };
            g_ptr_array_add(names, name);
            g_array_append_val(cols, col);
        }
        g_autoptr(SpTable) t = sp_table_new((const SpTableColumn *)(void *)cols->data, cols->len,
                                            &dflt, NULL);
        sp_cli_print(stdout, "\nShared with (MiB of the row's merged pages whose content the column also has):\n");
        for (guint i = 0; t && i < np; i++) {
            sp_table_add_row(t);
            sp_table_setf(t, 0, "%d", sp_estimate_get_process(est, i)->pid);
            for (guint j = 0; j < np; j++)
                sp_table_setf(t, j + 1, "%.1f", MIB(matrix[i * np + j]));
        }
        if (t)
            sp_cli_table_print(t);
    }
    if (sp_estimate_get_n_nodes(est) > 1) {
        static const SpTableColumn node_cols[] = {
            { "NODE", 4, 0, "" }, { "SCANNED_MIB", 11, SP_TABLE_RIGHT, "" },
            { "MERGED_MIB", 10, SP_TABLE_RIGHT, "" },
        };
        SpTableOptions dflt = { 0 };
        g_autoptr(SpTable) t = sp_table_new(node_cols, G_N_ELEMENTS(node_cols), &dflt, NULL);

        sp_cli_print(stdout, "\n");
        for (guint i = 0; i < sp_estimate_get_n_nodes(est); i++) {
            const SpEstimateNode *n = sp_estimate_get_node(est, i);
            sp_table_add_row(t);
            sp_table_setf(t, 0, "%u", i);
            sp_table_setf(t, 1, "%.1f", MIB(n->scanned_pages));
            sp_table_setf(t, 2, "%.1f", MIB(n->stable_pages));
        }
        sp_cli_table_print(t);
    }
}

/* --kernel-profile's help: SpEstimate's table of kernel profiles. */
static char *
sp_cli_profile_help(void)
{
    guint n;
    const SpEstimateProfile *kp = sp_estimate_get_profiles(&n);
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < n; i++) {
        if (i > 0)
            g_string_append(s, i + 1 == n ? " or " : ", ");
        g_string_append_printf(s, "%s (%s)", kp[i].name, kp[i].summary);
    }
    g_string_append(s, "; default: the running kernel");
    return g_string_free(s, FALSE);
}

int
sp_cli_estimate(const SpCliGlobal *global, int argc, char **argv)
{
    g_auto(GStrv) pids = NULL;
    g_auto(GStrv) images = NULL;
    g_autofree char *man = NULL, *uzp = NULL, *smart = NULL, *profile = NULL;
    g_autofree char *max_sharing_text = NULL, *passes_text = NULL, *interval_text = NULL;
    guint64 max_sharing = 0, passes = 2;
    gdouble interval = 1.0;
    gboolean what_if = FALSE, json = FALSE, all = FALSE;
    g_auto(SpTableOptions) topt = { 0 };
    g_autoptr(SpTable) procs = NULL;
    g_auto(GStrv) qmps = NULL;
    g_autofree char *profile_help = sp_cli_profile_help();
    GOptionEntry entries[] = {
        { "all", 'a', 0, G_OPTION_ARG_NONE, &all, "every running libvirt domain", NULL },
        { "qmp", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &qmps, "a bare QEMU's QMP socket (repeat)", "SOCKET" },
        { "pid", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &pids, "a process to scan (repeat)", "PID" },
        { "image", 'i', 0, G_OPTION_ARG_FILENAME_ARRAY, &images, "a raw memory image file (repeat)", "FILE" },
        { "what-if", 'w', 0, G_OPTION_ARG_NONE, &what_if,
          "scan every private anonymous mapping, as if all were marked mergeable", NULL },
        { "merge-across-nodes", 0, 0, G_OPTION_ARG_STRING, &man, "0 or 1 (default: the kernel's)", "0|1" },
        { "use-zero-pages", 0, 0, G_OPTION_ARG_STRING, &uzp, "0 or 1 (default: the kernel's)", "0|1" },
        { "max-page-sharing", 0, 0, G_OPTION_ARG_STRING, &max_sharing_text, "default: the kernel's", "N" },
        { "smart-scan", 0, 0, G_OPTION_ARG_STRING, &smart, "0 or 1 (default: the kernel's)", "0|1" },
        { "kernel-profile", 0, 0, G_OPTION_ARG_STRING, &profile, profile_help, "VER" },
        { "passes", 0, 0, G_OPTION_ARG_STRING, &passes_text, "read passes to detect changing pages (default 2)", "N" },
        { "interval", 0, 0, G_OPTION_ARG_STRING, &interval_text, "seconds between passes (default 1)", "SECONDS" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON (figures under their sysfs names)", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[DOMAIN...] - predict what KSM will share");
    g_autoptr(SpLibvirt) lv = NULL;
    g_autoptr(GPtrArray) guests = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_free);
    g_auto(GStrv) domains = NULL;
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) targets = g_array_new(FALSE, TRUE, sizeof(SpEstimateTarget));
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
    g_autoptr(GPtrArray) keep_labels = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(SpEstimate) est = NULL;
    SpEstimateOptions eopt;
    SpScanOptions sopt;
    int rc;
    guint skipped = 0;
    g_autoptr(json_object) unreadable = json_object_new_array();   /* --all's skipped */

    g_option_context_set_summary(ctx,
        "Reads the memory of guests (their RAM backends), live processes (read-only,\n"
        "present pages only) or raw image files, and runs samepage's model of KSM over\n"
        "it to predict the figures KSM will converge to.  Nothing is stopped or written.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    sp_table_add_options(ctx, &topt, sp_cli_estimate_columns,
                         G_N_ELEMENTS(sp_cli_estimate_columns),
                         "The table of processes; with --raw, -o or -n, only that table is printed.");
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (!json && !(procs = sp_cli_table_new("estimate", sp_cli_estimate_columns,
                                            G_N_ELEMENTS(sp_cli_estimate_columns), &topt)))
        return SP_EXIT_USAGE;
    if ((passes_text &&
         !sp_cli_parse_uint("estimate", "--passes", passes_text, 1, 100, &passes)) ||
        (max_sharing_text &&
         !sp_cli_parse_uint("estimate", "--max-page-sharing", max_sharing_text, 2, G_MAXINT32,
                            &max_sharing)) ||
        (interval_text &&
         !sp_cli_parse_decimal("estimate", "--interval", interval_text, 0, 3600, &interval)))
        return SP_EXIT_USAGE;
    for (char **p = pids; p && *p; p++) {
        gint64 pid, other;
        if (!g_ascii_string_to_signed(*p, 10, 1, G_MAXINT32, &pid, NULL)) {
            sp_cli_error("estimate: --pid '%s' is not a process id", *p);
            return SP_EXIT_USAGE;
        }
        for (char **q = pids; q < p; q++) {
            if (g_ascii_string_to_signed(*q, 10, 1, G_MAXINT32, &other, NULL) && other == pid) {
                sp_cli_error("estimate: --pid %" G_GINT64_FORMAT " is given twice", pid);
                return SP_EXIT_USAGE;
            }
        }
    }
    if (all && argc > 1) {
        sp_cli_error("estimate: give DOMAIN names or --all, not both");
        return SP_EXIT_USAGE;
    }
    if (!pids && !images && !qmps && !all && argc < 2) {
        sp_cli_error("estimate: give at least one DOMAIN, --all, --qmp, --pid or --image");
        return SP_EXIT_USAGE;
    }
    /* Memory is read on this host; --pid, --image and --qmp name local
     * things and need no libvirt: then only -c is checked. */
    if ((rc = sp_cli_require_local(global, "estimate", all || argc > 1,
                                   "reads the guests' memory (/proc/PID/mem)")) != SP_EXIT_OK)
        return rc;
    if (all) {
        if (!(lv = sp_cli_open_libvirt(global, TRUE, &error)) ||
            !(domains = sp_libvirt_list_running(lv, &error))) {
            sp_cli_error("estimate: %s", error->message);
            return SP_EXIT_FAILURE;
        }
        if (!domains[0]) {
            sp_cli_error("estimate: no running domains on %s", sp_libvirt_get_uri(lv));
            return SP_EXIT_FAILURE;
        }
    } else {
        domains = g_strdupv(argv + 1);
    }
    for (char **d = domains; d && *d; d++) {
        SpGuest *g = sp_cli_open_guest(global, &lv, host, *d, NULL, &error);
        if (!g || !sp_guest_load_regions(g, host, &error)) {
            sp_cli_error("estimate: %s", error->message);
            sp_guest_free(g);
            if (!all)
                return SP_EXIT_FAILURE;
            /* --all: a domain that cannot be read is reported; the others
             * are estimated, and the exit status says one was left out. */
            json_object *u = json_object_new_object();
            json_object_object_add(u, "domain", json_object_new_string(*d));
            json_object_object_add(u, "error", json_object_new_string(error->message));
            json_object_array_add(unreadable, u);
            g_clear_error(&error);
            skipped++;
            continue;
        }
        g_ptr_array_add(guests, g);
    }
    if (all && guests->len == 0) {
        sp_cli_error("estimate: none of the running domains could be read");
        return SP_EXIT_FAILURE;
    }
    for (char **q = qmps; q && *q; q++) {
        SpGuest *g = sp_cli_open_guest(global, &lv, host, NULL, *q, &error);
        if (!g || !sp_guest_load_regions(g, host, &error)) {
            sp_cli_error("estimate: %s", error->message);
            sp_guest_free(g);
            return SP_EXIT_FAILURE;
        }
        g_ptr_array_add(guests, g);
    }
    if (!sp_estimate_options_from_host(&eopt, host, &error)) {
        /* No KSM on this host: predict for the kernel defaults. */
        g_clear_error(&error);
        sp_estimate_options_init(&eopt);
    }
    if (man && !sp_cli_parse_bool("--merge-across-nodes", man, &eopt.merge_across_nodes))
        return SP_EXIT_USAGE;
    if (uzp && !sp_cli_parse_bool("--use-zero-pages", uzp, &eopt.model.use_zero_pages))
        return SP_EXIT_USAGE;
    if (smart && !sp_cli_parse_bool("--smart-scan", smart, &eopt.model.smart_scan))
        return SP_EXIT_USAGE;
    if (max_sharing_text)
        eopt.model.max_page_sharing = (guint)max_sharing;
    if (profile) {
        const SpEstimateProfile *kp = sp_estimate_profile_find(profile);
        if (!kp) {
            g_autofree char *names = sp_estimate_profile_names();
            sp_cli_error("estimate: --kernel-profile must be %s, not '%s'", names, profile);
            return SP_EXIT_USAGE;
        }
        sp_estimate_options_set_profile(&eopt, kp);
    }

    sp_scan_options_init(&sopt);
    sopt.mode = what_if ? SP_SCAN_WHAT_IF : SP_SCAN_MERGEABLE;
    sopt.passes = (guint)passes;
    sopt.interval_ms = (guint)(interval * 1000.0);
    sopt.want_nodes = !eopt.merge_across_nodes;
    /* A guest is scanned over its RAM backends' mappings, nothing else of
     * its QEMU process (ROMs and the like carry mg too). */
    for (guint i = 0; i < guests->len; i++) {
        SpGuest *g = g_ptr_array_index(guests, i);
        GArray *ram = sp_guest_get_ram_ranges(g);
        SpEstimateTarget t = { .pid = sp_guest_get_pid(g), .guest = sp_guest_get_name(g),
                               .ranges = (const SpScanRange *)(void *)ram->data,
                               .n_ranges = ram->len };
        t.label = g_strdup_printf("%s (pid %d)", sp_guest_get_name(g), (int)sp_guest_get_pid(g));
        g_ptr_array_add(keep, ram);
        g_ptr_array_add(keep_labels, (char *)t.label);
        g_array_append_val(targets, t);
    }
    for (char **p = pids; p && *p; p++) {
        gint64 pid;
        if (!g_ascii_string_to_signed(*p, 10, 1, G_MAXINT32, &pid, NULL)) {
            sp_cli_error("estimate: --pid '%s' is not a process id", *p);
            return SP_EXIT_USAGE;
        }
        SpEstimateTarget t = { .pid = (pid_t)pid };
        g_array_append_val(targets, t);
    }
    for (char **p = images; p && *p; p++) {
        SpEstimateTarget t = { .image = *p };
        g_array_append_val(targets, t);
    }
    SpCliProgress progress;
    sp_cli_progress_attach(&progress, "scanning", &sopt);
    est = sp_estimate_targets(host, (const SpEstimateTarget *)(void *)targets->data, targets->len,
                              &sopt, &eopt, NULL, &error);
    sp_cli_progress_done(&progress);
    if (!est) {
        sp_cli_error("estimate: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (json) {
        g_autoptr(json_object) doc = sp_json_document_take(sp_json_document_new("estimate"),
                                                           sp_estimate_to_json(est));
        json_object_object_add(doc, "unreadable", json_object_get(unreadable));
        sp_cli_print_json(doc);
    } else if (sp_table_options_given(&topt)) {
        if ((rc = sp_cli_estimate_print_processes(est, procs)) != SP_EXIT_OK)
            return rc;
    } else {
        sp_cli_estimate_print(est, &sopt, procs);
    }
    if (sp_estimate_is_partial(est)) {
        sp_cli_error("estimate: the result is partial: some memory vanished or a process exited");
        return SP_EXIT_FAILURE;
    }
    if (skipped) {
        sp_cli_error("estimate: %u running domain%s could not be read (see above): the figures "
                     "leave %s out", skipped, skipped == 1 ? "" : "s", skipped == 1 ? "it" : "them");
        return SP_EXIT_FAILURE;
    }
    return SP_EXIT_OK;
}
