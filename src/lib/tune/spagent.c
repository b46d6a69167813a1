/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spagent.c: the client side of samepaged's control socket
 *
 * Blocking, with a deadline: for command-line tools and the hook, never for
 * the daemon's own loop.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-agent"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "samepage/spagent.h"

G_DEFINE_QUARK(sp-agent-error-quark, sp_agent_error)

char *
sp_agent_default_socket(const SpHost *host)
{
    return sp_host_run_path(host, "samepage/samepaged.sock");
}

static int
remaining_ms(gint64 deadline)
{
    gint64 left = (deadline - g_get_monotonic_time()) / 1000;
    return left < 0 ? 0 : (int)left;
}

/* Waits for @events on @fd until @deadline. */
static gboolean
wait_fd(int fd, short events, gint64 deadline, const char *path, GError **error)
{
    struct pollfd p = { .fd = fd, .events = events };
    int r;

    do {
        r = poll(&p, 1, remaining_ms(deadline));
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_IO, "%s: %s", path,
                    r == 0 ? "samepaged did not answer in time" : g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

json_object *
sp_agent_call(const char *path, json_object *request, guint timeout_ms, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    g_autofree char *line = NULL;
    g_autoptr(GString) in = g_string_new(NULL);
    g_autoptr(json_object) reply = NULL;
    json_object *ok = NULL, *msg = NULL;
    gsize off = 0, len;
    int fd, saved;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_IO, "%s: socket path too long", path);
        return NULL;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_IO, "socket: %s", g_strerror(errno));
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS &&
        errno != EAGAIN) {
        saved = errno;
        close(fd);
        g_set_error(error, SP_AGENT_ERROR,
                    saved == ENOENT || saved == ECONNREFUSED ? SP_AGENT_ERROR_NOT_RUNNING
                                                             : SP_AGENT_ERROR_IO,
                    "%s: %s%s", path, g_strerror(saved),
                    saved == ENOENT || saved == ECONNREFUSED ? " (is samepaged running?)" : "");
        return NULL;
    }
    line = g_strdup_printf("%s\n", json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN));
    len = strlen(line);
    while (off < len) {
        ssize_t n;
        if (!wait_fd(fd, POLLOUT, deadline, path, error))
            goto fail;
        n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0) {
            g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_IO, "%s: %s", path,
                        g_strerror(errno));
            goto fail;
        }
        off += (gsize)n;
    }
    while (!memchr(in->str, '\n', in->len)) {
        char buf[4096];
        ssize_t n;

        if (in->len > SP_AGENT_LINE_MAX * 16) {
            g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_PROTOCOL,
                        "%s: reply line over %d bytes", path, SP_AGENT_LINE_MAX * 16);
            goto fail;
        }
        if (!wait_fd(fd, POLLIN, deadline, path, error))
            goto fail;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_IO, "%s: %s", path,
                        n == 0 ? "samepaged closed the connection" : g_strerror(errno));
            goto fail;
        }
        g_string_append_len(in, buf, n);
    }
    close(fd);
    *strchr(in->str, '\n') = '\0';
    reply = json_tokener_parse(in->str);
    if (!reply || !json_object_is_type(reply, json_type_object) ||
        !json_object_object_get_ex(reply, "ok", &ok) ||
        !json_object_is_type(ok, json_type_boolean)) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_PROTOCOL,
                    "%s: the reply is not a samepaged reply", path);
        return NULL;
    }
    if (!json_object_get_boolean(ok)) {
        json_object_object_get_ex(reply, "error", &msg);
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_REFUSED, "samepaged: %s",
                    msg ? json_object_get_string(msg) : "request refused");
        return NULL;
    }
    return g_steal_pointer(&reply);

fail:
    close(fd);
    return NULL;
}
