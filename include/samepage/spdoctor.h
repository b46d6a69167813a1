/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spdoctor.h: why merging does not happen, or is slow
 *
 * The diagnosis is a pure function of a snapshot (KSM state, and per guest
 * what libvirt, QMP, smaps and the model said), so every rule is tested
 * without a host.  Each finding has the evidence and the fix.
 */
#pragma once

#include <glib.h>

#include "samepage/spguest.h"
#include "samepage/spjson.h"
#include "samepage/spksm.h"
#include "samepage/splibvirt.h"

G_BEGIN_DECLS

typedef enum {
    SP_FINDING_INFO,
    SP_FINDING_WARNING,            /* merging is slow or partial */
    SP_FINDING_ERROR,              /* merging cannot happen */
} SpFindingSeverity;

typedef struct {
    SpFindingSeverity severity;
    char *subject;                 /* "host", or the guest name */
    char *code;                    /* stable identifier, e.g. "ksm-stopped" */
    char *message;
    char *evidence;
    char *fix;
} SpFinding;

void sp_finding_free(SpFinding *f);
const char *sp_finding_severity_to_string(SpFindingSeverity s);

typedef struct {
    gboolean ksm_available;
    SpKsmState ksm;
    guint64 candidate_pages;       /* pages KSM would scan on the host (all guests) */
} SpDoctorHost;

typedef struct {
    const char *name;
    const GPtrArray *regions;      /* SpGuestRegion */
    gboolean nosharepages;         /* libvirt XML opt-out */
    gboolean vfio;                 /* QEMU holds /dev/vfio: guest RAM is pinned */
    gboolean estimated;            /* the fields below are set */
    guint64 scanned_pages;
    guint64 volatile_pages;
    guint64 saved_pages;
    guint64 model_merging_pages;   /* the model's ksm_merging_pages, this guest alone */
    gint64 kernel_merging_pages;   /* ksm_stat ksm_merging_pages now; -1 unknown */
    guint64 model_unmerged_pages;  /* pages the model merges that the scan found were
                                    * not KSM pages (sp_estimate_get_unmerged_pages()) */
    const SpKsmState *ksm;         /* the host's KSM state, or NULL */
} SpDoctorGuest;

/* Scan time above which a full pass is called slow (seconds). */
#define SP_DOCTOR_SLOW_SCAN_S 300

GPtrArray *sp_doctor_host(const SpDoctorHost *host);
GPtrArray *sp_doctor_guest(const SpDoctorGuest *guest);

/* Findings as JSON: {"severity", "subject", "code", "message", "evidence",
 * "fix"}, and an array of them; the errors among them. */
json_object *sp_finding_to_json(const SpFinding *finding);
json_object *sp_doctor_findings_to_json(const GPtrArray *findings);
guint sp_doctor_count_errors(const GPtrArray *findings);

/* ---- the snapshot, read from the host, libvirt and the guests */

/* Whether process @pid holds a /dev/vfio descriptor (device assignment). */
gboolean sp_doctor_has_vfio(const SpHost *host, pid_t pid);
/* The host's part: the KSM state (ksm_available FALSE without KSM) and the
 * pages KSM would scan in @guests (SpGuest, regions loaded). */
void sp_doctor_host_snapshot(const SpHost *host, const GPtrArray *guests, SpDoctorHost *dh);
/* One guest's part: regions, VFIO, ksm_stat, <nosharepages/> when @lv is
 * the guest's libvirt connection (NULL for a bare QEMU), and with @estimate
 * the model's figures: this scans the guest's RAM (blocks for about a
 * second).  @dg points into @guest and @dh, which must outlive it. */
gboolean sp_doctor_guest_snapshot(const SpHost *host, SpLibvirt *lv, SpGuest *guest,
                                  const SpDoctorHost *dh, gboolean estimate,
                                  SpDoctorGuest *dg, GError **error);

typedef struct {
    const char *uri;                  /* libvirt connection; NULL: the default */
    guint libvirt_flags;              /* SpLibvirtOpenFlags to open it with */
    const char *const *domains;       /* NULL: every running domain, unless ... */
    const char *const *qmp_sockets;   /* ... bare QEMUs are named (NULL: none) */
    gboolean estimate;                /* run the model (volatility, duplicates) */
    /* Called with each finding as it is appended (NULL: none), e.g. to
     * print it while the next guest is examined. */
    void (*found)(const SpFinding *finding, gpointer data);
    gpointer found_data;
} SpDoctorRequest;

/* Everything `samepage doctor` examines, appended to @findings (SpFinding)
 * in the order found: a domain that cannot be read, or libvirt missing, is
 * a finding; a QMP socket that cannot be read, a libvirt query or the
 * model failing is an error, and @findings keeps what was found before.
 * *@lv is opened on @req->uri when needed (the caller frees it). */
gboolean sp_doctor_examine(const SpHost *host, SpLibvirt **lv, const SpDoctorRequest *req,
                           GPtrArray *findings, GError **error);

G_END_DECLS
