/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spprocess.h: a process held by a pidfd
 *
 * A pid names whatever process has it now: once the process exits, the
 * kernel may give the number to another one.  A pidfd (pidfd_open(2))
 * names one process for good; signals sent through it
 * (pidfd_send_signal(2)) reach that process or fail with ESRCH, never a
 * process that got the pid since.  Identify a process (by /proc, through
 * the SpHost), open it, check it again, then keep the SpProcess.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

#define SP_PROCESS_ERROR (sp_process_error_quark())
GQuark sp_process_error_quark(void);

typedef enum {
    SP_PROCESS_ERROR_GONE,       /* the process has exited (ESRCH) */
    SP_PROCESS_ERROR_FAILED,     /* pidfd_open or a signal failed otherwise */
    SP_PROCESS_ERROR_PARSE,      /* /proc/PID/status is not what was expected */
} SpProcessErrorCode;

typedef struct _SpProcess SpProcess;

SpProcess *sp_process_open(pid_t pid, GError **error);
void sp_process_free(SpProcess *proc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpProcess, sp_process_free)

pid_t sp_process_get_pid(const SpProcess *proc);
gboolean sp_process_has_exited(const SpProcess *proc);
gboolean sp_process_signal(const SpProcess *proc, int sig, GError **error);
gboolean sp_process_stop(const SpProcess *proc, guint term_ms, guint kill_ms, GError **error);

/* /proc/PID/status: the four uids of "Uid:" and "PPid:". */
typedef struct {
    uid_t uid[4];              /* real, effective, saved, filesystem */
    pid_t ppid;
} SpProcessStatus;

gboolean sp_process_parse_status(const char *text, SpProcessStatus *status, GError **error);

G_END_DECLS
