/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sd-control.c: samepaged's control socket
 *
 * A UNIX stream socket, mode 0600, served from the main loop by a
 * GSocketService: reads and writes are asynchronous, nothing blocks.  A
 * peer that is not root nor the daemon's own user (SO_PEERCRED) is closed
 * at once.  One JSON request per line, at most SP_AGENT_LINE_MAX bytes
 * with its newline; a longer line gets an error reply and the connection
 * is closed.  Idle clients are closed after SP_AGENT_IDLE_TIMEOUT_S.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepaged"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gunixsocketaddress.h>

#include "samepaged.h"
#include "samepage/spagent.h"

struct _SdControl {
    SdDaemon *d;
    GSocketService *service;
    char *path;
    guint n_clients;
};

typedef struct {
    SdControl *c;
    GSocketConnection *conn;
    GString *in;
    char buf[8192];
    guint idle_id;
    gboolean closing;               /* the last reply is an error: then drain */
    gboolean draining;              /* reply sent, write side shut: discard until EOF */
    GCancellable *cancel;
} SdClient;

static void sd_client_read(SdClient *cl);

static void
sd_client_free(SdClient *cl)
{
    if (cl->idle_id)
        g_source_remove(cl->idle_id);
    g_cancellable_cancel(cl->cancel);
    g_object_unref(cl->cancel);
    g_io_stream_close(G_IO_STREAM(cl->conn), NULL, NULL);
    g_object_unref(cl->conn);
    g_string_free(cl->in, TRUE);
    cl->c->n_clients--;
    g_free(cl);
}

static gboolean
sd_client_idle(gpointer user_data)
{
    SdClient *cl = user_data;

    cl->idle_id = 0;
    g_debug("control: closing an idle client");
    /* The pending read completes with G_IO_ERROR_CANCELLED and frees. */
    g_cancellable_cancel(cl->cancel);
    return G_SOURCE_REMOVE;
}

static void
sd_client_touch(SdClient *cl)
{
    if (cl->idle_id)
        g_source_remove(cl->idle_id);
    cl->idle_id = g_timeout_add_seconds(SP_AGENT_IDLE_TIMEOUT_S, sd_client_idle, cl);
}

/* ------------------------------------------------------------ requests */

static json_object *
reply_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static json_object *
reply_error(const char *fmt, ...)
{
    json_object *o = json_object_new_object();
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    json_object_object_add(o, "ok", json_object_new_boolean(FALSE));
    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

static json_object *
reply_ok(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(TRUE));
    return o;
}

json_object *
sd_status_json(SdDaemon *d)
{
    json_object *o = reply_ok();
    json_object *dm = json_object_new_object();

    json_object_object_add(o, "format", json_object_new_int(SP_JSON_FORMAT));
    json_object_object_add(dm, "pid", json_object_new_int(getpid()));
    json_object_object_add(dm, "version", json_object_new_string(PACKAGE_VERSION));
    json_object_object_add(dm, "config", d->cfg->path ? json_object_new_string(d->cfg->path)
                                                      : NULL);
    json_object_object_add(dm, "uptime_s", json_object_new_int64(
        g_get_real_time() / G_USEC_PER_SEC - d->started_wall));
    json_object_object_add(dm, "libvirt_uri", json_object_new_string(d->cfg->libvirt_uri));
    json_object_object_add(dm, "connected", json_object_new_boolean(d->connected));
    json_object_object_add(dm, "reconnects", json_object_new_int(d->n_reconnects));
    json_object_object_add(dm, "dry_run", json_object_new_boolean(d->dry_run));
    json_object_object_add(dm, "merge_default", json_object_new_boolean(d->cfg->merge_default));
    json_object_object_add(dm, "jobs_pending", json_object_new_int(
        g_queue_get_length(d->jobs) + (d->job_running ? 1 : 0)));
    json_object_object_add(o, "daemon", dm);
    json_object_object_add(o, "ksm", sd_ksm_to_json(d));
    json_object_object_add(o, "controller", sd_controller_to_json(d));
    json_object_object_add(o, "trust", sd_trust_to_json(d));
    json_object_object_add(o, "model", sd_model_to_json(d));
    json_object_object_add(o, "guests", sd_guests_to_json(d));
    return o;
}

typedef struct {
    SdDaemon *d;
    char *domain, *uuid, *operation;
} SdHook;

static gboolean
sd_hook_idle(gpointer user_data)
{
    SdHook *h = user_data;

    if (g_str_equal(h->operation, "started"))
        sd_guest_started(h->d, h->domain, h->uuid, "hook");
    else if (g_str_equal(h->operation, "release") || g_str_equal(h->operation, "stopped"))
        sd_guest_stopped(h->d, h->domain, "hook");
    g_free(h->domain);
    g_free(h->uuid);
    g_free(h->operation);
    g_free(h);
    return G_SOURCE_REMOVE;
}

static const char *
get_str(json_object *req, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static json_object *
sd_handle(SdDaemon *d, const char *line)
{
    g_autoptr(json_object) req = NULL;
    json_tokener *tok = json_tokener_new_ex(32);
    const char *what;

    req = json_tokener_parse_ex(tok, line, (int)strlen(line));
    if (!req || json_tokener_get_error(tok) != json_tokener_success ||
        tok->char_offset != (int)strlen(line)) {
        json_tokener_free(tok);
        return reply_error("the request is not one JSON object");
    }
    json_tokener_free(tok);
    if (!json_object_is_type(req, json_type_object))
        return reply_error("the request is not a JSON object");
    what = get_str(req, "request");
    if (!what)
        return reply_error("the request has no \"request\" string");
    if (g_str_equal(what, "status"))
        return sd_status_json(d);
    if (g_str_equal(what, "guests")) {
        json_object *o = reply_ok();
        json_object_object_add(o, "format", json_object_new_int(SP_JSON_FORMAT));
        json_object_object_add(o, "guests", sd_guests_to_json(d));
        return o;
    }
    if (g_str_equal(what, "reload")) {
        g_autoptr(GError) error = NULL;
        if (!sd_reload(d, &error))
            return reply_error("%s", error->message);
        return reply_ok();
    }
    if (g_str_equal(what, "hook")) {
        const char *domain = get_str(req, "domain"), *uuid = get_str(req, "uuid");
        const char *op = get_str(req, "operation"), *phase = get_str(req, "phase");
        SdHook *h;

        if (!domain || !*domain || !op || !phase)
            return reply_error("hook: \"domain\", \"operation\" and \"phase\" strings are needed");
        if (strlen(domain) > 1024 || (uuid && strlen(uuid) > 64))
            return reply_error("hook: domain or uuid too long");
        g_debug("hook: %s %s %s", domain, op, phase);
        h = g_new0(SdHook, 1);
        h->d = d;
        h->domain = g_strdup(domain);
        h->uuid = g_strdup(uuid);
        h->operation = g_strdup(op);
        g_idle_add(sd_hook_idle, h);
        return reply_ok();
    }
    {
        g_autofree char *shown = g_strescape(what, NULL);
        return reply_error("unknown request \"%.64s\" (status, guests, reload, hook)", shown);
    }
}

/* ------------------------------------------------------------- I/O */

static void
sd_client_written(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdClient *cl = user_data;
    g_autoptr(GError) error = NULL;

    if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error)) {
        g_debug("control: write: %s", error->message);
        sd_client_free(cl);
        return;
    }
    if (cl->closing) {
        /* Closing with unread input would reset the connection before
         * the client reads the reply: shut the write side, read the
         * rest away until EOF or the idle timeout. */
        g_socket_shutdown(g_socket_connection_get_socket(cl->conn), FALSE, TRUE, NULL);
        cl->draining = TRUE;
        g_string_truncate(cl->in, 0);
    }
    sd_client_read(cl);
}

/* Replies to every complete line in the buffer, then reads on. */
static void
sd_client_process(SdClient *cl)
{
    g_autoptr(GString) out = g_string_new(NULL);
    char *nl;

    while ((nl = memchr(cl->in->str, '\n', cl->in->len))) {
        gsize n = nl - cl->in->str + 1;
        g_autofree char *line = g_strndup(cl->in->str, n - 1);
        g_autoptr(json_object) reply = NULL;

        g_string_erase(cl->in, 0, n);
        if (n > SP_AGENT_LINE_MAX) {
            reply = reply_error("request line of %zu bytes is over %d", n, SP_AGENT_LINE_MAX);
            cl->closing = TRUE;
        } else if (memchr(line, '\0', n - 1)) {
            reply = reply_error("the request contains a NUL byte");
        } else {
            reply = sd_handle(cl->c->d, line);
        }
        g_string_append(out, json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
        g_string_append_c(out, '\n');
        if (cl->closing)
            break;
    }
    if (!cl->closing && cl->in->len >= SP_AGENT_LINE_MAX) {
        g_autoptr(json_object) reply =
            reply_error("request line over %d bytes", SP_AGENT_LINE_MAX);
        g_string_append(out, json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
        g_string_append_c(out, '\n');
        cl->closing = TRUE;
    }
    if (out->len == 0) {
        sd_client_read(cl);
        return;
    }
    {
        GOutputStream *os = g_io_stream_get_output_stream(G_IO_STREAM(cl->conn));
        gsize len = out->len;
        char *data = g_string_free(g_steal_pointer(&out), FALSE);
        /* The data must outlive the write: tie it to the client's
         * cancellable object. */
        g_object_set_data_full(G_OBJECT(cl->cancel), "out", data, g_free);
        g_output_stream_write_all_async(os, data, len, G_PRIORITY_DEFAULT, cl->cancel,
                                        sd_client_written, cl);
    }
}

static void
sd_client_got(GObject *source, GAsyncResult *res, gpointer user_data)
{
    SdClient *cl = user_data;
    g_autoptr(GError) error = NULL;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);

    if (n <= 0) {
        if (error && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_debug("control: read: %s", error->message);
        sd_client_free(cl);
        return;
    }
    if (cl->draining) {
        sd_client_read(cl);
        return;
    }
    sd_client_touch(cl);
    g_string_append_len(cl->in, cl->buf, n);
    sd_client_process(cl);
}

static void
sd_client_read(SdClient *cl)
{
    GInputStream *is = g_io_stream_get_input_stream(G_IO_STREAM(cl->conn));

    g_input_stream_read_async(is, cl->buf, sizeof(cl->buf), G_PRIORITY_DEFAULT, cl->cancel,
                              sd_client_got, cl);
}

static gboolean
sd_on_incoming(GSocketService *service, GSocketConnection *conn, GObject *source,
               gpointer user_data)
{
    SdControl *c = user_data;
    GSocket *sock = g_socket_connection_get_socket(conn);
    g_autoptr(GError) error = NULL;
    g_autoptr(GCredentials) cred = g_socket_get_credentials(sock, &error);
    uid_t uid = cred ? g_credentials_get_unix_user(cred, NULL) : (uid_t)-1;
    SdClient *cl;

    if (!cred || (uid != 0 && uid != getuid())) {
        g_warning("control: refused a client of uid %d%s%s", (int)uid,
                  error ? ": " : "", error ? error->message : "");
        g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
        return TRUE;
    }
    if (c->n_clients >= 64) {
        g_warning("control: 64 clients already; closing a new one");
        g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
        return TRUE;
    }
    cl = g_new0(SdClient, 1);
    cl->c = c;
    cl->conn = g_object_ref(conn);
    cl->in = g_string_new(NULL);
    cl->cancel = g_cancellable_new();
    c->n_clients++;
    sd_client_touch(cl);
    sd_client_read(cl);
    return TRUE;
}

SdControl *
sd_control_start(SdDaemon *d, GError **error)
{
    g_autoptr(GSocketAddress) addr = NULL;
    g_autofree char *dir = NULL;
    SdControl *c;
    struct stat st;
    mode_t old;
    gboolean ok;
    char *path = d->cfg->socket_path ? g_strdup(d->cfg->socket_path)
                                     : sp_agent_default_socket(d->host);

    dir = g_path_get_dirname(path);
    if (g_mkdir_with_parents(dir, 0755) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", dir,
                    g_strerror(errno));
        g_free(path);
        return NULL;
    }
    if (lstat(path, &st) == 0) {
        g_autoptr(json_object) req = json_object_new_object();
        g_autoptr(json_object) reply = NULL;
        json_object_object_add(req, "request", json_object_new_string("status"));
        reply = sp_agent_call(path, req, 1000, NULL);
        if (reply) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                        "%s: another samepaged answers on this socket", path);
            g_free(path);
            return NULL;
        }
        if (!S_ISSOCK(st.st_mode)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "%s: exists and is not a socket; not removing it", path);
            g_free(path);
            return NULL;
        }
        unlink(path);   /* a stale socket of a daemon that died */
    }
    c = g_new0(SdControl, 1);
    c->d = d;
    c->path = path;
    c->service = g_socket_service_new();
    addr = g_unix_socket_address_new(path);
    old = umask(0177);
    ok = g_socket_listener_add_address(G_SOCKET_LISTENER(c->service), addr,
                                       G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, NULL,
                                       NULL, error);
    umask(old);
    if (!ok || chmod(path, 0600) < 0) {
        if (ok)
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "chmod %s: %s", path,
                        g_strerror(errno));
        else
            g_prefix_error(error, "%s: ", path);
        sd_control_stop(c);
        return NULL;
    }
    g_signal_connect(c->service, "incoming", G_CALLBACK(sd_on_incoming), c);
    g_socket_service_start(c->service);
    g_message("control socket %s", path);
    return c;
}

void
sd_control_stop(SdControl *c)
{
    if (!c)
        return;
    g_socket_service_stop(c->service);
    g_socket_listener_close(G_SOCKET_LISTENER(c->service));
    g_object_unref(c->service);
    unlink(c->path);
    g_free(c->path);
    g_free(c);
}
