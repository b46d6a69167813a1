/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sphost.h: the host context
 *
 * Every access to /sys, /proc, /run and /var/log goes through an SpHost,
 * which carries their roots: "/sys", "/proc", "/run" and "/var/log" in production,
 * directories of a fake tree in tests.  The library keeps no other global state.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SP_HOST_ERROR (sp_host_error_quark())
GQuark sp_host_error_quark(void);

typedef enum {
    SP_HOST_ERROR_IO,          /* open/read/write failed (errno in message) */
    SP_HOST_ERROR_NOT_FOUND,   /* the file does not exist */
    SP_HOST_ERROR_PARSE,       /* the contents are not what was expected */
} SpHostErrorCode;

typedef struct _SpHost SpHost;

SpHost *sp_host_new(void);
SpHost *sp_host_new_with_roots(const char *sysfs_root, const char *procfs_root);
SpHost *sp_host_new_from_env(void);
SpHost *sp_host_ref(const SpHost *host);
void sp_host_free(SpHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpHost, sp_host_free)

const char *sp_host_get_sysfs_root(const SpHost *host);
const char *sp_host_get_procfs_root(const SpHost *host);
void sp_host_set_run_root(SpHost *host, const char *run_root);
void sp_host_set_log_root(SpHost *host, const char *log_root);

char *sp_host_sysfs_path(const SpHost *host, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
char *sp_host_procfs_path(const SpHost *host, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
char *sp_host_run_path(const SpHost *host, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
char *sp_host_log_path(const SpHost *host, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

gboolean sp_host_read_file(const char *path, char **contents, GError **error);
gboolean sp_host_write_file(const char *path, const char *value, GError **error);
gboolean sp_host_write(const SpHost *host, const char *path, const char *value, GError **error);

/* MemAvailable in bytes (spproc.h parses it), 0 if unknown. */
guint64 sp_host_mem_available(const SpHost *host);

G_END_DECLS
