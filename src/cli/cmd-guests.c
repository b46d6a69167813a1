/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd-guests.c: samepage list | regions DOMAIN | mark DOMAIN
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "table.h"
#include "samepage/spnuma.h"

#define MIB(bytes) ((double)(bytes) / (1024.0 * 1024.0))

enum { LIST_DOMAIN, LIST_PID, LIST_RAM, LIST_MARKED, LIST_MERGING, LIST_PROFIT, LIST_ERROR };
static const SpTableColumn sp_cli_list_columns[] = {
    [LIST_DOMAIN] = { "DOMAIN", 16, 0, "the libvirt domain" },
    [LIST_PID] = { "PID", 7, SP_TABLE_RIGHT, "its QEMU process" },
    [LIST_RAM] = { "RAM_MIB", 8, SP_TABLE_RIGHT, "RAM of its memory backends, MiB" },
    [LIST_MARKED] = { "MARKED", 6, SP_TABLE_RIGHT, "RAM regions KSM scans (VmFlags mg), of all" },
    [LIST_MERGING] = { "MERGING_MIB", 11, SP_TABLE_RIGHT, "ksm_merging_pages in MiB" },
    [LIST_PROFIT] = { "PROFIT_MIB", 10, SP_TABLE_RIGHT, "ksm_process_profit in MiB" },
    [LIST_ERROR] = { "ERROR", 0.3, SP_TABLE_WRAP, "why the guest could not be read" },
};

/* Whether @table shows a column that needs the guest read (not just named). */
static gboolean
sp_cli_list_reads_guests(const SpTable *table)
{
    for (guint c = LIST_PID; c < G_N_ELEMENTS(sp_cli_list_columns); c++)
        if (sp_table_shows(table, c))
            return TRUE;
    return FALSE;
}

/* list over a URI of another host: the running domains' names only (their
 * pid, RAM and KSM figures are in that host's /proc). */
static int
sp_cli_list_remote(SpLibvirt *lv, const char *const *names, gboolean json, SpTable *table)
{
    if (json) {
        g_autoptr(json_object) doc = sp_json_document_new("list");
        json_object *arr = json_object_new_array();
        for (const char *const *n = names; *n; n++) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "domain", json_object_new_string(*n));
            json_object_object_add(o, "remote", json_object_new_boolean(TRUE));
            json_object_array_add(arr, o);
        }
        json_object_object_add(doc, "uri", json_object_new_string(sp_libvirt_get_uri(lv)));
        json_object_object_add(doc, "guests", arr);
        sp_cli_print_json(doc);
        return SP_EXIT_OK;
    }
    sp_cli_print(stderr, "samepage: running domains of %s, through libvirt: their pid, RAM and "
                 "KSM figures are in that host's /proc (run samepage there for them)\n",
                 sp_libvirt_get_uri(lv));
    for (const char *const *n = names; *n; n++) {
        sp_table_add_row(table);
        sp_table_set(table, LIST_DOMAIN, *n);
    }
    return sp_cli_table_print(table);
}

/* list --json: samepaged's view of guest @name, when the daemon has one. */
static void
sp_cli_list_add_daemon_view(json_object *o, const char *name, json_object *daemon)
{
    for (size_t i = 0; daemon && i < json_object_array_length(daemon); i++) {
        json_object *dg = json_object_array_get_idx(daemon, i), *dn = NULL;
        if (json_object_object_get_ex(dg, "domain", &dn) &&
            g_str_equal(json_object_get_string(dn), name))
            json_object_object_add(o, "samepaged", json_object_get(dg));
    }
}

int
sp_cli_list(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean json = FALSE;
    g_auto(SpTableOptions) topt = { 0 };
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- list running guests");
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(SpLibvirt) lv = NULL;
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) names = NULL;
    g_autoptr(json_object) doc = sp_json_document_new("list");
    g_autoptr(json_object) arr = json_object_new_array();
    g_autoptr(json_object) daemon = NULL;   /* samepaged's guests, when it runs */
    g_autofree char *uri = NULL, *why = NULL;
    SpLibvirtPlace place;
    g_autoptr(SpTable) table = NULL;
    int rc;

    g_option_context_set_summary(ctx, "Running QEMU guests: pid, RAM, regions marked mergeable, "
                                      "KSM merging pages and profit (/proc/PID/ksm_stat).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    sp_table_add_options(ctx, &topt, sp_cli_list_columns, G_N_ELEMENTS(sp_cli_list_columns),
                         NULL);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (!sp_cli_uri_place(global, "list", TRUE, &place, &uri, &why))
        return SP_EXIT_USAGE;
    if (!json && !(table = sp_cli_table_new("list", sp_cli_list_columns,
                                            G_N_ELEMENTS(sp_cli_list_columns), &topt)))
        return SP_EXIT_USAGE;
    if (!(lv = sp_cli_open_libvirt(global, FALSE, &error)) ||
        !(names = sp_libvirt_list_running(lv, &error))) {
        sp_cli_error("list: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    /* Another host's guests: libvirt names them; their pids, RAM and KSM
     * figures are in that host's /proc. */
    if (place == SP_LIBVIRT_PLACE_REMOTE || !sp_libvirt_check_local(lv, NULL))
        return sp_cli_list_remote(lv, (const char *const *)names, json, table);
    /* Names only (-o DOMAIN, for shell completion): no guest is touched. */
    if (table && !sp_cli_list_reads_guests(table)) {
        for (char **n = names; *n; n++) {
            sp_table_add_row(table);
            sp_table_set(table, LIST_DOMAIN, *n);
        }
        return sp_cli_table_print(table);
    }
    daemon = sp_cli_daemon_guests();
    for (char **n = names; *n; n++) {
        g_autoptr(GError) gerr = NULL;
        g_autoptr(SpGuest) g = sp_libvirt_get_guest(lv, host, *n, &gerr);
        SpKsmStat k = { 0 };
        guint64 ram;
        guint nr, nm;

        if (!g || !sp_guest_load_regions(g, host, &gerr) ||
            !sp_ksm_stat_read(host, sp_guest_get_pid(g), &k, &gerr)) {
            /* A guest that stops meanwhile is reported, not fatal. */
            if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "domain", json_object_new_string(*n));
                json_object_object_add(o, "error", json_object_new_string(gerr->message));
                sp_cli_list_add_daemon_view(o, *n, daemon);
                json_object_array_add(arr, o);
            } else {
                sp_table_add_row(table);
                sp_table_set(table, LIST_DOMAIN, *n);
                sp_table_set(table, LIST_ERROR, gerr->message);
            }
            continue;
        }
        if (json) {
            json_object *o = sp_guest_summary_to_json(g, &k);
            json_object_object_add(o, "error", NULL);
            sp_cli_list_add_daemon_view(o, *n, daemon);
            json_object_array_add(arr, o);
        } else {
            sp_guest_get_summary(g, &ram, &nr, &nm);
            sp_table_add_row(table);
            sp_table_set(table, LIST_DOMAIN, *n);
            sp_table_setf(table, LIST_PID, "%d", sp_guest_get_pid(g));
            sp_table_setf(table, LIST_RAM, "%.0f", MIB(ram));
            sp_table_setf(table, LIST_MARKED, "%u/%u", nm, nr);
            sp_table_setf(table, LIST_MERGING, "%.1f", MIB(k.ksm_merging_pages * 4096.0));
            sp_table_setf(table, LIST_PROFIT, "%.1f", MIB(k.ksm_process_profit));
        }
    }
    json_object_object_add(doc, "guests", json_object_get(arr));
    if (json) {
        sp_cli_print_json(doc);
        return SP_EXIT_OK;
    }
    if ((rc = sp_cli_table_print(table)) != SP_EXIT_OK)
        return rc;
    /* samepaged's table follows, unless a script asked for this one only. */
    if (daemon && !sp_table_options_given(&topt))
        sp_cli_print_daemon_view(daemon);
    return SP_EXIT_OK;
}

enum { REG_REGION, REG_SIZE, REG_MERGE, REG_MG, REG_BACKING, REG_RANGE, REG_RSS, REG_THP,
       REG_KSM, REG_NODES };
static const SpTableColumn sp_cli_regions_columns[] = {
    [REG_REGION] = { "REGION", 10, 0, "the memory backend's id" },
    [REG_SIZE] = { "SIZE_MIB", 8, SP_TABLE_RIGHT, "its size, MiB" },
    [REG_MERGE] = { "MERGE", 5, 0, "QEMU's merge property (on, off)" },
    [REG_MG] = { "MG", 3, 0, "whether the kernel scans it (VmFlags mg)" },
    [REG_BACKING] = { "BACKING", 9, 0, "anonymous, shared, hugetlbfs or file-private" },
    [REG_RANGE] = { "HOST_RANGE", 25, 0, "the host VMA that holds it" },
    [REG_RSS] = { "RSS_MIB", 7, SP_TABLE_RIGHT, "resident, MiB (smaps)" },
    [REG_THP] = { "THP_MIB", 7, SP_TABLE_RIGHT, "in transparent huge pages, MiB" },
    [REG_KSM] = { "KSM_MIB", 7, SP_TABLE_RIGHT, "in KSM pages, MiB" },
    [REG_NODES] = { "NODE_PAGES", 0.2, SP_TABLE_WRAP, "pages per host NUMA node (numa_maps)" },
};

int
sp_cli_regions(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean json = FALSE;
    g_auto(SpTableOptions) topt = { 0 };
    g_autoptr(SpTable) table = NULL;
    g_autofree char *qmp = NULL;
    GOptionEntry entries[] = {
        { "qmp", 0, 0, G_OPTION_ARG_FILENAME, &qmp, "a bare QEMU's QMP socket instead of a domain", "SOCKET" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("DOMAIN - a guest's RAM regions");
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(SpLibvirt) lv = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpGuest) g = NULL;
    SpKsmStat k = { 0 };
    int rc;

    g_option_context_set_summary(ctx, "Each RAM backend of the guest, the host VMA behind it, and "
                                      "what the kernel says of it.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    sp_table_add_options(ctx, &topt, sp_cli_regions_columns,
                         G_N_ELEMENTS(sp_cli_regions_columns),
                         "With --raw, -o or -n, only the table is printed.");
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if ((argc != 2 && !qmp) || (qmp && argc != 1)) {
        sp_cli_error("regions: give one DOMAIN, or --qmp SOCKET");
        return SP_EXIT_USAGE;
    }
    if ((rc = sp_cli_require_local(global, "regions", !qmp,
                                   "finds the host memory behind the guest's RAM "
                                   "(/proc/PID/smaps)")) != SP_EXIT_OK)
        return rc;
    if (!json && !(table = sp_cli_table_new("regions", sp_cli_regions_columns,
                                            G_N_ELEMENTS(sp_cli_regions_columns), &topt)))
        return SP_EXIT_USAGE;
    g = sp_cli_open_guest(global, &lv, host, argc > 1 ? argv[1] : NULL, qmp, &error);
    if (!g || !sp_guest_load_regions(g, host, &error) ||
        !sp_ksm_stat_read(host, sp_guest_get_pid(g), &k, &error)) {
        sp_cli_error("regions: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    GPtrArray *regions = sp_guest_get_regions(g);
    if (json) {
        g_autoptr(json_object) doc = sp_json_document_take(sp_json_document_new("regions"),
                                                           sp_guest_regions_to_json(g, &k));
        sp_cli_print_json(doc);
        return SP_EXIT_OK;
    }
    if (!sp_table_options_given(&topt))
        sp_cli_print(stdout, "guest %s, QEMU pid %d: ksm_merging_pages %" G_GINT64_FORMAT
                     ", ksm_process_profit %.1f MiB\n\n", sp_guest_get_name(g),
                     sp_guest_get_pid(g), k.ksm_merging_pages, MIB(k.ksm_process_profit));
    for (guint i = 0; i < regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(regions, i);

        sp_table_add_row(table);
        sp_table_set(table, REG_REGION, r->id);
        sp_table_setf(table, REG_SIZE, "%.0f", MIB(r->size));
        sp_table_set(table, REG_MERGE, r->merge ? "on" : "off");
        if (!r->vma) {
            sp_table_set(table, REG_MG, "-");
            sp_table_set(table, REG_BACKING, "-");
            sp_table_set(table, REG_RANGE, "(no host mapping found)");
            continue;
        }
        g_autoptr(GString) nodes = g_string_new(NULL);
        for (guint n = 0; r->node_pages && n < r->node_pages->len; n++)
            g_string_append_printf(nodes, "%sN%u=%" G_GUINT64_FORMAT, n ? " " : "", n,
                                   g_array_index(r->node_pages, guint64, n));
        sp_table_set(table, REG_MG, r->vma_mergeable ? "yes" : "no");
        sp_table_set(table, REG_BACKING, sp_backing_to_string(r->backing));
        sp_table_setf(table, REG_RANGE, "%" PRIx64 "-%" PRIx64, r->vma->start, r->vma->end);
        sp_table_setf(table, REG_RSS, "%.1f", r->vma->rss_kb / 1024.0);
        sp_table_setf(table, REG_THP, "%.1f", r->vma->anon_huge_kb / 1024.0);
        sp_table_setf(table, REG_KSM, "%.1f", r->vma->ksm_kb / 1024.0);
        sp_table_set(table, REG_NODES, nodes->str);
    }
    return sp_cli_table_print(table);
}

int
sp_cli_mark(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean off = FALSE, force = FALSE, json = FALSE;
    g_autofree char *region = NULL, *qmp = NULL;
    GOptionEntry entries[] = {
        { "region", 0, 0, G_OPTION_ARG_STRING, &region, "only this backend (default: all)", "ID" },
        { "off", 0, 0, G_OPTION_ARG_NONE, &off, "unmark: stop merging and unmerge", NULL },
        { "force", 0, 0, G_OPTION_ARG_NONE, &force,
          "override <nosharepages/> and the free-memory check", NULL },
        { "qmp", 0, 0, G_OPTION_ARG_FILENAME, &qmp, "a bare QEMU's QMP socket instead of a domain", "SOCKET" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("DOMAIN - mark a guest's RAM mergeable");
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(SpLibvirt) lv = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpGuest) g = NULL;
    g_autoptr(GPtrArray) before = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    int rc;

    g_option_context_set_summary(ctx,
        "qom-set of each backend's merge property, verified in smaps (VmFlags mg).\n"
        "A domain with <nosharepages/> is refused unless --force.  --off unmerges every\n"
        "shared page (copy-on-write): it is refused unless MemAvailable covers the guest's\n"
        "merged pages plus 10%, or --force.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if ((argc != 2 && !qmp) || (qmp && argc != 1)) {
        sp_cli_error("mark: give one DOMAIN, or --qmp SOCKET");
        return SP_EXIT_USAGE;
    }
    if ((rc = sp_cli_require_local(global, "mark", !qmp,
                                   "verifies the marking in the guest's /proc/PID/smaps")) !=
            SP_EXIT_OK ||
        (rc = sp_cli_refuse_readonly(global, "mark", "changes the guest's merge property")) !=
            SP_EXIT_OK)
        return rc;
    name = argc > 1 ? argv[1] : qmp;
    g = sp_cli_open_guest(global, &lv, host, argc > 1 ? argv[1] : NULL, qmp, &error);
    if (!g || !sp_guest_load_regions(g, host, &error)) {
        sp_cli_error("mark: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (region && !sp_guest_find_region(g, region)) {
        sp_cli_error("mark: guest %s has no region '%s'", name, region);
        return SP_EXIT_USAGE;
    }
    if (!off && lv && !force) {
        gboolean nosharepages = FALSE;
        if (!sp_libvirt_has_nosharepages(lv, name, &nosharepages, &error)) {
            sp_cli_error("mark: %s", error->message);
            return SP_EXIT_FAILURE;
        }
        if (nosharepages) {
            sp_cli_error("mark: domain '%s' has <memoryBacking><nosharepages/>: its owner opted "
                         "out of memory sharing; --force overrides", name);
            return SP_EXIT_FAILURE;
        }
    }
    /* The unmerge rule shared with ksm set run=2, ksm numa and experiments. */
    if (off && !force && !sp_guest_unmerge_check(g, host, &error)) {
        sp_cli_error("mark: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    GPtrArray *regions = sp_guest_get_regions(g);
    for (guint i = 0; i < regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(regions, i);
        g_ptr_array_add(before, g_strdup_printf("%s", r->vma ? (r->vma_mergeable ? "yes" : "no") : "-"));
    }
    if (!sp_guest_set_merge(g, host, region, !off, &error)) {
        sp_cli_error("mark: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    sp_cli_warn_daemon("mark", name);
    regions = sp_guest_get_regions(g);
    g_autoptr(json_object) arr = json_object_new_array();
    for (guint i = 0; i < regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(regions, i);
        g_autofree char *flags = r->vma ? g_strjoinv(" ", r->vma->vmflags) : g_strdup("");
        if (region && !g_str_equal(region, r->id))
            continue;
        if (json) {
            /* "yes", "no", or "-" for no host mapping: true, false, null */
            const char *was = i < before->len ? (char *)before->pdata[i] : "-";
            json_object *o = json_object_new_object();
            json_object_object_add(o, "id", json_object_new_string(r->id));
            json_object_object_add(o, "mergeable_before", g_str_equal(was, "-") ? NULL
                                   : json_object_new_boolean(g_str_equal(was, "yes")));
            json_object_object_add(o, "mergeable",
                                   r->vma ? json_object_new_boolean(r->vma_mergeable) : NULL);
            json_object_object_add(o, "vmflags", json_object_new_string(flags));
            json_object_array_add(arr, o);
        } else {
            sp_cli_print(stdout, "%s: region %s: mg %s -> %s (smaps %" PRIx64 " VmFlags: %s)\n", name, r->id,
                   i < before->len ? (char *)before->pdata[i] : "-", r->vma_mergeable ? "yes" : "no",
                   r->vma ? r->vma->start : 0, flags);
        }
    }
    if (json) {
        g_autoptr(json_object) doc = sp_json_document_new("mark");
        json_object_object_add(doc, "domain", json_object_new_string(sp_guest_get_name(g)));
        json_object_object_add(doc, "pid", json_object_new_int(sp_guest_get_pid(g)));
        json_object_object_add(doc, "merge", json_object_new_boolean(!off));
        json_object_object_add(doc, "regions", json_object_get(arr));
        sp_cli_print_json(doc);
    }
    return SP_EXIT_OK;
}
