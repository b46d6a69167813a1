/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The scanner and the estimate end to end on sources with designed
 * contents: raw image files, and a live child process.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "samepage/spestimate.h"
#include "sptest.h"

/* Deterministic page contents: (tag, index) fills a page. */
static void
fill_page(guint8 *page, guint64 tag, guint64 index)
{
    guint64 x = tag * 0x9E3779B97F4A7C15ULL ^ (index + 1) * 0xBF58476D1CE4E5B9ULL;
    guint64 *w = (guint64 *)(void *)page;

    for (guint i = 0; i < SP_PAGE_SIZE / 8; i++) {
        x ^= x >> 31;
        x *= 0x94D049BB133111EBULL;
        x += 0x632BE59BD9A4A1C3ULL;
        w[i] = x;
    }
}

/*
 * A workload image: `cross` pages shared by every image (tag 1), `groups`
 * groups of 4 equal pages private to this image, `zero` zero pages, the
 * rest unique to the image.
 */
static char *
make_image(const char *dir, guint id, guint pages, guint cross, guint groups, guint zero)
{
    g_autofree char *name = g_strdup_printf("image-%u.raw", id);
    char *path = g_build_filename(dir, name, NULL);
    g_autofree guint8 *buf = g_malloc0((gsize)pages * SP_PAGE_SIZE);
    guint p = 0;

    for (guint i = 0; i < cross; i++)
        fill_page(buf + (gsize)p++ * SP_PAGE_SIZE, 1, i);
    for (guint g = 0; g < groups; g++)
        for (guint k = 0; k < 4; k++)
            fill_page(buf + (gsize)p++ * SP_PAGE_SIZE, 100 + id, g);
    p += zero;
    while (p < pages) {
        fill_page(buf + (gsize)p * SP_PAGE_SIZE, 1000 + id, p);
        p++;
    }
    assert_true(g_file_set_contents(path, (const char *)buf, (gssize)pages * SP_PAGE_SIZE, NULL));
    return path;
}

typedef struct {
    char *dir;
    char *img[2];
} Fixture;

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);

    f->dir = g_dir_make_tmp("samepage-est-XXXXXX", NULL);
    f->img[0] = make_image(f->dir, 0, 2560, 1000, 100, 200);
    f->img[1] = make_image(f->dir, 1, 2560, 1000, 100, 200);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    sp_test_remove_tree(f->dir);
    g_free(f->dir);
    g_free(f->img[0]);
    g_free(f->img[1]);
    g_free(f);
    return 0;
}

static guint8
node_by_source(guint32 source, guint64 addr, gpointer data)
{
    return (guint8)source;
}

/* Page frame 2 (pages 1024..1535: group pages, then 136 zero pages) is a THP. */
static gboolean
thp_frame2(guint32 source, guint64 addr, gpointer data)
{
    return (addr >> 21) == 2;
}

static SpEstimate *
estimate_images_thp(Fixture *f, const SpEstimateOptions *eopt, gboolean thp)
{
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GError) error = NULL;
    SpScanOptions sopt;
    SpEstimate *est;

    sp_scan_options_init(&sopt);
    sopt.interval_ms = 0;
    g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
    if (thp)
        sp_scan_set_thp_func(scan, thp_frame2, NULL);
    assert_true(sp_scan_add_image(scan, f->img[0], &error));
    assert_true(sp_scan_add_image(scan, f->img[1], &error));
    assert_true(sp_scan_run(scan, &error));
    est = sp_estimate_run(scan, eopt, &error);
    assert_non_null(est);
    return est;
}

static SpEstimate *
estimate_images_bits(Fixture *f, const SpEstimateOptions *eopt, gboolean two_nodes,
                     guint hash_bits)
{
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GError) error = NULL;
    SpScanOptions sopt;
    SpEstimate *est;

    sp_scan_options_init(&sopt);
    sopt.interval_ms = 0;
    sopt.want_nodes = two_nodes;
    sopt.hash_bits = hash_bits;
    g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
    if (two_nodes)
        sp_scan_set_node_func(scan, node_by_source, NULL);
    assert_true(sp_scan_add_image(scan, f->img[0], &error));
    assert_true(sp_scan_add_image(scan, f->img[1], &error));
    assert_true(sp_scan_run(scan, &error));
    assert_int_equal(sp_scan_get_n_pages(scan), 5120);
    est = sp_estimate_run(scan, eopt, &error);
    assert_non_null(est);
    return est;
}

static SpEstimate *
estimate_images(Fixture *f, const SpEstimateOptions *eopt, gboolean two_nodes)
{
    return estimate_images_bits(f, eopt, two_nodes, 0);
}

static guint64
json_scan_stat(const SpEstimate *est, const char *key)
{
    g_autoptr(json_object) j = sp_estimate_to_json(est);
    json_object *scan, *v;

    assert_true(json_object_object_get_ex(j, "scan", &scan));
    assert_true(json_object_object_get_ex(scan, key, &v));
    return (guint64)json_object_get_int64(v);
}

/* The figures of test_images_defaults() and test_images_two_nodes(). */
static void
assert_defaults(const SpEstimate *est)
{
    const SpModelCounters *c = sp_estimate_get_counters(est);

    assert_int_equal(c->pages_shared, 1000 + 200 + 2);
    assert_int_equal(c->pages_sharing, 1000 + 600 + 398);
    assert_int_equal(c->stable_node_chains, 1);
    assert_int_equal(c->stable_node_dups, 2);
    assert_int_equal(c->rmap_items, 5120);
    assert_int_equal(c->pages_unshared + c->pages_volatile, 2 * 960);
    assert_int_equal(sp_estimate_get_saved_zero(est), 398);
    assert_int_equal(sp_estimate_get_saved_nonzero(est), 1600);
    assert_int_equal(sp_estimate_get_saved_bytes(est), (398 + 1600) * 4096);
}

static void
test_images_defaults(void **state)
{
    g_autoptr(SpEstimate) est = NULL;
    SpEstimateOptions opt;
    gboolean converged;

    sp_estimate_options_init(&opt);
    est = estimate_images(*state, &opt, FALSE);
    const SpModelCounters *c = sp_estimate_get_counters(est);

    /* cross: 1000 contents x 2; groups: 200 x 4; zero: 400 pages, 256 per KSM page */
    assert_int_equal(c->pages_shared, 1000 + 200 + 2);
    assert_int_equal(c->pages_sharing, 1000 + 600 + 398);
    assert_int_equal(c->stable_node_chains, 1);
    assert_int_equal(c->stable_node_dups, 2);
    assert_int_equal(c->ksm_zero_pages, 0);
    assert_int_equal(c->rmap_items, 5120);
    assert_int_equal(c->pages_unshared + c->pages_volatile, 2 * 960);
    assert_int_equal(c->general_profit, (gint64)1998 * 4096 - 5120 * 64);
    assert_int_equal(sp_estimate_get_saved_zero(est), 398);
    assert_int_equal(sp_estimate_get_saved_nonzero(est), 1600);
    sp_estimate_get_passes(est, &converged);
    assert_true(converged);
    for (guint i = 0; i < 2; i++) {
        const SpEstimateProcess *p = sp_estimate_get_process(est, i);
        assert_int_equal(p->ksm.ksm_merging_pages, 1600);
        assert_int_equal(p->scanned_pages, 2560);
        assert_int_equal(p->ksm.ksm_rmap_items, 2560);
    }
    /* Matrix: each image's 1000 cross pages and 200 zero pages are also in the other;
     * its 400 group pages and 200 zero pages repeat inside it. */
    const guint64 *m = sp_estimate_get_matrix(est);
    assert_int_equal(m[0 * 2 + 1], 1200);
    assert_int_equal(m[1 * 2 + 0], 1200);
    assert_int_equal(m[0], 600);
    assert_int_equal(m[3], 600);

    g_autoptr(json_object) j = sp_estimate_to_json(est);
    json_object *v;
    assert_true(json_object_object_get_ex(j, "pages_sharing", &v));
    assert_int_equal(json_object_get_int64(v), 1998);
    assert_true(json_object_object_get_ex(j, "processes", &v));
    assert_int_equal(json_object_array_length(v), 2);
}

static void
test_images_zero_pages(void **state)
{
    g_autoptr(SpEstimate) est = NULL;
    SpEstimateOptions opt;

    sp_estimate_options_init(&opt);
    opt.model.use_zero_pages = TRUE;
    est = estimate_images(*state, &opt, FALSE);
    const SpModelCounters *c = sp_estimate_get_counters(est);

    assert_int_equal(c->pages_shared, 1200);
    assert_int_equal(c->pages_sharing, 1600);
    assert_int_equal(c->ksm_zero_pages, 400);
    assert_int_equal(c->stable_node_chains, 0);
    /* zero-merged pages lose their rmap_item on the next visit */
    assert_int_equal(c->rmap_items, 5120 - 400);
    assert_int_equal(c->general_profit, (gint64)(1600 + 400) * 4096 - 4720 * 64);
    assert_int_equal(sp_estimate_get_saved_zero(est), 400);
}

static void
test_images_two_nodes(void **state)
{
    g_autoptr(SpEstimate) est = NULL;
    SpEstimateOptions opt;

    sp_estimate_options_init(&opt);
    opt.merge_across_nodes = FALSE;
    est = estimate_images(*state, &opt, TRUE);
    const SpModelCounters *c = sp_estimate_get_counters(est);

    /* Nothing merges between the nodes: the cross pages stay apart. */
    assert_int_equal(c->pages_shared, 200 + 2);
    assert_int_equal(c->pages_sharing, 600 + 398);
    assert_int_equal(c->stable_node_chains, 0);
    assert_int_equal(sp_estimate_get_n_nodes(est), 2);
    assert_int_equal(sp_estimate_get_node(est, 0)->stable_pages, 600);
    assert_int_equal(sp_estimate_get_node(est, 1)->stable_pages, 600);

    /* The same node map with merge_across_nodes=1 merges everything. */
    g_autoptr(SpEstimate) est1 = NULL;
    opt.merge_across_nodes = TRUE;
    est1 = estimate_images(*state, &opt, TRUE);
    assert_int_equal(sp_estimate_get_counters(est1)->pages_sharing, 1998);
}

/*
 * Hashes cut to 8 bits: about 3,000 different contents share 256 hash
 * values, so nearly every lookup finds pages of other contents first.  Only
 * byte comparisons decide, so the figures are those of full hashes.
 */
static void
test_images_collisions(void **state)
{
    SpEstimateOptions opt;

    sp_estimate_options_init(&opt);
    g_autoptr(SpEstimate) est = estimate_images_bits(*state, &opt, FALSE, 8);
    assert_defaults(est);
    assert_true(json_scan_stat(est, "hash_collisions") > 1000);
    assert_int_equal(json_scan_stat(est, "changed_while_confirming"), 0);
    assert_int_equal(sp_estimate_get_counters(est)->pages_volatile, 0);

    /* 16 hash values: a lookup walks past some 200 other contents. */
    g_autoptr(SpEstimate) few = estimate_images_bits(*state, &opt, FALSE, 4);
    assert_defaults(few);

    opt.merge_across_nodes = FALSE;
    g_autoptr(SpEstimate) nodes = estimate_images_bits(*state, &opt, TRUE, 8);
    const SpModelCounters *c = sp_estimate_get_counters(nodes);
    assert_int_equal(c->pages_shared, 200 + 2);
    assert_int_equal(c->pages_sharing, 600 + 398);
    assert_int_equal(sp_estimate_get_node(nodes, 0)->stable_pages, 600);
    assert_int_equal(sp_estimate_get_node(nodes, 1)->stable_pages, 600);
}

/*
 * A page that changes between its read and the comparison with it: the
 * scan reads image 0, then, while it reads image 1, page 5 of image 0 (the
 * representative of a cross content) is overwritten.  Image 1's page 5 is
 * compared with it, and it no longer hashes the same: it is volatile, and
 * image 1's page 5 is left alone with its content.  One pass: nothing but
 * the comparison can see the change.
 */
typedef struct {
    const char *path;
    gboolean done;
} Overwrite;

static gboolean
thp_overwrite(guint32 source, guint64 addr, gpointer data)
{
    Overwrite *o = data;

    if (source == 1 && addr == 5 * SP_PAGE_SIZE && !o->done) {
        guint8 page[SP_PAGE_SIZE];
        int fd = open(o->path, O_WRONLY);

        assert_true(fd >= 0);
        fill_page(page, 9, 9);
        assert_int_equal(pwrite(fd, page, SP_PAGE_SIZE, 5 * SP_PAGE_SIZE), SP_PAGE_SIZE);
        close(fd);
        o->done = TRUE;
    }
    return FALSE;
}

static void
test_changed_representative(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GError) error = NULL;
    Overwrite o = { f->img[0], FALSE };
    SpScanOptions sopt;
    SpEstimateOptions eopt;

    sp_scan_options_init(&sopt);
    sopt.passes = 1;
    sopt.interval_ms = 0;
    g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
    sp_scan_set_thp_func(scan, thp_overwrite, &o);
    assert_true(sp_scan_add_image(scan, f->img[0], &error));
    assert_true(sp_scan_add_image(scan, f->img[1], &error));
    assert_true(sp_scan_run(scan, &error));
    assert_true(o.done);
    sp_estimate_options_init(&eopt);
    g_autoptr(SpEstimate) est = sp_estimate_run(scan, &eopt, &error);
    assert_non_null(est);
    const SpModelCounters *c = sp_estimate_get_counters(est);
    assert_int_equal(c->pages_shared, 999 + 200 + 2);
    assert_int_equal(c->pages_sharing, 999 + 600 + 398);
    assert_int_equal(json_scan_stat(est, "changed_while_confirming"), 1);
    assert_int_equal(sp_estimate_get_process(est, 0)->volatile_pages, 1);
    assert_int_equal(sp_estimate_get_process(est, 1)->volatile_pages, 0);
}

/*
 * 6.12+: the THP holding group pages (duplicates) is split by KSM, and the
 * split maps its 136 zero pages to the shared zero page: they leave the
 * model.  Before 6.12 (or with no THP) nothing changes.
 */
static void
test_thp_zero_remap(void **state)
{
    SpEstimateOptions opt;

    sp_estimate_options_init(&opt);
    opt.thp_zero_remap = TRUE;
    g_autoptr(SpEstimate) est = estimate_images_thp(*state, &opt, TRUE);
    const SpModelCounters *c = sp_estimate_get_counters(est);
    assert_int_equal(sp_estimate_get_thp_zero_remapped(est), 272);
    assert_int_equal(sp_estimate_get_process(est, 0)->thp_zero_remapped, 136);
    assert_int_equal(c->rmap_items, 5120 - 272);
    assert_int_equal(c->pages_shared, 1000 + 200 + 1);
    assert_int_equal(c->pages_sharing, 1000 + 600 + 127);
    assert_int_equal(c->stable_node_chains, 0);
    assert_int_equal(sp_estimate_get_saved_zero(est), 127 + 272);

    opt.thp_zero_remap = FALSE;
    g_autoptr(SpEstimate) old = estimate_images_thp(*state, &opt, TRUE);
    assert_int_equal(sp_estimate_get_counters(old)->pages_sharing, 1998);
    assert_int_equal(sp_estimate_get_thp_zero_remapped(old), 0);

    opt.thp_zero_remap = TRUE;
    g_autoptr(SpEstimate) nothp = estimate_images_thp(*state, &opt, FALSE);
    assert_int_equal(sp_estimate_get_counters(nothp)->pages_sharing, 1998);
}

static void
test_bad_images(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GError) error = NULL;
    g_autofree char *odd = g_build_filename(f->dir, "odd.raw", NULL);
    g_autofree char *empty = g_build_filename(f->dir, "empty.raw", NULL);
    SpScanOptions sopt;

    sp_scan_options_init(&sopt);
    g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
    g_autofree guint8 *junk = g_malloc0(5000);
    assert_true(g_file_set_contents(odd, (const char *)junk, 5000, NULL));
    assert_false(sp_scan_add_image(scan, odd, &error));
    assert_true(g_error_matches(error, SP_SCAN_ERROR, SP_SCAN_ERROR_IMAGE));
    assert_non_null(strstr(error->message, "odd.raw"));
    assert_non_null(strstr(error->message, "904 bytes left over"));
    g_clear_error(&error);

    assert_true(g_file_set_contents(empty, "", 0, NULL));
    assert_false(sp_scan_add_image(scan, empty, &error));
    g_clear_error(&error);
    assert_false(sp_scan_add_image(scan, "/nonexistent/x.raw", &error));
    assert_non_null(strstr(error->message, "/nonexistent/x.raw"));
    g_clear_error(&error);
    assert_false(sp_scan_add_image(scan, f->dir, &error));
    g_clear_error(&error);

    /* Nothing added: running is refused, not an empty answer. */
    assert_false(sp_scan_run(scan, &error));
    assert_true(g_error_matches(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID));
}

/*
 * A live child process to scan: @n pages of private anonymous memory
 * without THP, filled by @fill in the child (its own pages) or, when
 * @before_fork, in the parent before fork() (pages shared copy-on-write).
 * The child waits until live_child_stop(); it also exits when the test
 * dies half way (it keeps only its ends of the pipes).
 */
typedef void (*LiveChildFill)(guint8 *mem, gsize n);

typedef struct {
    pid_t pid;
    guint8 *mem;
    gsize n;
    int go;                          /* write a byte to let the child exit */
} LiveChild;

static void
live_child_start(LiveChild *lc, gsize n, LiveChildFill fill, gboolean before_fork)
{
    int ready[2], go[2];
    char c;

    lc->n = n;
    lc->mem = mmap(NULL, n * SP_PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(lc->mem != MAP_FAILED);
    madvise(lc->mem, n * SP_PAGE_SIZE, MADV_NOHUGEPAGE);
    if (before_fork)
        fill(lc->mem, n);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    lc->pid = fork();
    assert_true(lc->pid >= 0);
    if (lc->pid == 0) {
        close(go[1]);
        close(ready[0]);
        if (!before_fork)
            fill(lc->mem, n);
        if (write(ready[1], "r", 1) != 1)
            _exit(4);
        if (read(go[0], &c, 1) < 0)
            _exit(5);
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    lc->go = go[1];
}

/* Lets the child exit; returns its wait status. */
static int
live_child_stop(LiveChild *lc)
{
    int status = -1;

    assert_int_equal(write(lc->go, "g", 1), 1);
    close(lc->go);
    assert_int_equal(waitpid(lc->pid, &status, 0), lc->pid);
    munmap(lc->mem, lc->n * SP_PAGE_SIZE);
    return status;
}

/* The scan options of these tests: what-if mode (the children are never
 * registered with the real KSM, so the host's figures are left alone). */
static void
live_scan_options(SpScanOptions *sopt)
{
    sp_scan_options_init(sopt);
    sopt->interval_ms = 10;
    sopt->mode = SP_SCAN_WHAT_IF;
}

/* Adds the child's ranges to @scan, or skips the test saying why. */
static void
live_child_add(LiveChild *lc, SpScan *scan, const SpScanRange *ranges, gsize n_ranges)
{
    g_autoptr(GError) error = NULL;

    if (!sp_scan_add_pid_ranges(scan, lc->pid, ranges, n_ranges, &error)) {
        print_message("skipped: cannot read own child's memory here: %s\n", error->message);
        kill(lc->pid, SIGKILL);
        waitpid(lc->pid, NULL, 0);
        skip();
    }
}

/* 8 pairs of equal pages, 4 zero-written pages, 20 unique; 24 untouched. */
static void
fill_live_child(guint8 *mem, gsize n)
{
    (void)n;
    for (guint i = 0; i < 16; i++)
        fill_page(mem + i * SP_PAGE_SIZE, 7, i / 2);
    for (guint i = 16; i < 20; i++)
        memset(mem + i * SP_PAGE_SIZE, 0, SP_PAGE_SIZE);
    for (guint i = 20; i < 40; i++)
        fill_page(mem + i * SP_PAGE_SIZE, 8, i);
}

/*
 * A live child: 64 pages mapped, only 40 touched (8 pairs of
 * equal pages, 4 zero-written pages, the rest unique).  The scan must see
 * exactly the 40 present pages and must not fault in the other 24.
 */
static void
test_live_child(void **state)
{
    const gsize n = 64;
    LiveChild lc;

    (void)state;
    live_child_start(&lc, n, fill_live_child, FALSE);
    pid_t pid = lc.pid;
    guint8 *mem = lc.mem;

    g_autoptr(SpHost) host = sp_host_new();
    g_autoptr(GError) error = NULL;
    SpScanOptions sopt;
    live_scan_options(&sopt);
    guint64 lo = (guintptr)mem, hi = lo + n * SP_PAGE_SIZE;
    SpScanRange all = { lo, hi };
    g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
    live_child_add(&lc, scan, &all, 1);
    assert_true(sp_scan_run(scan, &error));
    const SpScanSource *src = sp_scan_get_source(scan, 0);
    assert_int_equal(src->n_vmas, 1);
    assert_int_equal(src->present_pages, 40);
    assert_int_equal(sp_scan_get_n_pages(scan), 40);
    assert_false(sp_scan_is_partial(scan));

    /* The scan did not fault in the untouched pages: a second look still
     * finds 40 (a read fault would have mapped the zero page: present). */
    g_autoptr(SpScan) again = sp_scan_new(host, &sopt);
    assert_true(sp_scan_add_pid_range(again, pid, lo, hi, &error));
    assert_true(sp_scan_run(again, &error));
    assert_int_equal(sp_scan_get_source(again, 0)->present_pages, 40);

    SpEstimateOptions eopt;
    sp_estimate_options_init(&eopt);
    g_autoptr(SpEstimate) est = sp_estimate_run(scan, &eopt, &error);
    assert_non_null(est);
    const SpModelCounters *k = sp_estimate_get_counters(est);
    assert_int_equal(k->pages_shared, 8 + 1);
    assert_int_equal(k->pages_sharing, 8 + 3);
    assert_int_equal(sp_estimate_get_saved_zero(est), 3);
    assert_int_equal(sp_estimate_get_process(est, 0)->ksm.ksm_merging_pages, 20);

    /* The same with 2-bit hashes: most lookups meet other contents first;
     * the bytes decide. */
    sopt.hash_bits = 2;
    g_autoptr(SpScan) few = sp_scan_new(host, &sopt);
    assert_true(sp_scan_add_pid_range(few, pid, lo, hi, &error));
    assert_true(sp_scan_run(few, &error));
    SpScanStats stats;
    sp_scan_get_stats(few, &stats);
    assert_true(stats.collisions > 0);
    assert_int_equal(stats.changed, 0);
    g_autoptr(SpEstimate) est2 = sp_estimate_run(few, &eopt, &error);
    assert_non_null(est2);
    k = sp_estimate_get_counters(est2);
    assert_int_equal(k->pages_shared, 8 + 1);
    assert_int_equal(k->pages_sharing, 8 + 3);

    int status = live_child_stop(&lc);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* The process is gone: adding it again is a clear error naming the pid. */
    g_autoptr(SpScan) dead = sp_scan_new(host, &sopt);
    assert_false(sp_scan_add_pid(dead, pid, &error));
    assert_true(g_error_matches(error, SP_SCAN_ERROR, SP_SCAN_ERROR_NO_PROCESS));
    g_autofree char *pidstr = g_strdup_printf("%d", (int)pid);
    assert_non_null(strstr(error->message, pidstr));
}

/*
 * Several ranges of one process (a guest with several RAM backends): the
 * union is scanned, once, in any order given; a VMA counts once.
 */
static void
fill_distinct(guint8 *mem, gsize n)
{
    for (guint i = 0; i < n; i++)
        fill_page(mem + i * SP_PAGE_SIZE, 3, i);
}

static void
test_pid_ranges(void **state)
{
    const gsize n = 64;
    LiveChild lc;

    (void)state;
    live_child_start(&lc, n, fill_distinct, FALSE);
    g_autoptr(SpHost) host = sp_host_new();
    g_autoptr(GError) error = NULL;
    SpScanOptions sopt;
    live_scan_options(&sopt);
    guint64 lo = (guintptr)lc.mem;
    /* [48, 64), [0, 16) and [8, 20) pages: the union is [0, 20) + [48, 64). */
    SpScanRange ranges[] = {
        { lo + 48 * SP_PAGE_SIZE, lo + 64 * SP_PAGE_SIZE },
        { lo, lo + 16 * SP_PAGE_SIZE },
        { lo + 8 * SP_PAGE_SIZE, lo + 20 * SP_PAGE_SIZE },
        { lo + 30 * SP_PAGE_SIZE, lo + 30 * SP_PAGE_SIZE },      /* empty */
    };
    g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
    live_child_add(&lc, scan, ranges, G_N_ELEMENTS(ranges));
    assert_true(sp_scan_run(scan, &error));
    const SpScanSource *src = sp_scan_get_source(scan, 0);
    assert_int_equal(src->n_vmas, 1);
    assert_int_equal(src->eligible_bytes, 36 * SP_PAGE_SIZE);
    assert_int_equal(src->present_pages, 36);
    assert_int_equal(sp_scan_get_n_pages(scan), 36);

    /* Nothing to scan is an error naming the pid. */
    g_autoptr(SpScan) none = sp_scan_new(host, &sopt);
    assert_false(sp_scan_add_pid_ranges(none, lc.pid, ranges + 3, 1, &error));
    assert_non_null(strstr(error->message, "no address range"));
    g_clear_error(&error);
    assert_false(sp_scan_add_pid_ranges(none, lc.pid, NULL, 0, &error));
    assert_true(g_error_matches(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID));
    live_child_stop(&lc);
}

/* pagemap bit 56: the page is mapped by this process only. */
static gboolean
page_exclusive(pid_t pid, guint64 addr)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/pagemap", (int)pid);
    guint64 e = 0;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &e, sizeof(e), (addr / SP_PAGE_SIZE) * sizeof(e)), sizeof(e));
    close(fd);
    assert_true(e & (1ULL << 63));
    return (e & (1ULL << 56)) != 0;
}

/*
 * Reading must not unshare: a child's pages still shared copy-on-write with
 * us after fork() stay shared after a scan.  (process_vm_readv pins pages,
 * and a pin on an anonymous page that is not exclusive makes the kernel copy
 * it first; KSM pages are never exclusive, so such a scan would undo KSM's
 * merges.  /proc/PID/mem does not pin.)
 */
static void
fill_eight_contents(guint8 *mem, gsize n)
{
    for (guint i = 0; i < n; i++)
        fill_page(mem + i * SP_PAGE_SIZE, 9, i % 8);
}

static void
test_scan_leaves_sharing(void **state)
{
    const gsize n = 32;
    LiveChild lc;

    (void)state;
    /* Filled before fork: every page is shared with us copy-on-write. */
    live_child_start(&lc, n, fill_eight_contents, TRUE);
    guint64 lo = (guintptr)lc.mem;
    for (guint i = 0; i < n; i++)
        assert_false(page_exclusive(lc.pid, lo + i * SP_PAGE_SIZE));

    g_autoptr(SpHost) host = sp_host_new();
    g_autoptr(GError) error = NULL;
    SpScanOptions sopt;
    live_scan_options(&sopt);
    SpScanRange all = { lo, lo + n * SP_PAGE_SIZE };
    g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
    live_child_add(&lc, scan, &all, 1);
    assert_true(sp_scan_run(scan, &error));
    assert_int_equal(sp_scan_get_n_pages(scan), n);
    /* Every page was read (twice: two passes), and each is still shared. */
    for (guint i = 0; i < n; i++) {
        if (page_exclusive(lc.pid, lo + i * SP_PAGE_SIZE))
            fail_msg("page %u of the child was copied by the scan", i);
        assert_true(sp_scan_get_flags(scan)[i] & SP_SCAN_PAGE_SHARED);
    }
    SpEstimateOptions eopt;
    sp_estimate_options_init(&eopt);
    g_autoptr(SpEstimate) est = sp_estimate_run(scan, &eopt, &error);
    assert_int_equal(sp_estimate_get_counters(est)->pages_shared, 8);
    assert_int_equal(sp_estimate_get_counters(est)->pages_sharing, n - 8);
    live_child_stop(&lc);
}

/*
 * Equal pages 600 pages apart in a live child, so in different 2 MiB reads:
 * each duplicate's representative is read again (process_vm_readv) to be
 * compared; with 6-bit hashes many comparisons find other contents.
 */
static void
fill_far(guint8 *mem, gsize n)
{
    for (guint i = 0; i < n; i++) {
        if (i < 300 || (i >= 600 && i < 900))
            fill_page(mem + i * SP_PAGE_SIZE, 7, i % 600);
        else
            fill_page(mem + i * SP_PAGE_SIZE, 8, i);
    }
}

static void
test_live_child_far(void **state)
{
    const gsize n = 1200;
    LiveChild lc;

    (void)state;
    live_child_start(&lc, n, fill_far, FALSE);
    guint8 *mem = lc.mem;

    g_autoptr(SpHost) host = sp_host_new();
    g_autoptr(GError) error = NULL;
    guint64 lo = (guintptr)mem, hi = lo + n * SP_PAGE_SIZE;
    SpEstimateOptions eopt;
    sp_estimate_options_init(&eopt);
    for (guint bits = 0; bits <= 6; bits += 6) {
        SpScanOptions sopt;
        SpScanStats stats;

        sp_scan_options_init(&sopt);
        sopt.interval_ms = 0;
        sopt.mode = SP_SCAN_WHAT_IF;
        sopt.hash_bits = bits;
        g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
        SpScanRange all = { lo, hi };
        live_child_add(&lc, scan, &all, 1);
        assert_true(sp_scan_run(scan, &error));
        assert_int_equal(sp_scan_get_n_pages(scan), n);
        sp_scan_get_stats(scan, &stats);
        assert_int_equal(stats.confirmed, 300);
        assert_int_equal(stats.changed, 0);
        if (bits == 0) {
            assert_int_equal(stats.confirm_reads, 300);
            assert_int_equal(stats.collisions, 0);
            /* two passes over 1200 pages, and the 300 read again */
            assert_int_equal(stats.pages_read, 2 * n + 300);
        } else {
            assert_true(stats.collisions > 0);
        }
        g_autoptr(SpEstimate) est = sp_estimate_run(scan, &eopt, &error);
        assert_non_null(est);
        assert_int_equal(sp_estimate_get_counters(est)->pages_shared, 300);
        assert_int_equal(sp_estimate_get_counters(est)->pages_sharing, 300);
        assert_int_equal(sp_estimate_get_counters(est)->pages_volatile, 0);
    }

    int status = live_child_stop(&lc);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * The child grows between sp_scan_add_pid_range() (which sizes the arrays
 * and the hash table from Rss: 64 pages) and sp_scan_run() (3000 pages):
 * both grow on the way, and the grouping is the same.
 */
static void
test_live_child_grows(void **state)
{
    const gsize n = 3000;
    int ready[2], go[2], grown[2];
    guint8 *mem;
    pid_t pid;
    char c;

    mem = mmap(NULL, n * SP_PAGE_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    madvise(mem, n * SP_PAGE_SIZE, MADV_NOHUGEPAGE);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(grown), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Only our end of each pipe: the child exits when the test does,
         * even a test that fails half way. */
        close(go[1]);
        close(ready[0]);
        /* pages i and i + 1500 are equal for i < 1000; the rest unique */
        for (guint i = 0; i < 64; i++)
            fill_page(mem + i * SP_PAGE_SIZE, 7, i);
        if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(4);
        for (guint i = 64; i < n; i++) {
            if (i < 1000 || (i >= 1500 && i < 2500))
                fill_page(mem + i * SP_PAGE_SIZE, 7, i % 1500);
            else
                fill_page(mem + i * SP_PAGE_SIZE, 8, i);
        }
        if (write(grown[1], "g", 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(5);
        _exit(0);
    }
    assert_int_equal(read(ready[0], &c, 1), 1);

    g_autoptr(SpHost) host = sp_host_new();
    g_autoptr(GError) error = NULL;
    guint64 lo = (guintptr)mem, hi = lo + n * SP_PAGE_SIZE;
    SpScanOptions sopt;
    SpScanStats stats;
    SpEstimateOptions eopt;

    sp_scan_options_init(&sopt);
    sopt.passes = 1;
    sopt.mode = SP_SCAN_WHAT_IF;
    g_autoptr(SpScan) scan = sp_scan_new(host, &sopt);
    if (!sp_scan_add_pid_range(scan, pid, lo, hi, &error)) {
        print_message("skipped: cannot read own child's memory here: %s\n", error->message);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        skip();
    }
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(read(grown[0], &c, 1), 1);
    assert_true(sp_scan_run(scan, &error));
    assert_int_equal(sp_scan_get_n_pages(scan), n);
    sp_scan_get_stats(scan, &stats);
    assert_int_equal(stats.confirmed, 1000);
    sp_estimate_options_init(&eopt);
    g_autoptr(SpEstimate) est = sp_estimate_run(scan, &eopt, &error);
    assert_non_null(est);
    assert_int_equal(sp_estimate_get_counters(est)->pages_shared, 1000);
    assert_int_equal(sp_estimate_get_counters(est)->pages_sharing, 1000);

    assert_int_equal(write(go[1], "g", 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    munmap(mem, n * SP_PAGE_SIZE);
}

/* ------------------------------------------------------------ the targets entry */

/* The one table of kernel profiles: by name, by release, in help texts. */
static void
test_profiles(void **state)
{
    static const struct {
        const char *release;
        const char *profile;
    } cases[] = {
        { "5.15.0-91-generic", "6.6" },     /* older than every profile: the oldest */
        { "6.6.0", "6.6" },
        { "6.10.14-amd64", "6.6" },
        { "6.11.0-rc1", "6.11" },
        { "6.11.11", "6.11" },
        { "6.12.5-amd64", "6.12" },
        { "6.18.1", "6.12" },
        { "7.0.0", "6.12" },
        { "not a release", "6.12" },        /* unreadable: a current kernel */
        { "", "6.12" },
    };
    g_autofree char *names = sp_estimate_profile_names();
    const SpEstimateProfile *kp;
    SpEstimateOptions opt;
    guint n;

    (void)state;
    kp = sp_estimate_get_profiles(&n);
    assert_int_equal(n, 3);
    assert_string_equal(names, "6.6, 6.11 or 6.12");
    for (guint i = 0; i < n; i++)
        assert_ptr_equal(sp_estimate_profile_find(kp[i].name), &kp[i]);
    assert_null(sp_estimate_profile_find("6.7"));
    assert_null(sp_estimate_profile_find(""));
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        const SpEstimateProfile *got = sp_estimate_profile_for_release(cases[i].release);
        if (!g_str_equal(got->name, cases[i].profile))
            fail_msg("release '%s': profile %s, not %s", cases[i].release, got->name,
                     cases[i].profile);
    }
    assert_string_equal(sp_estimate_profile_for_release(NULL)->name, "6.12");

    /* What each profile sets. */
    sp_estimate_options_init(&opt);
    sp_estimate_options_set_profile(&opt, sp_estimate_profile_find("6.6"));
    assert_false(opt.model.checksum_first);
    assert_false(opt.thp_zero_remap);
    sp_estimate_options_set_profile(&opt, sp_estimate_profile_find("6.11"));
    assert_true(opt.model.checksum_first);
    assert_false(opt.thp_zero_remap);
    sp_estimate_options_set_profile(&opt, sp_estimate_profile_find("6.12"));
    assert_true(opt.model.checksum_first);
    assert_true(opt.thp_zero_remap);
}

/* The host's profile comes from the running kernel's release (a fake tree). */
static void
test_profile_from_host(void **state)
{
    g_autofree char *sys = sp_test_tree_new("sysfs-6.18");
    g_autofree char *proc = g_dir_make_tmp("samepage-proc-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots(sys, proc);
    g_autoptr(GError) error = NULL;
    SpEstimateOptions opt;

    (void)state;
    g_autofree char *kernel = g_build_filename(proc, "sys", "kernel", NULL);
    assert_int_equal(g_mkdir_with_parents(kernel, 0755), 0);
    sp_test_write(proc, "sys/kernel/osrelease", "6.11.3-amd64\n");
    assert_true(sp_estimate_options_from_host(&opt, host, &error));
    assert_true(opt.model.checksum_first);
    assert_false(opt.thp_zero_remap);
    sp_test_write(proc, "sys/kernel/osrelease", "6.8.0\n");
    assert_true(sp_estimate_options_from_host(&opt, host, &error));
    assert_false(opt.model.checksum_first);
    assert_false(opt.thp_zero_remap);
    sp_test_remove_tree(sys);
    sp_test_remove_tree(proc);
}

/* The entry over two images gives what the scan and the estimate give
 * when called one after the other; the labels are the targets'. */
static void
test_targets_images(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GError) error = NULL;
    SpEstimateOptions opt;
    SpScanOptions sopt;
    SpEstimateTarget t[] = {
        { .image = f->img[0], .label = "first" },
        { .image = f->img[1] },
    };

    (void)state;
    sp_estimate_options_init(&opt);
    sp_scan_options_init(&sopt);
    sopt.interval_ms = 0;
    g_autoptr(SpEstimate) est = sp_estimate_targets(host, t, 2, &sopt, &opt, NULL, &error);
    assert_non_null(est);
    assert_defaults(est);
    assert_string_equal(sp_estimate_get_process(est, 0)->label, "first");
    assert_string_equal(sp_estimate_get_process(est, 1)->label, "image-1.raw");
    /* 5120 pages read, hashed and modelled cost some CPU; the plain
     * sp_estimate_run() does not measure it */
    assert_true(sp_estimate_get_cpu_seconds(est) > 0);
    g_autoptr(SpEstimate) plain = estimate_images(f, &opt, FALSE);
    assert_true(sp_estimate_get_cpu_seconds(plain) == 0);

    /* An image that cannot be read fails the whole, optional or not. */
    SpEstimateTarget bad[] = { { .image = f->img[0] },
                               { .image = "/nonexistent/ram.raw", .optional = TRUE } };
    assert_null(sp_estimate_targets(host, bad, 2, &sopt, &opt, NULL, &error));
    assert_true(g_error_matches(error, SP_SCAN_ERROR, SP_SCAN_ERROR_IMAGE));
    assert_non_null(strstr(error->message, "/nonexistent/ram.raw"));
    g_clear_error(&error);
    /* No targets: nothing to scan. */
    assert_null(sp_estimate_targets(host, NULL, 0, &sopt, &opt, NULL, &error));
    assert_true(g_error_matches(error, SP_SCAN_ERROR, SP_SCAN_ERROR_INVALID));
}

typedef struct {
    GMainLoop *loop;
    SpEstimate *est;
    GError *error;
    guint ticks;
} AsyncEstimate;

static void
async_estimate_done(GObject *source, GAsyncResult *res, gpointer data)
{
    AsyncEstimate *a = data;

    a->est = sp_estimate_targets_finish(res, &a->error);
    g_main_loop_quit(a->loop);
}

static gboolean
async_estimate_tick(gpointer data)
{
    ((AsyncEstimate *)data)->ticks++;
    return G_SOURCE_CONTINUE;
}

static gboolean
async_estimate_cancel(gpointer data)
{
    g_cancellable_cancel(data);
    return G_SOURCE_REMOVE;
}

/*
 * In the background, as the agent will call it: the caller's main loop
 * runs on meanwhile (a 10 ms timer ticks through the 300 ms between the
 * passes), the targets may go once the call returns (they are copied), the
 * figures are the same; a cancelled estimate ends at once.
 */
static void
test_targets_async(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", "/nonexistent");
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    SpEstimateOptions opt;
    SpScanOptions sopt;
    AsyncEstimate a = { loop, NULL, NULL, 0 };
    guint tick;
    gint64 t0;

    sp_estimate_options_init(&opt);
    sp_scan_options_init(&sopt);
    sopt.passes = 2;
    sopt.interval_ms = 300;
    t0 = g_get_monotonic_time();
    {
        g_autofree char *label = g_strdup("copied");
        SpEstimateTarget t[] = { { .image = f->img[0], .label = label },
                                 { .image = f->img[1] } };
        sp_estimate_targets_async(host, t, 2, &sopt, &opt, NULL, async_estimate_done, &a);
    }
    tick = g_timeout_add(10, async_estimate_tick, &a);
    g_main_loop_run(loop);
    g_source_remove(tick);
    assert_null(a.error);
    assert_non_null(a.est);
    assert_true(a.ticks >= 10);
    assert_defaults(a.est);
    assert_string_equal(sp_estimate_get_process(a.est, 0)->label, "copied");
    /* the worker's CPU, not the 300 ms it waited between the passes */
    assert_true(sp_estimate_get_cpu_seconds(a.est) > 0);
    double wall = (g_get_monotonic_time() - t0) / 1e6;
    assert_true(sp_estimate_get_cpu_seconds(a.est) < wall - 0.25);
    sp_estimate_free(a.est);

    /* Cancelled while it waits between passes (an hour apart). */
    AsyncEstimate c = { loop, NULL, NULL, 0 };
    SpEstimateTarget t[] = { { .image = f->img[0] } };
    sopt.interval_ms = 3600 * 1000;
    t0 = g_get_monotonic_time();
    g_timeout_add(100, async_estimate_cancel, cancel);
    sp_estimate_targets_async(host, t, 1, &sopt, &opt, cancel, async_estimate_done, &c);
    g_main_loop_run(loop);
    assert_null(c.est);
    assert_true(g_error_matches(c.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
    assert_true(g_get_monotonic_time() - t0 < 10 * G_USEC_PER_SEC);
    g_clear_error(&c.error);
}

/*
 * Processes and guests: a guest is scanned over its RAM ranges and its
 * errors name it; a guest without RAM ranges is refused; a process that
 * is gone fails the whole unless it is optional, then it is left out.
 */
static void
test_targets_processes(void **state)
{
    const gsize n = 64;
    LiveChild lc, gone;

    (void)state;
    live_child_start(&gone, 4, fill_distinct, FALSE);
    pid_t dead = gone.pid;
    live_child_stop(&gone);
    live_child_start(&lc, n, fill_live_child, FALSE);
    g_autoptr(SpHost) host = sp_host_new();
    g_autoptr(GError) error = NULL;
    SpScanOptions sopt;
    SpEstimateOptions eopt;
    live_scan_options(&sopt);
    sp_estimate_options_init(&eopt);
    guint64 lo = (guintptr)lc.mem;
    SpScanRange ram = { lo, lo + n * SP_PAGE_SIZE };
    {
        /* skips the test where our own child cannot be read */
        g_autoptr(SpScan) probe = sp_scan_new(host, &sopt);
        live_child_add(&lc, probe, &ram, 1);
    }

    SpEstimateTarget t[] = {
        { .pid = lc.pid, .guest = "web1", .label = "web1 (pid)", .ranges = &ram, .n_ranges = 1 },
        { .pid = dead, .optional = TRUE },
    };
    g_autoptr(SpEstimate) est = sp_estimate_targets(host, t, 2, &sopt, &eopt, NULL, &error);
    assert_non_null(est);
    assert_int_equal(sp_estimate_get_n_processes(est), 1);
    assert_string_equal(sp_estimate_get_process(est, 0)->label, "web1 (pid)");
    assert_int_equal(sp_estimate_get_process(est, 0)->present_pages, 40);
    assert_int_equal(sp_estimate_get_counters(est)->pages_sharing, 8 + 3);

    /* Not optional: the whole fails, naming the pid. */
    g_autofree char *pidstr = g_strdup_printf("pid %d", (int)dead);
    t[1].optional = FALSE;
    assert_null(sp_estimate_targets(host, t, 2, &sopt, &eopt, NULL, &error));
    assert_true(g_error_matches(error, SP_SCAN_ERROR, SP_SCAN_ERROR_NO_PROCESS));
    assert_non_null(strstr(error->message, pidstr));
    g_clear_error(&error);
    /* A guest's error names the guest. */
    SpEstimateTarget g = { .pid = dead, .guest = "db2", .ranges = &ram, .n_ranges = 1 };
    assert_null(sp_estimate_targets(host, &g, 1, &sopt, &eopt, NULL, &error));
    assert_true(g_str_has_prefix(error->message, "guest db2: "));
    g_clear_error(&error);
    /* A guest without RAM ranges is not scanned whole. */
    SpEstimateTarget noram = { .pid = lc.pid, .guest = "web1" };
    assert_null(sp_estimate_targets(host, &noram, 1, &sopt, &eopt, NULL, &error));
    assert_true(g_error_matches(error, SP_ESTIMATE_ERROR, SP_ESTIMATE_ERROR_INVALID));
    assert_string_equal(error->message,
                        "guest web1: no RAM backend was found in its memory map");
    live_child_stop(&lc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_images_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_zero_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_collisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_representative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thp_zero_remap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_images, setup, teardown),
        cmocka_unit_test(test_live_child),
        cmocka_unit_test(test_scan_leaves_sharing),
        cmocka_unit_test(test_pid_ranges),
        cmocka_unit_test(test_live_child_far),
        cmocka_unit_test(test_live_child_grows),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_profile_from_host),
        cmocka_unit_test_setup_teardown(test_targets_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_async, setup, teardown),
        cmocka_unit_test(test_targets_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
