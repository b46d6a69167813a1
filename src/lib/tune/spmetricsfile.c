/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmetricsfile.c: atomic replacement of node_exporter's samepage.prom
 *
 * Everything happens relative to one open descriptor of the directory
 * (openat, renameat, fstatat without following links), so the checks made
 * on the directory hold for the files written in it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "samepage/spmetricsfile.h"

G_DEFINE_QUARK(sp-metrics-file-error-quark, sp_metrics_file_error)

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Whether the directory open as @dfd is safe for us to write in. */
static gboolean
check_dir(int dfd, const char *dir, GError **error)
{
    struct stat st;
    uid_t me = geteuid();

    if (fstat(dfd, &st) < 0) {
        int e = errno;
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_IO,
                    "textfile directory %s: %s", dir, g_strerror(e));
        return FALSE;
    }
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_UNSAFE,
                    "textfile directory %s is world-writable without the sticky bit "
                    "(mode %04o): refusing to write in it", dir,
                    (unsigned)(st.st_mode & 07777));
        return FALSE;
    }
    if (st.st_uid != 0 && st.st_uid != me) {
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_UNSAFE,
                    "textfile directory %s is owned by uid %u, neither root nor us (uid %u): "
                    "refusing to write in it", dir, (unsigned)st.st_uid, (unsigned)me);
        return FALSE;
    }
    return TRUE;
}

/* Whether @name in @dfd is absent, or a regular file of ours that starts
 * with our header. */
static gboolean
check_target(int dfd, const char *path, const char *name, GError **error)
{
    static const char header[] = SP_METRICS_TEXTFILE_HEADER;
    char buf[sizeof header - 1];
    struct stat st;
    int fd = -1;
    gssize n;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        int e = errno;
        if (e == ENOENT)
            return TRUE;
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_IO,
                    "textfile %s: %s", path, g_strerror(e));
        return FALSE;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_NOT_OURS,
                    "textfile %s exists and is not a regular file (%s): not replacing it",
                    path, S_ISLNK(st.st_mode) ? "a symbolic link"
                          : S_ISDIR(st.st_mode) ? "a directory" : "a special file");
        return FALSE;
    }
    if (st.st_uid != geteuid()) {
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_NOT_OURS,
                    "textfile %s belongs to uid %u, not us: not replacing it",
                    path, (unsigned)st.st_uid);
        return FALSE;
    }
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_IO,
                    "textfile %s: %s", path, g_strerror(e));
        return FALSE;
    }
    do {
        n = read(fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    close_fd(&fd);
    if (n != (gssize)sizeof buf || memcmp(buf, header, sizeof buf) != 0) {
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_NOT_OURS,
                    "textfile %s exists but was not written by samepaged (its first line "
                    "is not our header): not replacing it", path);
        return FALSE;
    }
    return TRUE;
}

static gboolean
write_all(int fd, const char *data, gsize len)
{
    while (len > 0) {
        gssize n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}

/**
 * sp_metrics_textfile_write:
 * @path: a directory, or a file path ending in ".prom"
 * @text: the metrics (sp_metrics_render())
 *
 * Returns: TRUE when the new file is in place, renamed over the old one.
 */
gboolean
sp_metrics_textfile_write(const char *path, const char *text, GError **error)
{
    g_autofree char *dir = NULL;
    g_autofree char *name = NULL;
    g_autofree char *target = NULL;
    g_autofree char *tmp = NULL;
    int dfd = -1, fd = -1;
    gboolean ok = FALSE;
    int e;

    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        dir = g_strdup(path);
        name = g_strdup(SP_METRICS_TEXTFILE_NAME);
    } else {
        dir = g_path_get_dirname(path);
        name = g_path_get_basename(path);
        if (!g_str_has_suffix(name, ".prom") || g_str_equal(name, ".prom")) {
            g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_PATH,
                        "textfile %s: want a directory or a file name ending in .prom "
                        "(node_exporter reads only those)", path);
            return FALSE;
        }
    }
    target = g_build_filename(dir, name, NULL);

    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        e = errno;
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_PATH,
                    "textfile directory %s: %s", dir, g_strerror(e));
        return FALSE;
    }
    if (!check_dir(dfd, dir, error) || !check_target(dfd, target, name, error))
        goto out;

    /* A name node_exporter skips (not *.prom), unpredictable, created anew. */
    for (int attempt = 0; fd < 0 && attempt < 16; attempt++) {
        g_free(tmp);
        tmp = g_strdup_printf(".%s.%08x.tmp", name, g_random_int());
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        e = errno;
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_IO,
                    "textfile %s: cannot create a temporary file in %s: %s",
                    target, dir, g_strerror(e));
        goto out;
    }
    if (fchmod(fd, 0644) < 0
        || !write_all(fd, SP_METRICS_TEXTFILE_HEADER, strlen(SP_METRICS_TEXTFILE_HEADER))
        || !write_all(fd, text, strlen(text)) || fsync(fd) < 0) {
        e = errno;
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_IO,
                    "textfile %s: writing %s/%s: %s", target, dir, tmp, g_strerror(e));
        goto out_unlink;
    }
    if (close(fd) < 0) {
        e = errno;
        fd = -1;
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_IO,
                    "textfile %s: closing %s/%s: %s", target, dir, tmp, g_strerror(e));
        goto out_unlink;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, name) < 0) {
        e = errno;
        g_set_error(error, SP_METRICS_FILE_ERROR, SP_METRICS_FILE_ERROR_IO,
                    "textfile %s: renaming %s over it: %s", target, tmp, g_strerror(e));
        goto out_unlink;
    }
    (void)fsync(dfd);     /* the rename itself; a failure here loses nothing written */
    ok = TRUE;
    goto out;

out_unlink:
    unlinkat(dfd, tmp, 0);
out:
    close_fd(&fd);
    close_fd(&dfd);
    return ok;
}

/* ---------------------------------------------------------------- async */

typedef struct {
    char *path;
    char *text;
} SpTextfileJob;

static void
textfile_job_free(gpointer data)
{
    SpTextfileJob *job = data;

    g_free(job->path);
    g_free(job->text);
    g_free(job);
}

static void
textfile_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    SpTextfileJob *job = data;
    GError *error = NULL;

    (void)source;
    (void)cancellable;
    if (g_task_return_error_if_cancelled(task))
        return;
    if (sp_metrics_textfile_write(job->path, job->text, &error))
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
}

void
sp_metrics_textfile_write_async(const char *path, const char *text, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
    SpTextfileJob *job = g_new0(SpTextfileJob, 1);

    job->path = g_strdup(path);
    job->text = g_strdup(text);
    g_task_set_source_tag(task, sp_metrics_textfile_write_async);
    g_task_set_task_data(task, job, textfile_job_free);
    g_task_run_in_thread(task, textfile_thread);
}

gboolean
sp_metrics_textfile_write_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}
