/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spmetricsserver.c: GET /metrics over HTTP/1.x on a GSocketService
 *
 * Theory of operation: the service accepts on the thread-default main
 * context of the thread that made the server.  Each connection is an
 * SpMetricsClient that reads asynchronously into a fixed buffer of
 * SP_METRICS_MAX_REQUEST bytes until the blank line that ends the headers,
 * answers once, shuts its sending side down and then discards what the
 * peer still sends until it closes (so the reply is not lost to a reset),
 * all within one timeout for the whole connection.  Request bodies are
 * never read: the only method served is GET (and HEAD).
 *
 * Every asynchronous operation owns the client until its callback runs;
 * freeing the server cancels them, and the callbacks then free the clients.
 */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "samepage/spmetrics.h"
#include "samepage/spmetricsserver.h"

G_DEFINE_QUARK(sp-metrics-server-error-quark, sp_metrics_server_error)

typedef struct _SpMetricsClient SpMetricsClient;

struct _SpMetricsServer {
    GSocketService *service;
    gulong incoming_id;
    GMainContext *context;
    char *address;
    guint16 port;
    guint timeout_ms;
    guint64 requests;
    GHashTable *clients;            /* SpMetricsClient * set */
    SpMetricsRenderFunc render;
    gpointer user_data;
    GDestroyNotify notify;
};

struct _SpMetricsClient {
    SpMetricsServer *server;        /* NULL once the server is gone */
    GSocketConnection *conn;
    GCancellable *cancel;
    GSource *timeout;
    gboolean replied;
    gsize len;
    char *reply;
    gsize reply_len;
    char buf[SP_METRICS_MAX_REQUEST];
};

/* ---------------------------------------------------------------- address */

gboolean
sp_metrics_parse_listen(const char *text, char **host, guint16 *port, GError **error)
{
    g_autofree char *h = NULL;
    g_autoptr(GInetAddress) addr = NULL;
    const char *colon;
    guint64 p;

    if (!text || !*text) {
        g_set_error(error, SP_METRICS_SERVER_ERROR, SP_METRICS_SERVER_ERROR_ADDRESS,
                    "metrics listen address is empty (want HOST:PORT)");
        return FALSE;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            g_set_error(error, SP_METRICS_SERVER_ERROR, SP_METRICS_SERVER_ERROR_ADDRESS,
                        "metrics listen address '%s': want [IPV6]:PORT", text);
            return FALSE;
        }
        h = g_strndup(text + 1, close - text - 1);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', colon - text)) {
            g_set_error(error, SP_METRICS_SERVER_ERROR, SP_METRICS_SERVER_ERROR_ADDRESS,
                        "metrics listen address '%s': want HOST:PORT "
                        "(an IPv6 address goes in brackets)", text);
            return FALSE;
        }
        h = g_strndup(text, colon - text);
    }
    if (!g_ascii_string_to_unsigned(colon + 1, 10, 0, 65535, &p, NULL)) {
        g_set_error(error, SP_METRICS_SERVER_ERROR, SP_METRICS_SERVER_ERROR_ADDRESS,
                    "metrics listen address '%s': port '%s' is not a number from 0 to 65535",
                    text, colon + 1);
        return FALSE;
    }
    if (g_ascii_strcasecmp(h, "localhost") == 0) {
        g_free(h);
        h = g_strdup("127.0.0.1");
    }
    addr = g_inet_address_new_from_string(h);
    if (!addr) {
        g_set_error(error, SP_METRICS_SERVER_ERROR, SP_METRICS_SERVER_ERROR_ADDRESS,
                    "metrics listen address '%s': host '%s' is not an IP address "
                    "(no name lookups; 'localhost' is 127.0.0.1)", text, h);
        return FALSE;
    }
    if (host)
        *host = g_steal_pointer(&h);
    if (port)
        *port = (guint16)p;
    return TRUE;
}

/* ---------------------------------------------------------------- clients */

static void client_read_more(SpMetricsClient *c);

static void
client_free(SpMetricsClient *c)
{
    if (c->timeout) {
        g_source_destroy(c->timeout);
        g_source_unref(c->timeout);
    }
    if (c->server)
        g_hash_table_remove(c->server->clients, c);
    if (c->conn)
        g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
    g_clear_object(&c->conn);
    g_clear_object(&c->cancel);
    g_free(c->reply);
    g_free(c);
}

static gboolean
client_timed_out(gpointer data)
{
    SpMetricsClient *c = data;

    g_debug("metrics: closing a connection idle for %u ms",
            c->server ? c->server->timeout_ms : 0);
    g_cancellable_cancel(c->cancel);
    return G_SOURCE_CONTINUE;   /* destroyed by client_free() */
}

static void
on_drained(GObject *src, GAsyncResult *res, gpointer data)
{
    SpMetricsClient *c = data;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, NULL);

    if (n <= 0 || !c->server) {
        client_free(c);
        return;
    }
    /* Still sending: discard it, within the connection's timeout. */
    g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(c->conn)),
                              c->buf, sizeof c->buf, G_PRIORITY_DEFAULT, c->cancel,
                              on_drained, c);
}

static void
on_written(GObject *src, GAsyncResult *res, gpointer data)
{
    SpMetricsClient *c = data;
    g_autoptr(GError) err = NULL;
    GSocket *sock;

    if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL, &err)
        || !c->server) {
        if (err && !g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_debug("metrics: writing a reply: %s", err->message);
        client_free(c);
        return;
    }
    sock = g_socket_connection_get_socket(c->conn);
    g_socket_shutdown(sock, FALSE, TRUE, NULL);
    g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(c->conn)),
                              c->buf, sizeof c->buf, G_PRIORITY_DEFAULT, c->cancel,
                              on_drained, c);
}

static const char *
status_text(guint status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

static void
client_reply(SpMetricsClient *c, guint status, const char *body, gboolean head_only)
{
    g_autofree char *owned = NULL;
    GString *r = g_string_new(NULL);
    gboolean ok = status == 200;

    if (!ok)
        body = owned = g_strdup_printf("%u %s\n", status, status_text(status));
    g_string_append_printf(r, "HTTP/1.1 %u %s\r\n", status, status_text(status));
    g_string_append_printf(r, "Content-Type: %s\r\n",
                           ok ? SP_METRICS_CONTENT_TYPE : "text/plain; charset=utf-8");
    g_string_append_printf(r, "Content-Length: %zu\r\n", strlen(body));
    if (status == 405)
        g_string_append(r, "Allow: GET, HEAD\r\n");
    g_string_append(r, "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
    if (!head_only)
        g_string_append(r, body);

    c->replied = TRUE;
    c->server->requests++;
    c->reply_len = r->len;
    c->reply = g_string_free(r, FALSE);
    g_output_stream_write_all_async(g_io_stream_get_output_stream(G_IO_STREAM(c->conn)),
                                    c->reply, c->reply_len, G_PRIORITY_DEFAULT, c->cancel,
                                    on_written, c);
}

/* The request line of a complete head in c->buf[0..len). */
static void
client_handle(SpMetricsClient *c, gsize head_len)
{
    g_autofree char *line = NULL;
    g_auto(GStrv) parts = NULL;
    g_autofree char *body = NULL;
    const char *eol = memchr(c->buf, '\n', head_len);
    const char *method, *target;
    gsize path_len;
    gboolean head;

    line = g_strndup(c->buf, eol - c->buf);
    g_strchomp(line);   /* the \r */
    parts = g_strsplit(line, " ", -1);
    if (g_strv_length(parts) != 3 || !*parts[0] || !*parts[1]
        || !g_str_has_prefix(parts[2], "HTTP/")) {
        client_reply(c, 400, NULL, FALSE);
        return;
    }
    if (!g_str_has_prefix(parts[2], "HTTP/1.")) {
        client_reply(c, 505, NULL, FALSE);
        return;
    }
    method = parts[0];
    target = parts[1];
    head = g_str_equal(method, "HEAD");
    if (!head && !g_str_equal(method, "GET")) {
        client_reply(c, 405, NULL, FALSE);
        return;
    }
    path_len = strcspn(target, "?");
    if (path_len != strlen("/metrics") || strncmp(target, "/metrics", path_len) != 0) {
        client_reply(c, 404, NULL, head);
        return;
    }
    body = c->server->render(c->server->user_data);
    if (!body) {
        client_reply(c, 500, NULL, head);
        return;
    }
    client_reply(c, 200, body, head);
}

/* Length of the head (through the blank line) if c->buf holds it all. */
static gsize
head_length(const SpMetricsClient *c)
{
    for (gsize i = 0; i < c->len; i++) {
        if (c->buf[i] != '\n')
            continue;
        if (i + 1 < c->len && c->buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < c->len && c->buf[i + 1] == '\r' && c->buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static void
on_read(GObject *src, GAsyncResult *res, gpointer data)
{
    SpMetricsClient *c = data;
    g_autoptr(GError) err = NULL;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, &err);
    gsize head;

    if (n <= 0 || !c->server) {
        if (err && !g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_debug("metrics: reading a request: %s", err->message);
        client_free(c);
        return;
    }
    c->len += n;
    head = head_length(c);
    if (head)
        client_handle(c, head);
    else if (c->len == sizeof c->buf)
        client_reply(c, 431, NULL, FALSE);
    else
        client_read_more(c);
}

static void
client_read_more(SpMetricsClient *c)
{
    g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(c->conn)),
                              c->buf + c->len, sizeof c->buf - c->len,
                              G_PRIORITY_DEFAULT, c->cancel, on_read, c);
}

static gboolean
on_incoming(GSocketService *service, GSocketConnection *conn, GObject *source,
            gpointer data)
{
    SpMetricsServer *server = data;
    SpMetricsClient *c;

    (void)service;
    (void)source;
    if (g_hash_table_size(server->clients) >= SP_METRICS_MAX_CLIENTS) {
        g_debug("metrics: %u connections open; refusing another", SP_METRICS_MAX_CLIENTS);
        g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
        return TRUE;
    }
    c = g_new0(SpMetricsClient, 1);
    c->server = server;
    c->conn = g_object_ref(conn);
    c->cancel = g_cancellable_new();
    c->timeout = g_timeout_source_new(server->timeout_ms);
    g_source_set_callback(c->timeout, client_timed_out, c, NULL);
    g_source_attach(c->timeout, server->context);
    g_hash_table_add(server->clients, c);
    client_read_more(c);
    return TRUE;
}

/* ---------------------------------------------------------------- server */

SpMetricsServer *
sp_metrics_server_new(const char *listen, SpMetricsRenderFunc render, gpointer user_data,
                      GDestroyNotify notify, GError **error)
{
    g_autofree char *host = NULL;
    g_autoptr(GInetAddress) inet = NULL;
    g_autoptr(GSocketAddress) addr = NULL;
    g_autoptr(GSocketAddress) bound = NULL;
    g_autoptr(GError) err = NULL;
    SpMetricsServer *server;
    guint16 port;

    g_return_val_if_fail(render != NULL, NULL);
    if (!sp_metrics_parse_listen(listen, &host, &port, error))
        return NULL;
    inet = g_inet_address_new_from_string(host);
    addr = g_inet_socket_address_new(inet, port);

    server = g_new0(SpMetricsServer, 1);
    server->context = g_main_context_ref_thread_default();
    server->timeout_ms = SP_METRICS_IDLE_TIMEOUT_MS;
    server->clients = g_hash_table_new(NULL, NULL);
    server->service = g_socket_service_new();
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(server->service), addr,
                                       G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                       NULL, &bound, &err)) {
        g_set_error(error, SP_METRICS_SERVER_ERROR, SP_METRICS_SERVER_ERROR_LISTEN,
                    "metrics: cannot listen on %s: %s", listen, err->message);
        sp_metrics_server_free(server);
        return NULL;
    }
    server->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
    server->address = strchr(host, ':') ? g_strdup_printf("[%s]:%u", host, server->port)
                                        : g_strdup_printf("%s:%u", host, server->port);
    server->render = render;
    server->user_data = user_data;
    server->notify = notify;
    server->incoming_id = g_signal_connect(server->service, "incoming",
                                           G_CALLBACK(on_incoming), server);
    g_socket_service_start(server->service);
    return server;
}

void
sp_metrics_server_free(SpMetricsServer *server)
{
    GHashTableIter it;
    gpointer key;

    if (!server)
        return;
    if (server->service) {
        g_socket_service_stop(server->service);
        if (server->incoming_id)
            g_signal_handler_disconnect(server->service, server->incoming_id);
        g_socket_listener_close(G_SOCKET_LISTENER(server->service));
        g_clear_object(&server->service);
    }
    /* Pending callbacks free their clients once cancelled. */
    g_hash_table_iter_init(&it, server->clients);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        SpMetricsClient *c = key;
        c->server = NULL;
        g_cancellable_cancel(c->cancel);
    }
    g_hash_table_unref(server->clients);
    if (server->notify)
        server->notify(server->user_data);
    g_main_context_unref(server->context);
    g_free(server->address);
    g_free(server);
}

guint16
sp_metrics_server_get_port(const SpMetricsServer *server)
{
    return server->port;
}

const char *
sp_metrics_server_get_address(const SpMetricsServer *server)
{
    return server->address;
}

void
sp_metrics_server_set_timeout(SpMetricsServer *server, guint timeout_ms)
{
    server->timeout_ms = timeout_ms;
}

guint64
sp_metrics_server_get_requests(const SpMetricsServer *server)
{
    return server->requests;
}
