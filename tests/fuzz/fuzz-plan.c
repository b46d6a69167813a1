/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-plan: an experiment plan (a GKeyFile text) through sp_plan_parse(),
 * with a MemAvailable limit, and what is derived from a plan that parses.
 */
#include "config.h"

#include "samepage/spplan.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SpPlanLimits limits = { .mem_available_kib = G_GUINT64_CONSTANT(16) << 20 };
    g_autoptr(SpPlan) plan = sp_plan_parse((const char *)data, (gssize)size, "fuzz.ini",
                                           &limits, NULL);

    if (plan) {
        g_free(sp_plan_describe_ksm(plan));
        g_free(sp_plan_describe_workload(plan));
        json_object_put(sp_plan_to_json(plan));
        sp_plan_max_vms(plan);
    }
    return 0;
}
