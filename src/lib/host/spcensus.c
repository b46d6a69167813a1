/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcensus.c: count the KSM pages and zero-page mappings inside ranges
 *
 * Theory of operation
 *
 * 1. pagemap: one pread per range gives an entry per page (present bit,
 *    frame number).
 * 2. kpageflags: the present entries are sorted by frame and the flags are
 *    read in windows of 4,096 frames (32 KiB), one pread per window that
 *    holds a frame of ours; guest RAM is mostly in 2 MiB runs of frames, so
 *    this is a few hundred reads, not one per page.
 * 3. Counting (sp_census_count(), pure): the zero page (KPF_ZERO_PAGE) is
 *    not resident; a KSM frame (KPF_KSM) counts once in ksm_frames however
 *    many of our pages map it, and every mapping counts in ksm_pages.  Each
 *    distinct KSM frame is read once, one page through /proc/PID/mem, to
 *    tell zero-filled from other contents.  Not with process_vm_readv: it
 *    pins the pages it reads (FOLL_PIN), and a read-only pin of a KSM page
 *    makes the kernel unshare it (gup_must_unshare(): a KSM page is never
 *    exclusive), so reading would undo the very merges being counted.
 *    /proc/PID/mem takes an unpinned reference.  Reading a present page
 *    faults nothing in.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-census"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "samepage/spcensus.h"

G_DEFINE_QUARK(sp-census-error-quark, sp_census_error)

#define SP_CENSUS_PAGE 4096u
#define SP_CENSUS_KPF_WINDOW 4096u

typedef struct {
    pid_t pid;
    guint64 start;
    guint64 end;
    SpCensusRange figures;
    int mem_fd;                 /* /proc/PID/mem during a run, or -1 */
} SpCensusRangeDef;

struct _SpCensus {
    SpHost *host;
    GArray *ranges;             /* SpCensusRangeDef */
    /* During a run: */
    guint64 *addr;              /* address of each entry */
    const guint *range_of;
    guint read_failures;
    int read_errno;
    pid_t read_pid;
};

typedef struct {
    guint64 pfn;
    gsize entry;
} SpCensusFrame;

static int
sp_census_frame_cmp(gconstpointer a, gconstpointer b)
{
    const SpCensusFrame *x = a, *y = b;

    if (x->pfn != y->pfn)
        return x->pfn < y->pfn ? -1 : 1;
    return x->entry < y->entry ? -1 : (x->entry > y->entry);
}

/**
 * sp_census_count:
 * @entries: (array length=n): pagemap entries
 * @kflags: (array length=n): kpageflags of each present entry's frame
 * @range_of: (array length=n): the range of each entry, < @n_ranges
 * @is_zero: whether the KSM frame the entry maps is zero-filled
 * @ranges: (out caller-allocates) (array length=n_ranges): per range
 * @totals: (out caller-allocates): over all ranges
 *
 * Pure: classifies every entry and counts distinct KSM frames.
 */
void
sp_census_count(const guint64 *entries, const guint64 *kflags, const guint *range_of,
                gsize n, guint n_ranges, SpCensusZeroFunc is_zero, gpointer user_data,
                SpCensusRange *ranges, SpCensusTotals *totals)
{
    g_autoptr(GArray) ksm = g_array_new(FALSE, FALSE, sizeof(SpCensusFrame));

    memset(ranges, 0, n_ranges * sizeof(*ranges));
    memset(totals, 0, sizeof(*totals));
    for (gsize i = 0; i < n; i++) {
        SpCensusRange *r = &ranges[range_of[i]];
        guint64 e = entries[i];

        r->pages++;
        if (!(e & SP_PM_PRESENT)) {
            if (e & SP_PM_SWAPPED)
                r->swapped_pages++;
            continue;
        }
        if (kflags[i] & (1ULL << SP_KPF_ZERO_PAGE)) {
            r->zero_mapped_pages++;
            continue;
        }
        r->resident_pages++;
        if (kflags[i] & (1ULL << SP_KPF_THP))
            r->thp_pages++;
        if (kflags[i] & (1ULL << SP_KPF_KSM)) {
            SpCensusFrame f = { e & SP_PM_PFN_MASK, i };
            r->ksm_pages++;
            g_array_append_val(ksm, f);
        }
    }
    g_array_sort(ksm, sp_census_frame_cmp);
    for (guint i = 0; i < ksm->len;) {
        const SpCensusFrame *first = &g_array_index(ksm, SpCensusFrame, i);
        gboolean zero = is_zero ? is_zero(first->entry, user_data) : FALSE;
        guint j = i;

        totals->ksm_frames++;
        if (zero)
            totals->ksm_zero_frames++;
        for (; j < ksm->len && g_array_index(ksm, SpCensusFrame, j).pfn == first->pfn; j++) {
            if (zero)
                ranges[range_of[g_array_index(ksm, SpCensusFrame, j).entry]].ksm_zero_pages++;
        }
        i = j;
    }
    for (guint r = 0; r < n_ranges; r++) {
        totals->total.pages += ranges[r].pages;
        totals->total.resident_pages += ranges[r].resident_pages;
        totals->total.zero_mapped_pages += ranges[r].zero_mapped_pages;
        totals->total.swapped_pages += ranges[r].swapped_pages;
        totals->total.thp_pages += ranges[r].thp_pages;
        totals->total.ksm_pages += ranges[r].ksm_pages;
        totals->total.ksm_zero_pages += ranges[r].ksm_zero_pages;
    }
}

SpCensus *
sp_census_new(const SpHost *host)
{
    SpCensus *c = g_new0(SpCensus, 1);

    c->host = sp_host_new_with_roots(sp_host_get_sysfs_root(host), sp_host_get_procfs_root(host));
    c->ranges = g_array_new(FALSE, TRUE, sizeof(SpCensusRangeDef));
    return c;
}

void
sp_census_free(SpCensus *census)
{
    if (!census)
        return;
    sp_host_free(census->host);
    g_array_unref(census->ranges);
    g_free(census);
}

/**
 * sp_census_add_range:
 * @start: first byte (page aligned)
 * @end: one past the last byte
 */
guint
sp_census_add_range(SpCensus *census, pid_t pid, guint64 start, guint64 end)
{
    SpCensusRangeDef d = { pid, start & ~(guint64)(SP_CENSUS_PAGE - 1), end, { 0 }, -1 };

    g_array_append_val(census->ranges, d);
    return census->ranges->len - 1;
}

const SpCensusRange *
sp_census_get_range(const SpCensus *census, guint i)
{
    g_return_val_if_fail(i < census->ranges->len, NULL);
    return &g_array_index(census->ranges, SpCensusRangeDef, i).figures;
}

static gboolean
sp_census_pread_all(int fd, void *buf, gsize len, guint64 off, gsize *got)
{
    gsize done = 0;

    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return FALSE;
        if (r == 0)
            break;
        done += r;
    }
    *got = done;
    return TRUE;
}

static gboolean
sp_census_is_zero(gsize entry, gpointer user_data)
{
    SpCensus *c = user_data;
    SpCensusRangeDef *d = &g_array_index(c->ranges, SpCensusRangeDef, c->range_of[entry]);
    guint64 page[SP_CENSUS_PAGE / sizeof(guint64)];
    gsize got = 0;
    int e = 0;

    if (d->mem_fd < 0) {
        g_autofree char *path = sp_host_procfs_path(c->host, "%d/mem", (int)d->pid);
        d->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (d->mem_fd < 0)
        e = errno;
    else if (!sp_census_pread_all(d->mem_fd, page, sizeof(page), c->addr[entry], &got))
        e = errno;
    else if (got != sizeof(page))
        e = got == 0 ? ESRCH : EIO;
    if (e) {
        if (!c->read_failures++) {
            c->read_errno = e;
            c->read_pid = d->pid;
        }
        return FALSE;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(page); i++) {
        if (page[i])
            return FALSE;
    }
    return TRUE;
}

/**
 * sp_census_run:
 * @totals: (out caller-allocates): over all ranges; per range with
 *   sp_census_get_range()
 */
gboolean
sp_census_run(SpCensus *census, SpCensusTotals *totals, GError **error)
{
    g_autofree char *kpf_path = sp_host_procfs_path(census->host, "kpageflags");
    g_autoptr(GArray) entries = g_array_new(FALSE, FALSE, sizeof(guint64));
    g_autoptr(GArray) addrs = g_array_new(FALSE, FALSE, sizeof(guint64));
    g_autoptr(GArray) range_of = g_array_new(FALSE, FALSE, sizeof(guint));
    g_autoptr(GArray) frames = g_array_new(FALSE, FALSE, sizeof(SpCensusFrame));
    g_autofree guint64 *kflags = NULL;
    g_autofree guint64 *window = NULL;
    g_autofree SpCensusRange *figures = NULL;
    gboolean any_pfn = FALSE;
    int kfd;

    /* 1. pagemap */
    for (guint r = 0; r < census->ranges->len; r++) {
        const SpCensusRangeDef *d = &g_array_index(census->ranges, SpCensusRangeDef, r);
        g_autofree char *path = sp_host_procfs_path(census->host, "%d/pagemap", (int)d->pid);
        gsize n = (d->end - d->start) / SP_CENSUS_PAGE, got = 0, first = entries->len;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
            int e = errno;
            g_set_error(error, SP_CENSUS_ERROR,
                        e == ENOENT || e == ESRCH ? SP_CENSUS_ERROR_NO_PROCESS :
                        e == EACCES || e == EPERM ? SP_CENSUS_ERROR_ACCESS : SP_CENSUS_ERROR_IO,
                        "cannot open %s: %s", path, g_strerror(e));
            return FALSE;
        }
        g_array_set_size(entries, first + n);
        if (!sp_census_pread_all(fd, &g_array_index(entries, guint64, first), n * 8,
                                 d->start / SP_CENSUS_PAGE * 8, &got) || got != n * 8) {
            int e = errno;
            close(fd);
            g_set_error(error, SP_CENSUS_ERROR,
                        got == 0 ? SP_CENSUS_ERROR_NO_PROCESS : SP_CENSUS_ERROR_IO,
                        "cannot read %s at 0x%" G_GINT64_MODIFIER "x: %s", path, d->start,
                        got == 0 ? "the process exited or the range is unmapped" : g_strerror(e));
            return FALSE;
        }
        close(fd);
        for (gsize i = 0; i < n; i++) {
            guint64 a = d->start + (guint64)i * SP_CENSUS_PAGE;
            g_array_append_val(addrs, a);
            g_array_append_val(range_of, r);
        }
    }

    /* 2. kpageflags, by windows of frames */
    kflags = g_new0(guint64, entries->len ? entries->len : 1);
    for (gsize i = 0; i < entries->len; i++) {
        guint64 e = g_array_index(entries, guint64, i);
        if (!(e & SP_PM_PRESENT))
            continue;
        SpCensusFrame f = { e & SP_PM_PFN_MASK, i };
        any_pfn |= f.pfn != 0;
        g_array_append_val(frames, f);
    }
    if (frames->len && !any_pfn) {
        g_set_error(error, SP_CENSUS_ERROR, SP_CENSUS_ERROR_ACCESS,
                    "pagemap shows no page frame numbers: counting KSM pages needs root "
                    "(CAP_SYS_ADMIN)");
        return FALSE;
    }
    g_array_sort(frames, sp_census_frame_cmp);
    if (frames->len) {
        kfd = open(kpf_path, O_RDONLY | O_CLOEXEC);
        if (kfd < 0) {
            int e = errno;
            g_set_error(error, SP_CENSUS_ERROR,
                        e == EACCES || e == EPERM ? SP_CENSUS_ERROR_ACCESS : SP_CENSUS_ERROR_IO,
                        "cannot open %s: %s", kpf_path, g_strerror(e));
            return FALSE;
        }
        window = g_new(guint64, SP_CENSUS_KPF_WINDOW);
        for (guint i = 0; i < frames->len;) {
            guint64 base = g_array_index(frames, SpCensusFrame, i).pfn;
            gsize got = 0;

            if (!sp_census_pread_all(kfd, window, SP_CENSUS_KPF_WINDOW * 8, base * 8, &got)) {
                int e = errno;
                close(kfd);
                g_set_error(error, SP_CENSUS_ERROR, SP_CENSUS_ERROR_IO,
                            "cannot read %s: %s", kpf_path, g_strerror(e));
                return FALSE;
            }
            for (; i < frames->len; i++) {
                const SpCensusFrame *f = &g_array_index(frames, SpCensusFrame, i);
                if (f->pfn >= base + SP_CENSUS_KPF_WINDOW)
                    break;
                if ((f->pfn - base) * 8 < got)
                    kflags[f->entry] = window[f->pfn - base];
            }
        }
        close(kfd);
    }

    /* 3. count */
    figures = g_new0(SpCensusRange, census->ranges->len ? census->ranges->len : 1);
    census->addr = (guint64 *)addrs->data;
    census->range_of = (const guint *)range_of->data;
    census->read_failures = 0;
    sp_census_count((const guint64 *)entries->data, kflags, (const guint *)range_of->data,
                    entries->len, census->ranges->len, sp_census_is_zero, census,
                    figures, totals);
    census->addr = NULL;
    census->range_of = NULL;
    for (guint r = 0; r < census->ranges->len; r++) {
        SpCensusRangeDef *d = &g_array_index(census->ranges, SpCensusRangeDef, r);
        if (d->mem_fd >= 0)
            close(d->mem_fd);
        d->mem_fd = -1;
    }
    for (guint r = 0; r < census->ranges->len; r++)
        g_array_index(census->ranges, SpCensusRangeDef, r).figures = figures[r];
    /* A page unmapped meanwhile (EIO) counts as not zero-filled; a process
     * that is gone or unreadable makes the census fail. */
    if (census->read_failures && (census->read_errno == ESRCH || census->read_errno == ENOENT ||
                                  census->read_errno == EPERM || census->read_errno == EACCES)) {
        g_set_error(error, SP_CENSUS_ERROR,
                    census->read_errno == ESRCH || census->read_errno == ENOENT
                    ? SP_CENSUS_ERROR_NO_PROCESS : SP_CENSUS_ERROR_ACCESS,
                    "cannot read %u KSM page%s of pid %d: %s", census->read_failures,
                    census->read_failures == 1 ? "" : "s", (int)census->read_pid,
                    g_strerror(census->read_errno));
        return FALSE;
    }
    if (census->read_failures)
        g_debug("%u KSM pages could not be read (%s); counted as not zero-filled",
                census->read_failures, g_strerror(census->read_errno));
    return TRUE;
}
