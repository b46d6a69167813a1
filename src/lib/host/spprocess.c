/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spprocess.c: a process held by a pidfd
 *
 * pidfd_open(2) and pidfd_send_signal(2) (Linux 5.3 and 5.1) through
 * syscall(2): glibc 2.36 has wrappers, older ones do not.  A pidfd becomes
 * readable (poll) when its process exits; the pid cannot be reused before
 * the process is reaped, so "not readable" after a check through /proc
 * means the check was of this process.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-process"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "samepage/spprocess.h"

G_DEFINE_QUARK(sp-process-error-quark, sp_process_error)

struct _SpProcess {
    pid_t pid;
    int fd;
};

/**
 * sp_process_open:
 * @pid: a process of this host's pid namespace
 *
 * Returns: (transfer full): the process, held by a pidfd; NULL with
 * SP_PROCESS_ERROR_GONE if there is no process @pid.
 */
SpProcess *
sp_process_open(pid_t pid, GError **error)
{
    SpProcess *proc;
    int fd;

    if (pid <= 0) {
        g_set_error(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_FAILED, "%d is not a pid", (int)pid);
        return NULL;
    }
    fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) {
        int err = errno;
        g_set_error(error, SP_PROCESS_ERROR,
                    err == ESRCH ? SP_PROCESS_ERROR_GONE : SP_PROCESS_ERROR_FAILED,
                    "pidfd_open of pid %d: %s", (int)pid, g_strerror(err));
        return NULL;
    }
    proc = g_new0(SpProcess, 1);
    proc->pid = pid;
    proc->fd = fd;
    return proc;
}

void
sp_process_free(SpProcess *proc)
{
    if (!proc)
        return;
    close(proc->fd);
    g_free(proc);
}

/* The pid it had when opened: only a label once the process has exited. */
pid_t
sp_process_get_pid(const SpProcess *proc)
{
    return proc->pid;
}

/**
 * sp_process_has_exited:
 *
 * TRUE once the process has exited (a zombie not yet reaped counts as
 * exited).
 */
gboolean
sp_process_has_exited(const SpProcess *proc)
{
    struct pollfd p = { proc->fd, POLLIN, 0 };
    int n;

    do {
        n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

/**
 * sp_process_signal:
 *
 * Sends @sig to the process, never to another one that has its pid now:
 * SP_PROCESS_ERROR_GONE when it has exited.
 */
gboolean
sp_process_signal(const SpProcess *proc, int sig, GError **error)
{
    if (syscall(SYS_pidfd_send_signal, proc->fd, sig, NULL, 0) < 0) {
        int err = errno;
        g_set_error(error, SP_PROCESS_ERROR,
                    err == ESRCH ? SP_PROCESS_ERROR_GONE : SP_PROCESS_ERROR_FAILED,
                    "cannot send %s to pid %d: %s", g_strsignal(sig), (int)proc->pid,
                    g_strerror(err));
        return FALSE;
    }
    return TRUE;
}

static gboolean
sp_process_wait_exit(const SpProcess *proc, guint ms)
{
    struct pollfd p = { proc->fd, POLLIN, 0 };
    gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;

    for (;;) {
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        int n = poll(&p, 1, (int)MAX(left, 0));
        if (n > 0)
            return TRUE;
        if (n == 0 || (n < 0 && errno != EINTR))
            return sp_process_has_exited(proc);
    }
}

/**
 * sp_process_stop:
 * @term_ms: how long SIGTERM has to end it
 * @kill_ms: then how long SIGKILL has
 *
 * TRUE when the process has exited (already, or after the signals).
 */
gboolean
sp_process_stop(const SpProcess *proc, guint term_ms, guint kill_ms, GError **error)
{
    g_autoptr(GError) local = NULL;

    if (sp_process_has_exited(proc))
        return TRUE;
    if (!sp_process_signal(proc, SIGTERM, &local)) {
        if (g_error_matches(local, SP_PROCESS_ERROR, SP_PROCESS_ERROR_GONE))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (sp_process_wait_exit(proc, term_ms))
        return TRUE;
    if (!sp_process_signal(proc, SIGKILL, &local)) {
        if (g_error_matches(local, SP_PROCESS_ERROR, SP_PROCESS_ERROR_GONE))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (sp_process_wait_exit(proc, kill_ms))
        return TRUE;
    g_set_error(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_FAILED,
                "pid %d still runs %u ms after SIGKILL", (int)proc->pid, kill_ms);
    return FALSE;
}

static gboolean
sp_process_parse_ids(const char *value, guint64 *ids, guint n, GError **error)
{
    g_auto(GStrv) words = g_strsplit_set(value, " \t", -1);
    guint got = 0;

    for (char **w = words; *w && got < n; w++) {
        if (!**w)
            continue;
        if (!g_ascii_string_to_unsigned(*w, 10, 0, G_MAXUINT32, &ids[got], NULL)) {
            g_set_error(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_PARSE,
                        "'%s' is not a number", *w);
            return FALSE;
        }
        got++;
    }
    if (got != n) {
        g_set_error(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_PARSE,
                    "%u numbers where %u were expected", got, n);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_process_parse_status:
 * @text: the contents of /proc/PID/status
 *
 * The owner (all four uids) and the parent.  Fails when either line is
 * missing or malformed.
 */
gboolean
sp_process_parse_status(const char *text, SpProcessStatus *status, GError **error)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    gboolean have_uid = FALSE, have_ppid = FALSE;

    memset(status, 0, sizeof(*status));
    for (char **l = lines; *l; l++) {
        guint64 v[4];
        g_autoptr(GError) local = NULL;

        if (g_str_has_prefix(*l, "Uid:")) {
            if (!sp_process_parse_ids(*l + 4, v, 4, &local)) {
                g_set_error(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_PARSE,
                            "status: Uid line '%s': %s", *l, local->message);
                return FALSE;
            }
            for (guint i = 0; i < 4; i++)
                status->uid[i] = (uid_t)v[i];
            have_uid = TRUE;
        } else if (g_str_has_prefix(*l, "PPid:")) {
            if (!sp_process_parse_ids(*l + 5, v, 1, &local)) {
                g_set_error(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_PARSE,
                            "status: PPid line '%s': %s", *l, local->message);
                return FALSE;
            }
            status->ppid = (pid_t)v[0];
            have_ppid = TRUE;
        }
    }
    if (!have_uid || !have_ppid) {
        g_set_error(error, SP_PROCESS_ERROR, SP_PROCESS_ERROR_PARSE,
                    "status: no %s line", have_uid ? "PPid" : "Uid");
        return FALSE;
    }
    return TRUE;
}
