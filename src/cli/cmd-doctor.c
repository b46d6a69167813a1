/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd-doctor.c: samepage doctor [DOMAIN...]
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "samepage/spdoctor.h"

/* Prints a finding as text, as soon as it is found. */
static void
sp_cli_doctor_print(const SpFinding *f, gpointer data)
{
    sp_cli_print(stdout, "%-7s %s: %s (%s)%s%s\n", sp_finding_severity_to_string(f->severity),
           f->subject, f->message, f->evidence, *f->fix ? " -> fix: " : "", f->fix);
}

int
sp_cli_doctor(const SpCliGlobal *global, int argc, char **argv)
{
    gboolean json = FALSE, no_estimate = FALSE;
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
    g_autoptr(GPtrArray) findings = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
    SpDoctorRequest req = { 0 };
    gboolean ok;
    int rc;

    g_option_context_set_summary(ctx,
        "Every reason merging cannot happen or is slow, for the host and each guest\n"
        "(all running libvirt domains by default), with the evidence and the fix.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((rc = sp_cli_parse(ctx, &argc, &argv)) != SP_EXIT_OK)
        return rc;

    /* The host's KSM and the guests' memory are read here; --qmp alone
     * needs no libvirt, and then only -c is checked. */
    if ((rc = sp_cli_require_local(global, "doctor", argc > 1 || !qmps,
                                   "reads /sys/kernel/mm/ksm and the guests' memory")) !=
        SP_EXIT_OK)
        return rc;
    req.uri = global->uri;
    req.libvirt_flags = sp_cli_libvirt_flags(global);
    req.domains = argc > 1 ? (const char *const *)argv + 1 : NULL;
    req.qmp_sockets = (const char *const *)qmps;
    req.estimate = !no_estimate;
    if (!json)
        req.found = sp_cli_doctor_print;
    ok = sp_doctor_examine(host, &lv, &req, findings, &error);
    if (!ok) {
        sp_cli_error("doctor: %s", error->message);
        return SP_EXIT_FAILURE;
    }
    if (json) {
        g_autoptr(json_object) doc = sp_json_document_new("doctor");
        json_object_object_add(doc, "errors", json_object_new_int(sp_doctor_count_errors(findings)));
        json_object_object_add(doc, "findings", sp_doctor_findings_to_json(findings));
        sp_cli_print_json(doc);
    }
    return sp_doctor_count_errors(findings) ? SP_EXIT_FINDINGS : SP_EXIT_OK;
}
