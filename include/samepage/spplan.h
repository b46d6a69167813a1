/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spplan.h: an experiment plan (a GKeyFile)
 *
 * A plan names the VM counts to run, the guests (RAM, vCPUs, image), the
 * KSM knobs, the guest workload and the sampling.  sp_plan_parse() is a
 * pure function of the text (and of the host's MemAvailable, passed in):
 * every error names the plan, the line, the group and the key.
 *
 *   [plan]      name, description, vm_counts (required: "1,2,3,5,10")
 *   [guest]     memory_mib, vcpus, boot_timeout, image_dir, template,
 *               overlay_dir
 *   [ksm]       any writable knob of /sys/kernel/mm/ksm but run
 *   [workload]  command ("none", or "stress-ng ARGS...", run in every
 *               guest through the guest agent)
 *   [sampling]  interval, duration, settle, predict_interval (seconds)
 */
#pragma once

#include <glib.h>

#include "samepage/sphost.h"
#include "samepage/spjson.h"
#include "samepage/spksm.h"

G_BEGIN_DECLS

#define SP_PLAN_ERROR (sp_plan_error_quark())
GQuark sp_plan_error_quark(void);

typedef enum {
    SP_PLAN_ERROR_SYNTAX,      /* a line that is no group, key or comment */
    SP_PLAN_ERROR_UNKNOWN,     /* unknown group or key */
    SP_PLAN_ERROR_DUPLICATE,   /* a group or key given twice */
    SP_PLAN_ERROR_MISSING,     /* a required key is absent */
    SP_PLAN_ERROR_INVALID,     /* a value that does not parse or is impossible */
    SP_PLAN_ERROR_IO,          /* the file cannot be read */
} SpPlanErrorCode;

#define SP_PLAN_MAX_VMS 64          /* largest VM count of one run */
#define SP_PLAN_MAX_RUNS 32         /* most VM counts in one plan */
#define SP_PLAN_MAX_KSM 16
#define SP_PLAN_MAX_SAMPLES 100000  /* most samples of one run (duration / interval) */
#define SP_PLAN_NAME_MAX 64         /* [plan] name: [A-Za-z0-9][A-Za-z0-9._-]{0,63} */

/* What the host has, for the checks that depend on it. */
typedef struct {
    guint64 mem_available_kib;      /* MemAvailable; 0: do not check */
} SpPlanLimits;

typedef struct {
    char *source;                   /* file name, for messages */
    char *name;                     /* [plan] name (default: the file's base name) */
    char *description;              /* [plan] description, or NULL */
    GArray *vm_counts;              /* guint, in the order given */

    guint memory_mib;               /* [guest] memory_mib, default 512 */
    guint vcpus;                    /* [guest] vcpus, default 1 */
    double boot_timeout_s;          /* [guest] boot_timeout, default 300 */
    char *image_dir;                /* [guest] image_dir, NULL: the default */
    char *template_path;            /* [guest] template, NULL: the default */
    char *overlay_dir;              /* [guest] overlay_dir, NULL: a new /var/tmp dir */

    SpKsmSetting ksm[SP_PLAN_MAX_KSM];  /* [ksm], advisor_mode first, then by key */
    gsize n_ksm;

    char *workload;                 /* [workload] command as written; NULL: none */
    char **workload_argv;           /* its arguments after "stress-ng"; NULL: none */

    double interval_s;              /* [sampling] interval, default 10 */
    double duration_s;              /* [sampling] duration per run, default 300 */
    double settle_s;                /* [sampling] settle: wait after the workload
                                     * starts, before run=1; default 0 */
    double predict_interval_s;      /* [sampling] predict_interval: the model's
                                     * prediction also this often during a run;
                                     * default: every sample; 0: at t=0 and
                                     * after the last sample only */
} SpPlan;

void sp_plan_free(SpPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpPlan, sp_plan_free)

SpPlan *sp_plan_parse(const char *text, gssize len, const char *source,
                      const SpPlanLimits *limits, GError **error);
SpPlan *sp_plan_load(const char *path, const SpHost *host, GError **error);

gboolean sp_plan_limits_from_host(const SpHost *host, SpPlanLimits *limits, GError **error);

gboolean sp_plan_name_is_valid(const char *name);
guint sp_plan_max_vms(const SpPlan *plan);
const SpKsmSetting *sp_plan_find_ksm(const SpPlan *plan, SpKsmKey key);
char *sp_plan_describe_ksm(const SpPlan *plan);
char *sp_plan_describe_workload(const SpPlan *plan);
json_object *sp_plan_to_json(const SpPlan *plan);

G_END_DECLS
