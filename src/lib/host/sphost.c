/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sphost.c: the host context (sysfs and procfs roots)
 *
 * This is the only file that spells the production paths of sysfs, procfs,
 * /run (where libvirt keeps its QEMU pid files) and /var/log (where it
 * keeps their logs).  Tests hand the
 * library a fake tree instead.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-host"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "samepage/sphost.h"
#include "samepage/spproc.h"
#include "sphostpriv.h"


#define SP_SYSFS_ROOT "/sys"
#define SP_PROCFS_ROOT "/proc"
#define SP_RUN_ROOT "/run"
#define SP_LOG_ROOT "/var/log"

struct _SpHost {
    char *sysfs_root;
    char *procfs_root;
    char *run_root;
    char *log_root;
    SpHostWriteFunc write_func;      /* tests: a fake kernel; NULL: the file */
    gpointer write_data;
};

G_DEFINE_QUARK(sp-host-error-quark, sp_host_error)

/**
 * sp_host_new_with_roots:
 * @sysfs_root: directory that plays the part of /sys
 * @procfs_root: directory that plays the part of /proc
 *
 * Returns: (transfer full): a host context reading and writing below the
 * given roots.
 */
SpHost *
sp_host_new_with_roots(const char *sysfs_root, const char *procfs_root)
{
    SpHost *host = g_atomic_rc_box_new0(SpHost);

    host->sysfs_root = g_strdup(sysfs_root);
    host->procfs_root = g_strdup(procfs_root);
    host->run_root = g_strdup(SP_RUN_ROOT);
    host->log_root = g_strdup(SP_LOG_ROOT);
    return host;
}

/**
 * sp_host_new:
 *
 * Returns: (transfer full): the context of the running host.
 */
SpHost *
sp_host_new(void)
{
    return sp_host_new_with_roots(SP_SYSFS_ROOT, SP_PROCFS_ROOT);
}

/**
 * sp_host_new_from_env:
 *
 * Like sp_host_new(), but $SAMEPAGE_SYSFS, $SAMEPAGE_PROCFS and
 * $SAMEPAGE_RUNDIR, when set, replace the roots.  The front ends use this
 * so that tests can point the real binaries at a fake tree.
 */
SpHost *
sp_host_new_from_env(void)
{
    const char *sys = g_getenv("SAMEPAGE_SYSFS");
    const char *proc = g_getenv("SAMEPAGE_PROCFS");
    const char *run = g_getenv("SAMEPAGE_RUNDIR");
    SpHost *host = sp_host_new_with_roots(sys && *sys ? sys : SP_SYSFS_ROOT,
                                          proc && *proc ? proc : SP_PROCFS_ROOT);

    if (run && *run)
        sp_host_set_run_root(host, run);
    return host;
}

/**
 * sp_host_set_run_root:
 * @run_root: directory that plays the part of /run (libvirt's pid files)
 */
void
sp_host_set_run_root(SpHost *host, const char *run_root)
{
    g_free(host->run_root);
    host->run_root = g_strdup(run_root);
}

/**
 * sp_host_set_log_root:
 * @log_root: directory that plays the part of /var/log (libvirt's QEMU logs)
 */
void
sp_host_set_log_root(SpHost *host, const char *log_root)
{
    g_free(host->log_root);
    host->log_root = g_strdup(log_root);
}

/**
 * sp_host_ref:
 *
 * Another reference, for a worker that may outlive the caller's (an
 * SpController's gather).  The roots are set before a host is shared:
 * the setters are not for a host others hold.
 *
 * Returns: (transfer full): @host
 */
SpHost *
sp_host_ref(const SpHost *host)
{
    /* The count is the box's, beside the struct: a const host may be held. */
    return g_atomic_rc_box_acquire((gpointer)host);
}

static void
sp_host_clear(SpHost *host)
{
    g_free(host->sysfs_root);
    g_free(host->procfs_root);
    g_free(host->run_root);
    g_free(host->log_root);
}

/**
 * sp_host_free:
 *
 * Drops a reference (sp_host_new*(), sp_host_ref()); the last one frees.
 */
void
sp_host_free(SpHost *host)
{
    if (!host)
        return;
    g_atomic_rc_box_release_full(host, (GDestroyNotify)sp_host_clear);
}

const char *
sp_host_get_sysfs_root(const SpHost *host)
{
    return host->sysfs_root;
}

const char *
sp_host_get_procfs_root(const SpHost *host)
{
    return host->procfs_root;
}

static char *
sp_host_build(const char *root, const char *fmt, va_list ap)
{
    g_autofree char *rel = g_strdup_vprintf(fmt, ap);

    return g_build_filename(root, rel, NULL);
}

char *
sp_host_sysfs_path(const SpHost *host, const char *fmt, ...)
{
    va_list ap;
    char *path;

    va_start(ap, fmt);
    path = sp_host_build(host->sysfs_root, fmt, ap);
    va_end(ap);
    return path;
}

char *
sp_host_run_path(const SpHost *host, const char *fmt, ...)
{
    va_list ap;
    char *path;

    va_start(ap, fmt);
    path = sp_host_build(host->run_root, fmt, ap);
    va_end(ap);
    return path;
}

char *
sp_host_log_path(const SpHost *host, const char *fmt, ...)
{
    va_list ap;
    char *path;

    va_start(ap, fmt);
    path = sp_host_build(host->log_root, fmt, ap);
    va_end(ap);
    return path;
}

char *
sp_host_procfs_path(const SpHost *host, const char *fmt, ...)
{
    va_list ap;
    char *path;

    va_start(ap, fmt);
    path = sp_host_build(host->procfs_root, fmt, ap);
    va_end(ap);
    return path;
}

/**
 * sp_host_read_file:
 * @path: file to read (sysfs and procfs files report a size of 0, so this
 *        reads until end of file rather than trusting stat)
 * @contents: (out): the contents, NUL-terminated
 */
gboolean
sp_host_read_file(const char *path, char **contents, GError **error)
{
    g_autoptr(GError) local = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, contents, &len, &local)) {
        int code = g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
            ? SP_HOST_ERROR_NOT_FOUND : SP_HOST_ERROR_IO;
        g_set_error(error, SP_HOST_ERROR, code, "%s", local->message);
        return FALSE;
    }
    if (memchr(*contents, '\0', len)) {
        g_clear_pointer(contents, g_free);
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE,
                    "%s: unexpected NUL byte in contents", path);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_host_write_file:
 * @path: an existing sysfs-like attribute
 * @value: the text to write in a single write(2)
 *
 * The file is opened without O_CREAT: a missing attribute is an error, never
 * a new file.  O_TRUNC is what a shell redirection does; sysfs ignores it and
 * a plain file in a fake tree then holds exactly the new value.
 */
gboolean
sp_host_write_file(const char *path, const char *value, GError **error)
{
    size_t len = strlen(value);
    ssize_t n;
    int fd;

    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        g_set_error(error, SP_HOST_ERROR,
                    err == ENOENT ? SP_HOST_ERROR_NOT_FOUND : SP_HOST_ERROR_IO,
                    "cannot open %s for writing: %s", path, g_strerror(err));
        return FALSE;
    }
    do {
        n = write(fd, value, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0 || (size_t)n != len) {
        int err = n < 0 ? errno : EIO;
        close(fd);
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_IO,
                    "cannot write '%s' to %s: %s", value, path, g_strerror(err));
        return FALSE;
    }
    if (close(fd) < 0) {
        int err = errno;
        g_set_error(error, SP_HOST_ERROR, SP_HOST_ERROR_IO,
                    "cannot write '%s' to %s: %s", value, path, g_strerror(err));
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_host_mem_available:
 *
 * Returns: MemAvailable of the host's meminfo in bytes, or 0 if it cannot
 * be read or parsed (callers then assume no memory is available).
 */
guint64
sp_host_mem_available(const SpHost *host)
{
    g_autoptr(GError) error = NULL;
    guint64 bytes;

    if (!sp_proc_read_meminfo(host, "MemAvailable", &bytes, &error)) {
        g_debug("%s", error->message);
        return 0;
    }
    return bytes;
}

/**
 * sp_host_set_write_func:
 * @func: (nullable): called by sp_host_write() instead of writing the file
 *
 * For tests only (sphostpriv.h): a fake tree of plain files has none of the
 * kernel's side effects (advisor_mode resetting pages_to_scan, run=2
 * unmerging, EBUSY and EINVAL refusals); a test installs a function that
 * plays the kernel's store functions over the fake tree.
 */
void
sp_host_set_write_func(SpHost *host, SpHostWriteFunc func, gpointer user_data)
{
    host->write_func = func;
    host->write_data = user_data;
}

/**
 * sp_host_write:
 * @path: an attribute below one of @host's roots
 *
 * What the library writes to sysfs goes through here: sp_host_write_file(),
 * or the fake kernel a test installed with sp_host_set_write_func().
 */
gboolean
sp_host_write(const SpHost *host, const char *path, const char *value, GError **error)
{
    if (host->write_func)
        return host->write_func(path, value, host->write_data, error);
    return sp_host_write_file(path, value, error);
}
