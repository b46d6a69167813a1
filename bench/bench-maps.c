/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-maps: how fast /proc/PID/smaps is read, next to its baselines
 * measured in the same run.
 *
 * samepaged's controller reads the smaps of every process on the host at
 * each tick (1 s while it boosts) to sum the pages KSM may scan, and the
 * estimator parses a guest's smaps to place its RAM.  For a smaps text of
 * N mappings (synthetic, in the kernel's layout: a header, 23 "Key: value
 * kB" lines and VmFlags; --file parses a recorded one instead) it prints,
 * per parse, side by side:
 *   1. baselines: one pass of memchr() over the text (the least any line
 *      reader can do), and splitting it into lines with g_strsplit() (how
 *      sp_maps_parse_smaps() read it before session 8);
 *   2. sp_maps_parse_smaps(), the whole parse;
 * and then one sp_maps_mergeable_present() over this host's /proc, the
 * controller's per-tick listing.  Run it from an ASan build too: there the
 * line splitting was quadratic (docs/kernel-facts.md has the smaps facts;
 * the comment in host/spmaps.c says why).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "samepage/sphost.h"
#include "samepage/spmaps.h"

static double
now_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* N mappings as the kernel prints them, every 10th marked mergeable. */
static char *
synthetic_smaps(guint n)
{
    static const char *const keys[] = {
        "Size", "KernelPageSize", "MMUPageSize", "Rss", "Pss", "Pss_Dirty", "Shared_Clean",
        "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced", "Anonymous", "KSM",
        "LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb",
        "Private_Hugetlb", "Swap", "SwapPss", "Locked",
    };
    GString *s = g_string_new(NULL);
    guint64 addr = 0x7f0000000000ULL;

    for (guint i = 0; i < n; i++) {
        g_string_append_printf(s, "%012" G_GINT64_MODIFIER "x-%012" G_GINT64_MODIFIER
                               "x rw-p 00000000 00:00 0 \n", addr, addr + 8192);
        for (gsize k = 0; k < G_N_ELEMENTS(keys); k++)
            g_string_append_printf(s, "%-16s%8u kB\n", keys[k], k < 3 ? 8u : (k == 3 ? 4u : 0u));
        g_string_append(s, "THPeligible:    0\n");
        g_string_append_printf(s, "VmFlags: rd wr mr mw me ac%s \n", i % 10 == 0 ? " mg" : "");
        addr += 16384;
    }
    return g_string_free(s, FALSE);
}

static guint
count_lines(const char *text)
{
    const char *end = text + strlen(text);
    guint n = 0;

    for (const char *p = text; p < end; n++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    return n;
}

int
main(int argc, char **argv)
{
    guint n = 2000, repeat = 20;
    g_autofree char *file = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    GOptionEntry entries[] = {
        { "mappings", 'n', 0, G_OPTION_ARG_INT, &n, "mappings in the synthetic text (2000)", "N" },
        { "file", 'f', 0, G_OPTION_ARG_FILENAME, &file, "parse this smaps instead", "FILE" },
        { "repeat", 'r', 0, G_OPTION_ARG_INT, &repeat, "parses timed (20)", "R" },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- time the smaps parser");
    double t0, split_ms, scan_ms, parse_ms, present_ms;
    guint lines = 0, vmas = 0;
    guint64 present = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || repeat == 0) {
        fprintf(stderr, "bench-maps: %s\n", error ? error->message : "--repeat must be at least 1");
        return 2;
    }
    if (file && !g_file_get_contents(file, &text, NULL, &error)) {
        fprintf(stderr, "bench-maps: %s\n", error->message);
        return 1;
    }
    if (!text)
        text = synthetic_smaps(n);

    t0 = now_cpu();
    for (guint r = 0; r < repeat; r++)
        lines = count_lines(text);
    scan_ms = (now_cpu() - t0) * 1e3 / repeat;

    t0 = now_cpu();
    for (guint r = 0; r < repeat; r++) {
        g_auto(GStrv) v = g_strsplit(text, "\n", -1);
        (void)v;
    }
    split_ms = (now_cpu() - t0) * 1e3 / repeat;

    t0 = now_cpu();
    for (guint r = 0; r < repeat; r++) {
        g_autoptr(GPtrArray) v = sp_maps_parse_smaps(text, &error);
        if (!v) {
            fprintf(stderr, "bench-maps: %s\n", error->message);
            return 1;
        }
        vmas = v->len;
    }
    parse_ms = (now_cpu() - t0) * 1e3 / repeat;

    {
        g_autoptr(SpHost) host = sp_host_new();
        t0 = now_cpu();
        present = sp_maps_mergeable_present(host, NULL);
        present_ms = (now_cpu() - t0) * 1e3;
    }

    printf("text: %s, %zu bytes, %u lines, %u mappings; CPU ms per parse, mean of %u\n",
           file ? file : "synthetic", strlen(text), lines, vmas, repeat);
    printf("%-44s %10s\n", "", "ms");
    printf("%-44s %10.3f\n", "baseline: memchr() over the lines", scan_ms);
    printf("%-44s %10.3f\n", "baseline: g_strsplit() into lines (before)", split_ms);
    printf("%-44s %10.3f\n", "sp_maps_parse_smaps()", parse_ms);
    printf("%-44s %10.3f   (%" G_GUINT64_FORMAT " pages registered)\n",
           "sp_maps_mergeable_present(), this host", present_ms, present);
    return 0;
}
