/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * samepaged.h: the daemon's state, shared by its files
 *
 * One SdDaemon, owned by main() and handed to every callback; everything
 * runs on the default GMainContext except the jobs (inspecting and
 * marking a guest, estimating one), which run one at a time in GTask
 * worker threads and hand their results back to the loop.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

#include "samepage/spconfig.h"
#include "samepage/spcontroller.h"
#include "samepage/sphost.h"
#include "samepage/spjson.h"
#include "samepage/spksm.h"
#include "samepage/splibvirt.h"
#include "samepage/sppolicy.h"
#include "samepage/sptrust.h"

typedef struct {
    char *name;
    char *uuid;
    /* inspection (domain XML, RAM regions) */
    gboolean inspected;
    SpDomainPolicy *policy;         /* NULL when the metadata is invalid */
    char *policy_error;
    pid_t pid;
    GArray *ram;                    /* SpScanRange */
    int numa_node;
    gboolean mergeable_now;         /* every RAM region has mg in smaps */
    struct _SpGuest *handle;        /* kept between jobs: QMP through libvirt */
    gint64 regions_at_us;           /* when handle's regions were read */
    /* decision */
    gboolean decided;
    gboolean target;
    char *reason;
    /* marking */
    gboolean job_queued;
    gint64 started_us;              /* monotonic: when the start was seen; 0 if unknown */
    double mark_delay_s;            /* from the start to the verified marking; <0 unknown */
    char *last_error;
    /* the model */
    gint64 predicted_saving;        /* bytes; -1 none yet */
    guint64 predicted_pages;
    gint64 predicted_at;            /* wall clock, s */
    gboolean estimate_stale;
} SdGuest;

/* The model's prediction for the whole host: every process registered
 * with KSM (a VM_MERGEABLE VMA), guests or not, as ksmd scans them all. */
typedef struct {
    GArray *pids;                   /* pid_t, ascending: registered at the last listing */
    gboolean listing;               /* a listing runs in a worker */
    guint check_timer;
    gint64 next_check_us;           /* monotonic */
    double list_cpu_s;              /* the listings' CPU time, all of them */
    gboolean stale;                 /* the prediction is to be redone */
    gboolean have;
    guint64 pages_sharing;          /* predicted pages_sharing */
    guint64 registered_pages;       /* present pages in the mergeable VMAs it covered */
    guint64 saved_pages;
    guint processes;                /* the processes it covered */
    gint64 at;                      /* wall clock, s */
    double cpu_s;                   /* its estimate's CPU time */
    char *error;                    /* the last failure, NULL after a success */
} SdHostModel;

/* A set of guests the model estimates together (a trust group's willing
 * guests, or every willing guest): what the isolation costs. */
typedef struct {
    char *key;                      /* SpTrustEstimateSet's */
    char *group;                    /* NULL: mixed */
    GStrv names;
} SdTrustSet;

typedef struct _SdDaemon SdDaemon;
typedef struct _SdControl SdControl;

struct _SdDaemon {
    GMainLoop *loop;
    SpHost *host;
    char *config_path;
    SpConfig *cfg;
    gboolean dry_run;
    gboolean oneshot;
    gboolean quitting;              /* no new jobs */
    gint64 started_wall;
    int exit_code;

    /* libvirt */
    SpLibvirt *lv;
    gboolean connected;
    guint reconnect_id;
    gint64 disconnected_us;
    guint n_reconnects;

    /* guests */
    GHashTable *guests;             /* name -> SdGuest */
    GQueue *jobs;                   /* SdJob */
    gboolean job_running;
    SpTrustDecision *trust;
    GPtrArray *trust_plan;          /* SdTrustSet: what to estimate together (sp_trust_plan_estimates) */
    GHashTable *set_savings;        /* SdTrustSet key -> gint64 *: bytes, -1 failed */
    guint set_generation;           /* bumped when a guest comes or goes: set results void */
    GHashTable *gone;               /* name -> gint64 *: monotonic µs of its "stopped before" line */

    /* KSM knobs */
    SpKsmState ksm_found;
    gboolean ksm_found_valid;
    gboolean ksm_applied;
    gboolean we_turned_ksm_on;

    /* the scan-rate controller (every mode but static) */
    SpController *controller;
    gboolean ctl_logged;            /* ctl_last was logged */
    SpControlDecision ctl_last;
    char *ctl_error;                /* the last error logged */

    /* the model */
    GCancellable *model_cancel;     /* cancelled at exit: a scan in flight stops */
    gboolean estimate_running;
    guint estimate_timer;
    gint64 estimate_not_before_us;
    double model_cpu_s;
    guint n_estimates;
    SdHostModel hm;

    SdControl *control;

    /* metrics */
    struct _SpMetricsServer *metrics_server;
    guint metrics_timer;
    gboolean metrics_textfile_failed;
    gboolean metrics_writing;       /* a textfile write runs in a worker */
    gboolean metrics_again;
};

/* sd-guests.c */
void sd_guests_init(SdDaemon *d);
void sd_guests_finish(SdDaemon *d);
gboolean sd_libvirt_connect(SdDaemon *d, GError **error);
void sd_libvirt_retry(SdDaemon *d);
void sd_guest_started(SdDaemon *d, const char *name, const char *uuid, const char *how);
void sd_guest_stopped(SdDaemon *d, const char *name, const char *how);
void sd_guests_refresh_all(SdDaemon *d, const char *why);
void sd_guests_redecide(SdDaemon *d);
gboolean sd_guests_idle(SdDaemon *d);
json_object *sd_guests_to_json(SdDaemon *d);
json_object *sd_trust_to_json(SdDaemon *d);

/* sd-ksm.c */
gboolean sd_ksm_start(SdDaemon *d, GError **error);
void sd_ksm_exit(SdDaemon *d);
gboolean sd_controller_start(SdDaemon *d, GError **error);
void sd_controller_stop(SdDaemon *d);
void sd_controller_update_committed(SdDaemon *d);
json_object *sd_controller_to_json(SdDaemon *d);
json_object *sd_ksm_to_json(SdDaemon *d);

/* sd-model.c */
void sd_model_start_host(SdDaemon *d);
void sd_model_finish(SdDaemon *d);
gboolean sd_model_busy(SdDaemon *d);
void sd_model_schedule(SdDaemon *d);
void sd_model_kick(SdDaemon *d);
void sd_trust_set_free(SdTrustSet *s);
json_object *sd_model_to_json(SdDaemon *d);

/* sd-metrics.c */
gboolean sd_metrics_start(SdDaemon *d, GError **error);
void sd_metrics_stop(SdDaemon *d);
void sd_metrics_reload(SdDaemon *d, SpConfig *cfg);
void sd_metrics_write_textfile(SdDaemon *d);

/* sd-control.c */
SdControl *sd_control_start(SdDaemon *d, GError **error);
void sd_control_stop(SdControl *c);
gboolean sd_reload(SdDaemon *d, GError **error);
json_object *sd_status_json(SdDaemon *d);
