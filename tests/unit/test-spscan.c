/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spscan.c: how the scanner tells zero-page mappings from pages ksmd
 * scans, on fake pagemap and kpageflags trees for both machine kinds
 *
 * The test scans its own process through a fake procfs root: smaps,
 * pagemap and kpageflags are written by the test (what the kernel would
 * state), /proc/PID/mem is a link to the real one, so the bytes read are
 * the real bytes of a mapping the test filled.  Each page's pagemap entry
 * says present or not, mapped once (exclusive) or not, and its frame; the
 * frame's kpageflags word says zero page (KPF_ZERO_PAGE, also the huge
 * zero folio), KSM page, or neither.
 *
 *   kind 1: a read fault on untouched memory maps the shared zero page;
 *   kind 2: it allocates a private page (present, exclusive, a frame of its
 *           own, reads as zeros); THP splits still map zero-filled subpages
 *           to the zero page.
 */
#include "config.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sptest.h"
#include "samepage/spestimate.h"
#include "samepage/spscan.h"
#include "../../src/lib/model/spscanpriv.h"

#define N_PAGES 16
#define PM_PRESENT (1ULL << 63)
#define PM_FILE (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56)
#define KPF_COMPOUND_HEAD (1ULL << 15)
#define KPF_COMPOUND_TAIL (1ULL << 16)
#define KPF_KSM (1ULL << 21)
#define KPF_THP (1ULL << 22)
#define KPF_ZERO_PAGE (1ULL << 24)

#define PFN_ZERO 0x5000ULL          /* the shared zero page */
#define PFN_HUGE_ZERO 0x8000ULL     /* the huge zero folio: 512 frames */
#define PFN_KSM_ZERO 0x6000ULL      /* a KSM page holding zeros (use_zero_pages=0) */
#define PFN_KSM_B 0x7000ULL         /* a KSM page holding "B" */

typedef struct {
    guint64 entry;                  /* pagemap entry; 0: not present */
    char fill;                      /* the real page's bytes: 0 or a letter */
} FakePage;

typedef struct {
    char *root;
    guint8 *mem;
    pid_t pid;
} Fixture;

static void
put_u64(const char *path, guint64 index, guint64 value)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &value, sizeof(value), (off_t)(index * sizeof(value))),
                     sizeof(value));
    close(fd);
}

/* The frames' kpageflags of every tree: zero page, huge zero folio, KSM pages. */
static void
write_kpageflags(const char *root)
{
    g_autofree char *kpf = g_build_filename(root, "kpageflags", NULL);

    put_u64(kpf, PFN_ZERO, KPF_ZERO_PAGE);
    put_u64(kpf, PFN_HUGE_ZERO, KPF_ZERO_PAGE | KPF_THP | KPF_COMPOUND_HEAD);
    for (guint i = 1; i < 512; i++)
        put_u64(kpf, PFN_HUGE_ZERO + i, KPF_ZERO_PAGE | KPF_THP | KPF_COMPOUND_TAIL);
    put_u64(kpf, PFN_KSM_ZERO, KPF_KSM);
    put_u64(kpf, PFN_KSM_B, KPF_KSM);
}

/* A fake procfs root for our own process over a real mapping filled as @pages say. */
static void
fixture_setup(Fixture *fx, const FakePage *pages, gboolean with_kpageflags)
{
    g_autofree char *piddir = NULL, *smaps = NULL, *pagemap = NULL, *mem = NULL, *real = NULL;
    guint64 start;

    fx->pid = getpid();
    fx->mem = mmap(NULL, N_PAGES * SP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(fx->mem != MAP_FAILED);
    madvise(fx->mem, N_PAGES * SP_PAGE_SIZE, MADV_NOHUGEPAGE);
    for (guint i = 0; i < N_PAGES; i++)
        memset(fx->mem + i * SP_PAGE_SIZE, pages[i].fill, SP_PAGE_SIZE);
    start = (guint64)(guintptr)fx->mem;

    fx->root = g_dir_make_tmp("samepage-scan-XXXXXX", NULL);
    assert_non_null(fx->root);
    piddir = g_strdup_printf("%s/%d", fx->root, (int)fx->pid);
    assert_int_equal(g_mkdir(piddir, 0755), 0);
    smaps = g_strdup_printf("%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x rw-p 00000000 00:00 0\n"
                            "Size:               %u kB\nRss:                %u kB\n"
                            "Anonymous:          %u kB\nAnonHugePages:      0 kB\n"
                            "VmFlags: rd wr mr mw me ac mg\n",
                            start, start + N_PAGES * SP_PAGE_SIZE, N_PAGES * 4, N_PAGES * 4,
                            N_PAGES * 4);
    sp_test_write(piddir, "smaps", smaps);
    sp_test_write(piddir, "comm", "test-spscan\n");
    pagemap = g_build_filename(piddir, "pagemap", NULL);
    for (guint i = 0; i < N_PAGES; i++)
        put_u64(pagemap, start / SP_PAGE_SIZE + i, pages[i].entry);
    mem = g_build_filename(piddir, "mem", NULL);
    real = g_strdup_printf("/proc/%d/mem", (int)fx->pid);
    assert_int_equal(symlink(real, mem), 0);
    if (with_kpageflags)
        write_kpageflags(fx->root);
}

static void
fixture_teardown(Fixture *fx)
{
    munmap(fx->mem, N_PAGES * SP_PAGE_SIZE);
    sp_test_remove_tree(fx->root);
    g_free(fx->root);
}

/* One pass over the fake tree; the scan is returned for inspection. */
static SpScan *
scan_fixture(Fixture *fx, SpHost **host_out)
{
    g_autoptr(GError) error = NULL;
    SpScanOptions opt;
    SpHost *host = sp_host_new_with_roots("/sys", fx->root);
    SpScan *scan;

    sp_scan_options_init(&opt);
    opt.passes = 1;
    scan = sp_scan_new(host, &opt);
    if (!sp_scan_add_pid(scan, fx->pid, &error) || !sp_scan_run(scan, &error)) {
        print_message("scan failed: %s\n", error->message);
        fail();
    }
    *host_out = host;
    return scan;
}

#define EXCL(pfn) (PM_PRESENT | PM_EXCLUSIVE | (pfn))
#define SHARED(pfn) (PM_PRESENT | (pfn))

/*
 * The pages both kinds have: two equal private pages, a zero-written one,
 * KSM pages (one holding zeros), a PMD-mapped huge zero page (pagemap
 * reports it as a file page), untouched pages.  Pages 3 and 4 are memory
 * that was read before it was written: @kind says what that maps.
 */
static void
fill_pages(FakePage *p, int kind)
{
    memset(p, 0, N_PAGES * sizeof(*p));
    p[0] = (FakePage){ EXCL(100), 'A' };
    p[1] = (FakePage){ EXCL(101), 'A' };
    p[2] = (FakePage){ EXCL(102), 0 };               /* written with zeros */
    if (kind == 1) {
        p[3] = (FakePage){ SHARED(PFN_ZERO), 0 };
        p[4] = (FakePage){ SHARED(PFN_ZERO), 0 };
    } else {
        p[3] = (FakePage){ EXCL(103), 0 };           /* a private page of its own */
        p[4] = (FakePage){ EXCL(104), 0 };
    }
    p[5] = (FakePage){ SHARED(PFN_KSM_ZERO), 0 };
    p[6] = (FakePage){ SHARED(PFN_KSM_ZERO), 0 };
    p[8] = (FakePage){ SHARED(PFN_KSM_B), 'B' };
    p[9] = (FakePage){ SHARED(PFN_KSM_B), 'B' };
    /* a THP split mapped zero-filled subpages to the zero page (both kinds) */
    p[10] = (FakePage){ SHARED(PFN_ZERO), 0 };
    /* the huge zero folio, PMD-mapped */
    p[11] = (FakePage){ PM_PRESENT | PM_FILE | (PFN_HUGE_ZERO + 11), 0 };
    p[12] = (FakePage){ PM_PRESENT | PM_FILE | (PFN_HUGE_ZERO + 12), 0 };
}

static void
check_kind(int kind)
{
    FakePage pages[N_PAGES];
    Fixture fx;
    g_autoptr(SpHost) host = NULL;
    g_autoptr(SpScan) scan = NULL;
    const SpScanSource *src;
    const guint8 *flags;
    const char *reason = (const char *)1;
    guint64 expect_present = kind == 1 ? 7 : 9;

    fill_pages(pages, kind);
    fixture_setup(&fx, pages, TRUE);
    scan = scan_fixture(&fx, &host);

    assert_int_equal(sp_scan_get_zero_method(scan, &reason), SP_SCAN_ZERO_KPAGEFLAGS);
    assert_null(reason);
    src = sp_scan_get_source(scan, 0);
    /* kind 1: 0-2, 5, 6, 8, 9; kind 2: also 3 and 4, private pages */
    assert_int_equal(src->present_pages, expect_present);
    assert_int_equal(sp_scan_get_n_pages(scan), expect_present);
    /* zero page: 10, the huge zero folio 11-12, and on kind 1 3-4 */
    assert_int_equal(src->zero_mapped_pages, kind == 1 ? 5 : 3);

    flags = sp_scan_get_flags(scan);
    for (gsize i = 0; i < sp_scan_get_n_pages(scan); i++) {
        guint64 a = sp_scan_page_addr(scan, i);
        gsize page = (a - (guint64)(guintptr)fx.mem) / SP_PAGE_SIZE;
        gboolean ksm = page == 5 || page == 6 || page == 8 || page == 9;

        assert_int_equal(!!(flags[i] & SP_SCAN_PAGE_KSM), ksm);
        assert_int_equal(!!(flags[i] & SP_SCAN_PAGE_SHARED), ksm);
        assert_int_equal(!!(flags[i] & SP_SCAN_PAGE_ZERO), pages[page].fill == 0);
    }
    fixture_teardown(&fx);
}

static void
test_kind1_read_fault_maps_zero_page(void **state)
{
    (void)state;
    check_kind(1);
}

static void
test_kind2_read_fault_private_page(void **state)
{
    (void)state;
    check_kind(2);
}

/*
 * Without kpageflags the scan guesses and says so: a page mapped more than
 * once that reads as zeros is taken for the zero page, the KSM page holding
 * zeros too.
 */
static void
test_kpageflags_unreadable(void **state)
{
    FakePage pages[N_PAGES];
    Fixture fx;
    g_autoptr(SpHost) host = NULL;
    g_autoptr(SpScan) scan = NULL;
    const char *reason = NULL;

    (void)state;
    fill_pages(pages, 1);
    fixture_setup(&fx, pages, FALSE);
    scan = scan_fixture(&fx, &host);
    assert_int_equal(sp_scan_get_zero_method(scan, &reason), SP_SCAN_ZERO_GUESSED);
    assert_non_null(reason);
    assert_non_null(strstr(reason, "kpageflags"));
    /* 0-2, 8, 9: the zero-reading shared pages 3-6 and 10 are taken for the
     * zero page; the huge zero folio (a file page in pagemap) is not read */
    assert_int_equal(sp_scan_get_source(scan, 0)->present_pages, 5);
    assert_int_equal(sp_scan_get_source(scan, 0)->zero_mapped_pages, 5);
    fixture_teardown(&fx);
}

/*
 * The estimate over the kind-2 tree: every share has present memory as its
 * denominator and stays below 100%; the pages the model merges that are not
 * KSM pages yet are counted (the KSM pages already merged are not).
 */
static void
test_estimate_shares_of_present(void **state)
{
    FakePage pages[N_PAGES];
    Fixture fx;
    g_autoptr(SpHost) host = NULL;
    g_autoptr(SpScan) scan = NULL;
    g_autoptr(SpEstimate) est = NULL;
    g_autoptr(GError) error = NULL;
    SpEstimateOptions opt;
    guint64 saved;

    (void)state;
    fill_pages(pages, 2);
    fixture_setup(&fx, pages, TRUE);
    scan = scan_fixture(&fx, &host);
    sp_estimate_options_init(&opt);
    est = sp_estimate_run(scan, &opt, &error);
    assert_non_null(est);
    saved = sp_estimate_get_saved_zero(est) + sp_estimate_get_saved_nonzero(est);
    assert_int_equal(sp_estimate_get_present_pages(est), 9);
    assert_true(saved <= sp_estimate_get_present_pages(est));
    /* "A" x2 -> 1 saved; zeros (2, 3, 4, 5, 6) -> 4 saved; "B" x2 -> 1 saved */
    assert_int_equal(saved, 6);
    /* merged by the model but not KSM pages: 0, 1, 2, 3, 4 */
    assert_int_equal(sp_estimate_get_unmerged_pages(est), 5);
    fixture_teardown(&fx);
}

/* ------------------------------------------------------------ driving a scan */

/* One page of the fixture, by index, in the scan (or -1). */
static gssize
scan_index_of(SpScan *scan, const Fixture *fx, gsize page)
{
    for (gsize i = 0; i < sp_scan_get_n_pages(scan); i++) {
        if (sp_scan_page_addr(scan, i) == (guint64)(guintptr)fx->mem + page * SP_PAGE_SIZE)
            return (gssize)i;
    }
    return -1;
}

/*
 * Driven by steps, as a main loop would: no step waits for the next pass;
 * between passes a step says when it is due and does nothing before; a
 * page changed meanwhile is found volatile, the others are not.
 */
static void
test_step_between_passes(void **state)
{
    FakePage pages[N_PAGES];
    Fixture fx;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpHost) host = NULL;
    g_autoptr(SpScan) scan = NULL;
    SpScanOptions opt;
    SpScanStats before, after;
    gboolean done = TRUE;
    gint64 ready = -1, ready2 = -1, t0;
    const guint8 *flags;

    (void)state;
    fill_pages(pages, 2);
    fixture_setup(&fx, pages, TRUE);
    host = sp_host_new_with_roots("/sys", fx.root);
    sp_scan_options_init(&opt);
    opt.passes = 2;
    opt.interval_ms = 400;
    scan = sp_scan_new(host, &opt);
    assert_true(sp_scan_add_pid(scan, fx.pid, &error));

    t0 = g_get_monotonic_time();
    assert_true(sp_scan_step(scan, &done, &ready, &error));
    /* the first pass (9 pages) is over; the second is due 400 ms later */
    assert_false(done);
    assert_int_equal(sp_scan_get_n_pages(scan), 9);
    assert_true(ready >= t0 + 400 * 1000);
    assert_true(g_get_monotonic_time() < ready);    /* it did not wait */
    sp_scan_get_stats(scan, &before);

    /* Too early: nothing read, the same time given again. */
    assert_true(sp_scan_step(scan, &done, &ready2, &error));
    assert_false(done);
    assert_int_equal(ready2, ready);
    sp_scan_get_stats(scan, &after);
    assert_int_equal(after.pages_read, before.pages_read);

    /* Page 0 changes before the second pass. */
    memset(fx.mem, 'Z', SP_PAGE_SIZE);
    while (g_get_monotonic_time() < ready)
        g_usleep(10 * 1000);    /* the test waits; the library did not */
    assert_true(sp_scan_step(scan, &done, &ready, &error));
    assert_true(done);
    assert_int_equal(ready, 0);
    sp_scan_get_stats(scan, &after);
    assert_int_equal(after.pages_read, before.pages_read + 9);

    flags = sp_scan_get_flags(scan);
    for (gsize page = 0; page < N_PAGES; page++) {
        gssize i = scan_index_of(scan, &fx, page);
        if (i < 0)
            continue;
        if (!!(flags[i] & SP_SCAN_PAGE_VOLATILE) != (page == 0))
            fail_msg("page %zu: volatile %d", page, !!(flags[i] & SP_SCAN_PAGE_VOLATILE));
    }
    /* Done stays done. */
    assert_true(sp_scan_step(scan, &done, NULL, &error));
    assert_true(done);
    fixture_teardown(&fx);
}

/* A raw image of @pages pages, all zeros except page i holding (i % 7). */
static char *
write_image(const char *dir, gsize pages)
{
    char *path = g_build_filename(dir, "ram.raw", NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    guint8 page[SP_PAGE_SIZE];

    assert_true(fd >= 0);
    for (gsize i = 0; i < pages; i++) {
        memset(page, (int)(i % 7), sizeof(page));
        assert_int_equal(pwrite(fd, page, sizeof(page), (off_t)(i * SP_PAGE_SIZE)),
                         sizeof(page));
    }
    close(fd);
    return path;
}

/*
 * A step is bounded: over 40 MiB (20 chunks) the first step reads at most
 * SP_SCAN_STEP_CHUNKS chunks and asks to be called again at once; the
 * steps together give what sp_scan_run() gives.
 */
static void
test_step_bounded(void **state)
{
    const gsize n_pages = 20 * 512;
    g_autofree char *dir = g_dir_make_tmp("samepage-scan-XXXXXX", NULL);
    g_autofree char *image = write_image(dir, n_pages);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GError) error = NULL;
    g_autoptr(SpScan) stepped = NULL, whole = NULL;
    SpScanOptions opt;
    SpScanStats st;
    gboolean done = FALSE;
    gint64 ready = -1;
    guint steps = 0;

    (void)state;
    sp_scan_options_init(&opt);
    opt.passes = 2;
    opt.interval_ms = 0;
    stepped = sp_scan_new(host, &opt);
    whole = sp_scan_new(host, &opt);
    assert_true(sp_scan_add_image(stepped, image, &error));
    assert_true(sp_scan_add_image(whole, image, &error));

    /* pages read in chunks: all reads but the earlier pages read again to
     * confirm a duplicate */
#define CHUNK_READS(st) ((st).pages_read - (st).confirm_reads)
    assert_true(sp_scan_step(stepped, &done, &ready, &error));
    steps++;
    assert_false(done);
    assert_int_equal(ready, 0);
    sp_scan_get_stats(stepped, &st);
    assert_int_equal(CHUNK_READS(st), SP_SCAN_STEP_CHUNKS * SP_CHUNK_PAGES);
    while (!done) {
        guint64 was = CHUNK_READS(st);
        assert_true(sp_scan_step(stepped, &done, &ready, &error));
        sp_scan_get_stats(stepped, &st);
        assert_true(CHUNK_READS(st) - was <= SP_SCAN_STEP_CHUNKS * SP_CHUNK_PAGES);
        assert_true(++steps < 100);
    }
    assert_int_equal(CHUNK_READS(st), 2 * n_pages);
    /* two passes of 20 chunks, 16 a step: 2 steps each */
    assert_int_equal(steps, 4);

    assert_true(sp_scan_run(whole, &error));
    assert_int_equal(sp_scan_get_n_pages(stepped), n_pages);
    assert_int_equal(sp_scan_get_n_pages(whole), n_pages);
    assert_memory_equal(sp_scan_get_reps(stepped), sp_scan_get_reps(whole),
                        n_pages * sizeof(guint32));
    assert_memory_equal(sp_scan_get_flags(stepped), sp_scan_get_flags(whole), n_pages);
    /* 7 contents: every page is its first page's of the same content */
    for (gsize i = 0; i < n_pages; i++)
        assert_int_equal(sp_scan_get_reps(stepped)[i], i % 7);
    sp_test_remove_tree(dir);
}

/* The progress function: called after each step, the last included, in
 * order, bytes never going back, with the pass. */
typedef struct {
    GArray *seen;               /* SpScanProgress */
} ProgressLog;

static void
log_progress(const SpScanProgress *p, gpointer data)
{
    ProgressLog *log = data;
    g_array_append_val(log->seen, *p);
}

static void
test_progress(void **state)
{
    const gsize n_pages = 20 * 512;
    g_autofree char *dir = g_dir_make_tmp("samepage-scan-XXXXXX", NULL);
    g_autofree char *image = write_image(dir, n_pages);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GError) error = NULL;
    g_autoptr(SpScan) scan = NULL;
    g_autoptr(GArray) seen = g_array_new(FALSE, FALSE, sizeof(SpScanProgress));
    ProgressLog log = { seen };
    SpScanOptions opt;
    SpScanStats st;

    (void)state;
    sp_scan_options_init(&opt);
    assert_null(opt.progress);
    opt.passes = 2;
    opt.interval_ms = 50;
    opt.progress = log_progress;
    opt.progress_data = &log;
    scan = sp_scan_new(host, &opt);
    assert_true(sp_scan_add_image(scan, image, &error));
    assert_true(sp_scan_run(scan, &error));
    sp_scan_get_stats(scan, &st);
    /* two passes of 20 chunks, 16 a step: steps 1 and 2 (pass 1, then the
     * wait), then 3, the first of pass 2 (the wait's empty steps too). */
    assert_true(seen->len >= 3);
    const SpScanProgress *first = &g_array_index(seen, SpScanProgress, 0);
    assert_int_equal(first->pass, 1);
    assert_int_equal(first->passes, 2);
    assert_false(first->waiting);
    /* a step's chunks, and the earlier pages read again to confirm duplicates */
    assert_true(first->bytes_read >= (guint64)SP_SCAN_STEP_CHUNKS * SP_CHUNK_PAGES * SP_PAGE_SIZE);
    assert_true(first->bytes_read < (guint64)n_pages * SP_PAGE_SIZE * 2);
    gboolean waited = FALSE, second = FALSE;
    for (guint i = 1; i < seen->len; i++) {
        const SpScanProgress *p = &g_array_index(seen, SpScanProgress, i);
        const SpScanProgress *q = &g_array_index(seen, SpScanProgress, i - 1);
        assert_true(p->bytes_read >= q->bytes_read);
        assert_true(p->pass >= q->pass);
        assert_true(p->bytes_read <= st.pages_read * SP_PAGE_SIZE);
        waited |= p->waiting && p->pass == 2;
        second |= !p->waiting && p->pass == 2;
    }
    assert_true(waited);
    assert_true(second);
    /* the last report: after the last step, every byte read */
    const SpScanProgress *last = &g_array_index(seen, SpScanProgress, seen->len - 1);
    assert_int_equal(last->bytes_read, st.pages_read * SP_PAGE_SIZE);
    assert_int_equal(last->pass, 2);
    assert_false(last->waiting);
    sp_test_remove_tree(dir);
}

/* Nothing to scan: the first step fails as sp_scan_run() does, and so does
 * the async run. */
typedef struct {
    GMainLoop *loop;
    SpScan *scan;
    gboolean ok;
    GError *error;
    guint ticks;
    guint8 *change;             /* a page to change while the scan waits */
} AsyncRun;

static void
async_done(GObject *source, GAsyncResult *res, gpointer data)
{
    AsyncRun *r = data;

    assert_null(source);
    r->ok = sp_scan_run_finish(r->scan, res, &r->error);
    g_main_loop_quit(r->loop);
}

static gboolean
async_tick(gpointer data)
{
    AsyncRun *r = data;

    if (++r->ticks == 5 && r->change)
        memset(r->change, 'Y', SP_PAGE_SIZE);
    return G_SOURCE_CONTINUE;
}

static void
test_step_nothing(void **state)
{
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GError) error = NULL;
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    SpScanOptions opt;
    gboolean done = TRUE;

    (void)state;
    sp_scan_options_init(&opt);
    g_autoptr(SpScan) scan = sp_scan_new(host, &opt);
    assert_false(sp_scan_step(scan, &done, NULL, &error));
    assert_false(done);
    assert_true(g_error_matches(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID));
    assert_non_null(strstr(error->message, "nothing to scan"));

    AsyncRun r = { loop, scan, TRUE, NULL, 0, NULL };
    sp_scan_run_async(scan, NULL, async_done, &r);
    g_main_loop_run(loop);
    assert_false(r.ok);
    assert_true(g_error_matches(r.error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID));
    g_clear_error(&r.error);
}

/*
 * In a worker thread: the caller's main loop runs on (a 10 ms timer ticks)
 * while the scan reads and waits between passes; a page the caller changes
 * during the wait is volatile.
 */
static void
test_run_async(void **state)
{
    FakePage pages[N_PAGES];
    Fixture fx;
    g_autoptr(SpHost) host = NULL;
    g_autoptr(SpScan) scan = NULL;
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GError) error = NULL;
    SpScanOptions opt;
    guint tick;

    (void)state;
    fill_pages(pages, 2);
    fixture_setup(&fx, pages, TRUE);
    host = sp_host_new_with_roots("/sys", fx.root);
    sp_scan_options_init(&opt);
    opt.passes = 2;
    opt.interval_ms = 300;
    scan = sp_scan_new(host, &opt);
    assert_true(sp_scan_add_pid(scan, fx.pid, &error));

    AsyncRun r = { loop, scan, FALSE, NULL, 0, fx.mem + SP_PAGE_SIZE };
    tick = g_timeout_add(10, async_tick, &r);
    sp_scan_run_async(scan, NULL, async_done, &r);
    g_main_loop_run(loop);
    g_source_remove(tick);
    assert_true(r.ok);
    assert_null(r.error);
    assert_true(r.ticks >= 10);             /* the loop ran during the 300 ms wait */
    assert_int_equal(sp_scan_get_n_pages(scan), 9);
    gssize i = scan_index_of(scan, &fx, 1);
    assert_true(i >= 0);
    assert_true(sp_scan_get_flags(scan)[i] & SP_SCAN_PAGE_VOLATILE);
    i = scan_index_of(scan, &fx, 0);
    assert_false(sp_scan_get_flags(scan)[i] & SP_SCAN_PAGE_VOLATILE);

    /* Run once only. */
    AsyncRun again = { loop, scan, TRUE, NULL, 0, NULL };
    sp_scan_run_async(scan, NULL, async_done, &again);
    g_main_loop_run(loop);
    assert_false(again.ok);
    assert_true(g_error_matches(again.error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID));
    g_clear_error(&again.error);
    fixture_teardown(&fx);
}

static gboolean
cancel_cb(gpointer data)
{
    g_cancellable_cancel(data);
    return G_SOURCE_REMOVE;
}

/* Cancelled during a long wait between passes: it ends at once, cancelled,
 * and the scan takes no more steps. */
static void
test_run_async_cancelled(void **state)
{
    FakePage pages[N_PAGES];
    Fixture fx;
    g_autoptr(SpHost) host = NULL;
    g_autoptr(SpScan) scan = NULL;
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(GError) error = NULL;
    SpScanOptions opt;
    gboolean done;
    gint64 t0;

    (void)state;
    fill_pages(pages, 2);
    fixture_setup(&fx, pages, TRUE);
    host = sp_host_new_with_roots("/sys", fx.root);
    sp_scan_options_init(&opt);
    opt.passes = 2;
    opt.interval_ms = 600000;
    scan = sp_scan_new(host, &opt);
    assert_true(sp_scan_add_pid(scan, fx.pid, &error));

    AsyncRun r = { loop, scan, TRUE, NULL, 0, NULL };
    t0 = g_get_monotonic_time();
    g_timeout_add(100, cancel_cb, cancel);
    sp_scan_run_async(scan, cancel, async_done, &r);
    g_main_loop_run(loop);
    assert_false(r.ok);
    assert_true(g_error_matches(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_true(g_get_monotonic_time() - t0 < 10 * G_USEC_PER_SEC);
    g_clear_error(&r.error);
    assert_false(sp_scan_step(scan, &done, NULL, &error));
    fixture_teardown(&fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind1_read_fault_maps_zero_page),
        cmocka_unit_test(test_kind2_read_fault_private_page),
        cmocka_unit_test(test_kpageflags_unreadable),
        cmocka_unit_test(test_estimate_shares_of_present),
        cmocka_unit_test(test_step_between_passes),
        cmocka_unit_test(test_step_bounded),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_step_nothing),
        cmocka_unit_test(test_run_async),
        cmocka_unit_test(test_run_async_cancelled),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
