/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spproc.h: the procfs files samepage reads, one parser each
 *
 * Every /proc text the library understands is parsed here, and only here:
 * /proc/meminfo, /proc/sys/kernel/osrelease, /proc/stat's cpu line,
 * /proc/PID/stat and /proc/PID/ksm_stat.  The parsers take the text and do
 * no I/O; the readers are thin wrappers that read the file below an
 * SpHost's procfs root and hand it to the parser.
 *
 * Errors are SpHost's (SP_HOST_ERROR): these are host files, and a reader
 * reports SP_HOST_ERROR_NOT_FOUND for a file that does not exist (a pid
 * that exited, a kernel without the file), SP_HOST_ERROR_IO for one it
 * cannot read and SP_HOST_ERROR_PARSE for text that is not what the kernel
 * writes.
 */
#pragma once

#include <sys/types.h>
#include <glib.h>

#include "samepage/sphost.h"

G_BEGIN_DECLS

/* ---------------------------------------------------------------- meminfo */

gboolean sp_proc_parse_meminfo(const char *text, const char *key, guint64 *bytes,
                               GError **error);
gboolean sp_proc_read_meminfo(const SpHost *host, const char *key, guint64 *bytes,
                              GError **error);

/* ---------------------------------------------------------------- osrelease */

char *sp_proc_parse_osrelease(const char *text, GError **error);
gboolean sp_proc_release_version(const char *release, guint *major, guint *minor);
char *sp_proc_read_osrelease(const SpHost *host, GError **error);

/* ---------------------------------------------------------------- /proc/stat */

gboolean sp_proc_parse_cpu_stat(const char *text, guint64 *busy, guint64 *total,
                                GError **error);
gboolean sp_proc_read_cpu_stat(const SpHost *host, guint64 *busy, guint64 *total,
                               GError **error);

/* ---------------------------------------------------------------- /proc/PID/stat */

typedef struct {
    pid_t pid;                     /* field 1 */
    char *comm;                    /* field 2, without its parentheses; raw bytes */
    char state;                    /* field 3: R S D Z X ... */
    pid_t ppid;                    /* field 4 */
    guint64 utime;                 /* field 14, clock ticks */
    guint64 stime;                 /* field 15, clock ticks */
    guint64 starttime;             /* field 22, clock ticks since boot */
} SpProcStat;

void sp_proc_stat_clear(SpProcStat *st);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SpProcStat, sp_proc_stat_clear)

gboolean sp_proc_parse_stat(const char *text, SpProcStat *st, GError **error);
gboolean sp_proc_read_stat(const SpHost *host, pid_t pid, SpProcStat *st, GError **error);
pid_t sp_proc_find_ksmd(const SpHost *host);

/* ---------------------------------------------------------------- /proc/PID/ksm_stat */

typedef struct {
    gboolean present;              /* the file exists (6.1+) */
    gint64 ksm_rmap_items;         /* 0 when the line is absent */
    gint64 ksm_zero_pages;         /* -1: not shown by this kernel */
    gint64 ksm_merging_pages;      /* 0 when the line is absent */
    gint64 ksm_process_profit;     /* 0 when the line is absent */
    int ksm_merge_any;             /* -1 unknown, 0 no, 1 yes */
    int ksm_mergeable;
} SpKsmStat;

gboolean sp_proc_parse_ksm_stat(const char *text, SpKsmStat *stat, GError **error);
gboolean sp_proc_read_ksm_stat(const SpHost *host, pid_t pid, SpKsmStat *stat,
                               GError **error);

/* ---------------------------------------------------------------- /proc/pressure/memory */

/* One line of a PSI file: "some avg10=0.12 avg60=0.05 avg300=0.01 total=1234". */
typedef struct {
    double avg10;                  /* % of the last 10 s some task stalled on memory */
    double avg60;
    double avg300;
    guint64 total_us;              /* stalled time since boot, microseconds */
} SpProcPressure;

gboolean sp_proc_parse_pressure(const char *text, const char *kind, SpProcPressure *psi,
                                GError **error);
gboolean sp_proc_read_memory_pressure(const SpHost *host, SpProcPressure *some,
                                      GError **error);

/* Several fields of /proc/meminfo from one read: @keys NULL-terminated,
 * @bytes one value per key. */
gboolean sp_proc_read_meminfo_keys(const SpHost *host, const char *const *keys,
                                   guint64 *bytes, GError **error);

G_END_DECLS
