/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spguest.c: a guest's RAM regions and the host VMAs behind them
 *
 * Theory of operation
 *
 * QEMU 7.2 does not print host addresses of RAM blocks (x-query-ramblock
 * has no HVA column before 8.0), so each backend from query-memdev is
 * placed like this:
 *  1. the HMP command "gpa2hva ADDR" names the RAM block that holds a guest
 *     physical address and gives its host address; the VMA holding that
 *     address is the backend's.  We ask for 0, then for the first address
 *     after each block found (NUMA nodes' memory follows each other), so
 *     -m alone, libvirt's pc.ram and per-node backends are all placed by
 *     QEMU's own answer;
 *  2. a backend still unplaced (a DIMM, say) gets an unclaimed VMA of exactly
 *     its size, in address order: a guess, logged with --debug.
 * A backend without a match keeps hva 0 and is shown so, never invented.
 *
 * Marking is QEMU's own: qom-set /objects/ID merge true|false makes QEMU
 * madvise the whole backend MERGEABLE or UNMERGEABLE; the change is then
 * verified in smaps (VmFlags "mg"), since only the kernel's view counts.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-guest"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "samepage/spguest.h"
#include "samepage/spksm.h"
#include "spguestpriv.h"

G_DEFINE_QUARK(sp-guest-error-quark, sp_guest_error)

struct _SpGuest {
    char *name;
    pid_t pid;
    SpQmp *qmp;
    GPtrArray *regions;            /* SpGuestRegion */
};

const char *
sp_backing_to_string(SpBacking backing)
{
    static const char *const names[] = {
        [SP_BACKING_ANON_PRIVATE] = "anonymous",
        [SP_BACKING_SHARED] = "shared",
        [SP_BACKING_HUGETLB] = "hugetlbfs",
        [SP_BACKING_FILE_PRIVATE] = "file-private",
    };
    return names[backing];
}

/* ------------------------------------------------------------- ksm_stat */

/**
 * sp_ksm_stat_read:
 * @pid: a process
 * @stat: (out): its /proc/PID/ksm_stat (sp_proc_parse_ksm_stat()); all
 *   zero, present FALSE, on a kernel without the file
 *
 * Returns: FALSE with SP_GUEST_ERROR_NO_PROCESS if @pid does not exist,
 * SP_GUEST_ERROR_INVALID if the file is malformed.
 */
gboolean
sp_ksm_stat_read(const SpHost *host, pid_t pid, SpKsmStat *stat, GError **error)
{
    g_autoptr(GError) local = NULL;

    if (!sp_proc_read_ksm_stat(host, pid, stat, &local)) {
        if (g_error_matches(local, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND)) {
            g_autofree char *dir = sp_host_procfs_path(host, "%d", (int)pid);
            if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
                g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_PROCESS,
                            "pid %d does not exist", (int)pid);
                return FALSE;
            }
            memset(stat, 0, sizeof(*stat));   /* kernel without ksm_stat */
            return TRUE;
        }
        if (g_error_matches(local, SP_HOST_ERROR, SP_HOST_ERROR_PARSE))
            g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_INVALID, "%s", local->message);
        else
            g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_ksm_stat_to_json:
 *
 * The four counters of /proc/PID/ksm_stat every kernel with the file has.
 */
json_object *
sp_ksm_stat_to_json(const SpKsmStat *k)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ksm_rmap_items", json_object_new_int64(k->ksm_rmap_items));
    json_object_object_add(o, "ksm_zero_pages", json_object_new_int64(k->ksm_zero_pages));
    json_object_object_add(o, "ksm_merging_pages", json_object_new_int64(k->ksm_merging_pages));
    json_object_object_add(o, "ksm_process_profit", json_object_new_int64(k->ksm_process_profit));
    return o;
}

/* ------------------------------------------------------------- guest */

void
sp_guest_region_free(SpGuestRegion *region)
{
    if (!region)
        return;
    g_free(region->id);
    g_free(region->policy);
    if (region->host_nodes)
        g_array_unref(region->host_nodes);
    if (region->node_pages)
        g_array_unref(region->node_pages);
    sp_vma_free(region->vma);
    g_free(region);
}

/**
 * sp_guest_new:
 * @qmp: (transfer full): the guest's monitor
 */
SpGuest *
sp_guest_new(const char *name, pid_t pid, SpQmp *qmp)
{
    SpGuest *guest = g_new0(SpGuest, 1);

    guest->name = g_strdup(name);
    guest->pid = pid;
    guest->qmp = qmp;
    guest->regions = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_region_free);
    return guest;
}

/**
 * sp_guest_open_qmp_socket:
 * @path: the QMP socket of a QEMU started without libvirt
 *
 * Connects samepage's own QMP client; the QEMU process is the socket's peer
 * (its credentials), and the guest is named by @path.
 *
 * Returns: the guest (no regions loaded yet), or NULL with SpQmp's error,
 * or SP_GUEST_ERROR_NO_PROCESS if the peer's pid cannot be told.
 */
SpGuest *
sp_guest_open_qmp_socket(const char *path, GError **error)
{
    SpQmp *qmp = sp_qmp_connect_unix(path, 0, error);
    pid_t pid;

    if (!qmp)
        return NULL;
    pid = sp_qmp_get_peer_pid(qmp);
    if (pid <= 0) {
        g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_PROCESS,
                    "%s: cannot tell which process serves this socket", path);
        sp_qmp_free(qmp);
        return NULL;
    }
    return sp_guest_new(path, pid, qmp);
}

void
sp_guest_free(SpGuest *guest)
{
    if (!guest)
        return;
    g_free(guest->name);
    if (guest->qmp)
        sp_qmp_free(guest->qmp);
    g_ptr_array_unref(guest->regions);
    g_free(guest);
}

const char *
sp_guest_get_name(const SpGuest *guest)
{
    return guest->name;
}

pid_t
sp_guest_get_pid(const SpGuest *guest)
{
    return guest->pid;
}

SpQmp *
sp_guest_get_qmp(SpGuest *guest)
{
    return guest->qmp;
}

GPtrArray *
sp_guest_get_regions(const SpGuest *guest)
{
    return guest->regions;
}

/**
 * sp_guest_get_summary:
 * @ram: (out): the regions' sizes added up, in bytes
 * @n_regions: (out): the RAM backends
 * @n_marked: (out): those whose host VMA the kernel scans (VmFlags mg)
 */
void
sp_guest_get_summary(const SpGuest *guest, guint64 *ram, guint *n_regions, guint *n_marked)
{
    *ram = 0;
    *n_regions = guest->regions->len;
    *n_marked = 0;
    for (guint i = 0; i < guest->regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(guest->regions, i);
        *ram += r->size;
        *n_marked += r->vma && r->vma_mergeable;
    }
}

/**
 * sp_guest_unmerge_check:
 *
 * The unmerge rule (sp_ksm_unmerge_check()) for unmarking @guest: its
 * ksm_merging_pages come back as copies, with the host's page size, against
 * the host's MemAvailable.
 *
 * Returns: FALSE with SP_KSM_ERROR_MEMORY, the message starting "guest
 * NAME: ", if MemAvailable does not cover them; or sp_ksm_stat_read()'s
 * error.
 */
gboolean
sp_guest_unmerge_check(const SpGuest *guest, const SpHost *host, GError **error)
{
    SpKsmStat k = { 0 };

    if (!sp_ksm_stat_read(host, guest->pid, &k, error))
        return FALSE;
    if (!sp_ksm_unmerge_check(k.ksm_merging_pages, sysconf(_SC_PAGESIZE),
                              sp_host_mem_available(host), NULL, error)) {
        g_prefix_error(error, "guest %s: ", guest->name);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_guest_region_to_json:
 *
 * What QEMU says of the backend (id, size_bytes, merge, share, policy,
 * host_nodes), then, if it was placed, its host VMA: addresses as "0x..."
 * strings, VmFlags, backing, the smaps sizes (kB there: *_kib) and the
 * pages per node;
 * "hva" is null for a backend with no host mapping found.
 */
json_object *
sp_guest_region_to_json(const SpGuestRegion *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(r->id));
    json_object_object_add(o, "size_bytes", json_object_new_int64((gint64)r->size));
    json_object_object_add(o, "merge", json_object_new_boolean(r->merge));
    json_object_object_add(o, "share", json_object_new_boolean(r->share));
    json_object_object_add(o, "policy", r->policy ? json_object_new_string(r->policy) : NULL);
    json_object *hn = json_object_new_array();
    for (guint i = 0; r->host_nodes && i < r->host_nodes->len; i++)
        json_object_array_add(hn, json_object_new_int(g_array_index(r->host_nodes, guint16, i)));
    json_object_object_add(o, "host_nodes", hn);
    if (!r->vma) {
        json_object_object_add(o, "hva", NULL);
        return o;
    }
    g_autofree char *hva = g_strdup_printf("0x%" PRIx64, r->vma->start);
    g_autofree char *end = g_strdup_printf("0x%" PRIx64, r->vma->end);
    g_autofree char *flags = g_strjoinv(" ", r->vma->vmflags);
    json_object_object_add(o, "hva", json_object_new_string(hva));
    json_object_object_add(o, "hva_end", json_object_new_string(end));
    json_object_object_add(o, "vmflags", json_object_new_string(flags));
    json_object_object_add(o, "mergeable", json_object_new_boolean(r->vma_mergeable));
    json_object_object_add(o, "backing", json_object_new_string(sp_backing_to_string(r->backing)));
    json_object_object_add(o, "rss_kib", json_object_new_int64(r->vma->rss_kb));
    json_object_object_add(o, "anon_huge_kib", json_object_new_int64(r->vma->anon_huge_kb));
    json_object_object_add(o, "ksm_kib", json_object_new_int64(r->vma->ksm_kb));
    json_object_object_add(o, "swap_kib", json_object_new_int64(r->vma->swap_kb));
    json_object_object_add(o, "locked_kib", json_object_new_int64(r->vma->locked_kb));
    json_object *np = json_object_new_array();
    for (guint i = 0; r->node_pages && i < r->node_pages->len; i++)
        json_object_array_add(np, json_object_new_int64(g_array_index(r->node_pages, guint64, i)));
    json_object_object_add(o, "node_pages", np);
    return o;
}

/**
 * sp_guest_regions_to_json:
 * @stat: the guest's ksm_stat (sp_ksm_stat_read())
 *
 * {"domain", "pid", "regions": [sp_guest_region_to_json()...], "ksm_stat"}
 */
json_object *
sp_guest_regions_to_json(const SpGuest *guest, const SpKsmStat *stat)
{
    json_object *o = json_object_new_object();
    json_object *arr = json_object_new_array();

    json_object_object_add(o, "domain", json_object_new_string(guest->name));
    json_object_object_add(o, "pid", json_object_new_int(guest->pid));
    for (guint i = 0; i < guest->regions->len; i++)
        json_object_array_add(arr, sp_guest_region_to_json(g_ptr_array_index(guest->regions, i)));
    json_object_object_add(o, "regions", arr);
    json_object_object_add(o, "ksm_stat", sp_ksm_stat_to_json(stat));
    return o;
}

/**
 * sp_guest_summary_to_json:
 * @stat: the guest's ksm_stat (sp_ksm_stat_read())
 *
 * {"domain", "pid", "ram_bytes", "regions", "regions_marked", "ksm_stat"}: the
 * counts of sp_guest_get_summary().
 */
json_object *
sp_guest_summary_to_json(const SpGuest *guest, const SpKsmStat *stat)
{
    json_object *o = json_object_new_object();
    guint64 ram;
    guint nr, nm;

    sp_guest_get_summary(guest, &ram, &nr, &nm);
    json_object_object_add(o, "domain", json_object_new_string(guest->name));
    json_object_object_add(o, "pid", json_object_new_int(guest->pid));
    json_object_object_add(o, "ram_bytes", json_object_new_int64((gint64)ram));
    json_object_object_add(o, "regions", json_object_new_int(nr));
    json_object_object_add(o, "regions_marked", json_object_new_int(nm));
    json_object_object_add(o, "ksm_stat", sp_ksm_stat_to_json(stat));
    return o;
}

GArray *
sp_guest_get_ram_ranges(const SpGuest *guest)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(SpScanRange));

    for (guint i = 0; guest->regions && i < guest->regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(guest->regions, i);
        if (!r->vma)
            continue;
        /* The backend's own part of the VMA (a VMA may be larger). */
        SpScanRange range = { r->hva ? r->hva : r->vma->start,
                              r->hva ? r->hva + r->size : r->vma->end };
        g_array_append_val(a, range);
    }
    return a;
}

const SpGuestRegion *
sp_guest_find_region(const SpGuest *guest, const char *id)
{
    for (guint i = 0; i < guest->regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(guest->regions, i);
        if (g_str_equal(r->id, id))
            return r;
    }
    return NULL;
}

static SpVma *
sp_vma_copy(const SpVma *v)
{
    SpVma *c = g_new(SpVma, 1);

    *c = *v;
    c->path = g_strdup(v->path);
    c->vmflags = g_strdupv(v->vmflags);
    return c;
}

static SpBacking
sp_guest_backing(const SpVma *vma)
{
    if (sp_vma_has_flag(vma, "ht"))
        return SP_BACKING_HUGETLB;
    if (vma->perms[3] == 's' || sp_vma_has_flag(vma, "sh"))
        return SP_BACKING_SHARED;
    if (!sp_vma_is_private_anon(vma))
        return SP_BACKING_FILE_PRIVATE;
    return SP_BACKING_ANON_PRIVATE;
}

/* numa_maps: "7f...000 default anon=1234 dirty=... N0=1000 N1=234 kernelpagesize_kB=4".
 * Read like smaps, a few records at a time: a mapping that changed while
 * it was read is printed again, and the last record is the newer. */
GArray *
sp_guest_parse_numa_maps(const char *numa_maps, guint64 start)
{
    g_autofree char *prefix = g_strdup_printf("%" PRIx64 " ", start);
    g_auto(GStrv) lines = g_strsplit(numa_maps, "\n", -1);
    GArray *pages = g_array_new(FALSE, TRUE, sizeof(guint64));
    const char *found = NULL;

    for (char **l = lines; *l; l++) {
        if (g_str_has_prefix(*l, prefix))
            found = *l;
    }
    if (found) {
        g_auto(GStrv) words = g_strsplit(found, " ", -1);
        for (char **w = words; *w; w++) {
            guint node;
            guint64 n;
            if (sscanf(*w, "N%u=%" SCNu64, &node, &n) == 2 && node < 1024) {
                if (pages->len <= node)
                    g_array_set_size(pages, node + 1);
                g_array_index(pages, guint64, node) = n;
            }
        }
    }
    return pages;
}

static const SpVma *
sp_vma_containing(GPtrArray *vmas, guint64 addr, guint *index)
{
    for (guint v = 0; v < vmas->len; v++) {
        const SpVma *vma = g_ptr_array_index(vmas, v);
        if (vma->start <= addr && addr < vma->end) {
            *index = v;
            return vma;
        }
    }
    return NULL;
}

/**
 * sp_guest_load_regions:
 *
 * Asks QEMU for its memory backends and places each one on a host VMA (see
 * the top of this file).  Replaces regions loaded before.
 */
gboolean
sp_guest_load_regions(SpGuest *guest, const SpHost *host, GError **error)
{
    g_autoptr(GPtrArray) memdevs = NULL;
    g_autoptr(GPtrArray) vmas = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *numa_path = sp_host_procfs_path(host, "%d/numa_maps", (int)guest->pid);
    g_autofree char *numa_maps = NULL;
    g_autofree gboolean *taken = NULL;
    g_autofree gint *vma_of = NULL;          /* per memdev: VMA index or -1 */
    g_autoptr(GArray) probes = g_array_new(FALSE, FALSE, sizeof(guint64));

    memdevs = sp_qmp_query_memdev(guest->qmp, error);
    if (!memdevs) {
        g_prefix_error(error, "guest %s: ", guest->name);
        return FALSE;
    }
    vmas = sp_maps_read(host, guest->pid, &local);
    if (!vmas) {
        g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_PROCESS, "guest %s: %s",
                    guest->name, local->message);
        return FALSE;
    }
    g_file_get_contents(numa_path, &numa_maps, NULL, NULL);
    taken = g_new0(gboolean, vmas->len + 1);
    vma_of = g_new(gint, memdevs->len + 1);
    for (guint i = 0; i < memdevs->len; i++)
        vma_of[i] = -1;

    /* 1. gpa2hva: probe guest address 0, then the end of each block found
     * (NUMA nodes follow each other), until nothing new turns up. */
    guint64 first = 0;
    g_array_append_val(probes, first);
    for (guint pi = 0; pi < probes->len && pi <= memdevs->len + 1; pi++) {
        guint64 gpa = g_array_index(probes, guint64, pi), hva = 0;
        g_autofree char *block = NULL;
        const SpVma *vma;
        guint vi;

        g_clear_error(&local);
        if (!sp_qmp_gpa2hva(guest->qmp, gpa, &block, &hva, &local)) {
            g_debug("guest %s: gpa2hva 0x%" PRIx64 ": %s", guest->name, gpa, local->message);
            continue;
        }
        for (guint i = 0; i < memdevs->len; i++) {
            const SpQmpMemdev *md = g_ptr_array_index(memdevs, i);
            if (vma_of[i] >= 0 || !md->id || !g_str_equal(md->id, block))
                continue;
            /* The block starts (hva - offset of gpa in it); the probes hit
             * block starts, so hva is the start of the block's memory. */
            if ((vma = sp_vma_containing(vmas, hva, &vi)) && !taken[vi]) {
                vma_of[i] = (gint)vi;
                taken[vi] = TRUE;
                guint64 next = gpa + md->size;
                g_array_append_val(probes, next);
            }
        }
    }
    /* 2. The rest by size: an unclaimed VMA of exactly the backend's size. */
    for (guint i = 0; i < memdevs->len; i++) {
        const SpQmpMemdev *md = g_ptr_array_index(memdevs, i);
        if (vma_of[i] >= 0)
            continue;
        for (guint v = 0; v < vmas->len; v++) {
            const SpVma *vma = g_ptr_array_index(vmas, v);
            if (!taken[v] && vma->end - vma->start == md->size && !sp_vma_has_flag(vma, "ht") &&
                vma->perms[0] == 'r') {
                vma_of[i] = (gint)v;
                taken[v] = TRUE;
                g_debug("guest %s: backend %s placed by size at %" PRIx64, guest->name,
                        md->id ? md->id : "?", vma->start);
                break;
            }
        }
    }

    g_ptr_array_set_size(guest->regions, 0);
    for (guint i = 0; i < memdevs->len; i++) {
        const SpQmpMemdev *md = g_ptr_array_index(memdevs, i);
        SpGuestRegion *r = g_new0(SpGuestRegion, 1);

        r->id = g_strdup(md->id ? md->id : "(unnamed)");
        r->size = md->size;
        r->merge = md->merge;
        r->share = md->has_share && md->share;
        r->policy = g_strdup(md->policy);
        r->host_nodes = md->host_nodes ? g_array_ref(md->host_nodes) : NULL;
        if (vma_of[i] >= 0) {
            const SpVma *found = g_ptr_array_index(vmas, vma_of[i]);
            r->hva = found->start;
            r->vma = sp_vma_copy(found);
            r->backing = sp_guest_backing(found);
            r->vma_mergeable = sp_vma_is_mergeable(found);
            r->node_pages = sp_guest_parse_numa_maps(numa_maps ? numa_maps : "", found->start);
        }
        g_ptr_array_add(guest->regions, r);
    }
    return TRUE;
}

/**
 * sp_guest_pick_ram_vma:
 * @regions: (element-type SpGuestRegion): as sp_guest_load_regions() left them
 * @size: the guest's RAM in bytes
 *
 * The guest RAM as one host VMA of its own: the only backend of @size bytes
 * that was placed, on a VMA of exactly that size.  What a census of the
 * guest's RAM covers, so a VMA shared with anything else, or two backends
 * that could each be it, is an error.
 */
gboolean
sp_guest_pick_ram_vma(GPtrArray *regions, guint64 size, guint64 *start, guint64 *end,
                      GError **error)
{
    const SpGuestRegion *only = NULL;
    guint n = 0;

    for (guint i = 0; i < regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(regions, i);
        if (r->vma && r->size == size) {
            only = r;
            n++;
        }
    }
    if (n == 0) {
        g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_REGION,
                    "no VMA holds the guest RAM: none of its %u memory backends of %"
                    G_GUINT64_FORMAT " MiB was placed", regions->len, size >> 20);
        return FALSE;
    }
    if (n != 1) {
        g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_REGION,
                    "%u memory backends of %" G_GUINT64_FORMAT " MiB: cannot tell which holds "
                    "guest RAM", n, size >> 20);
        return FALSE;
    }
    if (only->vma->start != only->hva || only->vma->end - only->vma->start != size) {
        g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_REGION,
                    "guest RAM at 0x%" G_GINT64_MODIFIER "x is inside the VMA 0x%"
                    G_GINT64_MODIFIER "x-0x%" G_GINT64_MODIFIER "x, not a VMA of its own of %"
                    G_GUINT64_FORMAT " MiB", only->hva, only->vma->start, only->vma->end,
                    size >> 20);
        return FALSE;
    }
    *start = only->vma->start;
    *end = only->vma->end;
    return TRUE;
}

/**
 * sp_guest_get_ram_vma:
 * @size: the guest's RAM in bytes
 *
 * After sp_guest_load_regions(): sp_guest_pick_ram_vma() of its regions.
 */
gboolean
sp_guest_get_ram_vma(const SpGuest *guest, guint64 size, guint64 *start, guint64 *end,
                     GError **error)
{
    return sp_guest_pick_ram_vma(guest->regions, size, start, end, error);
}

/**
 * sp_guest_set_merge:
 * @region_id: a backend id, or NULL for every backend
 * @merge: mark mergeable (TRUE) or not
 *
 * qom-set of the backend's merge property, then smaps must show the VMA
 * with (or without) "mg"; otherwise SP_GUEST_ERROR_NOT_VERIFIED.
 */
gboolean
sp_guest_set_merge(SpGuest *guest, const SpHost *host, const char *region_id, gboolean merge,
                   GError **error)
{
    if (guest->regions->len == 0 && !sp_guest_load_regions(guest, host, error))
        return FALSE;
    for (guint i = 0; i < guest->regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(guest->regions, i);
        g_autofree char *path = NULL;

        if (region_id && !g_str_equal(r->id, region_id))
            continue;
        path = g_strdup_printf("/objects/%s", r->id);
        if (!sp_qmp_qom_set_bool(guest->qmp, path, "merge", merge, error)) {
            g_prefix_error(error, "guest %s: ", guest->name);
            return FALSE;
        }
    }
    if (!sp_guest_load_regions(guest, host, error))
        return FALSE;
    for (guint i = 0; i < guest->regions->len; i++) {
        const SpGuestRegion *r = g_ptr_array_index(guest->regions, i);

        if (region_id && !g_str_equal(r->id, region_id))
            continue;
        if (!r->vma) {
            g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_REGION,
                        "guest %s: region %s has no host mapping to verify", guest->name, r->id);
            return FALSE;
        }
        if (r->vma_mergeable != merge) {
            /* QEMU only madvises when the property changes value, and a
             * backend made with merge=off under mem-merge=on is merge=false
             * in QOM yet mergeable in the kernel: flip it twice. */
            g_autofree char *path = g_strdup_printf("/objects/%s", r->id);
            g_autoptr(GError) flip = NULL;
            if (sp_qmp_qom_set_bool(guest->qmp, path, "merge", !merge, &flip) &&
                sp_qmp_qom_set_bool(guest->qmp, path, "merge", merge, &flip) &&
                sp_guest_load_regions(guest, host, &flip)) {
                const SpGuestRegion *again = sp_guest_find_region(guest, path + strlen("/objects/"));
                if (again && again->vma && again->vma_mergeable == merge)
                    continue;
            }
            r = sp_guest_find_region(guest, path + strlen("/objects/"));
            if (!r || !r->vma) {
                g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NO_REGION,
                            "guest %s: region %s vanished while being marked", guest->name,
                            path + strlen("/objects/"));
                return FALSE;
            }
            g_set_error(error, SP_GUEST_ERROR, SP_GUEST_ERROR_NOT_VERIFIED,
                        "guest %s: region %s: QEMU accepted merge=%s but the kernel's VMA "
                        "%" PRIx64 " %s 'mg'", guest->name, r->id, merge ? "true" : "false",
                        r->hva, merge ? "lacks" : "still has");
            return FALSE;
        }
    }
    return TRUE;
}
