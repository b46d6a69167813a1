/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spagent.h: talking to samepaged over its control socket
 *
 * A UNIX stream socket (0600, root or the daemon's own user), one JSON
 * object per line each way, a line at most SP_AGENT_LINE_MAX bytes with
 * its newline.  The client side is here for the CLI and the libvirt hook:
 * connect, send one request, read one reply, within a timeout.
 */
#pragma once

#include <glib.h>

#include "samepage/sphost.h"
#include "samepage/spjson.h"

G_BEGIN_DECLS

#define SP_AGENT_LINE_MAX 65536
#define SP_AGENT_IDLE_TIMEOUT_S 10

#define SP_AGENT_ERROR (sp_agent_error_quark())
GQuark sp_agent_error_quark(void);

typedef enum {
    SP_AGENT_ERROR_NOT_RUNNING,  /* no socket, or nobody listening */
    SP_AGENT_ERROR_IO,           /* connect/read/write failed, or timed out */
    SP_AGENT_ERROR_PROTOCOL,     /* the reply is not one JSON object */
    SP_AGENT_ERROR_REFUSED,      /* {"ok":false,"error":...} */
} SpAgentErrorCode;

/* RUNDIR/samepage/samepaged.sock: /run, or $SAMEPAGE_RUNDIR through @host. */
char *sp_agent_default_socket(const SpHost *host);

/**
 * sp_agent_call:
 * @path: the socket
 * @request: a JSON object (one request)
 * @timeout_ms: for the whole exchange
 *
 * Returns: (transfer full): the reply object with "ok": true, or NULL with
 * @error (SP_AGENT_ERROR_REFUSED carries the daemon's message).
 */
json_object *sp_agent_call(const char *path, json_object *request, guint timeout_ms,
                           GError **error);

G_END_DECLS
