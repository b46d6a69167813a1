/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spguest.h: a QEMU guest, its RAM backends and the host memory behind them
 *
 * A guest is a QEMU process with a QMP connection (through libvirt or a
 * socket of its own).  Its RAM regions are the memory backends QMP lists,
 * each mapped to the host VMA that holds it, with what the kernel says of
 * that VMA: mergeable or not, backing, THP, KSM pages, NUMA placement.
 */
#pragma once

#include <sys/types.h>
#include <glib.h>

#include "samepage/sphost.h"
#include "samepage/spmaps.h"
#include "samepage/spproc.h"
#include "samepage/spqmp.h"
#include "samepage/spscan.h"

G_BEGIN_DECLS

#define SP_GUEST_ERROR (sp_guest_error_quark())
GQuark sp_guest_error_quark(void);

typedef enum {
    SP_GUEST_ERROR_NO_PROCESS,     /* the QEMU process is gone */
    SP_GUEST_ERROR_NO_REGION,      /* a backend could not be matched to a VMA */
    SP_GUEST_ERROR_NOT_VERIFIED,   /* a merge change did not show in smaps */
    SP_GUEST_ERROR_INVALID,
} SpGuestErrorCode;

typedef enum {
    SP_BACKING_ANON_PRIVATE,       /* memory-backend-ram, share=off: KSM can merge it */
    SP_BACKING_SHARED,             /* memfd/file share=on: never eligible */
    SP_BACKING_HUGETLB,            /* hugetlbfs: never eligible */
    SP_BACKING_FILE_PRIVATE,       /* private file mapping: only COW'd pages */
} SpBacking;

const char *sp_backing_to_string(SpBacking backing);

/* /proc/PID/ksm_stat (SpKsmStat and its parser are in spproc.h) */
gboolean sp_ksm_stat_read(const SpHost *host, pid_t pid, SpKsmStat *stat, GError **error);
/* {"ksm_rmap_items", "ksm_zero_pages", "ksm_merging_pages", "ksm_process_profit"} */
json_object *sp_ksm_stat_to_json(const SpKsmStat *stat);

typedef struct {
    char *id;                      /* backend id: "pc.ram", "ram-node0" ... */
    guint64 size;
    gboolean merge;                /* QEMU's merge property */
    gboolean share;
    char *policy;                  /* NUMA policy from query-memdev */
    GArray *host_nodes;            /* guint16 */
    guint64 hva;                   /* host virtual address, 0 if not found */
    SpVma *vma;                    /* the host VMA (copy), or NULL */
    SpBacking backing;
    gboolean vma_mergeable;        /* VmFlags mg: what the kernel scans */
    GArray *node_pages;            /* guint64 per host node, from numa_maps */
} SpGuestRegion;

void sp_guest_region_free(SpGuestRegion *region);

typedef struct _SpGuest SpGuest;

SpGuest *sp_guest_new(const char *name, pid_t pid, SpQmp *qmp);
/* A bare QEMU's `-qmp unix:PATH,server=on`: the guest is named by @path, its
 * process is the socket's peer. */
SpGuest *sp_guest_open_qmp_socket(const char *path, GError **error);
void sp_guest_free(SpGuest *guest);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpGuest, sp_guest_free)

const char *sp_guest_get_name(const SpGuest *guest);
pid_t sp_guest_get_pid(const SpGuest *guest);
SpQmp *sp_guest_get_qmp(SpGuest *guest);

gboolean sp_guest_load_regions(SpGuest *guest, const SpHost *host, GError **error);
GPtrArray *sp_guest_get_regions(const SpGuest *guest);
const SpGuestRegion *sp_guest_find_region(const SpGuest *guest, const char *id);
/* The host address ranges of the RAM backends found (SpScanRange): what to
 * scan for this guest.  Empty if none was placed. */
GArray *sp_guest_get_ram_ranges(const SpGuest *guest);
/* The guest RAM as one host VMA of its own of exactly @size bytes (the only
 * backend of that size, placed): what a census of the guest's RAM covers. */
gboolean sp_guest_get_ram_vma(const SpGuest *guest, guint64 size, guint64 *start,
                              guint64 *end, GError **error);
/* Totals over the regions: RAM bytes, regions, regions the kernel scans. */
void sp_guest_get_summary(const SpGuest *guest, guint64 *ram, guint *n_regions,
                          guint *n_marked);

/* The JSON of `samepage regions --json`, one region, the whole guest (with its
 * ksm_stat), and a guest's line in `samepage list --json`. */
json_object *sp_guest_region_to_json(const SpGuestRegion *region);
json_object *sp_guest_regions_to_json(const SpGuest *guest, const SpKsmStat *stat);
json_object *sp_guest_summary_to_json(const SpGuest *guest, const SpKsmStat *stat);

/* Unmarking a guest unmerges its merged pages (ksm_stat ksm_merging_pages):
 * sp_ksm_unmerge_check() of those against the host's MemAvailable.  FALSE
 * with SpKsm's error (naming the guest) when it does not cover them, or
 * when ksm_stat cannot be read. */
gboolean sp_guest_unmerge_check(const SpGuest *guest, const SpHost *host, GError **error);
gboolean sp_guest_set_merge(SpGuest *guest, const SpHost *host, const char *region_id,
                            gboolean merge, GError **error);

G_END_DECLS
