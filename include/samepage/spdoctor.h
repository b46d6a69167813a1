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
#include "samepage/spksm.h"

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

G_END_DECLS
