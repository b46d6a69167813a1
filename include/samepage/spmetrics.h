/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmetrics.h: samepaged's metrics, a snapshot rendered as Prometheus text
 *
 * The daemon fills an SpMetricsSnapshot (KSM sysfs, ksmd's CPU time, each
 * guest's ksm_stat and policy, the model's prediction, the controller's
 * state) and sp_metrics_render() turns it into the Prometheus text
 * exposition format, version 0.0.4.  Rendering is pure: it reads nothing
 * but the snapshot.  Serving the text over HTTP is SpMetricsServer
 * (spmetricsserver.h); writing it for node_exporter's textfile collector is
 * sp_metrics_textfile_write() (spmetricsfile.h).
 *
 * Conventions: every name starts with "samepage_", values are in base
 * units (bytes, seconds, ratios), counters end in "_total", and every
 * family has HELP and TYPE lines.  A figure the snapshot lacks (a KSM file
 * this kernel does not have, a guest without ksm_stat, no prediction yet)
 * is left out rather than reported as 0.
 */
#pragma once

#include <glib.h>

#include "samepage/spksm.h"

G_BEGIN_DECLS

/* One guest, labelled {domain="NAME",uuid="UUID"}. */
typedef struct {
    char *domain;                   /* libvirt name (any bytes; escaped on output) */
    char *uuid;
    gboolean mergeable;             /* its RAM is marked MADV_MERGEABLE by policy */
    char *group;                    /* trust group, or NULL */
    gboolean have_ksm_stat;         /* /proc/PID/ksm_stat was read */
    guint64 merging_pages;          /* ksm_merging_pages */
    gboolean have_profit;           /* ksm_process_profit exists (6.1+) */
    gint64 profit_bytes;            /* ksm_process_profit: may be negative */
    gboolean have_prediction;       /* the model has estimated this guest */
    guint64 predicted_saving_bytes;
} SpMetricsGuest;

/* A trust group of willing guests, labelled {group="NAME"}. */
typedef struct {
    char *group;
    gboolean mergeable;             /* chosen to merge */
    gboolean have_saving;           /* the model has a prediction for it */
    guint64 predicted_saving_bytes; /* its willing guests estimated together */
} SpMetricsTrustGroup;

typedef struct {
    /* KSM sysfs: every knob and figure this kernel has (entry[].supported) */
    gboolean have_ksm;
    SpKsmState ksm;
    guint64 page_size;              /* bytes; turns pages into bytes (4096 if 0) */
    /* ksmd's utime + stime */
    gboolean have_ksmd_cpu;
    double ksmd_cpu_seconds;
    /* guests, in the order they are rendered */
    GPtrArray *guests;              /* of SpMetricsGuest *, owned */
    /* the model's prediction for the whole host */
    gboolean have_prediction;
    guint64 predicted_pages_sharing;
    guint64 predicted_saving_bytes;
    double prediction_age_seconds;
    /* trust groups: what the isolation costs */
    GPtrArray *trust_groups;        /* of SpMetricsTrustGroup *, owned */
    gboolean have_trust_mixed;
    guint64 trust_mixed_saving_bytes;   /* every willing guest merging together */
    gboolean have_trust_chosen;
    guint64 trust_chosen_saving_bytes;  /* the groups that merge, each on its own */
    /* the scan-rate controller */
    gboolean have_controller;
    char *controller_mode;          /* "static", "samepage", ... */
    char *controller_reason;        /* why it chose what it chose, one line */
    guint controller_pages_to_scan;
    guint controller_sleep_ms;
} SpMetricsSnapshot;

SpMetricsSnapshot *sp_metrics_snapshot_new(void);
void sp_metrics_snapshot_free(SpMetricsSnapshot *snap);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpMetricsSnapshot, sp_metrics_snapshot_free)

/* Appends a guest (all fields zero but @domain and @uuid, copied) and
 * returns it for the caller to fill; it belongs to @snap. */
SpMetricsGuest *sp_metrics_snapshot_add_guest(SpMetricsSnapshot *snap,
                                              const char *domain, const char *uuid);
/* Appends a trust group (all fields zero but @group, copied). */
SpMetricsTrustGroup *sp_metrics_snapshot_add_trust_group(SpMetricsSnapshot *snap,
                                                         const char *group);
/* Sets a string field of the snapshot or a guest (copies @value). */
void sp_metrics_set_string(char **field, const char *value);

/* The text exposition (format 0.0.4) of @snap, newline-terminated. */
char *sp_metrics_render(const SpMetricsSnapshot *snap);

/* A label value escaped for the text format: \\, \" and \n; bytes that are
 * not UTF-8 become U+FFFD.  Exposed for tests. */
char *sp_metrics_escape_label_value(const char *value);

/* The Content-Type of sp_metrics_render()'s text. */
#define SP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

G_END_DECLS
