/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spdoctor.c: `samepage doctor`: its snapshot, its rules, its findings
 *
 * Host: KSM built, running, and fast enough that a full pass over the
 * candidate pages takes under SP_DOCTOR_SLOW_SCAN_S (a pass takes
 * candidates / pages_to_scan batches of sleep_millisecs each; a page needs
 * two passes to merge).  Guest: not opted out (<nosharepages/>), every RAM
 * backend marked in QEMU and, what counts, in the kernel (VmFlags mg),
 * privately and anonymously backed (shared memfd/file and hugetlbfs are
 * never scanned: vma_ksm_compatible()), not pinned (mlock, VFIO: pinned
 * pages fail write_protect_page()'s refcount check), not mostly volatile,
 * and with duplicates the model can find.
 *
 * The rules are pure functions of a snapshot.  The snapshot is read at the
 * end of this file (sp_doctor_examine() and its parts): guests opened
 * through SpLibvirt or a QMP socket, KSM's state, ksm_stat, VFIO
 * descriptors and, if asked, the model's estimate of each guest's RAM.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-doctor"

#include <inttypes.h>
#include <string.h>

#include "samepage/spdoctor.h"
#include "samepage/spestimate.h"

void
sp_finding_free(SpFinding *f)
{
    if (!f)
        return;
    g_free(f->subject);
    g_free(f->code);
    g_free(f->message);
    g_free(f->evidence);
    g_free(f->fix);
    g_free(f);
}

const char *
sp_finding_severity_to_string(SpFindingSeverity s)
{
    static const char *const names[] = { "info", "warning", "error" };
    return names[s];
}

static void G_GNUC_PRINTF(6, 7)
sp_add(GPtrArray *out, SpFindingSeverity sev, const char *subject, const char *code,
       const char *fix, const char *fmt, ...)
{
    SpFinding *f = g_new0(SpFinding, 1);
    va_list ap;
    char *all, *sep;

    va_start(ap, fmt);
    all = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* "message | evidence" */
    sep = strstr(all, " | ");
    if (sep) {
        *sep = '\0';
        f->evidence = g_strdup(sep + 3);
    } else {
        f->evidence = g_strdup("");
    }
    f->message = all;
    f->severity = sev;
    f->subject = g_strdup(subject);
    f->code = g_strdup(code);
    f->fix = g_strdup(fix);
    g_ptr_array_add(out, f);
}

/**
 * sp_doctor_host:
 *
 * Returns: (transfer full) (element-type SpFinding): the host's findings.
 */
GPtrArray *
sp_doctor_host(const SpDoctorHost *h)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
    const SpKsmEntry *run = &h->ksm.entry[SP_KSM_RUN];
    const SpKsmEntry *pts = &h->ksm.entry[SP_KSM_PAGES_TO_SCAN];
    const SpKsmEntry *slp = &h->ksm.entry[SP_KSM_SLEEP_MILLISECS];

    if (!h->ksm_available) {
        sp_add(out, SP_FINDING_ERROR, "host", "ksm-missing",
               "use a kernel built with CONFIG_KSM=y",
               "this kernel has no KSM | /sys/kernel/mm/ksm does not exist");
        return out;
    }
    if (run->supported && run->value != 1) {
        sp_add(out, SP_FINDING_ERROR, "host", "ksm-stopped", "samepage ksm set run=1",
               "KSM is not running | run=%" G_GINT64_FORMAT "%s", run->value,
               run->value == 2 ? " (stopped and unmerged)" : " (stopped)");
    }
    if (pts->supported && slp->supported && h->candidate_pages > 0) {
        guint64 batch = MAX(pts->value, 1);
        double pass_s = (double)((h->candidate_pages + batch - 1) / batch) * slp->value / 1000.0;
        if (pass_s > SP_DOCTOR_SLOW_SCAN_S) {
            guint64 want = (guint64)((double)h->candidate_pages * slp->value /
                                     (1000.0 * SP_DOCTOR_SLOW_SCAN_S / 2)) + 1;
            g_autofree char *fix = g_strdup_printf("samepage ksm set pages_to_scan=%" G_GUINT64_FORMAT
                                                   " (a pass in %d s)", want,
                                                   SP_DOCTOR_SLOW_SCAN_S / 2);
            sp_add(out, SP_FINDING_WARNING, "host", "scan-slow", fix,
                   "a full KSM pass takes %.0f s, and a page needs two to merge | %" G_GUINT64_FORMAT
                   " candidate pages, pages_to_scan=%" G_GINT64_FORMAT ", sleep_millisecs=%" G_GINT64_FORMAT,
                   pass_s, h->candidate_pages, pts->value, slp->value);
        }
    }
    return out;
}

/**
 * sp_doctor_guest:
 *
 * Returns: (transfer full) (element-type SpFinding): the guest's findings.
 */
GPtrArray *
sp_doctor_guest(const SpDoctorGuest *g)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
    /* A guest named by its QMP socket is marked through it. */
    g_autofree char *mark = g_strdup_printf(g->name[0] == '/' ? "samepage mark --qmp %s"
                                                              : "samepage mark %s", g->name);
    guint n_ok = 0;

    if (g->nosharepages) {
        g_autofree char *fix = g_strdup_printf("remove <nosharepages/> from the domain XML, "
                                               "or samepage mark %s --force", g->name);
        sp_add(out, SP_FINDING_ERROR, g->name, "nosharepages", fix,
               "the domain opts out of memory sharing | <memoryBacking><nosharepages/> "
               "(QEMU -machine mem-merge=off)");
    }
    if (g->vfio) {
        sp_add(out, SP_FINDING_ERROR, g->name, "pinned-vfio",
               "none while the device is assigned: VFIO pins all guest RAM",
               "guest RAM is pinned for device assignment; KSM cannot merge pinned pages | "
               "QEMU holds /dev/vfio file descriptors");
    }
    for (guint i = 0; i < g->regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(g->regions, i);

        if (!r->vma) {
            sp_add(out, SP_FINDING_WARNING, g->name, "region-unmapped",
                   "run with --debug and report it",
                   "region %s: its host mapping was not found | %" G_GUINT64_FORMAT " bytes, "
                   "not matched in /proc/PID/smaps", r->id, r->size);
            continue;
        }
        if (r->backing == SP_BACKING_SHARED || r->backing == SP_BACKING_HUGETLB) {
            sp_add(out, SP_FINDING_ERROR, g->name,
                   r->backing == SP_BACKING_SHARED ? "backing-shared" : "backing-hugetlb",
                   "use memory-backend-ram (or memfd/file with share=off) for this RAM",
                   "region %s is %s memory, which KSM never scans | %" PRIx64 " %s, VmFlags %s",
                   r->id, sp_backing_to_string(r->backing), r->vma->start, r->vma->perms,
                   r->vma->vmflags ? r->vma->vmflags[0] : "");
            continue;
        }
        if (!r->merge && !r->vma_mergeable) {
            sp_add(out, SP_FINDING_ERROR, g->name, "merge-off", mark,
                   "region %s is not marked mergeable | QEMU merge=false, VmFlags without mg",
                   r->id);
            continue;
        }
        if (!r->vma_mergeable) {
            sp_add(out, SP_FINDING_ERROR, g->name, "vma-not-mergeable", mark,
                   "region %s: QEMU says merge=true but the kernel does not scan it | "
                   "VmFlags of %" PRIx64 " lack mg", r->id, r->vma->start);
            continue;
        }
        if (!r->merge) {
            sp_add(out, SP_FINDING_INFO, g->name, "merge-mismatch", mark,
                   "region %s: QEMU says merge=false, yet the kernel scans it | VmFlags has mg "
                   "(a backend made with merge=off under mem-merge=on)", r->id);
        }
        if (r->vma->locked_kb > 0) {
            sp_add(out, SP_FINDING_WARNING, g->name, "pinned-mlock",
                   "drop <locked/> from <memoryBacking> (mlock pins the pages)",
                   "region %s: %.0f MiB is locked in memory; pinned pages do not merge | "
                   "smaps Locked: %" G_GUINT64_FORMAT " kB", r->id, r->vma->locked_kb / 1024.0,
                   r->vma->locked_kb);
        }
        n_ok++;
    }
    if (g->estimated && g->scanned_pages > 0) {
        double vol = (double)g->volatile_pages / g->scanned_pages;
        double saved = (double)g->saved_pages / g->scanned_pages;
        if (vol > 0.5) {
            sp_add(out, SP_FINDING_WARNING, g->name, "mostly-volatile",
                   "nothing to fix in KSM: the guest rewrites its memory faster than a pass",
                   "%.0f%% of the guest's pages changed between two reads | %" G_GUINT64_FORMAT
                   " of %" G_GUINT64_FORMAT " pages", vol * 100, g->volatile_pages, g->scanned_pages);
        }
        if (saved < 0.05) {
            sp_add(out, SP_FINDING_INFO, g->name, "few-duplicates",
                   "KSM will save little here; consider leaving it unmarked",
                   "the model finds %.1f%% of the guest's pages duplicated | %" G_GUINT64_FORMAT
                   " saved of %" G_GUINT64_FORMAT " scanned", saved * 100, g->saved_pages,
                   g->scanned_pages);
        }
    }
    /* The kernel merges fewer of the guest's pages than its own duplicates
     * alone allow (pages it shares with other guests only add to the
     * kernel's figure). */
    gboolean blocked = FALSE;
    for (guint i = 0; i < out->len; i++)
        blocked |= ((const SpFinding *)g_ptr_array_index(out, i))->severity == SP_FINDING_ERROR;
    if (!blocked && g->estimated && g->ksm && g->ksm->entry[SP_KSM_RUN].value == 1 &&
        g->kernel_merging_pages >= 0 &&
        g->model_merging_pages > (guint64)g->kernel_merging_pages +
            MAX(256, g->model_merging_pages / 20)) {
        gboolean smart = g->ksm->entry[SP_KSM_SMART_SCAN].supported &&
            g->ksm->entry[SP_KSM_SMART_SCAN].value;
        guint64 gap = g->model_merging_pages - (guint64)g->kernel_merging_pages;
        /* A cause only when the scan shows it: equal pages held apart. */
        gboolean held = g->model_unmerged_pages >= gap / 2;

        if (held)
            sp_add(out, SP_FINDING_WARNING, g->name, "merged-below-model",
                   smart ? "if it stays so for a few minutes: samepage ksm set smart_scan=0, wait "
                           "a few full scans, then samepage ksm set smart_scan=1"
                         : "give ksmd a few more full scans; see samepage estimate for the details",
                   "KSM merges %" G_GINT64_FORMAT " of the guest's pages, but its memory alone has "
                   "%" G_GUINT64_FORMAT " that can merge: %" G_GUINT64_FORMAT " pages of "
                   "duplicated contents are not KSM pages%s | ksm_stat ksm_merging_pages %"
                   G_GINT64_FORMAT ", model %" G_GUINT64_FORMAT ", unmerged %" G_GUINT64_FORMAT
                   "%s", g->kernel_merging_pages, g->model_merging_pages, g->model_unmerged_pages,
                   smart ? "; with smart_scan=1 a page left unmerged for long is looked at once "
                           "in 9 passes, each on its own schedule, so two such equal pages may "
                           "never meet (docs/kernel-facts.md)" : "",
                   g->kernel_merging_pages, g->model_merging_pages, g->model_unmerged_pages,
                   smart ? ", smart_scan=1" : "");
        else
            sp_add(out, SP_FINDING_WARNING, g->name, "merged-below-model",
                   "unexplained: compare samepage estimate --json with /proc/PID/ksm_stat over a "
                   "few full scans, and report the numbers",
                   "KSM merges %" G_GINT64_FORMAT " of the guest's pages, the model %"
                   G_GUINT64_FORMAT "; the scan found only %" G_GUINT64_FORMAT " of the pages "
                   "the model merges unmerged, so the difference is unexplained | ksm_stat "
                   "ksm_merging_pages %" G_GINT64_FORMAT ", model %" G_GUINT64_FORMAT
                   ", unmerged %" G_GUINT64_FORMAT, g->kernel_merging_pages,
                   g->model_merging_pages, g->model_unmerged_pages, g->kernel_merging_pages,
                   g->model_merging_pages, g->model_unmerged_pages);
    }
    if (out->len == 0 && n_ok > 0) {
        sp_add(out, SP_FINDING_INFO, g->name, "ok", "",
               "every RAM region can merge | %u region%s marked and scanned", n_ok,
               n_ok == 1 ? "" : "s");
    }
    return out;
}

/* ------------------------------------------------------------ JSON */

/**
 * sp_finding_to_json:
 *
 * {"severity", "subject", "code", "message", "evidence", "fix"}, all strings.
 */
json_object *
sp_finding_to_json(const SpFinding *f)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "severity",
                           json_object_new_string(sp_finding_severity_to_string(f->severity)));
    json_object_object_add(o, "subject", json_object_new_string(f->subject));
    json_object_object_add(o, "code", json_object_new_string(f->code));
    json_object_object_add(o, "message", json_object_new_string(f->message));
    json_object_object_add(o, "evidence", json_object_new_string(f->evidence));
    json_object_object_add(o, "fix", json_object_new_string(f->fix));
    return o;
}

/**
 * sp_doctor_findings_to_json:
 * @findings: (element-type SpFinding)
 *
 * Returns: an array of sp_finding_to_json(), in order.
 */
json_object *
sp_doctor_findings_to_json(const GPtrArray *findings)
{
    json_object *arr = json_object_new_array();

    for (guint i = 0; i < findings->len; i++)
        json_object_array_add(arr, sp_finding_to_json(g_ptr_array_index(findings, i)));
    return arr;
}

guint
sp_doctor_count_errors(const GPtrArray *findings)
{
    guint n = 0;

    for (guint i = 0; i < findings->len; i++)
        n += ((const SpFinding *)g_ptr_array_index(findings, i))->severity == SP_FINDING_ERROR;
    return n;
}

/* -------------------------------------------------------- snapshot
 *
 * Reading what the rules above judge: the host's KSM state, and per guest
 * its regions (QMP and smaps), ksm_stat, VFIO descriptors, the libvirt
 * opt-out and, if asked, the model's estimate of its RAM.
 */

/**
 * sp_doctor_has_vfio:
 *
 * Whether one of /proc/PID/fd links to /dev/vfio (a device assigned to the
 * guest: its RAM is pinned).  FALSE when the directory cannot be read.
 */
gboolean
sp_doctor_has_vfio(const SpHost *host, pid_t pid)
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

/**
 * sp_doctor_host_snapshot:
 * @guests: (element-type SpGuest): with their regions loaded
 *
 * KSM's state (ksm_available FALSE if it cannot be read) and the candidate
 * pages: the resident 4 KiB pages of every region the kernel scans.
 */
void
sp_doctor_host_snapshot(const SpHost *host, const GPtrArray *guests, SpDoctorHost *dh)
{
    memset(dh, 0, sizeof(*dh));
    dh->ksm_available = sp_ksm_read(host, &dh->ksm, NULL);
    for (guint i = 0; i < guests->len; i++) {
        GPtrArray *regions = sp_guest_get_regions(g_ptr_array_index(guests, i));
        for (guint r = 0; regions && r < regions->len; r++) {
            const SpGuestRegion *reg = g_ptr_array_index(regions, r);
            if (reg->vma && reg->vma_mergeable)
                dh->candidate_pages += reg->vma->rss_kb / 4;
        }
    }
}

/* The model's figures for one guest: its RAM backends scanned as if marked
 * (what marking would give), then estimated with the host's KSM settings.
 * A guest with no placed backend is left unestimated. */
static gboolean
sp_doctor_estimate(const SpHost *host, SpGuest *g, SpDoctorGuest *dg, GError **error)
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

/**
 * sp_doctor_guest_snapshot:
 * @lv: (nullable): the connection the guest came from; NULL for a bare
 *   QEMU (no <nosharepages/> to look at)
 * @guest: regions loaded
 * @dh: the host snapshot (sp_doctor_host_snapshot())
 *
 * Returns: FALSE if libvirt cannot say whether the domain opts out, or the
 * estimate fails (the message then names the guest).
 */
gboolean
sp_doctor_guest_snapshot(const SpHost *host, SpLibvirt *lv, SpGuest *guest,
                         const SpDoctorHost *dh, gboolean estimate, SpDoctorGuest *dg,
                         GError **error)
{
    SpKsmStat ks;

    memset(dg, 0, sizeof(*dg));
    dg->name = sp_guest_get_name(guest);
    dg->regions = sp_guest_get_regions(guest);
    dg->vfio = sp_doctor_has_vfio(host, sp_guest_get_pid(guest));
    dg->ksm = dh->ksm_available ? &dh->ksm : NULL;
    dg->kernel_merging_pages = sp_ksm_stat_read(host, sp_guest_get_pid(guest), &ks, NULL) &&
        ks.present ? ks.ksm_merging_pages : -1;
    if (lv && !sp_libvirt_has_nosharepages(lv, dg->name, &dg->nosharepages, error))
        return FALSE;
    if (estimate && !sp_doctor_estimate(host, guest, dg, error)) {
        g_prefix_error(error, "guest %s: ", dg->name);
        return FALSE;
    }
    return TRUE;
}

static GPtrArray *
sp_doctor_one_finding(SpFindingSeverity sev, const char *subject, const char *code,
                      const char *message, const char *evidence, const char *fix)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
    SpFinding *f = g_new0(SpFinding, 1);

    f->severity = sev;
    f->subject = g_strdup(subject);
    f->code = g_strdup(code);
    f->message = g_strdup(message);
    f->evidence = g_strdup(evidence);
    f->fix = g_strdup(fix);
    g_ptr_array_add(out, f);
    return out;
}

/* Moves @more's findings to the end of @findings, telling @req's found(). */
static void
sp_doctor_append(const SpDoctorRequest *req, GPtrArray *findings, GPtrArray *more)
{
    for (guint i = 0; i < more->len; i++) {
        SpFinding *f = g_steal_pointer(&more->pdata[i]);
        g_ptr_array_add(findings, f);
        if (req->found)
            req->found(f, req->found_data);
    }
    g_ptr_array_unref(more);
}

/**
 * sp_doctor_examine:
 * @lv: (inout): the libvirt connection, opened on @req->uri if NULL and needed
 * @findings: (element-type SpFinding): where the findings are appended; it
 *   must free them (sp_finding_free)
 *
 * Opens the guests (named domains, or every running one; then the QMP
 * sockets), reads the snapshot and appends the host's findings, then each
 * guest's.  A domain that cannot be read is an "unreadable" finding and the
 * others go on; without libvirt (and no guest named) the host alone is
 * examined, with a "no-libvirt" finding.
 */
gboolean
sp_doctor_examine(const SpHost *host, SpLibvirt **lv, const SpDoctorRequest *req,
                  GPtrArray *findings, GError **error)
{
    g_autoptr(GPtrArray) guests = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_free);
    g_autoptr(GArray) from_libvirt = g_array_new(FALSE, FALSE, sizeof(gboolean));
    g_auto(GStrv) names = NULL;
    g_autoptr(GError) local = NULL;
    SpDoctorHost dh;

    if (req->domains) {
        names = g_strdupv((char **)req->domains);
    } else if (!req->qmp_sockets) {
        if ((!*lv && !(*lv = sp_libvirt_open_full(req->uri, req->libvirt_flags, &local))) ||
            !(names = sp_libvirt_list_running(*lv, &local))) {
            /* No libvirt: the host can still be examined. */
            sp_doctor_append(req, findings,
                             sp_doctor_one_finding(SP_FINDING_INFO, "host", "no-libvirt",
                                                   "guests were not examined", local->message,
                                                   "start libvirtd, or name QEMU sockets "
                                                   "with --qmp"));
            g_clear_error(&local);
        }
    }
    for (char **n = names; n && *n; n++) {
        SpGuest *g = NULL;
        if (*lv || (*lv = sp_libvirt_open_full(req->uri, req->libvirt_flags, &local)))
            g = sp_libvirt_get_guest(*lv, host, *n, &local);
        if (!g || !sp_guest_load_regions(g, host, &local)) {
            /* A guest that cannot be read is a finding; the others go on. */
            sp_doctor_append(req, findings,
                             sp_doctor_one_finding(SP_FINDING_ERROR, *n, "unreadable",
                                                   "the guest could not be examined",
                                                   local->message, "check that the domain "
                                                   "runs a QEMU process on this host"));
            g_clear_error(&local);
            sp_guest_free(g);
            continue;
        }
        g_ptr_array_add(guests, g);
        g_array_append_val(from_libvirt, (gboolean){ TRUE });
    }
    for (const char *const *q = req->qmp_sockets; q && *q; q++) {
        SpGuest *g = sp_guest_open_qmp_socket(*q, error);
        if (!g || !sp_guest_load_regions(g, host, error)) {
            sp_guest_free(g);
            return FALSE;
        }
        g_ptr_array_add(guests, g);
        g_array_append_val(from_libvirt, (gboolean){ FALSE });
    }

    sp_doctor_host_snapshot(host, guests, &dh);
    sp_doctor_append(req, findings, sp_doctor_host(&dh));
    for (guint i = 0; i < guests->len; i++) {
        SpDoctorGuest dg;
        if (!sp_doctor_guest_snapshot(host, g_array_index(from_libvirt, gboolean, i) ? *lv : NULL,
                                      g_ptr_array_index(guests, i), &dh, req->estimate, &dg,
                                      error))
            return FALSE;
        sp_doctor_append(req, findings, sp_doctor_guest(&dg));
    }
    return TRUE;
}
