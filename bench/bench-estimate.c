/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-estimate: how fast and how lean the estimator is, next to its
 * baselines measured in the same run, on the same memory.
 *
 * Workload: N child processes, each with S MiB of private anonymous memory
 * madvised MERGEABLE: half of each child's pages equal across the children,
 * 10% in groups of 4 equal pages inside each, 10% zero pages, the rest
 * unique.  Guest RAM is backed by transparent huge pages (QEMU madvises it
 * MADV_HUGEPAGE), so by default the workload runs twice: once in THPs
 * (MADV_HUGEPAGE; the share actually in THPs is printed) and once in 4 KiB
 * pages (MADV_NOHUGEPAGE); --backing picks one.
 *
 * For each backing it prints, side by side:
 *   1. throughput, in GB of scanned memory per CPU second: raw reads of
 *      the same memory in 2 MiB reads through /proc/PID/mem (how the
 *      estimator reads: it does not unshare KSM pages) and through
 *      process_vm_readv (baselines), and
 *      the estimator end to end (scan + grouping + model) with 1 and with 2
 *      passes; also XXH64 and XXH3 over cached pages (baselines), and how
 *      many pages the estimator read per scanned page;
 *   2. memory: per scanned page, the state the estimator holds by design
 *      (sp_estimate_get_state_bytes(): arrays, hash table, model, from
 *      their sizes) and the estimator process's measured peak RSS growth
 *      (which also holds the fixed read buffers);
 *   3. convergence cost: CPU seconds of the estimator against the CPU
 *      seconds ksmd (from /proc/<ksmd>/stat) spends until pages_sharing
 *      settles on the same memory, with pages_to_scan=P,
 *      sleep_millisecs=20 and the host's other knobs (which the estimate
 *      predicts for); and whether the kernel's figures equal the
 *      prediction.
 * Estimator figures are the median of --repeat runs, each in a fresh
 * process (so that its peak RSS is its own).  KSM settings are restored at
 * the end.  Step 3 needs root and KSM; without them it is skipped with the
 * reason.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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
#include <xxh_x86dispatch.h>

#include "samepage/spestimate.h"
#include "samepage/spksm.h"

#define PAGE SP_PAGE_SIZE
#define HUGE_SIZE (2u << 20)

typedef struct {
    pid_t pid;
    guint64 addr;
    gsize bytes;
} Child;

typedef struct {
    double cpu;                /* whole estimate, CPU seconds */
    double scan_cpu;           /* of which sp_scan_run() */
    double wall;
    double rss_per_page;       /* measured peak RSS growth */
    double state_per_page;     /* by design */
    double reads_per_page;     /* pages read / scanned pages */
    SpModelCounters counters;
    guint64 pages;
    gboolean ok;
} EstResult;

typedef struct {
    const char *name;
    gboolean huge;
    gboolean ran;
    const char *skip_reason;
    double thp_share;          /* of the workload's anonymous memory */
    double readv;              /* GB/s per CPU second */
    double procmem;
    EstResult e1, e2;
    gboolean ksmd_ran;
    char *ksmd_skip;           /* why the ksmd figures are missing or not to trust */
    double ksmd_cpu;
    double ksmd_wall;
    gboolean matched;
    gint64 k_shared, k_sharing, k_chains, k_dups, k_scans;
} Backing;

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
spawn_child(guint id, gsize bytes, gboolean huge)
{
    int fd[2];
    Child c = { 0, 0, bytes };
    guint8 *map, *mem;

    if (pipe(fd) != 0)
        abort();
    /* 2 MiB aligned, so that every 2 MiB of it can be a THP */
    map = mmap(NULL, bytes + HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0);
    if (map == MAP_FAILED)
        abort();
    mem = (guint8 *)(((guintptr)map + HUGE_SIZE - 1) & ~(guintptr)(HUGE_SIZE - 1));
    c.addr = (guintptr)mem;
    c.pid = fork();
    if (c.pid == 0) {
        gsize n = bytes / PAGE;
        madvise(mem, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
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
    munmap(map, bytes + HUGE_SIZE);
    close(fd[0]);
    close(fd[1]);
    return c;
}

static guint64
smaps_rollup_kb(pid_t pid, const char *key)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/smaps_rollup", (int)pid);
    g_autofree char *text = NULL;
    char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) || !(p = strstr(text, key)))
        return 0;
    return g_ascii_strtoull(p + strlen(key), NULL, 10);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Raw reads of all the workload in 2 MiB reads, median of 3: through
 * /proc/PID/mem (pread, as the estimator reads) or process_vm_readv. */
static double
bench_readv(const Child *c, guint n, gboolean procmem)
{
    gsize chunk = HUGE_SIZE;
    /* page aligned, as the estimator's buffer: rep movsb into a destination
     * 16 bytes off a page (what g_malloc() returns) is 2x slower */
    guint8 *buf = g_aligned_alloc(chunk / PAGE, PAGE, PAGE);
    double runs[3];

    memset(buf, 1, chunk);
    for (guint k = 0; k < G_N_ELEMENTS(runs); k++) {
        double t0 = now_cpu();
        gsize total = 0;
        for (guint i = 0; i < n; i++) {
            g_autofree char *path = g_strdup_printf("/proc/%d/mem", (int)c[i].pid);
            int fd = procmem ? open(path, O_RDONLY | O_CLOEXEC) : -1;
            for (gsize off = 0; off < c[i].bytes; off += chunk) {
                struct iovec l = { buf, chunk }, r = { (void *)(guintptr)(c[i].addr + off), chunk };
                ssize_t got = procmem ? pread(fd, buf, chunk, (off_t)(c[i].addr + off))
                                      : process_vm_readv(c[i].pid, &l, 1, &r, 1, 0);
                if (got > 0)
                    total += got;
            }
            if (fd >= 0)
                close(fd);
        }
        runs[k] = total / (now_cpu() - t0) / 1e9;
    }
    g_aligned_free(buf);
    qsort(runs, G_N_ELEMENTS(runs), sizeof(double), cmp_double);
    return runs[1];
}

/* A hash over pages that stay in the L2 cache (256 KiB). */
static double
bench_hash(gboolean xxh3)
{
    gsize size = 256 << 10;
    g_autofree guint8 *buf = g_malloc(size);
    guint64 acc = 0;
    int rounds = 4000;
    double t0;

    for (gsize i = 0; i < size; i += PAGE)
        fill(buf + i, i);
    t0 = now_cpu();
    for (int r = 0; r < rounds; r++)
        for (gsize i = 0; i < size; i += PAGE)
            acc += xxh3 ? XXH3_64bits_dispatch(buf + i, PAGE) : XXH64(buf + i, PAGE, 0);
    if (acc == 42)
        printf("!");
    return (double)size * rounds / (now_cpu() - t0) / 1e9;
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

/* One estimate in a child process, so that its peak RSS is its own. */
static EstResult
bench_estimate_once(const Child *c, guint n, guint passes, const SpEstimateOptions *eopt)
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
        SpScanStats stats;
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
        res.scan_cpu = now_cpu() - c0;
        res.pages = sp_scan_get_n_pages(scan);
        sp_scan_get_stats(scan, &stats);
        g_autoptr(SpEstimate) est = sp_estimate_run(scan, eopt, &error);
        if (!est)
            _exit(4);
        res.cpu = now_cpu() - c0;
        res.wall = now_wall() - w0;
        res.counters = *sp_estimate_get_counters(est);
        getrusage(RUSAGE_SELF, &ru);
        res.rss_per_page = (double)(ru.ru_maxrss - rss0) * 1024.0 / res.pages;
        res.state_per_page = (double)sp_estimate_get_state_bytes(est) / res.pages;
        res.reads_per_page = (double)stats.pages_read / res.pages;
        res.ok = TRUE;
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

static int
cmp_est(const void *a, const void *b)
{
    return cmp_double(&((const EstResult *)a)->cpu, &((const EstResult *)b)->cpu);
}

static EstResult
bench_estimate(const Child *c, guint n, guint passes, const SpEstimateOptions *eopt, guint repeat)
{
    g_autofree EstResult *r = g_new0(EstResult, repeat);

    for (guint i = 0; i < repeat; i++)
        r[i] = bench_estimate_once(c, n, passes, eopt);
    qsort(r, repeat, sizeof(EstResult), cmp_est);
    return r[repeat / 2];
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

/* Write knobs; @ours records what this bench wrote last (see ksm_restore()). */
static gboolean
ksm_set(const SpHost *host, const char *const *kv, SpKsmState *ours)
{
    SpKsmSetting s[8] = { { 0 } };
    gsize n = 0;
    g_autoptr(GError) error = NULL;

    for (; kv[n] && n < G_N_ELEMENTS(s); n++)
        if (!sp_ksm_parse_setting(kv[n], &s[n], &error))
            return FALSE;
    if (!sp_ksm_apply(host, s, n, &error)) {
        fprintf(stderr, "bench: %s\n", error->message);
        return FALSE;
    }
    for (gsize i = 0; i < n; i++) {
        ours->entry[s[i].key].supported = TRUE;
        ours->entry[s[i].key].value = s[i].value;
    }
    return TRUE;
}

/*
 * Processes other than @c that KSM scans or has merged pages of (another
 * test, a guest): their pages would count in the kernel's figures and ksmd's
 * CPU time.  Returns their pids, space-separated, or NULL.
 */
static char *
other_ksm_users(const Child *c, guint n)
{
    g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
    g_autoptr(GString) out = g_string_new(NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_strdup_printf("/proc/%s/ksm_stat", name);
        g_autofree char *text = NULL;
        pid_t pid = atoi(name);
        gboolean ours = pid == getpid();

        for (guint i = 0; i < n; i++)
            ours = ours || c[i].pid == pid;
        if (ours || !g_ascii_isdigit(name[0]) || !g_file_get_contents(path, &text, NULL, NULL))
            continue;
        const char *items = strstr(text, "ksm_rmap_items ");
        /* (kernel threads have an empty ksm_stat) */
        if (strstr(text, "ksm_mergeable: yes") || strstr(text, "ksm_merge_any: yes") ||
            (items && g_ascii_strtoull(items + strlen("ksm_rmap_items "), NULL, 10) > 0))
            g_string_append_printf(out, "%s%s", out->len ? " " : "", name);
    }
    return out->len ? g_string_free(g_steal_pointer(&out), FALSE) : NULL;
}

/* Let ksmd converge on the workload; CPU seconds until pages_sharing settled. */
static void
bench_ksmd(const SpHost *host, pid_t ksmd, guint pages_to_scan, guint timeout, const Child *c,
           guint n, SpKsmState *ours, Backing *b)
{
    g_autofree char *pts = g_strdup_printf("pages_to_scan=%u", pages_to_scan);
    g_autofree char *others = NULL;
    const char *reset[] = { "run=2", NULL };
    const char *start[] = { "advisor_mode=none", pts, "sleep_millisecs=20", "run=1", NULL };
    double k0, k1 = 0, w0, w1 = 0;
    gint64 last_sharing = -1, stable_since = -1;
    gint64 want = (gint64)b->e1.counters.pages_sharing;

    if (!ksm_set(host, reset, ours))
        return;
    k0 = ksmd_cpu_seconds(ksmd);
    w0 = now_wall();
    if (!ksm_set(host, start, ours))
        return;
    b->ksmd_ran = TRUE;
    while (now_wall() - w0 < timeout) {
        g_usleep(200000);
        gint64 sharing = ksm_get(host, SP_KSM_PAGES_SHARING);
        gint64 scans = ksm_get(host, SP_KSM_FULL_SCANS);
        if (sharing != last_sharing) {
            last_sharing = sharing;
            stable_since = scans;
            k1 = ksmd_cpu_seconds(ksmd);   /* CPU up to the last change */
            w1 = now_wall();
        } else if (scans >= 3 && scans - stable_since >= 2 && sharing == want) {
            b->matched = TRUE;
            break;
        } else if (scans - stable_since >= 4) {
            break;    /* stable, but not what was predicted */
        }
    }
    b->ksmd_cpu = k1 - k0;
    b->ksmd_wall = w1 - w0;
    b->k_shared = ksm_get(host, SP_KSM_PAGES_SHARED);
    b->k_sharing = ksm_get(host, SP_KSM_PAGES_SHARING);
    b->k_chains = ksm_get(host, SP_KSM_STABLE_NODE_CHAINS);
    b->k_dups = ksm_get(host, SP_KSM_STABLE_NODE_DUPS);
    b->k_scans = ksm_get(host, SP_KSM_FULL_SCANS);
    /* Unmerge, unless someone else's pages came in meanwhile: the workload's
     * merged pages go with its processes anyway. */
    others = other_ksm_users(c, n);
    if (others) {
        b->ksmd_skip = g_strdup_printf("other processes used KSM meanwhile (pids %s): "
                                       "the figures are not the workload's alone", others);
        ksm_set(host, (const char *[]){ "run=0", NULL }, ours);
    } else {
        ksm_set(host, reset, ours);
    }
}

/*
 * Put back the knobs this bench changed, each only if it still holds what
 * the bench wrote: a knob someone else set meanwhile (another test) is
 * theirs.
 */
static void
ksm_restore(const SpHost *host, const SpKsmState *saved, const SpKsmState *ours)
{
    const SpKsmKey keys[] = { SP_KSM_PAGES_TO_SCAN, SP_KSM_SLEEP_MILLISECS, SP_KSM_ADVISOR_MODE,
                              SP_KSM_RUN };
    SpKsmSetting back[G_N_ELEMENTS(keys)];
    g_autoptr(GError) error = NULL;
    SpKsmState now;
    gsize nb = 0;

    if (!sp_ksm_read(host, &now, &error)) {
        fprintf(stderr, "bench: could not restore KSM: %s\n", error->message);
        return;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
        SpKsmKey k = keys[i];

        if (!saved->entry[k].supported || !ours->entry[k].supported)
            continue;
        if (now.entry[k].value != ours->entry[k].value) {
            fprintf(stderr, "bench: KSM %s was changed by someone else meanwhile: left "
                    "as it is\n", sp_ksm_key_info(k)->name);
            continue;
        }
        /* with the advisor on, pages_to_scan is the advisor's to set */
        if (k == SP_KSM_PAGES_TO_SCAN && saved->entry[SP_KSM_ADVISOR_MODE].supported &&
            saved->entry[SP_KSM_ADVISOR_MODE].value != 0)
            continue;
        back[nb].key = k;
        back[nb++].value = saved->entry[k].value;
    }
    if (nb > 0 && !sp_ksm_apply(host, back, nb, &error))
        fprintf(stderr, "bench: could not restore KSM: %s\n", error->message);
}

static gboolean
thp_available(void)
{
    g_autofree char *text = NULL;

    return g_file_get_contents("/sys/kernel/mm/transparent_hugepage/enabled", &text, NULL, NULL) &&
        !strstr(text, "[never]");
}

static void
run_backing(Backing *b, guint n, gsize bytes, guint repeat, const SpEstimateOptions *eopt,
            const SpHost *host, pid_t ksmd, guint pages_to_scan, guint timeout,
            SpKsmState *ours)
{
    g_autofree Child *c = g_new0(Child, n);
    guint64 anon = 0, huge = 0;

    if (b->huge && !thp_available()) {
        b->skip_reason = "THP is disabled (transparent_hugepage/enabled = never)";
        return;
    }
    fprintf(stderr, "bench: %s: spawning %u x %zu MiB\n", b->name, n, bytes >> 20);
    for (guint i = 0; i < n; i++)
        c[i] = spawn_child(i, bytes, b->huge);
    for (guint i = 0; i < n; i++) {
        anon += smaps_rollup_kb(c[i].pid, "Anonymous:");
        huge += smaps_rollup_kb(c[i].pid, "AnonHugePages:");
    }
    b->thp_share = anon ? (double)huge / anon : 0;
    b->ran = TRUE;
    fprintf(stderr, "bench: %s: baselines\n", b->name);
    b->procmem = bench_readv(c, n, TRUE);
    b->readv = bench_readv(c, n, FALSE);
    fprintf(stderr, "bench: %s: estimator, 1 pass x %u\n", b->name, repeat);
    b->e1 = bench_estimate(c, n, 1, eopt, repeat);
    fprintf(stderr, "bench: %s: estimator, 2 passes x %u\n", b->name, repeat);
    b->e2 = bench_estimate(c, n, 2, eopt, repeat);
    if (ksmd) {
        g_autofree char *others = other_ksm_users(c, n);
        if (others) {
            b->ksmd_skip = g_strdup_printf("other processes use KSM (pids %s)", others);
        } else {
            fprintf(stderr, "bench: %s: ksmd\n", b->name);
            bench_ksmd(host, ksmd, pages_to_scan, timeout, c, n, ours, b);
        }
    }
    for (guint i = 0; i < n; i++) {
        kill(c[i].pid, SIGTERM);
        waitpid(c[i].pid, NULL, 0);
    }
}

/* One row: a figure per backing, "-" where it was not measured. */
#define ROW_IF(label, fmt, cond, expr)                                       \
    do {                                                                     \
        printf("%-46s", label);                                              \
        for (guint i_ = 0; i_ < nb; i_++) {                                  \
            const Backing *b = &bs[i_];                                      \
            char buf_[48];                                                   \
            (void)buf_;                                                      \
            if (b->ran && (cond))                                            \
                printf(" %12" fmt, expr);                                    \
            else                                                             \
                printf(" %12s", "-");                                        \
        }                                                                    \
        printf("\n");                                                        \
    } while (0)
#define ROW_F(label, fmt, expr) ROW_IF(label, fmt, TRUE, expr)
#define ROW_K(label, fmt, expr) ROW_IF(label, fmt, b->ksmd_ran && !b->ksmd_skip, expr)

int
main(int argc, char **argv)
{
    guint n = 2, mib = 2048, pages_to_scan = 20000, timeout = 600, repeat = 3;
    g_autofree char *backing = g_strdup("both");
    gboolean no_ksmd = FALSE;
    GOptionEntry entries[] = {
        { "processes", 'n', 0, G_OPTION_ARG_INT, &n, "workload processes (2)", "N" },
        { "mib", 'm', 0, G_OPTION_ARG_INT, &mib, "MiB per process (2048)", "MIB" },
        { "backing", 'b', 0, G_OPTION_ARG_STRING, &backing,
          "thp, 4k or both (both): the workload in transparent huge pages "
          "(MADV_HUGEPAGE, as QEMU backs guest RAM) or in 4 KiB pages", "B" },
        { "repeat", 'r', 0, G_OPTION_ARG_INT, &repeat, "estimator runs, the median is shown (3)",
          "R" },
        { "pages-to-scan", 0, 0, G_OPTION_ARG_INT, &pages_to_scan, "ksmd batch (20000)", "P" },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "seconds to wait for ksmd (600)", "S" },
        { "no-ksmd", 0, 0, G_OPTION_ARG_NONE, &no_ksmd, "skip the ksmd comparison", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- estimator speed and memory");
    g_autoptr(GError) error = NULL;
    g_autoptr(SpHost) host = sp_host_new();
    Backing bs[2];
    guint nb = 0;
    SpEstimateOptions eopt;
    SpKsmState saved, ours;
    pid_t ksmd = 0;
    const char *ksmd_why = NULL;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "bench-estimate: %s\n", error->message);
        return 2;
    }
    if (n < 1 || mib < 4 || repeat < 1) {
        fprintf(stderr, "bench-estimate: need at least 1 process of 4 MiB and 1 run\n");
        return 2;
    }
    memset(bs, 0, sizeof(bs));
    memset(&ours, 0, sizeof(ours));
    if (g_str_equal(backing, "thp") || g_str_equal(backing, "both"))
        bs[nb++] = (Backing){ .name = "THP", .huge = TRUE };
    if (g_str_equal(backing, "4k") || g_str_equal(backing, "both"))
        bs[nb++] = (Backing){ .name = "4 KiB", .huge = FALSE };
    if (nb == 0) {
        fprintf(stderr, "bench-estimate: --backing must be thp, 4k or both, not '%s'\n", backing);
        return 2;
    }

    if (no_ksmd)
        ksmd_why = "--no-ksmd";
    else if (geteuid() != 0)
        ksmd_why = "needs root";
    else if (!(ksmd = find_ksmd()))
        ksmd_why = "ksmd not found";
    else if (!sp_ksm_read(host, &saved, NULL))
        ksmd_why = "KSM sysfs not readable";
    if (ksmd_why)
        ksmd = 0;
    /* Predict for the host's knobs, which ksmd will use. */
    if (!ksmd || !sp_estimate_options_from_host(&eopt, host, NULL))
        sp_estimate_options_init(&eopt);

    for (guint i = 0; i < nb; i++)
        run_backing(&bs[i], n, (gsize)mib << 20, repeat, &eopt, host, ksmd, pages_to_scan,
                    timeout, &ours);
    if (ksmd)
        ksm_restore(host, &saved, &ours);
    double xxh64 = bench_hash(FALSE), xxh3 = bench_hash(TRUE);

    printf("workload: %u processes x %u MiB = %.2f GB per backing (50%% equal across, "
           "10%% in groups of 4, 10%% zero, 30%% unique), MADV_MERGEABLE\n",
           n, mib, (double)n * mib * 1048576 / 1e9);
    printf("estimator: median of %u runs; model for max_page_sharing=%u use_zero_pages=%d "
           "smart_scan=%d (%s)\n", repeat, eopt.model.max_page_sharing, eopt.model.use_zero_pages,
           eopt.model.smart_scan, ksmd ? "the host's" : "defaults");
    for (guint i = 0; i < nb; i++) {
        if (!bs[i].ran)
            printf("%s backing skipped: %s\n", bs[i].name, bs[i].skip_reason);
    }

    printf("\n%-46s", "backing");
    for (guint i = 0; i < nb; i++)
        printf(" %12s", bs[i].name);
    printf("\n");
    ROW_F("share of the workload in THPs (%)", ".1f", 100 * b->thp_share);

    printf("\nthroughput (GB scanned per CPU second)\n");
    ROW_F("baseline: /proc/PID/mem, 2 MiB reads", ".2f", b->procmem);
    ROW_F("baseline: process_vm_readv, 2 MiB reads", ".2f", b->readv);
    ROW_F("estimator, 1 pass (scan+group+model)", ".2f", b->e1.pages * PAGE / 1e9 / b->e1.cpu);
    ROW_F("estimator, 2 passes (default)", ".2f", b->e2.pages * PAGE / 1e9 / b->e2.cpu);
    ROW_F("  1 pass: CPU s in the scan / after it", "s",
          (g_snprintf(buf_, sizeof(buf_), "%.2f/%.2f", b->e1.scan_cpu,
                      b->e1.cpu - b->e1.scan_cpu), buf_));
    ROW_F("  1 pass: pages read per scanned page", ".3f", b->e1.reads_per_page);
    ROW_F("  2 passes: pages read per scanned page", ".3f", b->e2.reads_per_page);
    printf("%-46s %12.2f   (256 KiB, in L2)\n", "baseline: XXH64 over cached pages", xxh64);
    printf("%-46s %12.2f\n", "baseline: XXH3 over cached pages", xxh3);
    printf("%-46s %12s\n", "requirement (estimator)", ">= 3");

    printf("\nmemory (bytes per scanned page)\n");
    ROW_F("state by design, 1 pass", ".1f", b->e1.state_per_page);
    ROW_F("state by design, 2 passes", ".1f", b->e2.state_per_page);
    ROW_F("measured peak RSS growth, 1 pass", ".1f", b->e1.rss_per_page);
    ROW_F("measured peak RSS growth, 2 passes", ".1f", b->e2.rss_per_page);
    printf("%-46s %12s\n", "requirement", "<= 24");

    printf("\nprediction\n");
    ROW_F("scanned pages", G_GUINT64_FORMAT, b->e1.pages);
    ROW_F("pages_shared", G_GUINT64_FORMAT, b->e1.counters.pages_shared);
    ROW_F("pages_sharing", G_GUINT64_FORMAT, b->e1.counters.pages_sharing);
    ROW_F("stable_node_chains / dups", "s",
          (g_snprintf(buf_, sizeof(buf_), "%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT,
                      b->e1.counters.stable_node_chains, b->e1.counters.stable_node_dups), buf_));

    if (!ksmd) {
        printf("\nksmd comparison skipped: %s\n", ksmd_why);
        return 0;
    }
    printf("\nCPU seconds to the converged answer\n");
    ROW_K("baseline: ksmd (until pages_sharing settled)", ".2f", b->ksmd_cpu);
    ROW_K("  ksmd wall seconds", ".1f", b->ksmd_wall);
    ROW_F("estimator, 1 pass", ".2f", b->e1.cpu);
    ROW_F("estimator, 2 passes", ".2f", b->e2.cpu);
    ROW_K("ksmd / estimator (1 pass)", ".1f", b->ksmd_cpu / b->e1.cpu);
    ROW_K("ksmd / estimator (2 passes)", ".1f", b->ksmd_cpu / b->e2.cpu);
    printf("%-46s %12s\n", "requirement", ">= 10");
    printf("\nkernel after ksmd\n");
    ROW_K("pages_shared", G_GINT64_FORMAT, b->k_shared);
    ROW_K("pages_sharing", G_GINT64_FORMAT, b->k_sharing);
    ROW_K("stable_node_chains / dups", "s",
          (g_snprintf(buf_, sizeof(buf_), "%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT,
                      b->k_chains, b->k_dups), buf_));
    ROW_K("full_scans", G_GINT64_FORMAT, b->k_scans);
    ROW_K("prediction", "s", b->matched ? "matched" : "NOT matched");
    for (guint i = 0; i < nb; i++) {
        if (bs[i].ksmd_skip)
            printf("%s: %s\n", bs[i].name, bs[i].ksmd_skip);
        g_free(bs[i].ksmd_skip);
    }
    return 0;
}
