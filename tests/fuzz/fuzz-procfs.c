/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-procfs: the other procfs files samepage parses.  The first byte
 * picks the file (selector % 6), the rest is its text:
 *
 *   0  /proc/PID/ksm_stat    sp_proc_parse_ksm_stat
 *   1  /proc/PID/numa_maps   sp_guest_parse_numa_maps
 *   2  /proc/PID/status      sp_exp_parse_vmrss
 *   3  /proc/PID/stat        sp_proc_parse_stat
 *   4  /proc/stat            sp_proc_parse_cpu_stat
 *   5  /proc/meminfo         sp_proc_parse_meminfo, and osrelease:
 *                            sp_proc_parse_osrelease, sp_proc_release_version,
 *                            and /proc/pressure/memory: sp_proc_parse_pressure
 *      (and /proc/PID/cmdline, NUL-separated: sp_cmdline_has_uuid)
 */
#include "config.h"

#include "samepage/spguest.h"
#include "samepage/splibvirt.h"
#include "samepage/spproc.h"
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

        sp_proc_parse_ksm_stat(text, &st, NULL);
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
        g_auto(SpProcStat) st = { 0 };

        sp_proc_parse_stat(text, &st, NULL);
        break;
    }
    case 4: {
        guint64 busy, total;

        sp_proc_parse_cpu_stat(text, &busy, &total, NULL);
        break;
    }
    default: {
        g_autofree char *release = NULL;
        guint64 bytes;
        guint major, minor;

        sp_proc_parse_meminfo(text, "MemAvailable", &bytes, NULL);
        sp_proc_parse_meminfo(text, "MemTotal", &bytes, NULL);
        release = sp_proc_parse_osrelease(text, NULL);
        sp_proc_release_version(text, &major, &minor);
        {
            SpProcPressure psi;
            sp_proc_parse_pressure(text, "some", &psi, NULL);
            sp_proc_parse_pressure(text, "full", &psi, NULL);
        }
        sp_cmdline_has_uuid((const char *)data + 1, size - 1,
                            "0f4c2e9a-1d1b-4c3e-9b5e-0123456789ab");
        break;
    }
    }
    return 0;
}
