/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmaps.h: a process's VMAs as /proc/PID/smaps describes them
 */
#pragma once

#include <sys/types.h>
#include <glib.h>

#include "samepage/sphost.h"

G_BEGIN_DECLS

#define SP_MAPS_ERROR (sp_maps_error_quark())
GQuark sp_maps_error_quark(void);

typedef enum {
    SP_MAPS_ERROR_NO_PROCESS,   /* the pid does not exist (or exited) */
    SP_MAPS_ERROR_ACCESS,       /* not allowed to read it */
    SP_MAPS_ERROR_PARSE,        /* smaps text is malformed */
} SpMapsErrorCode;

typedef struct {
    guint64 start;              /* first byte */
    guint64 end;                /* one past the last byte */
    char perms[5];              /* "rw-p" */
    guint64 offset;
    guint64 inode;
    char *path;                 /* "" for anonymous, "[heap]", a file ... */
    char **vmflags;             /* VmFlags two-letter codes */
    guint64 rss_kb;
    guint64 anonymous_kb;
    guint64 ksm_kb;             /* KSM: line (6.6+), 0 when absent */
    guint64 anon_huge_kb;       /* AnonHugePages: */
    guint64 swap_kb;
    guint64 locked_kb;
} SpVma;

void sp_vma_free(SpVma *vma);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpVma, sp_vma_free)

gboolean sp_vma_has_flag(const SpVma *vma, const char *flag);
gboolean sp_vma_is_mergeable(const SpVma *vma);
gboolean sp_vma_ksm_compatible(const SpVma *vma, const char **why);
gboolean sp_vma_is_private_anon(const SpVma *vma);

GPtrArray *sp_maps_parse_smaps(const char *text, GError **error);
GPtrArray *sp_maps_read(const SpHost *host, pid_t pid, GError **error);
GArray *sp_maps_mergeable_pids(const SpHost *host);
guint64 sp_maps_mergeable_present(const SpHost *host, GArray **pids);

G_END_DECLS
