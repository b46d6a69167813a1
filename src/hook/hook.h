/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hook.h: the libvirt QEMU hook's decisions and its talk with samepaged
 *
 * libvirtd runs the hook as `samepage DOMAIN OPERATION SUBOP EXTRA` with
 * the domain XML on stdin and waits for it; a non-zero exit at "prepare
 * begin" stops the guest's start.  The hook tells samepaged about
 * prepare/begin, started/begin, stopped/end and release/end in one request
 * line on the control socket, within SP_HOOK_TIMEOUT_MS overall, and
 * ignores every other operation at once.  It refuses a start in one case
 * only: at prepare/begin, a guest whose policy says merge="required" when
 * samepaged did not accept the request.  The decisions are pure functions
 * here, unit-tested; samepage-hook.c does the I/O around them.
 */
#pragma once

#include <glib.h>

#include "samepage/sppolicy.h"

G_BEGIN_DECLS

/* Overall: reading stdin, connecting, writing, reading the reply. */
#define SP_HOOK_TIMEOUT_MS 2000
/* After the request is sent, how long operations that cannot refuse wait
 * for the reply: the line is in samepaged's queue already, the reply only
 * confirms it, so a hung samepaged costs a start about SP_HOOK_TIMEOUT_MS
 * (at prepare) plus this (at started), not twice SP_HOOK_TIMEOUT_MS. */
#define SP_HOOK_NOTIFY_REPLY_MS 250
/* Control socket lines are at most this long, newline included. */
#define SP_HOOK_MAX_LINE 65536

#define SP_HOOK_ERROR (sp_hook_error_quark())
GQuark sp_hook_error_quark(void);

typedef struct {
    gboolean forward;     /* send {"request":"hook",...} to samepaged */
    gboolean read_xml;    /* the domain XML on stdin is needed */
    gboolean gate;        /* prepare/begin: a required policy needs samepaged */
    guint reply_ms;       /* wait for the reply this long after sending, within
                           * the overall deadline; 0: until the deadline */
} SpHookAction;

/* What to do for libvirt's OPERATION and SUBOP; FALSE (and @action zeroed):
 * nothing, exit 0 without reading stdin. */
gboolean sp_hook_action(const char *operation, const char *phase, SpHookAction *action);

/* The request line (JSON object + "\n"); @uuid may be NULL. */
char *sp_hook_request_line(const char *domain, const char *uuid, const char *operation,
                           const char *phase);

/* A reply line of samepaged: TRUE for {"ok":true,...}; FALSE otherwise, with
 * @error set to the daemon's "error" text or to what is wrong with the line. */
gboolean sp_hook_parse_reply(const char *line, char **error);

/* The control socket: $SAMEPAGE_SOCKET (@env_socket), else [daemon] socket
 * of the configuration (@config, may be NULL), else
 * RUNDIR/samepage/samepaged.sock with RUNDIR $SAMEPAGE_RUNDIR (@env_rundir)
 * or /run. */
char *sp_hook_socket_path(const char *env_socket, GKeyFile *config, const char *env_rundir);

/* The exit status (0 or 1) once samepaged was tried; @message (may be set
 * with status 0 too) is one line for stderr, which libvirtd logs.
 * @policy: NULL when the XML was not read or did not parse (@policy_error).
 * @delivered: samepaged answered {"ok":true}; else @daemon_error says why. */
int sp_hook_verdict(const SpHookAction *action, const char *domain,
                    const SpDomainPolicy *policy, const char *policy_error,
                    gboolean delivered, const char *daemon_error,
                    const char *socket_path, char **message);

/* Sends @line to the UNIX socket @path and reads one reply line, all
 * before @deadline (g_get_monotonic_time() microseconds), the reply within
 * @reply_ms of the request's sending if not 0.  Never blocks past the
 * deadline; SIGPIPE-safe.  @sent says whether the whole line went out. */
gboolean sp_hook_talk(const char *path, const char *line, gint64 deadline, guint reply_ms,
                      gboolean *sent, char **reply, GError **error);

/* Reads all of @fd (at most @max bytes) before @deadline; FALSE with
 * @error on a timeout, an error or more than @max bytes. */
gboolean sp_hook_read_fd(int fd, gsize max, gint64 deadline, char **text, GError **error);

G_END_DECLS
