/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dupmem.c: a workload whose memory duplication is known exactly
 *
 * Theory of operation
 *
 * dupmem maps one private anonymous area of --pages pages and fills it in
 * blocks, laid out in the --order given (default cross,groups,zero,volatile,
 * unique):
 *
 *   cross     page i has content derived from (seed, i) only, so it equals
 *             page i of the cross block of every dupmem started with the same
 *             --seed, and nothing else;
 *   groups    --groups N groups of --group-size K equal pages; the content
 *             is derived from (seed, instance, group), so a group's pages are
 *             equal to each other and to nothing else, in no other process;
 *   zero      pages written with zeros: present anonymous pages, not the
 *             shared zero page that an untouched page reads as;
 *   volatile  pages that a thread rewrites (a counter in the second word)
 *             every --volatile-usec microseconds, so KSM sees a different
 *             checksum on every visit;
 *   unique    the rest, derived from (seed, instance, index).
 *
 * Every non-zero page starts with a 64-bit tag (kind, instance, index) that
 * makes it unique within its kind and instance; the rest of the page is a
 * splitmix64 stream seeded from (seed, tag), so pages are never mostly zero
 * and two different seeds give different pages.  Only the tag guarantees
 * that unrelated pages differ.
 *
 * Without --mergeable the area is never registered with KSM; with it, the
 * whole area gets MADV_MERGEABLE after it has been written.  --nohuge asks
 * for MADV_NOHUGEPAGE and --huge for MADV_HUGEPAGE, both before the first
 * write; by default THP is left to the system's policy.  The area is aligned
 * to 2 MiB so THP, when used, covers the same pages on every run.
 *
 * Once every page is written and advised, dupmem prints
 * "dupmem: pid=P addr=0x... pages=N", writes its pid to --ready-file (by
 * rename, so a reader never sees a partial file) and waits for SIGTERM or
 * SIGINT; then it exits 0.  It never exits on its own.
 *
 * --write-on-usr1 stands for a guest that boots: the area is advised
 * (registered with KSM, under --mergeable) before any page is written,
 * dupmem announces itself ready with no page present, and writes the
 * blocks when SIGUSR1 comes; then it writes its pid to --ready-file with
 * ".written" appended.  The process stays the same: only its present
 * memory grows.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#define SP_DUPMEM_ALIGN ((gsize) 2 << 20)

typedef enum {
    SP_DUPMEM_CROSS,
    SP_DUPMEM_GROUPS,
    SP_DUPMEM_ZERO,
    SP_DUPMEM_VOLATILE,
    SP_DUPMEM_UNIQUE,
    SP_DUPMEM_N_KINDS,
} SpDupmemKind;

static const char *const sp_dupmem_kind_names[SP_DUPMEM_N_KINDS] = {
    [SP_DUPMEM_CROSS] = "cross",
    [SP_DUPMEM_GROUPS] = "groups",
    [SP_DUPMEM_ZERO] = "zero",
    [SP_DUPMEM_VOLATILE] = "volatile",
    [SP_DUPMEM_UNIQUE] = "unique",
};

typedef struct {
    gint64 pages;
    gint64 cross;
    gint64 groups;
    gint64 group_size;
    gint64 zero;
    gint64 volatile_pages;
    gint64 volatile_usec;
    gint64 instance;
    guint64 seed;
    gboolean mergeable;
    gboolean nohuge;
    gboolean huge;
    gboolean write_on_usr1;
    char *ready_file;
    SpDupmemKind order[SP_DUPMEM_N_KINDS];

    gsize page_size;
    guint8 *area;
    gsize area_len;
    void *map;              /* what mmap returned, for munmap */
    gsize map_len;
    gint64 count[SP_DUPMEM_N_KINDS];  /* pages per block */
    gint64 start[SP_DUPMEM_N_KINDS];  /* first page of each block */
    gint stop;              /* atomic: tells the volatile thread to end */
} SpDupmem;

static guint64
sp_splitmix64(guint64 *state)
{
    guint64 z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*
 * sp_dupmem_tag:
 * The first word of a page: kind in bits 56-63, instance in 32-55 (0 for the
 * cross block, which must not depend on it), index in 0-31.
 */
static guint64
sp_dupmem_tag(SpDupmemKind kind, guint64 instance, guint64 index)
{
    return ((guint64) (kind + 1) << 56) | (instance << 32) | index;
}

static void
sp_dupmem_fill(guint8 *page, gsize page_size, guint64 seed, guint64 tag)
{
    guint64 *w = (guint64 *) page;
    guint64 state = seed ^ (tag * 0xd6e8feb86659fd93ULL);

    w[0] = tag;
    for (gsize i = 1; i < page_size / sizeof(guint64); i++)
        w[i] = sp_splitmix64(&state);
}

static gboolean
sp_dupmem_parse_order(const char *text, SpDupmemKind *order, GError **error)
{
    g_auto(GStrv) names = g_strsplit(text, ",", -1);
    gboolean seen[SP_DUPMEM_N_KINDS] = { FALSE };

    if (g_strv_length(names) != SP_DUPMEM_N_KINDS) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--order '%s' must name each of cross,groups,zero,volatile,unique once",
                    text);
        return FALSE;
    }
    for (guint i = 0; i < SP_DUPMEM_N_KINDS; i++) {
        guint k;

        for (k = 0; k < SP_DUPMEM_N_KINDS; k++) {
            if (g_str_equal(names[i], sp_dupmem_kind_names[k]))
                break;
        }
        if (k == SP_DUPMEM_N_KINDS || seen[k]) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "--order '%s': '%s' is unknown or repeated", text, names[i]);
            return FALSE;
        }
        seen[k] = TRUE;
        order[i] = k;
    }
    return TRUE;
}

static gboolean
sp_dupmem_parse(SpDupmem *dm, int *argc, char ***argv, GError **error)
{
    g_autofree char *order = NULL;
    g_autofree char *seed = NULL;
    gint64 fixed;
    const GOptionEntry entries[] = {
        { "pages", 0, 0, G_OPTION_ARG_INT64, &dm->pages,
          "total pages of the mergeable area (default 25600)", "N" },
        { "cross", 0, 0, G_OPTION_ARG_INT64, &dm->cross,
          "pages equal to the same pages of every instance with the same seed", "N" },
        { "groups", 0, 0, G_OPTION_ARG_INT64, &dm->groups,
          "groups of equal pages, private to this instance", "N" },
        { "group-size", 0, 0, G_OPTION_ARG_INT64, &dm->group_size,
          "pages per group (default 4)", "K" },
        { "zero", 0, 0, G_OPTION_ARG_INT64, &dm->zero,
          "pages written with zeros", "N" },
        { "volatile", 0, 0, G_OPTION_ARG_INT64, &dm->volatile_pages,
          "pages rewritten continuously", "N" },
        { "volatile-usec", 0, 0, G_OPTION_ARG_INT64, &dm->volatile_usec,
          "pause between two rewrites of the volatile pages (default 1000)", "US" },
        { "instance", 0, 0, G_OPTION_ARG_INT64, &dm->instance,
          "this instance's id, 0 to 16777215 (default 0)", "ID" },
        { "seed", 0, 0, G_OPTION_ARG_STRING, &seed,
          "seed of every page's contents (default 1)", "S" },
        { "mergeable", 0, 0, G_OPTION_ARG_NONE, &dm->mergeable,
          "madvise(MADV_MERGEABLE) the area", NULL },
        { "nohuge", 0, 0, G_OPTION_ARG_NONE, &dm->nohuge,
          "madvise(MADV_NOHUGEPAGE) the area", NULL },
        { "huge", 0, 0, G_OPTION_ARG_NONE, &dm->huge,
          "madvise(MADV_HUGEPAGE) the area", NULL },
        { "write-on-usr1", 0, 0, G_OPTION_ARG_NONE, &dm->write_on_usr1,
          "advise the area first, write its pages only on SIGUSR1", NULL },
        { "ready-file", 0, 0, G_OPTION_ARG_FILENAME, &dm->ready_file,
          "write the pid here once the area is ready", "PATH" },
        { "order", 0, 0, G_OPTION_ARG_STRING, &order,
          "layout of the blocks (default cross,groups,zero,volatile,unique)", "LIST" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("- keep memory with designed duplication until SIGTERM");

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, argc, argv, error))
        return FALSE;
    if (*argc > 1) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    "unexpected argument '%s'", (*argv)[1]);
        return FALSE;
    }
    if (seed && !g_ascii_string_to_unsigned(seed, 10, 0, G_MAXUINT64, &dm->seed, error)) {
        g_prefix_error(error, "--seed: ");
        return FALSE;
    }
    if (!sp_dupmem_parse_order(order ? order : "cross,groups,zero,volatile,unique",
                               dm->order, error))
        return FALSE;
    if (dm->nohuge && dm->huge) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--nohuge and --huge exclude each other");
        return FALSE;
    }
    if (dm->pages < 1 || dm->pages > G_MAXUINT32) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--pages %" G_GINT64_FORMAT " is out of range 1..%u",
                    dm->pages, G_MAXUINT32);
        return FALSE;
    }
    if (dm->cross < 0 || dm->groups < 0 || dm->group_size < 1 || dm->zero < 0 ||
        dm->volatile_pages < 0 || dm->volatile_usec < 0 ||
        dm->instance < 0 || dm->instance > 0xffffff) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "a count is negative, --group-size is below 1 or --instance "
                    "%" G_GINT64_FORMAT " is out of range 0..16777215", dm->instance);
        return FALSE;
    }
    /* Every term is at most --pages (< 2^32), so the sum cannot overflow. */
    if (dm->groups > 0 && dm->group_size > dm->pages / dm->groups)
        fixed = dm->pages + 1;
    else
        fixed = dm->cross + dm->groups * dm->group_size + dm->zero + dm->volatile_pages;
    if (dm->cross > dm->pages || dm->zero > dm->pages || dm->volatile_pages > dm->pages ||
        fixed > dm->pages) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "cross + groups * group-size + zero + volatile exceeds --pages %"
                    G_GINT64_FORMAT, dm->pages);
        return FALSE;
    }
    dm->count[SP_DUPMEM_CROSS] = dm->cross;
    dm->count[SP_DUPMEM_GROUPS] = dm->groups * dm->group_size;
    dm->count[SP_DUPMEM_ZERO] = dm->zero;
    dm->count[SP_DUPMEM_VOLATILE] = dm->volatile_pages;
    dm->count[SP_DUPMEM_UNIQUE] = dm->pages - fixed;
    return TRUE;
}

static gboolean
sp_dupmem_map(SpDupmem *dm, GError **error)
{
    guint8 *p;

    dm->area_len = (gsize) dm->pages * dm->page_size;
    dm->map_len = dm->area_len + SP_DUPMEM_ALIGN;
    dm->map = mmap(NULL, dm->map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (dm->map == MAP_FAILED) {
        dm->map = NULL;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot map %zu bytes: %s", dm->map_len, g_strerror(errno));
        return FALSE;
    }
    p = dm->map;
    dm->area = (guint8 *) (((guintptr) p + SP_DUPMEM_ALIGN - 1) & ~(SP_DUPMEM_ALIGN - 1));

    if (dm->nohuge && madvise(dm->area, dm->area_len, MADV_NOHUGEPAGE) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "madvise(MADV_NOHUGEPAGE) of %zu bytes: %s", dm->area_len,
                    g_strerror(errno));
        return FALSE;
    }
    if (dm->huge && madvise(dm->area, dm->area_len, MADV_HUGEPAGE) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "madvise(MADV_HUGEPAGE) of %zu bytes: %s", dm->area_len,
                    g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

static guint8 *
sp_dupmem_page(const SpDupmem *dm, SpDupmemKind kind, gint64 index)
{
    return dm->area + (gsize) (dm->start[kind] + index) * dm->page_size;
}

static void
sp_dupmem_write(SpDupmem *dm)
{
    gint64 next = 0;
    guint64 inst = (guint64) dm->instance;

    for (guint i = 0; i < SP_DUPMEM_N_KINDS; i++) {
        dm->start[dm->order[i]] = next;
        next += dm->count[dm->order[i]];
    }

    for (gint64 i = 0; i < dm->count[SP_DUPMEM_CROSS]; i++)
        sp_dupmem_fill(sp_dupmem_page(dm, SP_DUPMEM_CROSS, i), dm->page_size, dm->seed,
                       sp_dupmem_tag(SP_DUPMEM_CROSS, 0, (guint64) i));
    for (gint64 i = 0; i < dm->count[SP_DUPMEM_GROUPS]; i++)
        sp_dupmem_fill(sp_dupmem_page(dm, SP_DUPMEM_GROUPS, i), dm->page_size, dm->seed,
                       sp_dupmem_tag(SP_DUPMEM_GROUPS, inst, (guint64) (i / dm->group_size)));
    for (gint64 i = 0; i < dm->count[SP_DUPMEM_ZERO]; i++) {
        /* A write fault, so the page is a present anonymous page. */
        volatile guint8 *p = sp_dupmem_page(dm, SP_DUPMEM_ZERO, i);

        p[0] = 1;
        memset(sp_dupmem_page(dm, SP_DUPMEM_ZERO, i), 0, dm->page_size);
    }
    for (gint64 i = 0; i < dm->count[SP_DUPMEM_VOLATILE]; i++)
        sp_dupmem_fill(sp_dupmem_page(dm, SP_DUPMEM_VOLATILE, i), dm->page_size, dm->seed,
                       sp_dupmem_tag(SP_DUPMEM_VOLATILE, inst, (guint64) i));
    for (gint64 i = 0; i < dm->count[SP_DUPMEM_UNIQUE]; i++)
        sp_dupmem_fill(sp_dupmem_page(dm, SP_DUPMEM_UNIQUE, i), dm->page_size, dm->seed,
                       sp_dupmem_tag(SP_DUPMEM_UNIQUE, inst, (guint64) i));
}

/*
 * sp_dupmem_volatile_thread:
 * Rewrites the second word of every volatile page with a new counter value,
 * then pauses.  ksmd visits a page at most once per full scan, and a full
 * scan takes far longer than the pause, so the checksum differs at every
 * visit; the pause keeps the thread from taking a CPU away from ksmd.
 */
static gpointer
sp_dupmem_volatile_thread(gpointer data)
{
    SpDupmem *dm = data;
    guint64 counter = 0;

    while (!g_atomic_int_get(&dm->stop)) {
        counter++;
        for (gint64 i = 0; i < dm->count[SP_DUPMEM_VOLATILE]; i++) {
            volatile guint64 *w = (volatile guint64 *) sp_dupmem_page(dm, SP_DUPMEM_VOLATILE, i);

            w[1] = counter;
        }
        if (dm->volatile_usec > 0)
            g_usleep((gulong) dm->volatile_usec);
    }
    return NULL;
}

static gboolean
sp_dupmem_write_ready_file(const char *path, GError **error)
{
    g_autofree char *tmp = g_strdup_printf("%s.tmp", path);
    g_autofree char *text = g_strdup_printf("%ld\n", (long) getpid());

    if (!g_file_set_contents(tmp, text, -1, error))
        return FALSE;
    if (g_rename(tmp, path) < 0) {
        int saved = errno;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
                    "cannot rename %s to %s: %s", tmp, path, g_strerror(saved));
        g_unlink(tmp);
        return FALSE;
    }
    return TRUE;
}

/*
 * sp_dupmem_run:
 * Maps and writes the area, starts the volatile thread (into @thread, which
 * the caller joins), announces readiness and waits for SIGTERM or SIGINT.
 */
static gboolean
sp_dupmem_run(SpDupmem *dm, const sigset_t *sigs, GThread **thread, GError **error)
{
    gboolean written = !dm->write_on_usr1;
    int sig = 0;

    if (!sp_dupmem_map(dm, error))
        return FALSE;
    if (written)
        sp_dupmem_write(dm);
    if (dm->mergeable && madvise(dm->area, dm->area_len, MADV_MERGEABLE) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "madvise(MADV_MERGEABLE) of %zu bytes: %s", dm->area_len,
                    g_strerror(errno));
        return FALSE;
    }
    if (written && dm->count[SP_DUPMEM_VOLATILE] > 0)
        *thread = g_thread_new("dupmem-volatile", sp_dupmem_volatile_thread, dm);

    printf("dupmem: pid=%ld addr=%p pages=%" G_GINT64_FORMAT "%s\n",
           (long) getpid(), (void *) dm->area, dm->pages, written ? "" : " (not written yet)");
    fflush(stdout);
    if (dm->ready_file && !sp_dupmem_write_ready_file(dm->ready_file, error))
        return FALSE;

    while (sig != SIGTERM && sig != SIGINT) {
        if (sigwait(sigs, &sig) != 0)
            sig = 0;
        if (sig == SIGUSR1 && !written) {
            g_autofree char *path = NULL;

            sp_dupmem_write(dm);
            written = TRUE;
            if (dm->count[SP_DUPMEM_VOLATILE] > 0)
                *thread = g_thread_new("dupmem-volatile", sp_dupmem_volatile_thread, dm);
            printf("dupmem: pid=%ld: %" G_GINT64_FORMAT " pages written\n", (long) getpid(),
                   dm->pages);
            fflush(stdout);
            path = dm->ready_file ? g_strdup_printf("%s.written", dm->ready_file) : NULL;
            if (path && !sp_dupmem_write_ready_file(path, error))
                return FALSE;
        }
    }
    return TRUE;
}

int
main(int argc, char **argv)
{
    SpDupmem dm = {
        .pages = 25600,
        .group_size = 4,
        .volatile_usec = 1000,
        .seed = 1,
    };
    g_autoptr(GError) error = NULL;
    GThread *thread = NULL;
    sigset_t sigs;
    long ps;
    int rc = 0;

    /*
     * A non-interactive shell starts background jobs with SIGINT ignored;
     * restore the default, then block both so that only sigwait() sees them
     * (threads inherit the mask).
     */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);      /* --write-on-usr1; otherwise ignored */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    ps = sysconf(_SC_PAGESIZE);
    dm.page_size = ps > 0 ? (gsize) ps : 4096;

    if (!sp_dupmem_parse(&dm, &argc, &argv, &error)) {
        fprintf(stderr, "dupmem: error: %s\n", error->message);
        rc = 2;
    } else if (!sp_dupmem_run(&dm, &sigs, &thread, &error)) {
        fprintf(stderr, "dupmem: error: %s\n", error->message);
        rc = 1;
    }

    if (thread) {
        g_atomic_int_set(&dm.stop, 1);
        g_thread_join(thread);
    }
    if (dm.map)
        munmap(dm.map, dm.map_len);
    g_free(dm.ready_file);
    return rc;
}
