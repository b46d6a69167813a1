/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmetricsserver.h: a small HTTP server for GET /metrics, on GIO
 *
 * SpMetricsServer listens on one address (loopback by default) and answers
 * `GET /metrics` with the text a callback returns, on the thread-default
 * main context, never blocking it.  Anything else gets 404 (another path),
 * 405 (another method) or 400/431 (a malformed or oversized request); every
 * connection is closed after one reply or after an idle timeout.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SP_METRICS_SERVER_ERROR (sp_metrics_server_error_quark())
GQuark sp_metrics_server_error_quark(void);

typedef enum {
    SP_METRICS_SERVER_ERROR_ADDRESS,   /* HOST:PORT does not parse */
    SP_METRICS_SERVER_ERROR_LISTEN,    /* bind or listen failed (address named) */
} SpMetricsServerErrorCode;

#define SP_METRICS_DEFAULT_LISTEN "127.0.0.1:9987"
#define SP_METRICS_MAX_REQUEST 8192          /* bytes of request line + headers */
#define SP_METRICS_IDLE_TIMEOUT_MS 10000     /* a connection's whole life */
#define SP_METRICS_MAX_CLIENTS 16            /* more are closed at once */

/* Returns the body for GET /metrics (transfer full), or NULL for a 500. */
typedef char *(*SpMetricsRenderFunc)(gpointer user_data);

typedef struct _SpMetricsServer SpMetricsServer;

/* Parses "HOST:PORT": an IPv4 literal, "[IPv6]" or "localhost"; PORT 0-65535
 * (0: any free port).  No name lookups. */
gboolean sp_metrics_parse_listen(const char *text, char **host, guint16 *port,
                                 GError **error);

/* Listens on @listen (see sp_metrics_parse_listen()) at once; the accept
 * and the connections run on the thread-default main context. */
SpMetricsServer *sp_metrics_server_new(const char *listen, SpMetricsRenderFunc render,
                                       gpointer user_data, GDestroyNotify notify,
                                       GError **error);
/* Stops listening, drops the open connections, calls @notify. */
void sp_metrics_server_free(SpMetricsServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpMetricsServer, sp_metrics_server_free)

/* The port bound (useful with port 0). */
guint16 sp_metrics_server_get_port(const SpMetricsServer *server);
/* "HOST:PORT" as bound. */
const char *sp_metrics_server_get_address(const SpMetricsServer *server);
/* Changes the per-connection timeout (tests). */
void sp_metrics_server_set_timeout(SpMetricsServer *server, guint timeout_ms);
/* Requests answered so far, by any status. */
guint64 sp_metrics_server_get_requests(const SpMetricsServer *server);

G_END_DECLS
