/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd-doctor.c: samepage doctor [DOMAIN...]
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "samepage/spdoctor.h"
#include "samepage/spestimate.h"

/* Does the process hold /dev/vfio descriptors (device assignment)? */
static gboolean
sp_cli_has_vfio(const SpHost *host, pid_t pid)
{
    g_autofree char *dir = sp_host_procfs_path(host, "%d/fd", (int)pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *target = g_file_read_link(path, NULL);
        if (target && g_str_has_prefix(target, "/dev/vfio"))
            return TRUE;
    }
    return FALSE;
}

static gboolean
sp_cli_doctor_estimate(const SpHost *host, SpGuest *g, SpDoctorGuest *dg, GError **error)
{
    g_autoptr(GArray) ram = sp_guest_get_ram_ranges(g);
    SpScanOptions sopt;
    SpEstimateOptions eopt;

    if (ram->len == 0)
        return TRUE;
    sp_scan_options_init(&sopt);
    sopt.mode = SP_SCAN_WHAT_IF;       /* as if marked: what marking would give */
    sopt.passes = 2;
    sopt.interval_ms = 500;
    if (!sp_estimate_options_from_host(&eopt, host, NULL))
        sp_estimate_options_init(&eopt);
    SpEstimateTarget t = { .pid = sp_guest_get_pid(g),
                           .ranges = (const SpScanRange *)(void *)ram->data,
                           .n_ranges = ram->len };
    g_autoptr(SpEstimate) est = sp_estimate_targets(host, &t, 1, &sopt, &eopt, NULL, error);
    if (!est)
        return FALSE;
    const SpEstimateProcess *p = sp_estimate_get_process(est, 0);
    dg->estimated = TRUE;
    dg->scanned_pages = p->scanned_pages;
    dg->volatile_pages = p->volatile_pages;
    dg->saved_pages = sp_estimate_get_saved_zero(est) + sp_estimate_get_saved_nonzero(est);
    dg->model_merging_pages = p->ksm.ksm_merging_pages;
    dg->model_unmerged_pages = p->unmerged_pages;
    return TRUE;
}

/* Prints the findings; counts the errors in *n_errors. */
static void
sp_cli_doctor_emit(GPtrArray *findings, json_object *arr, guint *n_errors)
{
    for (guint i = 0; i < findings->len; i++) {
        const SpFinding *f = g_ptr_array_index(findings, i);
        if (f->severity == SP_FINDING_ERROR)
            (*n_errors)++;
        if (arr) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "severity",
                                   json_object_new_string(sp_finding_severity_to_string(f->severity)));
            json_object_object_add(o, "subject", json_object_new_string(f->subject));
            json_object_object_add(o, "code", json_object_new_string(f->code));
            json_object_object_add(o, "message", json_object_new_string(f->message));
            json_object_object_add(o, "evidence", json_object_new_string(f->evidence));
            json_object_object_add(o, "fix", json_object_new_string(f->fix));
            json_object_array_add(arr, o);
        } else {
            sp_cli_print(stdout, "%-7s %s: %s (%s)%s%s\n", sp_finding_severity_to_string(f->severity),
                   f->subject, f->message, f->evidence, *f->fix ? " -> fix: " : "", f->fix);
        }
    }
}

int
sp_cli_doctor(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean json = FALSE, no_estimate = FALSE;
    guint n_errors = 0;
    g_auto(GStrv) qmps = NULL;
    GOptionEntry entries[] = {
        { "qmp", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &qmps, "a bare QEMU's QMP socket (repeat)", "SOCKET" },
        { "no-estimate", 0, 0, G_OPTION_ARG_NONE, &no_estimate,
          "skip the model (no volatility or duplicate findings; faster)", NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[DOMAIN...] - why guests do not merge");
    g_autoptr(SpHost) host = sp_host_new_from_env();
    g_autoptr(SpLibvirt) lv = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) guests = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_free);
    g_autoptr(GPtrArray) from_libvirt = g_ptr_array_new();
    g_autoptr(json_object) arr = NULL;
    g_auto(GStrv) names = NULL;
    SpDoctorHost dh = { 0 };
    int rc;

    g_option_context_set_summary(ctx,
        "Every reason merging cannot happen or is slow, for the host and each guest\n"
        "(all running libvirt domains by default), with the evidence and the fix.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;
    if (json)
        arr = json_object_new_array();

    if (argc > 1) {
        names = g_strdupv(argv + 1);
    } else if (!qmps) {
        if (!(lv = sp_libvirt_open(global->uri, &error)) ||
            !(names = sp_libvirt_list_running(lv, &error))) {
            /* No libvirt: the host can still be examined. */
            g_autoptr(GPtrArray) f = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
            SpFinding *x = g_new0(SpFinding, 1);
            x->severity = SP_FINDING_INFO;
            x->subject = g_strdup("host");
            x->code = g_strdup("no-libvirt");
            x->message = g_strdup("guests were not examined");
            x->evidence = g_strdup(error->message);
            x->fix = g_strdup("start libvirtd, or name QEMU sockets with --qmp");
            g_ptr_array_add(f, x);
            sp_cli_doctor_emit(f, arr, &n_errors);
            g_clear_error(&error);
        }
    }
    for (char **n = names; n && *n; n++) {
        SpGuest *g = sp_cli_open_guest(global, &lv, host, *n, NULL, &error);
        if (!g || !sp_guest_load_regions(g, host, &error)) {
            /* A guest that cannot be read is a finding; the others go on. */
            g_autoptr(GPtrArray) f = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
            SpFinding *x = g_new0(SpFinding, 1);
            x->severity = SP_FINDING_ERROR;
            x->subject = g_strdup(*n);
            x->code = g_strdup("unreadable");
            x->message = g_strdup("the guest could not be examined");
            x->evidence = g_strdup(error->message);
            x->fix = g_strdup("check that the domain runs a QEMU process on this host");
            g_ptr_array_add(f, x);
            sp_cli_doctor_emit(f, arr, &n_errors);
            g_clear_error(&error);
            sp_guest_free(g);
            continue;
        }
        g_ptr_array_add(guests, g);
        g_ptr_array_add(from_libvirt, GINT_TO_POINTER(1));
    }
    for (char **q = qmps; q && *q; q++) {
        SpGuest *g = sp_cli_open_guest(global, &lv, host, NULL, *q, &error);
        if (!g || !sp_guest_load_regions(g, host, &error)) {
            sp_cli_error("doctor: %s", error->message);
            sp_guest_free(g);
            return SP_EXIT_FAILURE;
        }
        g_ptr_array_add(guests, g);
        g_ptr_array_add(from_libvirt, GINT_TO_POINTER(0));
    }

    dh.ksm_available = sp_ksm_read(host, &dh.ksm, NULL);
    for (guint i = 0; i < guests->len; i++) {
        GPtrArray *regions = sp_guest_get_regions(g_ptr_array_index(guests, i));
        for (guint r = 0; r < regions->len; r++) {
            const SpGuestRegion *reg = g_ptr_array_index(regions, r);
            if (reg->vma && reg->vma_mergeable)
                dh.candidate_pages += reg->vma->rss_kb / 4;
        }
    }
    g_autoptr(GPtrArray) hf = sp_doctor_host(&dh);
    sp_cli_doctor_emit(hf, arr, &n_errors);

    for (guint i = 0; i < guests->len; i++) {
        SpGuest *g = g_ptr_array_index(guests, i);
        SpDoctorGuest dg = { 0 };
        dg.name = sp_guest_get_name(g);
        dg.regions = sp_guest_get_regions(g);
        dg.vfio = sp_cli_has_vfio(host, sp_guest_get_pid(g));
        dg.ksm = dh.ksm_available ? &dh.ksm : NULL;
        SpKsmStat ks;
        dg.kernel_merging_pages = sp_ksm_stat_read(host, sp_guest_get_pid(g), &ks, NULL) &&
            ks.present ? ks.ksm_merging_pages : -1;
        if (GPOINTER_TO_INT(g_ptr_array_index(from_libvirt, i)) &&
            !sp_libvirt_has_nosharepages(lv, dg.name, &dg.nosharepages, &error)) {
            sp_cli_error("doctor: %s", error->message);
            return SP_EXIT_FAILURE;
        }
        if (!no_estimate && !sp_cli_doctor_estimate(host, g, &dg, &error)) {
            sp_cli_error("doctor: guest %s: %s", dg.name, error->message);
            return SP_EXIT_FAILURE;
        }
        g_autoptr(GPtrArray) gf = sp_doctor_guest(&dg);
        sp_cli_doctor_emit(gf, arr, &n_errors);
    }
    if (json)
        sp_cli_print_json(arr);
    return n_errors ? SP_EXIT_FINDINGS : SP_EXIT_OK;
}
