/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-estimate: how fast and how lean the estimator is, next to its
 * baselines measured in the same run.
 *
 * Workload: N child processes, each with S MiB of private anonymous memory
 * madvised MERGEABLE (THP left to the system, as for a guest): a share of
 * pages equal across the children, some groups of equal pages inside each,
 * some zero pages, the rest unique.
 *
 * It prints, side by side:
 *   1. throughput: raw process_vm_readv of the same memory in 2 MiB reads
 *      (baseline), XXH64 over a cached buffer (baseline), and the
 *      estimator end to end (scan + confirm + model), in GB/s per CPU
 *      second;
 *   2. memory: the estimator process's peak RSS growth per scanned page;
 *   3. convergence cost: CPU seconds of the estimator against the CPU
 *      seconds ksmd (from /proc/<ksmd>/stat) spends to converge on the same
 *      memory with pages_to_scan=P, sleep_millisecs=20; and whether the
 *      kernel's figures equal the prediction.
 * KSM settings are restored at the end.  Needs root for step 3; without it
 * step 3 is skipped with the reason.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "samepage/spestimate.h"
#include "samepage/spksm.h"

#define PAGE SP_PAGE_SIZE

typedef struct {
    pid_t pid;
    guint64 addr;
    gsize bytes;
} Child;

static double
now_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
fill(guint8 *p, guint64 tag)
{
    guint64 x = tag * 0x9E3779B97F4A7C15ULL + 1;
    guint64 *w = (guint64 *)(void *)p;
    for (guint i = 0; i < PAGE / 8; i++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ULL;
        w[i] = x;
    }
}

/* Layout per child: 50% cross-equal, 10% in groups of 4, 10% zero, 30% unique. */
static Child
spawn_child(guint id, gsize bytes)
{
    int fd[2];
    Child c = { 0, 0, bytes };
    guint8 *mem;

    if (pipe(fd) != 0)
        abort();
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        abort();
    c.addr = (guintptr)mem;
    c.pid = fork();
    if (c.pid == 0) {
        gsize n = bytes / PAGE;
        for (gsize i = 0; i < n; i++) {
            guint8 *p = mem + i * PAGE;
            if (i < n / 2)
                fill(p, i);
            else if (i < n * 6 / 10)
                fill(p, (1ULL << 40) + id * (1ULL << 32) + i / 4);
            else if (i < n * 7 / 10)
                memset(p, 0, PAGE);
            else
                fill(p, (2ULL << 40) + id * (1ULL << 32) + i);
        }
        madvise(mem, bytes, MADV_MERGEABLE);
        if (write(fd[1], "r", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char ch;
    if (read(fd[0], &ch, 1) != 1)
        abort();
    munmap(mem, bytes);
    close(fd[0]);
    close(fd[1]);
    return c;
}

static double
bench_readv(const Child *c, guint n)
{
    gsize chunk = 2 << 20;
    g_autofree guint8 *buf = g_malloc(chunk);
    double t0 = now_cpu();
    gsize total = 0;

    for (guint i = 0; i < n; i++) {
        for (gsize off = 0; off < c[i].bytes; off += chunk) {
            struct iovec l = { buf, chunk }, r = { (void *)(guintptr)(c[i].addr + off), chunk };
            ssize_t got = process_vm_readv(c[i].pid, &l, 1, &r, 1, 0);
            if (got > 0)
                total += got;
        }
    }
    return total / (now_cpu() - t0) / 1e9;
}

static double
bench_xxh64(void)
{
    gsize chunk = 2 << 20;
    g_autofree guint8 *buf = g_malloc(chunk);
    guint64 acc = 0;
    double t0;
    int rounds = 500;

    for (gsize i = 0; i < chunk; i += PAGE)
        fill(buf + i, i);
    t0 = now_cpu();
    for (int r = 0; r < rounds; r++)
        for (gsize i = 0; i < chunk; i += PAGE)
            acc += XXH64(buf + i, PAGE, 0);
    if (acc == 42)
        printf("!");
    return (double)chunk * rounds / (now_cpu() - t0) / 1e9;
}

static long
rss_kb(void)
{
    g_autofree char *text = NULL;
    char *p;

    if (!g_file_get_contents("/proc/self/status", &text, NULL, NULL))
        return 0;
    p = strstr(text, "VmRSS:");
    return p ? strtol(p + 6, NULL, 10) : 0;
}

typedef struct {
    double cpu;
    double wall;
    double bytes_per_page;
    SpModelCounters counters;
    guint64 pages;
} EstResult;

/* Run the estimate in a child process so that its peak RSS is its own. */
static EstResult
bench_estimate(const Child *c, guint n, guint passes)
{
    int fd[2];
    EstResult res = { 0 };
    pid_t pid;

    if (pipe(fd) != 0)
        abort();
    pid = fork();
    if (pid == 0) {
        g_autoptr(SpHost) host = sp_host_new();
        g_autoptr(GError) error = NULL;
        SpScanOptions sopt;
        SpEstimateOptions eopt;
        long rss0 = rss_kb();
        double c0 = now_cpu(), w0 = now_wall();
        struct rusage ru;

        sp_scan_options_init(&sopt);
        sopt.passes = passes;
        sopt.interval_ms = 0;
        g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
        for (guint i = 0; i < n; i++)
            if (!sp_scan_add_pid(scan, c[i].pid, &error))
                _exit(2);
        if (!sp_scan_run(scan, &error))
            _exit(3);
        res.pages = sp_scan_get_n_pages(scan);
        sp_estimate_options_init(&eopt);
        g_autoptr(SpEstimate) est = sp_estimate_run(scan, &eopt, &error);
        if (!est)
            _exit(4);
        res.cpu = now_cpu() - c0;
        res.wall = now_wall() - w0;
        res.counters = *sp_estimate_get_counters(est);
        getrusage(RUSAGE_SELF, &ru);
        res.bytes_per_page = (double)(ru.ru_maxrss - rss0) * 1024.0 / res.pages;
        if (write(fd[1], &res, sizeof(res)) != sizeof(res))
            _exit(5);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], &res, sizeof(res)) != sizeof(res))
        fprintf(stderr, "bench: the estimate failed\n");
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return res;
}

static double
ksmd_cpu_seconds(pid_t ksmd)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)ksmd);
    g_autofree char *text = NULL;
    unsigned long ut = 0, st = 0;
    char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) || !(p = strrchr(text, ')')))
        return -1;
    /* after "pid (comm)": state is field 3; utime 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static pid_t
find_ksmd(void)
{
    g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_strdup_printf("/proc/%s/comm", name);
        g_autofree char *comm = NULL;
        if (g_ascii_isdigit(name[0]) && g_file_get_contents(path, &comm, NULL, NULL) &&
            g_str_equal(g_strstrip(comm), "ksmd"))
            return atoi(name);
    }
    return 0;
}

static gint64
ksm_get(const SpHost *host, SpKsmKey k)
{
    SpKsmState st;
    if (!sp_ksm_read(host, &st, NULL))
        return -1;
    return st.entry[k].value;
}

static gboolean
ksm_set(const SpHost *host, const char *const *kv)
{
    SpKsmSetting s[8];
    gsize n = 0;
    g_autoptr(GError) error = NULL;

    for (; kv[n]; n++)
        if (!sp_ksm_parse_setting(kv[n], &s[n], &error))
            return FALSE;
    if (!sp_ksm_apply(host, s, n, &error)) {
        fprintf(stderr, "bench: %s\n", error->message);
        return FALSE;
    }
    return TRUE;
}

int
main(int argc, char **argv)
{
    guint n = 2, mib = 1024, pages_to_scan = 20000, timeout = 600;
    GOptionEntry entries[] = {
        { "processes", 'n', 0, G_OPTION_ARG_INT, &n, "workload processes (2)", "N" },
        { "mib", 'm', 0, G_OPTION_ARG_INT, &mib, "MiB per process (1024)", "MIB" },
        { "pages-to-scan", 0, 0, G_OPTION_ARG_INT, &pages_to_scan, "ksmd batch (20000)", "P" },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "seconds to wait for ksmd (600)", "S" },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- estimator speed and memory");
    g_autoptr(GError) error = NULL;
    g_autoptr(SpHost) host = sp_host_new();
    Child *c;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "bench-estimate: %s\n", error->message);
        return 2;
    }
    if (n < 1 || mib < 4) {
        fprintf(stderr, "bench-estimate: need at least 1 process of 4 MiB\n");
        return 2;
    }
    c = g_new0(Child, n);
    printf("workload: %u processes x %u MiB (50%% equal across, 10%% in groups of 4, 10%% zero, 30%% unique)\n",
           n, mib);
    for (guint i = 0; i < n; i++)
        c[i] = spawn_child(i, (gsize)mib << 20);

    double readv = bench_readv(c, n);
    double xxh = bench_xxh64();
    EstResult e1 = bench_estimate(c, n, 1);
    EstResult e2 = bench_estimate(c, n, 2);
    double gb = (double)e1.pages * PAGE / 1e9;

    printf("\n%-44s %12s\n", "throughput (per CPU second)", "GB/s");
    printf("%-44s %12.2f\n", "baseline: process_vm_readv, 2 MiB reads", readv);
    printf("%-44s %12.2f\n", "baseline: XXH64 over cached pages", xxh);
    printf("%-44s %12.2f\n", "estimator, 1 pass (scan+confirm+model)", gb / e1.cpu);
    printf("%-44s %12.2f\n", "estimator, 2 passes (default)", gb / e2.cpu);
    printf("\n%-44s %12s\n", "memory", "bytes/page");
    printf("%-44s %12.1f\n", "estimator peak RSS growth per scanned page", e1.bytes_per_page);
    printf("%-44s %12s\n", "requirement", "<= 24");
    printf("\nprediction: pages_shared=%" G_GUINT64_FORMAT " pages_sharing=%" G_GUINT64_FORMAT
           " chains=%" G_GUINT64_FORMAT " dups=%" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " pages)\n",
           e1.counters.pages_shared, e1.counters.pages_sharing, e1.counters.stable_node_chains,
           e1.counters.stable_node_dups, e1.pages);

    pid_t ksmd = find_ksmd();
    SpKsmState saved;
    if (geteuid() != 0 || !ksmd || !sp_ksm_read(host, &saved, NULL)) {
        printf("\nksmd comparison skipped: needs root and KSM (ksmd %s)\n", ksmd ? "found" : "not found");
    } else {
        g_autofree char *pts = g_strdup_printf("pages_to_scan=%u", pages_to_scan);
        const char *reset[] = { "run=2", NULL };
        const char *start[] = { "advisor_mode=none", pts, "sleep_millisecs=20", "run=1", NULL };
        double k0, k1 = 0, w0;
        gint64 last_sharing = -1, stable_since = -1;
        gboolean converged = FALSE;

        ksm_set(host, reset);
        k0 = ksmd_cpu_seconds(ksmd);
        w0 = now_wall();
        ksm_set(host, start);
        while (now_wall() - w0 < timeout) {
            g_usleep(200000);
            gint64 sharing = ksm_get(host, SP_KSM_PAGES_SHARING);
            gint64 scans = ksm_get(host, SP_KSM_FULL_SCANS);
            if (sharing != last_sharing) {
                last_sharing = sharing;
                stable_since = scans;
                k1 = ksmd_cpu_seconds(ksmd);   /* CPU up to the last change */
            } else if (scans >= 3 && scans - stable_since >= 2 &&
                       sharing == (gint64)e1.counters.pages_sharing) {
                converged = TRUE;
                break;
            } else if (scans - stable_since >= 4) {
                break;    /* stable, but not what was predicted */
            }
        }
        double ksmd_cpu = k1 - k0;
        printf("\n%-44s %12s\n", "CPU seconds to the converged answer", "s");
        printf("%-44s %12.2f\n", "baseline: ksmd (until pages_sharing settled)", ksmd_cpu);
        printf("%-44s %12.2f\n", "estimator, 1 pass", e1.cpu);
        printf("%-44s %12.2f\n", "estimator, 2 passes", e2.cpu);
        printf("%-44s %11.1fx\n", "ksmd / estimator (1 pass)", ksmd_cpu / e1.cpu);
        printf("%-44s %11.1fx\n", "ksmd / estimator (2 passes)", ksmd_cpu / e2.cpu);
        printf("kernel: pages_shared=%" G_GINT64_FORMAT " pages_sharing=%" G_GINT64_FORMAT
               " chains=%" G_GINT64_FORMAT " dups=%" G_GINT64_FORMAT " full_scans=%" G_GINT64_FORMAT
               " after %.0f s wall; prediction %s\n",
               ksm_get(host, SP_KSM_PAGES_SHARED), ksm_get(host, SP_KSM_PAGES_SHARING),
               ksm_get(host, SP_KSM_STABLE_NODE_CHAINS), ksm_get(host, SP_KSM_STABLE_NODE_DUPS),
               ksm_get(host, SP_KSM_FULL_SCANS), now_wall() - w0,
               converged ? "matched" : "NOT matched");

        /* Put KSM back as it was. */
        ksm_set(host, reset);
        SpKsmSetting back[SP_KSM_N_KEYS];
        gsize nb = 0;
        const SpKsmKey keys[] = { SP_KSM_PAGES_TO_SCAN, SP_KSM_SLEEP_MILLISECS, SP_KSM_ADVISOR_MODE,
                                  SP_KSM_RUN };
        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
            if (!saved.entry[keys[i]].supported)
                continue;
            if (keys[i] == SP_KSM_PAGES_TO_SCAN && saved.entry[SP_KSM_ADVISOR_MODE].value != 0)
                continue;
            back[nb].key = keys[i];
            back[nb++].value = saved.entry[keys[i]].value;
        }
        if (!sp_ksm_apply(host, back, nb, &error))
            fprintf(stderr, "bench: could not restore KSM: %s\n", error->message);
    }

    for (guint i = 0; i < n; i++) {
        kill(c[i].pid, SIGTERM);
        waitpid(c[i].pid, NULL, 0);
    }
    g_free(c);
    return 0;
}
