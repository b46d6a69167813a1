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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind1_read_fault_maps_zero_page),
        cmocka_unit_test(test_kind2_read_fault_private_page),
        cmocka_unit_test(test_kpageflags_unreadable),
        cmocka_unit_test(test_estimate_shares_of_present),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
