/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spqmp.c: a QMP client
 *
 * The client and its UNIX socket transport; the typed commands and their
 * reply parsers are in spqmpcmd.c.
 *
 * Theory of operation
 *
 * QEMU's monitor (docs/interop/qmp-spec.rst) sends one JSON object per line,
 * ended by "\r\n": first a greeting {"QMP": {"version", "capabilities"}},
 * then, once the client has sent "qmp_capabilities", replies
 * {"return": ...} or {"error": {"class", "desc"}} carrying the "id" of their
 * command, and at any time events {"event", "timestamp", "data"}.  Keys may
 * come in any order and new keys may appear; both are ignored.
 *
 * On a stream transport, bytes arrive in pieces that need not line up with
 * messages: a message may be split over many reads and one read may hold
 * several messages.  SpQmp keeps what it has received in a buffer and cuts
 * complete lines out of it; the rest waits for the next read.  Each command
 * gets the next number as its id.  While waiting for the reply, events are
 * skipped (and kept if asked), and a reply with another id (the late answer
 * to a command that timed out) is dropped.  A reply without an id is taken
 * as ours: QEMU answers that way when it cannot parse the command, and only
 * one command is ever in flight.
 *
 * Every wait has a deadline (the timeout counts from the start of the
 * command, on the monotonic clock), so a socket that is not QMP, a QEMU that
 * hangs or a peer that trickles bytes cannot block the caller for longer
 * than the timeout.  The deadline is checked before every read and after
 * every message that is not the reply, not only when the transport has
 * nothing to give: a peer that never runs dry (endless events, stale
 * replies, blank lines) is stopped by it too.  A command transport's reply
 * that comes after the deadline is a timeout as well.
 *
 * What a peer can make us hold is bounded: a line longer than
 * SP_QMP_MAX_LINE is refused before more of it is read (json-c then only
 * ever parses bounded input), the rest of it is skipped when the next
 * command reads, and recorded events are capped by count and by bytes.
 *
 * A command transport (libvirt) gets the command without id and returns
 * the reply; the greeting and events are libvirt's business.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-qmp"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "samepage/spqmp.h"
#include "spqmppriv.h"

G_DEFINE_QUARK(sp-qmp-error-quark, sp_qmp_error)

struct _SpQmp {
    SpQmpTransport *transport;
    guint timeout_ms;
    gint64 next_id;
    GString *in;                /* received, not yet cut into lines */
    gboolean closed;            /* the peer closed the stream */
    gboolean skipping;          /* dropping the rest of a line that was too long */
    gboolean have_version;
    guint version[3];
    gboolean record_events;
    GPtrArray *events;
    gsize event_bytes;          /* sum of the sizes of events */
};

/* ---------------------------------------------------------------- helpers */

/* A short, printable quotation of untrusted input for error messages. */
char *
sp_qmp_excerpt(const char *text, gsize len)
{
    gsize n = MIN(len, SP_QMP_EXCERPT);
    g_autofree char *head = g_strndup(text, n);
    /* g_strndup stops at a NUL; escape what is left. */
    g_autofree char *esc = g_strescape(head, NULL);

    return g_strdup_printf("'%s'%s", esc, len > n || strlen(head) < n ? "..." : "");
}

/* Traffic for --debug: as is if printable, escaped otherwise. */
static void
sp_qmp_log_traffic(const char *name, const char *dir, const char *text, gsize len)
{
    gboolean plain;

    if (g_log_writer_default_would_drop(G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN))
        return;
    plain = g_utf8_validate(text, len, NULL);
    for (gsize i = 0; plain && i < len; i++)
        if ((guchar)text[i] < 0x20 || text[i] == 0x7f)
            plain = FALSE;
    if (plain) {
        g_debug("%s: %s %.*s", name, dir, (int)MIN(len, G_MAXINT), text);
    } else {
        g_autofree char *copy = g_strndup(text, len);
        g_autofree char *esc = g_strescape(copy, NULL);
        g_debug("%s: %s %s", name, dir, esc);
    }
}

/*
 * One JSON object, strictly: nothing but white space after it.  @text has a
 * NUL at @len; it is passed to json-c too, which needs it to finish a number
 * at the end of the input.
 */
static json_object *
sp_qmp_json_parse(const char *text, gsize len, GError **error)
{
    json_tokener *tok;
    g_autoptr(json_object) obj = NULL;
    gsize end = len;
    gboolean whole = FALSE;

    while (end > 0 && g_ascii_isspace(text[end - 1]))
        end--;
    if (end > 0 && end < G_MAXINT) {
        tok = json_tokener_new();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, text, (int)end + 1);
        whole = json_tokener_get_error(tok) == json_tokener_success &&
                json_tokener_get_parse_end(tok) >= end;
        json_tokener_free(tok);
        if (obj && whole && json_object_is_type(obj, json_type_object))
            return g_steal_pointer(&obj);
    }
    g_autofree char *ex = sp_qmp_excerpt(text, len);
    g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_PROTOCOL,
                whole ? "not a JSON object: %s" : "not JSON: %s", ex);
    return NULL;
}

/* @key of @obj if it exists and has @type. */
json_object *
sp_qmp_member(json_object *obj, const char *key, json_type type)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
        return NULL;
    return v;
}

gboolean
sp_qmp_get_uint(json_object *obj, const char *key, guint64 max, guint64 *value)
{
    json_object *v = sp_qmp_member(obj, key, json_type_int);

    if (!v || json_object_get_int64(v) < 0)
        return FALSE;
    *value = json_object_get_uint64(v);
    return *value <= max;
}

/* ---------------------------------------------------------------- errors */

static const struct {
    const char *klass;
    SpQmpErrorCode code;
} sp_qmp_classes[] = {
    { "GenericError", SP_QMP_ERROR_GENERIC },
    { "CommandNotFound", SP_QMP_ERROR_COMMAND_NOT_FOUND },
    { "DeviceNotActive", SP_QMP_ERROR_DEVICE_NOT_ACTIVE },
    { "DeviceNotFound", SP_QMP_ERROR_DEVICE_NOT_FOUND },
    { "KVMMissingCap", SP_QMP_ERROR_KVM_MISSING_CAP },
};

/**
 * sp_qmp_error_code_from_class:
 * @klass: the "class" of a QMP error reply
 *
 * Returns: the matching code; SP_QMP_ERROR_GENERIC for a class this version
 * does not know (QEMU treats GenericError as the catch-all too).
 */
SpQmpErrorCode
sp_qmp_error_code_from_class(const char *klass)
{
    for (gsize i = 0; i < G_N_ELEMENTS(sp_qmp_classes); i++)
        if (g_str_equal(sp_qmp_classes[i].klass, klass))
            return sp_qmp_classes[i].code;
    return SP_QMP_ERROR_GENERIC;
}

/*
 * The result of a reply (a message that is neither greeting nor event),
 * or its error.  Messages name neither transport nor command: the caller
 * prefixes them.
 */
static json_object *
sp_qmp_reply_result(json_object *msg, const char *text, gsize len, GError **error)
{
    json_object *ret = NULL;
    json_object *err = NULL;

    if (json_object_object_get_ex(msg, "return", &ret))
        return json_object_get(ret);
    if ((err = sp_qmp_member(msg, "error", json_type_object))) {
        json_object *klass = sp_qmp_member(err, "class", json_type_string);
        json_object *desc = sp_qmp_member(err, "desc", json_type_string);

        if (klass && desc) {
            const char *k = json_object_get_string(klass);
            SpQmpErrorCode code = sp_qmp_error_code_from_class(k);

            if (code == SP_QMP_ERROR_GENERIC && !g_str_equal(k, "GenericError"))
                g_set_error(error, SP_QMP_ERROR, code, "%s (error class %s)",
                            json_object_get_string(desc), k);
            else
                g_set_error_literal(error, SP_QMP_ERROR, code, json_object_get_string(desc));
            return NULL;
        }
    }
    g_autofree char *ex = sp_qmp_excerpt(text, len);
    g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_PROTOCOL, "not a QMP reply: %s", ex);
    return NULL;
}

/**
 * sp_qmp_parse_reply:
 * @text: one QMP reply, e.g. what libvirt's monitor passthrough returns
 *
 * Checks one reply as a command transport returns it; unknown members
 * (such as libvirt's "id") are ignored.
 *
 * Returns: (transfer full): the value of "return", or NULL with @error set:
 * the code of the error's class with its "desc" as message, or PROTOCOL for
 * text that is not a JSON object with a non-null "return" or a well-formed
 * "error", or that is longer than SP_QMP_MAX_LINE.
 */
json_object *
sp_qmp_parse_reply(const char *text, GError **error)
{
    g_autoptr(json_object) msg = NULL;
    GError *local = NULL;
    json_object *ret;

    if (strlen(text) > SP_QMP_MAX_LINE) {
        g_autofree char *ex = sp_qmp_excerpt(text, strlen(text));
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_PROTOCOL,
                    "a message longer than %d bytes (%zu): %s", SP_QMP_MAX_LINE,
                    strlen(text), ex);
        return NULL;
    }
    if (!(msg = sp_qmp_json_parse(text, strlen(text), error)))
        return NULL;
    ret = sp_qmp_reply_result(msg, text, strlen(text), &local);
    if (local) {
        g_propagate_error(error, local);
        return NULL;
    }
    /* "return": null is no valid QMP result; keep NULL meaning failure. */
    if (!ret) {
        g_autofree char *ex = sp_qmp_excerpt(text, strlen(text));
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_PROTOCOL, "null result: %s", ex);
    }
    return ret;
}

/* ---------------------------------------------------------------- UNIX socket */

typedef struct {
    SpQmpTransport parent;
    int fd;
} SpQmpSocket;

/* Wait until @fd is ready for @events or the deadline passes. */
static gboolean
sp_qmp_socket_wait(SpQmpSocket *s, short events, gint64 deadline, GError **error)
{
    for (;;) {
        struct pollfd pfd = { .fd = s->fd, .events = events };
        gint64 left = deadline - g_get_monotonic_time();
        int r;

        if (left <= 0) {
            g_set_error_literal(error, SP_QMP_ERROR, SP_QMP_ERROR_TIMEOUT, "timed out");
            return FALSE;
        }
        r = poll(&pfd, 1, (int)MIN((left + 999) / 1000, G_MAXINT));
        if (r > 0)
            return TRUE;    /* ready, or an error/hangup the next call reports */
        if (r < 0 && errno != EINTR) {
            int e = errno;
            g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_IO, "poll: %s", g_strerror(e));
            return FALSE;
        }
    }
}

static gboolean
sp_qmp_socket_send(SpQmpTransport *self, const char *data, gsize len, gint64 deadline,
                   GError **error)
{
    SpQmpSocket *s = (SpQmpSocket *)self;
    gsize done = 0;

    while (done < len) {
        ssize_t n = send(s->fd, data + done, len - done, MSG_NOSIGNAL);

        if (n >= 0) {
            done += n;
        } else if (errno == EAGAIN) {
            if (!sp_qmp_socket_wait(s, POLLOUT, deadline, error))
                return FALSE;
        } else if (errno != EINTR) {
            int e = errno;
            g_set_error(error, SP_QMP_ERROR, e == EPIPE ? SP_QMP_ERROR_CLOSED : SP_QMP_ERROR_IO,
                        "cannot write: %s", g_strerror(e));
            return FALSE;
        }
    }
    return TRUE;
}

static gssize
sp_qmp_socket_receive(SpQmpTransport *self, char *buf, gsize size, gint64 deadline,
                      GError **error)
{
    SpQmpSocket *s = (SpQmpSocket *)self;

    for (;;) {
        ssize_t n = recv(s->fd, buf, size, 0);

        if (n >= 0)
            return n;
        if (errno == EAGAIN) {
            if (!sp_qmp_socket_wait(s, POLLIN, deadline, error))
                return -1;
        } else if (errno != EINTR) {
            int e = errno;
            g_set_error(error, SP_QMP_ERROR, e == ECONNRESET ? SP_QMP_ERROR_CLOSED : SP_QMP_ERROR_IO,
                        "cannot read: %s", g_strerror(e));
            return -1;
        }
    }
}

static void
sp_qmp_socket_free(SpQmpTransport *self)
{
    SpQmpSocket *s = (SpQmpSocket *)self;

    if (s->fd >= 0)
        close(s->fd);
    g_free(self->name);
    g_free(s);
}

static const SpQmpTransportOps sp_qmp_socket_ops = {
    .send = sp_qmp_socket_send,
    .receive = sp_qmp_socket_receive,
    .free = sp_qmp_socket_free,
};

/**
 * sp_qmp_socket_connect:
 * @path: QEMU's QMP socket (`-qmp unix:PATH,server=on,wait=off`)
 *
 * Connects without waiting: a socket nobody listens on (ECONNREFUSED), a
 * missing one (ENOENT) or a full backlog (EAGAIN) fail at once with
 * SP_QMP_ERROR_CONNECT.
 *
 * Returns: (transfer full): a stream transport named @path.
 */
SpQmpTransport *
sp_qmp_socket_connect(const char *path, GError **error)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    SpQmpSocket *s;
    int fd;

    g_return_val_if_fail(path != NULL, NULL);
    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_CONNECT,
                    "QMP socket path is too long (%zu bytes, at most %zu): %s",
                    strlen(path), sizeof(addr.sun_path) - 1, path);
        return NULL;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_CONNECT,
                    "cannot create a socket for %s: %s", path, g_strerror(e));
        return NULL;
    }
    while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int e = errno;
        if (e == EINTR)
            continue;
        close(fd);
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_CONNECT,
                    "cannot connect to QMP socket %s: %s", path, g_strerror(e));
        return NULL;
    }
    s = g_new0(SpQmpSocket, 1);
    s->parent.ops = &sp_qmp_socket_ops;
    s->parent.name = g_strdup(path);
    s->fd = fd;
    g_debug("%s: connected", path);
    return &s->parent;
}

/* ---------------------------------------------------------------- events */

void
sp_qmp_event_free(SpQmpEvent *event)
{
    if (!event)
        return;
    g_free(event->name);
    if (event->data)
        json_object_put(event->data);
    g_free(event);
}

static void
sp_qmp_event_free_void(gpointer p)
{
    sp_qmp_event_free(p);
}

/**
 * sp_qmp_set_record_events:
 *
 * While on, events that arrive while SpQmp waits for a reply are kept (the
 * newest, at most SP_QMP_MAX_EVENTS of them and SP_QMP_MAX_EVENT_BYTES of
 * messages; a larger event is not kept) for sp_qmp_take_events().
 * Otherwise they are only logged.
 */
void
sp_qmp_set_record_events(SpQmp *qmp, gboolean record)
{
    qmp->record_events = record;
}

/**
 * sp_qmp_take_events:
 *
 * Returns: (transfer full): the events kept so far, oldest first, as
 * SpQmpEvent; the client's list is emptied.
 */
GPtrArray *
sp_qmp_take_events(SpQmp *qmp)
{
    GPtrArray *taken = g_steal_pointer(&qmp->events);

    qmp->events = g_ptr_array_new_with_free_func(sp_qmp_event_free_void);
    qmp->event_bytes = 0;
    return taken;
}

static gboolean
sp_qmp_handle_event(SpQmp *qmp, json_object *msg, const char *line, gsize len, GError **error)
{
    json_object *name = sp_qmp_member(msg, "event", json_type_string);
    json_object *ts = sp_qmp_member(msg, "timestamp", json_type_object);
    json_object *data = NULL;
    g_autoptr(SpQmpEvent) ev = NULL;
    guint64 v;

    if (!name) {
        g_autofree char *ex = sp_qmp_excerpt(line, len);
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_PROTOCOL,
                    "event without a name: %s", ex);
        return FALSE;
    }
    if (!qmp->record_events)
        return TRUE;
    if (len > SP_QMP_MAX_EVENT_BYTES) {
        g_debug("%s: not keeping a %s event of %zu bytes (more than %d)", qmp->transport->name,
                json_object_get_string(name), len, SP_QMP_MAX_EVENT_BYTES);
        return TRUE;
    }
    ev = g_new0(SpQmpEvent, 1);
    ev->size = len;
    ev->name = g_strdup(json_object_get_string(name));
    ev->seconds = ev->microseconds = -1;
    if (ts && sp_qmp_get_uint(ts, "seconds", G_MAXINT64, &v))
        ev->seconds = (gint64)v;
    if (ts && sp_qmp_get_uint(ts, "microseconds", G_MAXINT64, &v))
        ev->microseconds = (gint64)v;
    if (json_object_object_get_ex(msg, "data", &data) && data)
        ev->data = json_object_get(data);
    while (qmp->events->len > 0 && (qmp->events->len >= SP_QMP_MAX_EVENTS ||
                                    qmp->event_bytes + len > SP_QMP_MAX_EVENT_BYTES)) {
        const SpQmpEvent *old = g_ptr_array_index(qmp->events, 0);

        g_debug("%s: too many events kept, dropping the oldest", qmp->transport->name);
        qmp->event_bytes -= old->size;
        g_ptr_array_remove_index(qmp->events, 0);
    }
    qmp->event_bytes += len;
    g_ptr_array_add(qmp->events, g_steal_pointer(&ev));
    return TRUE;
}

/* ---------------------------------------------------------------- the stream */

/*
 * The timeout error while waiting for @what ("the QMP greeting", "the
 * reply to X").
 */
static void
sp_qmp_timeout_error(SpQmp *qmp, const char *what, GError **error)
{
    const char *name = qmp->transport->name;
    /* "no reply to X", not "no the reply to X" */
    const char *noun = g_str_has_prefix(what, "the ") ? what + strlen("the ") : what;

    if (qmp->in->len > 0 && !qmp->skipping) {
        g_autofree char *ex = sp_qmp_excerpt(qmp->in->str, qmp->in->len);
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_TIMEOUT,
                    "%s: %s did not arrive within %u ms (%zu bytes of an unfinished "
                    "message: %s)", name, what, qmp->timeout_ms, qmp->in->len, ex);
    } else {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_TIMEOUT, "%s: no %s within %u ms%s",
                    name, noun, qmp->timeout_ms,
                    qmp->have_version ? "" : " (is it a QMP socket?)");
    }
}

/* TRUE, with the timeout error, if @deadline has passed. */
static gboolean
sp_qmp_expired(SpQmp *qmp, gint64 deadline, const char *what, GError **error)
{
    if (g_get_monotonic_time() < deadline)
        return FALSE;
    sp_qmp_timeout_error(qmp, what, error);
    return TRUE;
}

/*
 * Drops what is buffered of a line that was too long, up to its end;
 * TRUE when the end was found.
 */
static gboolean
sp_qmp_skip_long_line(SpQmp *qmp)
{
    char *nl = memchr(qmp->in->str, '\n', qmp->in->len);

    if (!nl) {
        g_string_truncate(qmp->in, 0);
        return FALSE;
    }
    g_string_erase(qmp->in, 0, nl - qmp->in->str + 1);
    qmp->skipping = FALSE;
    return TRUE;
}

static void
sp_qmp_long_line_error(SpQmp *qmp, const char *what, GError **error)
{
    g_autofree char *ex = sp_qmp_excerpt(qmp->in->str, qmp->in->len);

    g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_PROTOCOL,
                "%s: waiting for %s: a message longer than %d bytes: %s",
                qmp->transport->name, what, SP_QMP_MAX_LINE, ex);
}

/*
 * The next complete line, without its "\r\n"; blank lines are skipped.
 * @what says what we wait for ("the QMP greeting", "the reply to X").
 * The buffer never holds more than SP_QMP_MAX_LINE + 2 bytes: a line that
 * does not fit is refused, and skipped up to its end by the next call.
 */
static char *
sp_qmp_read_line(SpQmp *qmp, gint64 deadline, const char *what, gsize *len, GError **error)
{
    const char *name = qmp->transport->name;
    gsize scanned = 0;

    if (qmp->closed) {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_CLOSED,
                    "%s: QEMU has closed the connection", name);
        return NULL;
    }
    for (;;) {
        char *nl;
        char buf[16384];
        GError *local = NULL;
        gsize want;
        gssize n;

        if (qmp->skipping && !sp_qmp_skip_long_line(qmp))
            scanned = 0;
        else if ((nl = memchr(qmp->in->str + scanned, '\n', qmp->in->len - scanned))) {
            gsize end = nl - qmp->in->str;
            gsize cut = end + 1;
            char *line;

            if (end > 0 && qmp->in->str[end - 1] == '\r')
                end--;
            if (end > SP_QMP_MAX_LINE) {
                sp_qmp_long_line_error(qmp, what, error);
                g_string_erase(qmp->in, 0, cut);
                return NULL;
            }
            line = g_strndup(qmp->in->str, end);
            *len = end;
            g_string_erase(qmp->in, 0, cut);
            scanned = 0;
            if (end == 0 || strspn(line, " \t\r") == end) {
                g_free(line);
                continue;
            }
            return line;
        } else {
            scanned = qmp->in->len;
            if (qmp->in->len >= SP_QMP_MAX_LINE + 2) {
                sp_qmp_long_line_error(qmp, what, error);
                qmp->skipping = TRUE;
                g_string_truncate(qmp->in, 0);
                return NULL;
            }
        }
        /* Before every read: a peer that never runs dry meets the deadline here. */
        if (sp_qmp_expired(qmp, deadline, what, error))
            return NULL;
        want = qmp->skipping ? sizeof(buf) : MIN(sizeof(buf), SP_QMP_MAX_LINE + 2 - qmp->in->len);
        n = qmp->transport->ops->receive(qmp->transport, buf, want, deadline, &local);
        if (n > 0) {
            g_string_append_len(qmp->in, buf, n);
            continue;
        }
        if (n == 0 || g_error_matches(local, SP_QMP_ERROR, SP_QMP_ERROR_CLOSED)) {
            qmp->closed = TRUE;
            if (qmp->in->len > 0 || qmp->skipping) {
                g_autofree char *ex = sp_qmp_excerpt(qmp->in->str, qmp->in->len);
                g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_CLOSED,
                            "%s: QEMU closed the connection in the middle of %s "
                            "(%zu bytes of a message: %s)", name, what, qmp->in->len, ex);
            } else {
                g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_CLOSED,
                            "%s: QEMU closed the connection before %s", name, what);
            }
            g_clear_error(&local);
            return NULL;
        }
        if (g_error_matches(local, SP_QMP_ERROR, SP_QMP_ERROR_TIMEOUT)) {
            g_clear_error(&local);
            sp_qmp_timeout_error(qmp, what, error);
            return NULL;
        }
        g_propagate_prefixed_error(error, local, "%s: waiting for %s: ", name, what);
        return NULL;
    }
}

static gboolean
sp_qmp_read_greeting(SpQmp *qmp, GError **error)
{
    const char *name = qmp->transport->name;
    gint64 deadline = g_get_monotonic_time() + (gint64)qmp->timeout_ms * 1000;
    g_autoptr(json_object) msg = NULL;
    g_autofree char *line = NULL;
    json_object *qmpobj, *version, *qemu;
    GError *local = NULL;
    guint64 v[3];
    gsize len;

    if (!(line = sp_qmp_read_line(qmp, deadline, "the QMP greeting", &len, error)))
        return FALSE;
    sp_qmp_log_traffic(name, "<-", line, len);
    if (!(msg = sp_qmp_json_parse(line, len, &local))) {
        g_propagate_prefixed_error(error, local, "%s: greeting: ", name);
        return FALSE;
    }
    qmpobj = sp_qmp_member(msg, "QMP", json_type_object);
    version = qmpobj ? sp_qmp_member(qmpobj, "version", json_type_object) : NULL;
    qemu = version ? sp_qmp_member(version, "qemu", json_type_object) : NULL;
    if (!qemu || !sp_qmp_member(qmpobj, "capabilities", json_type_array) ||
        !sp_qmp_get_uint(qemu, "major", G_MAXUINT, &v[0]) ||
        !sp_qmp_get_uint(qemu, "minor", G_MAXUINT, &v[1]) ||
        !sp_qmp_get_uint(qemu, "micro", G_MAXUINT, &v[2])) {
        g_autofree char *ex = sp_qmp_excerpt(line, len);
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_PROTOCOL,
                    "%s: not a QMP greeting: %s", name, ex);
        return FALSE;
    }
    for (guint i = 0; i < 3; i++)
        qmp->version[i] = (guint)v[i];
    qmp->have_version = TRUE;
    return TRUE;
}

/* Send @cmd with the next id and wait for its reply on a stream. */
static json_object *
sp_qmp_execute_stream(SpQmp *qmp, const char *command, json_object *cmd, gint64 deadline,
                      GError **error)
{
    const char *name = qmp->transport->name;
    gint64 id = qmp->next_id++;
    g_autofree char *what = g_strdup_printf("the reply to %s", command);
    g_autofree char *text = NULL;
    GError *local = NULL;

    json_object_object_add(cmd, "id", json_object_new_int64(id));
    text = g_strconcat(json_object_to_json_string_ext(cmd, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE),
                       "\n", NULL);
    sp_qmp_log_traffic(name, "->", text, strlen(text) - 1);
    if (qmp->closed) {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_CLOSED,
                    "%s: %s: QEMU has closed the connection", name, command);
        return NULL;
    }
    if (!qmp->transport->ops->send(qmp->transport, text, strlen(text), deadline, &local)) {
        if (g_error_matches(local, SP_QMP_ERROR, SP_QMP_ERROR_CLOSED))
            qmp->closed = TRUE;
        g_propagate_prefixed_error(error, local, "%s: %s: ", name, command);
        return NULL;
    }
    for (;;) {
        g_autofree char *line = NULL;
        g_autoptr(json_object) msg = NULL;
        json_object *rid = NULL;
        json_object *ret;
        gsize len;

        if (!(line = sp_qmp_read_line(qmp, deadline, what, &len, error)))
            return NULL;
        sp_qmp_log_traffic(name, "<-", line, len);
        if (!(msg = sp_qmp_json_parse(line, len, &local))) {
            g_propagate_prefixed_error(error, local, "%s: %s: ", name, command);
            return NULL;
        }
        if (json_object_object_get_ex(msg, "event", NULL)) {
            if (!sp_qmp_handle_event(qmp, msg, line, len, &local)) {
                g_propagate_prefixed_error(error, local, "%s: %s: ", name, command);
                return NULL;
            }
            if (sp_qmp_expired(qmp, deadline, what, error))
                return NULL;
            continue;
        }
        if (json_object_object_get_ex(msg, "id", &rid) &&
            !(json_object_is_type(rid, json_type_int) && json_object_get_int64(rid) == id)) {
            g_debug("%s: dropping a reply that is not for id %" G_GINT64_FORMAT, name, id);
            if (sp_qmp_expired(qmp, deadline, what, error))
                return NULL;
            continue;
        }
        ret = sp_qmp_reply_result(msg, line, len, &local);
        if (local) {
            g_propagate_prefixed_error(error, local, "%s: %s: ", name, command);
            return NULL;
        }
        if (!ret) {
            g_autofree char *ex = sp_qmp_excerpt(line, len);
            g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_PROTOCOL,
                        "%s: %s: null result: %s", name, command, ex);
        }
        return ret;
    }
}

/* ---------------------------------------------------------------- the client */

/**
 * sp_qmp_new:
 * @transport: (transfer full): a stream or command transport
 * @timeout_ms: how long one command (or the greeting) may take; 0 for
 *   SP_QMP_DEFAULT_TIMEOUT_MS
 *
 * On a stream, reads and checks the greeting and negotiates capabilities
 * (none are enabled).  @transport is freed on failure.
 *
 * Returns: (transfer full): the client, or NULL with @error set.
 */
SpQmp *
sp_qmp_new(SpQmpTransport *transport, guint timeout_ms, GError **error)
{
    g_autoptr(SpQmp) qmp = g_new0(SpQmp, 1);
    g_autoptr(json_object) ret = NULL;
    const SpQmpTransportOps *ops;

    g_return_val_if_fail(transport != NULL && transport->ops != NULL, NULL);
    ops = transport->ops;
    qmp->transport = transport;
    g_return_val_if_fail(ops->free != NULL, NULL);
    g_return_val_if_fail((ops->send && ops->receive) != (ops->command != NULL), NULL);
    qmp->timeout_ms = timeout_ms ? timeout_ms : SP_QMP_DEFAULT_TIMEOUT_MS;
    qmp->next_id = 1;
    qmp->in = g_string_new(NULL);
    qmp->events = g_ptr_array_new_with_free_func(sp_qmp_event_free_void);
    if (ops->command)
        return g_steal_pointer(&qmp);

    if (!sp_qmp_read_greeting(qmp, error))
        return NULL;
    if (!(ret = sp_qmp_execute(qmp, "qmp_capabilities", NULL, error)))
        return NULL;
    g_debug("%s: QEMU %u.%u.%u, capabilities negotiated", transport->name,
            qmp->version[0], qmp->version[1], qmp->version[2]);
    return g_steal_pointer(&qmp);
}

/**
 * sp_qmp_connect_unix:
 * @path: QEMU's QMP socket
 * @timeout_ms: see sp_qmp_new()
 *
 * Returns: (transfer full): a client that has negotiated capabilities.
 */
SpQmp *
sp_qmp_connect_unix(const char *path, guint timeout_ms, GError **error)
{
    SpQmpTransport *t = sp_qmp_socket_connect(path, error);

    return t ? sp_qmp_new(t, timeout_ms, error) : NULL;
}

void
sp_qmp_free(SpQmp *qmp)
{
    if (!qmp)
        return;
    if (qmp->transport)
        qmp->transport->ops->free(qmp->transport);
    if (qmp->in)
        g_string_free(qmp->in, TRUE);
    if (qmp->events)
        g_ptr_array_unref(qmp->events);
    g_free(qmp);
}

const char *
sp_qmp_get_name(const SpQmp *qmp)
{
    return qmp->transport->name;
}

void
sp_qmp_set_timeout(SpQmp *qmp, guint timeout_ms)
{
    qmp->timeout_ms = timeout_ms ? timeout_ms : SP_QMP_DEFAULT_TIMEOUT_MS;
}

/**
 * sp_qmp_get_version:
 *
 * Returns: TRUE and QEMU's version from the greeting; FALSE on a command
 * transport, which sees no greeting.
 */
gboolean
sp_qmp_get_version(const SpQmp *qmp, guint *major, guint *minor, guint *micro)
{
    if (!qmp->have_version)
        return FALSE;
    *major = qmp->version[0];
    *minor = qmp->version[1];
    *micro = qmp->version[2];
    return TRUE;
}

/**
 * sp_qmp_execute:
 * @command: the QMP command name
 * @arguments: (nullable): its "arguments" object (borrowed)
 *
 * Runs one command and waits, at most the timeout, for its reply.
 *
 * Returns: (transfer full): the value of "return", or NULL with @error
 * set: the code of the error class for an {"error": ...} reply, with its
 * "desc" in the message; PROTOCOL, CLOSED, TIMEOUT or IO otherwise.
 */
json_object *
sp_qmp_execute(SpQmp *qmp, const char *command, json_object *arguments, GError **error)
{
    const SpQmpTransportOps *ops = qmp->transport->ops;
    const char *name = qmp->transport->name;
    gint64 deadline = g_get_monotonic_time() + (gint64)qmp->timeout_ms * 1000;
    g_autoptr(json_object) cmd = json_object_new_object();
    g_autofree char *reply = NULL;
    GError *local = NULL;
    json_object *ret;

    g_return_val_if_fail(command != NULL, NULL);
    json_object_object_add(cmd, "execute", json_object_new_string(command));
    if (arguments)
        json_object_object_add(cmd, "arguments", json_object_get(arguments));
    if (!ops->command)
        return sp_qmp_execute_stream(qmp, command, cmd, deadline, error);

    const char *text = json_object_to_json_string_ext(cmd, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE);
    sp_qmp_log_traffic(name, "->", text, strlen(text));
    if (!(reply = ops->command(qmp->transport, text, deadline, &local))) {
        g_propagate_prefixed_error(error, local, "%s: %s: ", name, command);
        return NULL;
    }
    sp_qmp_log_traffic(name, "<-", reply, strlen(reply));
    if (g_get_monotonic_time() >= deadline) {
        g_autofree char *what = g_strdup_printf("the reply to %s", command);
        sp_qmp_timeout_error(qmp, what, error);
        return NULL;
    }
    if (!(ret = sp_qmp_parse_reply(reply, &local))) {
        g_propagate_prefixed_error(error, local, "%s: %s: ", name, command);
        return NULL;
    }
    return ret;
}

/**
 * sp_qmp_get_peer_pid:
 *
 * The pid of the process at the other end of a socket transport (QEMU
 * itself), from SO_PEERCRED; 0 for other transports.
 */
pid_t
sp_qmp_get_peer_pid(const SpQmp *qmp)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    const SpQmpSocket *s;

    if (qmp->transport->ops != &sp_qmp_socket_ops)
        return 0;
    s = (const SpQmpSocket *)qmp->transport;
    if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return 0;
    return cred.pid;
}
