/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcontrol.h: the scan-rate controller, a pure function of snapshots
 *
 * Each call takes a snapshot of the host (KSM figures and knobs, ksmd's CPU
 * time, memory, the registered pages, the model's latest prediction) and
 * returns the knobs ksmd should run with, and why.  Nothing here reads or
 * writes the host: the caller (samepaged) gathers the snapshot and applies
 * the decision.  The controller keeps what it must remember between calls
 * (ksmd's CPU over the last minute, its phase) in its own object.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    SP_CONTROL_STATIC,          /* the configured pages_to_scan and sleep_millisecs */
    SP_CONTROL_KSMTUNED,        /* ksmtuned's law, its defaults: the baseline */
    SP_CONTROL_KUBEVIRT,        /* KubeVirt's node handler law */
    SP_CONTROL_KERNEL_ADVISOR,  /* advisor_mode=scan-time, the kernel's defaults */
    SP_CONTROL_SAMEPAGE,        /* towards the model's prediction, within a CPU budget */
    SP_CONTROL_N_MODES,
} SpControlMode;

const char *sp_control_mode_name(SpControlMode mode);
gboolean sp_control_mode_from_name(const char *name, SpControlMode *mode);

typedef struct {
    SpControlMode mode;
    double max_ksmd_cpu_pct;        /* samepage: ksmd's budget, % of one CPU averaged over
                                     * a minute (default 25) */
    guint static_pages_to_scan;     /* static (default 1000) */
    guint static_sleep_ms;          /* static (default 20) */
    guint maintenance_scan_s;       /* samepage: once at the prediction, one full scan of
                                     * the registered pages in this many seconds (600) */
    double stop_above_available_pct; /* samepage: run=0 while MemAvailable is above this
                                     * share of MemTotal and the kernel is at the
                                     * prediction; 0 (default): never stop */
    guint smart_scan_off_scans;     /* samepage: full scans with smart_scan=0 when the
                                     * kernel settles below the prediction (3) */
} SpControlConfig;

void sp_control_config_init(SpControlConfig *cfg);

/* What the caller gathers before each decision.  Times in seconds on one
 * monotonic clock. */
typedef struct {
    double t;
    /* KSM (sysfs) */
    gboolean run;                   /* run == 1 */
    guint pages_to_scan;
    guint sleep_ms;
    gboolean has_smart_scan;
    gboolean smart_scan;
    gboolean has_advisor;           /* advisor_mode exists (6.8+) */
    guint64 pages_shared;
    guint64 pages_sharing;
    guint64 full_scans;
    gboolean has_pages_scanned;     /* pages_scanned exists (6.8+) */
    guint64 pages_scanned;
    /* ksmd (/proc/<ksmd>/stat) */
    gint ksmd_pid;                  /* 0: not found */
    double ksmd_cpu_s;              /* utime + stime */
    /* memory (/proc/meminfo, /proc/pressure/memory) */
    guint64 mem_total_kib;
    guint64 mem_available_kib;
    guint64 mem_free_kib;           /* MemFree + Buffers + Cached (ksmtuned's "free") */
    guint64 committed_kib;          /* memory of the guests (ksmtuned's "committed") */
    double psi_some_avg10;          /* < 0: unknown */
    /* what ksmd scans, and what the model says of it */
    guint64 registered_pages;       /* present pages in VM_MERGEABLE VMAs, all processes */
    gboolean have_prediction;
    guint64 predicted_sharing;      /* the model's pages_sharing for those pages */
    double prediction_t;
    guint64 prediction_registered_pages;  /* registered_pages when it was made */
    double last_guest_start_t;      /* < 0: none seen */
} SpControlSnapshot;

typedef enum {
    SP_CONTROL_PHASE_FIXED,         /* static, advisor: nothing to steer */
    SP_CONTROL_PHASE_OFF,           /* run=0 by the law (ksmtuned, kubevirt, plenty) */
    SP_CONTROL_PHASE_LAW,           /* ksmtuned, kubevirt: stepping */
    SP_CONTROL_PHASE_BOOST,         /* samepage: below the prediction, scanning hard */
    SP_CONTROL_PHASE_SMART_OFF,     /* samepage: passes with smart_scan=0 */
    SP_CONTROL_PHASE_MAINTAIN,      /* samepage: at the prediction, or settled */
} SpControlPhase;

const char *sp_control_phase_name(SpControlPhase phase);

typedef struct {
    gint run;                       /* 0 or 1 */
    guint pages_to_scan;            /* 0: leave it (the advisor owns it) */
    guint sleep_ms;                 /* 0: leave it */
    gint smart_scan;                /* 0, 1, or -1: leave it */
    gint advisor_scan_time;         /* 1: advisor_mode=scan-time, 0: none, -1: leave it */
    double next_s;                  /* decide again in this many seconds */
    SpControlPhase phase;
    double ksmd_cpu_pct;            /* ksmd's CPU over the last minute, % of one CPU;
                                     * < 0 until known */
    char reason[320];
} SpControlDecision;

typedef struct _SpControl SpControl;

SpControl *sp_control_new(const SpControlConfig *cfg);
void sp_control_free(SpControl *ctl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpControl, sp_control_free)

void sp_control_decide(SpControl *ctl, const SpControlSnapshot *snap, SpControlDecision *out);
gboolean sp_control_registered_moved(guint64 registered_pages, guint64 predicted_over);

G_END_DECLS
