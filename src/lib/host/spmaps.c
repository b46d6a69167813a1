/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmaps.c: parse /proc/PID/smaps
 *
 * The parser takes the text and trusts nothing in it: header lines must
 * have the five fixed fields, "Key: value kB" lines are read when the key is
 * known and skipped otherwise, and VmFlags closes a VMA.  Which VMAs KSM may
 * scan is decided here from VmFlags, as vma_ksm_compatible() in mm/ksm.c
 * decides from vm_flags.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-maps"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "samepage/spmaps.h"
#include "samepage/spscan.h"

G_DEFINE_QUARK(sp-maps-error-quark, sp_maps_error)

void
sp_vma_free(SpVma *vma)
{
    if (!vma)
        return;
    g_free(vma->path);
    g_strfreev(vma->vmflags);
    g_free(vma);
}

gboolean
sp_vma_has_flag(const SpVma *vma, const char *flag)
{
    return vma->vmflags && g_strv_contains((const char *const *)vma->vmflags, flag);
}

/* VM_MERGEABLE: madvise(MADV_MERGEABLE), prctl(PR_SET_MEMORY_MERGE) or QEMU's merge=on. */
gboolean
sp_vma_is_mergeable(const SpVma *vma)
{
    return sp_vma_has_flag(vma, "mg");
}

/*
 * vma_ksm_compatible(): VM_SHARED/VM_MAYSHARE (sh, ms), VM_PFNMAP (pf),
 * VM_IO (io), VM_DONTEXPAND (de), VM_HUGETLB (ht), VM_MIXEDMAP (mm) and
 * VM_DROPPABLE (dp, 6.11+) are never scanned, even when marked mergeable.
 */
gboolean
sp_vma_ksm_compatible(const SpVma *vma, const char **why)
{
    static const struct { const char *flag; const char *why; } never[] = {
        { "sh", "shared mapping" },
        { "ms", "may-share mapping" },
        { "ht", "hugetlbfs" },
        { "pf", "PFN mapping" },
        { "io", "I/O mapping" },
        { "de", "not expandable (special mapping)" },
        { "mm", "mixed map" },
        { "dp", "droppable" },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(never); i++) {
        if (sp_vma_has_flag(vma, never[i].flag)) {
            if (why)
                *why = never[i].why;
            return FALSE;
        }
    }
    if (vma->perms[3] != 'p') {
        if (why)
            *why = "shared mapping";
        return FALSE;
    }
    return TRUE;
}

/* Private anonymous: no file behind it (heap, stack, mmap(MAP_ANONYMOUS)). */
gboolean
sp_vma_is_private_anon(const SpVma *vma)
{
    return vma->perms[3] == 'p' && vma->inode == 0 &&
        (vma->path[0] == '\0' || g_str_equal(vma->path, "[heap]") ||
         g_str_equal(vma->path, "[stack]") || g_str_has_prefix(vma->path, "[anon:"));
}

static gboolean
sp_maps_parse_header(const char *line, SpVma *vma)
{
    unsigned long long start, end, offset, inode;
    unsigned int major, minor;
    char perms[5];
    int pos = 0;

    if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu%n", &start, &end, perms, &offset,
               &major, &minor, &inode, &pos) != 7)
        return FALSE;
    if (end <= start || strlen(perms) != 4)
        return FALSE;
    vma->start = start;
    vma->end = end;
    memcpy(vma->perms, perms, sizeof(vma->perms));
    vma->offset = offset;
    vma->inode = inode;
    vma->path = g_strstrip(g_strdup(line + pos));
    return TRUE;
}

static gboolean
sp_maps_is_header(const char *line)
{
    /* "start-end perms ...": hex digits then '-'; attribute lines are "Name:". */
    const char *p = line;

    while (g_ascii_isxdigit(*p))
        p++;
    return p != line && *p == '-';
}

/*
 * The kernel writes smaps a few records per read() and lets go of the
 * process's mappings in between; it resumes at the first VMA that ends
 * after the last one it printed (proc_get_vma() in fs/proc/task_mmu.c).
 * A VMA that grew, merged or moved meanwhile is printed again, starting at
 * or before addresses already printed (docs/kernel-facts.md, "smaps is
 * not a snapshot").  The later record is the newer: it replaces the
 * records it covers whole and cuts short the one it overlaps.  A record
 * that ends at or before the end of the one before cannot come from that
 * rule: FALSE.
 */
static gboolean
sp_maps_supersede(GPtrArray *vmas, const SpVma *vma)
{
    if (vmas->len == 0)
        return TRUE;
    if (vma->end <= ((SpVma *)g_ptr_array_index(vmas, vmas->len - 1))->end)
        return FALSE;
    while (vmas->len > 0) {
        SpVma *prev = g_ptr_array_index(vmas, vmas->len - 1);
        if (prev->end <= vma->start)
            break;
        if (prev->start < vma->start) {
            /* Its figures are still those of the longer range. */
            prev->end = vma->start;
            break;
        }
        g_ptr_array_remove_index(vmas, vmas->len - 1);
    }
    return TRUE;
}

/**
 * sp_maps_parse_smaps:
 * @text: the contents of /proc/PID/smaps
 *
 * A VMA printed twice because it changed while the file was read (see
 * sp_maps_supersede()) is kept as last printed.
 *
 * Returns: (transfer full) (element-type SpVma): the VMAs in address order,
 * none overlapping.
 */
GPtrArray *
sp_maps_parse_smaps(const char *text, GError **error)
{
    static const struct { const char *key; gsize off; } fields[] = {
        { "Rss:", G_STRUCT_OFFSET(SpVma, rss_kb) },
        { "Anonymous:", G_STRUCT_OFFSET(SpVma, anonymous_kb) },
        { "KSM:", G_STRUCT_OFFSET(SpVma, ksm_kb) },
        { "AnonHugePages:", G_STRUCT_OFFSET(SpVma, anon_huge_kb) },
        { "Swap:", G_STRUCT_OFFSET(SpVma, swap_kb) },
        { "Locked:", G_STRUCT_OFFSET(SpVma, locked_kb) },
    };
    g_autoptr(GPtrArray) vmas = g_ptr_array_new_with_free_func((GDestroyNotify)sp_vma_free);
    /* One copy, cut into lines in place: no allocation per line, and no
     * strstr()/strchr() over the rest of the text per line, which
     * AddressSanitizer's interceptors make quadratic (they measure the
     * whole remaining string each call). */
    g_autofree char *copy = g_strdup(text);
    char *const end = copy + strlen(copy);
    SpVma *cur = NULL;
    guint lineno = 0;

    for (char *line = copy, *next; line < end; line = next) {
        char *nl = memchr(line, '\n', (size_t)(end - line));

        next = nl ? nl + 1 : end;
        if (nl)
            *nl = '\0';
        lineno++;
        if (!*line)
            continue;
        if (sp_maps_is_header(line)) {
            g_autoptr(SpVma) vma = g_new0(SpVma, 1);
            if (!sp_maps_parse_header(line, vma)) {
                g_set_error(error, SP_MAPS_ERROR, SP_MAPS_ERROR_PARSE,
                            "line %u: malformed mapping header '%s'", lineno, line);
                return NULL;
            }
            if (!sp_maps_supersede(vmas, vma)) {
                g_set_error(error, SP_MAPS_ERROR, SP_MAPS_ERROR_PARSE,
                            "line %u: mapping %" PRIx64 "-%" PRIx64
                            " does not end after the one before", lineno, vma->start, vma->end);
                return NULL;
            }
            cur = vma;
            g_ptr_array_add(vmas, g_steal_pointer(&vma));
            continue;
        }
        if (!cur) {
            g_set_error(error, SP_MAPS_ERROR, SP_MAPS_ERROR_PARSE,
                        "line %u: attribute before any mapping header", lineno);
            return NULL;
        }
        if (g_str_has_prefix(line, "VmFlags:")) {
            g_strfreev(cur->vmflags);
            cur->vmflags = g_strsplit_set(line + strlen("VmFlags:"), " ", -1);
            /* Drop the empty words the separators leave. */
            guint j = 0;
            for (guint i = 0; cur->vmflags[i]; i++) {
                if (*cur->vmflags[i])
                    cur->vmflags[j++] = cur->vmflags[i];
                else
                    g_free(cur->vmflags[i]);
            }
            cur->vmflags[j] = NULL;
            continue;
        }
        for (gsize f = 0; f < G_N_ELEMENTS(fields); f++) {
            gsize klen = strlen(fields[f].key);
            if (strncmp(line, fields[f].key, klen) == 0) {
                unsigned long long kb;
                char unit[4] = "";
                if (sscanf(line + klen, "%llu %3s", &kb, unit) != 2 || strcmp(unit, "kB") != 0) {
                    g_set_error(error, SP_MAPS_ERROR, SP_MAPS_ERROR_PARSE,
                                "line %u: malformed '%s'", lineno, line);
                    return NULL;
                }
                G_STRUCT_MEMBER(guint64, cur, fields[f].off) = kb;
                break;
            }
        }
    }
    return g_steal_pointer(&vmas);
}

/**
 * sp_maps_read:
 * @pid: the process
 *
 * Reads and parses /proc/@pid/smaps.  A process that does not exist (or
 * exited) is SP_MAPS_ERROR_NO_PROCESS, one we may not read is _ACCESS.
 */
GPtrArray *
sp_maps_read(const SpHost *host, pid_t pid, GError **error)
{
    g_autofree char *path = sp_host_procfs_path(host, "%d/smaps", (int)pid);
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    GPtrArray *vmas;

    if (!g_file_get_contents(path, &text, NULL, &local)) {
        int code = SP_MAPS_ERROR_NO_PROCESS;
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_ACCES) ||
            g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_PERM))
            code = SP_MAPS_ERROR_ACCESS;
        if (code == SP_MAPS_ERROR_NO_PROCESS && !g_file_test(path, G_FILE_TEST_EXISTS))
            g_set_error(error, SP_MAPS_ERROR, code, "pid %d does not exist (no %s)", (int)pid, path);
        else
            g_set_error(error, SP_MAPS_ERROR, code, "pid %d: %s%s", (int)pid, local->message,
                        code == SP_MAPS_ERROR_ACCESS ? " (reading another process's memory needs root)" : "");
        return NULL;
    }
    vmas = sp_maps_parse_smaps(text, &local);
    if (!vmas) {
        g_set_error(error, SP_MAPS_ERROR, SP_MAPS_ERROR_PARSE, "%s: %s", path, local->message);
        return NULL;
    }
    return vmas;
}

static gint
sp_maps_pid_cmp(gconstpointer a, gconstpointer b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

    return x < y ? -1 : x > y;
}

/* "mg" among the VmFlags of a mapping in @text (smaps), found without
 * parsing the rest: a listing of every process stays cheap.  VmFlags
 * before any mapping header (malformed) do not count. */
static gboolean
sp_maps_text_has_mergeable(const char *text)
{
    gboolean header = FALSE;
    const char *const text_end = text + strlen(text);
    const char *l = text;

    /* memchr() up to the known end, not strchr(): see sp_maps_parse_smaps() */
    while (l < text_end) {
        const char *nl = memchr(l, '\n', (size_t)(text_end - l));
        const char *end = nl ? nl : text_end;

        if (g_str_has_prefix(l, "VmFlags:")) {
            for (const char *p = l + strlen("VmFlags:"); header && p + 2 <= end; p++) {
                if (p[-1] == ' ' && p[0] == 'm' && p[1] == 'g' &&
                    (p + 2 == end || p[2] == ' '))
                    return TRUE;
            }
        } else if (!header && sp_maps_is_header(l)) {
            header = TRUE;
        }
        l = nl ? nl + 1 : end;
    }
    return FALSE;
}

/* Every process below @host's procfs root with a VMA marked mergeable,
 * ascending; with @pages, the present pages (Rss) of its mergeable VMAs
 * that KSM may scan, parsed only for those processes. */
static GArray *
sp_maps_mergeable_walk(const SpHost *host, guint64 *pages)
{
    g_autofree char *proc = sp_host_procfs_path(host, "%s", "");
    g_autoptr(GDir) dir = g_dir_open(proc, 0, NULL);
    GArray *pids = g_array_new(FALSE, FALSE, sizeof(pid_t));
    const char *name;

    if (pages)
        *pages = 0;
    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *path = NULL;
        g_autofree char *text = NULL;
        g_autoptr(GPtrArray) vmas = NULL;
        gboolean counted = FALSE;
        guint64 kib = 0;
        gint64 pid;
        pid_t p;

        if (!g_ascii_string_to_signed(name, 10, 1, G_MAXINT32, &pid, NULL))
            continue;
        path = sp_host_procfs_path(host, "%d/smaps", (int)pid);
        /* Most processes have no mergeable VMA: only the flags are looked
         * at, and only the others parsed. */
        if (!g_file_get_contents(path, &text, NULL, NULL) || !sp_maps_text_has_mergeable(text))
            continue;
        p = (pid_t)pid;
        if (!pages) {
            g_array_append_val(pids, p);
            continue;
        }
        vmas = sp_maps_parse_smaps(text, NULL);
        for (guint i = 0; vmas && i < vmas->len; i++) {
            const SpVma *vma = g_ptr_array_index(vmas, i);

            if (!sp_vma_is_mergeable(vma) || !sp_vma_ksm_compatible(vma, NULL))
                continue;
            counted = TRUE;
            /* a hostile smaps can claim anything: saturate, never wrap */
            kib = vma->rss_kb > G_MAXUINT64 / 2 - kib ? G_MAXUINT64 / 2 : kib + vma->rss_kb;
        }
        if (counted) {
            g_array_append_val(pids, p);
            *pages = MIN(*pages + kib / (SP_PAGE_SIZE / 1024), G_MAXUINT64 / 4);
        }
    }
    g_array_sort(pids, sp_maps_pid_cmp);
    return pids;
}

/**
 * sp_maps_mergeable_pids:
 *
 * The processes KSM scans now: those with a VMA marked mergeable (VmFlags
 * "mg", wherever it stands in the list), read from each /proc/PID/smaps
 * below @host's procfs root (only the VmFlags lines are looked at).  A
 * process that exits meanwhile, or whose smaps cannot be read or has no
 * mapping header, is left out.
 *
 * Returns: (transfer full) (element-type pid_t): the pids, ascending.
 */
GArray *
sp_maps_mergeable_pids(const SpHost *host)
{
    return sp_maps_mergeable_walk(host, NULL);
}

/**
 * sp_maps_mergeable_present:
 * @pids: (out) (optional) (transfer full) (element-type pid_t): the
 *   processes with such pages, ascending
 *
 * What ksmd scans: the present pages (Rss) of the VMAs marked mergeable
 * that KSM may scan (sp_vma_ksm_compatible()), summed over every process
 * below @host's procfs root.  Only the smaps of processes with a mergeable
 * VMA are parsed.  A process that exits meanwhile, or whose smaps cannot
 * be read or parsed, counts for nothing.
 *
 * Returns: the pages (of SP_PAGE_SIZE bytes).
 */
guint64
sp_maps_mergeable_present(const SpHost *host, GArray **pids)
{
    guint64 pages = 0;
    g_autoptr(GArray) found = sp_maps_mergeable_walk(host, &pages);

    if (pids)
        *pids = g_steal_pointer(&found);
    return pages;
}
