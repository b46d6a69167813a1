/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-procfs: the other procfs files samepage parses.  The first byte
 * picks the file (selector % 6), the rest is its text:
 *
 *   0  /proc/PID/ksm_stat    sp_ksm_stat_parse, sp_exp_parse_ksm_stat
 *   1  /proc/PID/numa_maps   sp_guest_parse_numa_maps
 *   2  /proc/PID/status      sp_exp_parse_vmrss
 *   3  /proc/PID/stat        sp_exp_parse_pid_stat, sp_journal_parse_pid_start
 *   4  /proc/stat            sp_exp_parse_proc_stat
 *   5  /proc/meminfo         sp_host_parse_meminfo, sp_plan_parse_meminfo
 *      (and /proc/PID/cmdline, NUL-separated: sp_exp_cmdline_has_uuid)
 */
#include "config.h"

#include "samepage/spguest.h"
#include "samepage/sphost.h"
#include "samepage/spjournal.h"
#include "samepage/spplan.h"
#include "../../src/lib/experiment/spexperimentpriv.h"
#include "../../src/lib/guest/spguestpriv.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = NULL;
    guint selector;

    if (!sp_fuzz_split(data, size, &selector, &text))
        return 0;
    switch (selector % 6) {
    case 0: {
        SpKsmStat st;
        SpExpGuestSample g;

        memset(&g, 0, sizeof(g));
        sp_ksm_stat_parse(text, &st, NULL);
        sp_exp_parse_ksm_stat(text, &g, NULL);
        break;
    }
    case 1: {
        g_array_unref(sp_guest_parse_numa_maps(text, G_GUINT64_CONSTANT(0x7f0000000000)));
        g_array_unref(sp_guest_parse_numa_maps(text, 0));
        break;
    }
    case 2:
        sp_exp_parse_vmrss(text);
        break;
    case 3: {
        guint64 ticks, start;

        sp_exp_parse_pid_stat(text, &ticks, NULL);
        sp_journal_parse_pid_start(text, &start);
        break;
    }
    case 4: {
        guint64 busy, total;

        sp_exp_parse_proc_stat(text, &busy, &total, NULL);
        break;
    }
    default: {
        guint64 bytes, kib;

        sp_host_parse_meminfo(text, "MemAvailable", &bytes, NULL);
        sp_host_parse_meminfo(text, "MemTotal", &bytes, NULL);
        sp_plan_parse_meminfo(text, &kib, NULL);
        sp_exp_cmdline_has_uuid((const char *)data + 1, size - 1,
                                "0f4c2e9a-1d1b-4c3e-9b5e-0123456789ab");
        break;
    }
    }
    return 0;
}
