/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd-guests.c: samepage list | regions DOMAIN | mark DOMAIN
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "samepage/spnuma.h"

#define MIB(bytes) ((double)(bytes) / (1024.0 * 1024.0))

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
    int rc;

    g_option_context_set_summary(ctx, "Running QEMU guests: pid, RAM, regions marked mergeable, "
                                      "KSM merging pages and profit (/proc/PID/ksm_stat).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (!(lv = sp_libvirt_open(global->uri, &error)) ||
        !(names = sp_libvirt_list_running(lv, &error))) {
        sp_cli_error("list: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    daemon = sp_cli_daemon_guests();
    if (!json)
        sp_cli_print(stdout, "%-20s %8s %9s %8s %13s %11s\n", "DOMAIN", "PID", "RAM MiB", "MARKED",
               "MERGING MiB", "PROFIT MiB");
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
                sp_cli_print(stdout, "%-20s %s\n", *n, gerr->message);
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
            g_autofree char *marked = g_strdup_printf("%u/%u", nm, nr);
            sp_cli_print(stdout, "%-20s %8d %9.0f %8s %13.1f %11.1f\n", *n, sp_guest_get_pid(g), MIB(ram),
                   marked, MIB(k.ksm_merging_pages * 4096.0), MIB(k.ksm_process_profit));
        }
    }
    json_object_object_add(doc, "guests", json_object_get(arr));
    if (json)
        sp_cli_print_json(doc);
    else if (daemon)
        sp_cli_print_daemon_view(daemon);
    return SP_EXIT_OK;
}

int
sp_cli_regions(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean json = FALSE;
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
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if ((argc != 2 && !qmp) || (qmp && argc != 1)) {
        sp_cli_error("regions: give one DOMAIN, or --qmp SOCKET");
        return SP_EXIT_USAGE;
    }
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
    sp_cli_print(stdout, "guest %s, QEMU pid %d: ksm_merging_pages %" G_GINT64_FORMAT ", ksm_process_profit "
           "%.1f MiB\n\n", sp_guest_get_name(g), sp_guest_get_pid(g), k.ksm_merging_pages,
           MIB(k.ksm_process_profit));
    sp_cli_print(stdout, "%-12s %8s %5s %4s %-12s %-29s %8s %8s %8s %s\n", "REGION", "SIZE MiB", "MERGE", "MG",
           "BACKING", "HOST RANGE", "RSS MiB", "THP MiB", "KSM MiB", "NODE PAGES");
    for (guint i = 0; i < regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(regions, i);
        if (!r->vma) {
            sp_cli_print(stdout, "%-12s %8.0f %5s %4s (no host mapping found)\n", r->id, MIB(r->size),
                   r->merge ? "on" : "off", "-");
            continue;
        }
        g_autofree char *range = g_strdup_printf("%" PRIx64 "-%" PRIx64, r->vma->start, r->vma->end);
        g_autoptr(GString) nodes = g_string_new(NULL);
        for (guint n = 0; r->node_pages && n < r->node_pages->len; n++)
            g_string_append_printf(nodes, "%sN%u=%" G_GUINT64_FORMAT, n ? " " : "", n,
                                   g_array_index(r->node_pages, guint64, n));
        sp_cli_print(stdout, "%-12s %8.0f %5s %4s %-12s %-29s %8.1f %8.1f %8.1f %s\n", r->id, MIB(r->size),
               r->merge ? "on" : "off", r->vma_mergeable ? "yes" : "no",
               sp_backing_to_string(r->backing), range, r->vma->rss_kb / 1024.0,
               r->vma->anon_huge_kb / 1024.0, r->vma->ksm_kb / 1024.0, nodes->str);
    }
    return SP_EXIT_OK;
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
