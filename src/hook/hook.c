/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hook.c: the libvirt hook's decisions (pure) and its socket client
 *
 * The client uses plain non-blocking descriptors and poll(2) against one
 * deadline: a samepaged that accepts and never answers costs the guest's
 * start at most SP_HOOK_TIMEOUT_MS, and one that is absent costs nothing.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "samepage/spjson.h"
#include "hook.h"

G_DEFINE_QUARK(sp-hook-error-quark, sp_hook_error)

/* ---------------------------------------------------------------- decisions */

static const struct {
    const char *operation;
    const char *phase;
    SpHookAction action;
} sp_hook_table[] = {
    { "prepare", "begin", { TRUE, TRUE, TRUE, 0 } },
    { "started", "begin", { TRUE, TRUE, FALSE, SP_HOOK_NOTIFY_REPLY_MS } },
    { "stopped", "end", { TRUE, TRUE, FALSE, SP_HOOK_NOTIFY_REPLY_MS } },
    { "release", "end", { TRUE, TRUE, FALSE, SP_HOOK_NOTIFY_REPLY_MS } },
};

gboolean
sp_hook_action(const char *operation, const char *phase, SpHookAction *action)
{
    memset(action, 0, sizeof *action);
    if (!operation || !phase)
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(sp_hook_table); i++) {
        if (g_str_equal(operation, sp_hook_table[i].operation)
            && g_str_equal(phase, sp_hook_table[i].phase)) {
            *action = sp_hook_table[i].action;
            return TRUE;
        }
    }
    return FALSE;
}

char *
sp_hook_request_line(const char *domain, const char *uuid, const char *operation,
                     const char *phase)
{
    g_autoptr(json_object) req = json_object_new_object();
    g_autofree char *valid_domain = g_utf8_make_valid(domain ? domain : "", -1);

    json_object_object_add(req, "request", json_object_new_string("hook"));
    json_object_object_add(req, "domain", json_object_new_string(valid_domain));
    if (uuid)
        json_object_object_add(req, "uuid", json_object_new_string(uuid));
    json_object_object_add(req, "operation", json_object_new_string(operation));
    json_object_object_add(req, "phase", json_object_new_string(phase));
    return g_strdup_printf("%s\n", json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
}

gboolean
sp_hook_parse_reply(const char *line, char **error)
{
    g_autoptr(json_object) reply = NULL;
    json_object *ok, *msg;
    enum json_tokener_error jerr;

    reply = json_tokener_parse_verbose(line, &jerr);
    if (!reply || !json_object_is_type(reply, json_type_object)) {
        *error = g_strdup(reply ? "a reply that is not a JSON object"
                                : "a reply that is not JSON");
        return FALSE;
    }
    if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_is_type(ok, json_type_boolean)) {
        *error = g_strdup("a reply without a boolean \"ok\"");
        return FALSE;
    }
    if (json_object_get_boolean(ok))
        return TRUE;
    if (json_object_object_get_ex(reply, "error", &msg) && json_object_is_type(msg, json_type_string))
        *error = g_strdup_printf("samepaged refused: %s", json_object_get_string(msg));
    else
        *error = g_strdup("samepaged refused, without saying why");
    return FALSE;
}

char *
sp_hook_socket_path(const char *env_socket, GKeyFile *config, const char *env_rundir)
{
    g_autofree char *from_config = NULL;

    if (env_socket && *env_socket)
        return g_strdup(env_socket);
    if (config)
        from_config = g_key_file_get_string(config, "daemon", "socket", NULL);
    if (from_config) {
        g_strstrip(from_config);
        if (*from_config)
            return g_steal_pointer(&from_config);
    }
    return g_build_filename(env_rundir && *env_rundir ? env_rundir : "/run",
                            "samepage", "samepaged.sock", NULL);
}

int
sp_hook_verdict(const SpHookAction *action, const char *domain, const SpDomainPolicy *policy,
                const char *policy_error, gboolean delivered, const char *daemon_error,
                const char *socket_path, char **message)
{
    g_autofree char *name = g_strescape(domain ? domain : "", NULL);

    *message = NULL;
    if (action->gate && policy && policy->merge == SP_POLICY_MERGE_REQUIRED && !delivered) {
        *message = g_strdup_printf("samepage: refusing to start guest \"%s\": its policy says "
                                   "merge=\"required\" and samepaged at %s did not take it "
                                   "(%s)", name, socket_path,
                                   daemon_error ? daemon_error : "no answer");
        return 1;
    }
    if (action->gate && !policy && policy_error)
        *message = g_strdup_printf("samepage: guest \"%s\": cannot read its policy (%s); "
                                   "starting it anyway", name, policy_error);
    else if (action->forward && !delivered)
        *message = g_strdup_printf("samepage: guest \"%s\": samepaged at %s did not confirm (%s); "
                                   "it will catch up from libvirt's events", name, socket_path,
                                   daemon_error ? daemon_error : "no answer");
    return 0;
}

/* ---------------------------------------------------------------- I/O */


/* Milliseconds left before @deadline, for poll(); 0 if past. */
static int
ms_left(gint64 deadline)
{
    gint64 left = deadline - g_get_monotonic_time();

    return left <= 0 ? 0 : (int)((left + 999) / 1000);
}

/* Waits for @events on @fd until @deadline; FALSE with errno ETIMEDOUT. */
static gboolean
wait_fd(int fd, short events, gint64 deadline)
{
    struct pollfd p = { .fd = fd, .events = events };

    for (;;) {
        int n = poll(&p, 1, ms_left(deadline));
        if (n > 0)
            return TRUE;
        if (n == 0) {
            errno = ETIMEDOUT;
            return FALSE;
        }
        if (errno != EINTR)
            return FALSE;
    }
}

gboolean
sp_hook_read_fd(int fd, gsize max, gint64 deadline, char **text, GError **error)
{
    g_autoptr(GString) buf = g_string_new(NULL);
    int flags = fcntl(fd, F_GETFL);
    char chunk[16384];

    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    for (;;) {
        gssize n = read(fd, chunk, sizeof chunk);

        if (n > 0) {
            if (buf->len + n > max) {
                g_set_error(error, SP_HOOK_ERROR, 0, "more than %zu bytes on stdin", max);
                return FALSE;
            }
            g_string_append_len(buf, chunk, n);
            continue;
        }
        if (n == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || !wait_fd(fd, POLLIN, deadline)) {
            int e = errno;
            g_set_error(error, SP_HOOK_ERROR, 0, "reading stdin: %s",
                        e == ETIMEDOUT ? "timed out" : g_strerror(e));
            return FALSE;
        }
    }
    *text = g_string_free(g_steal_pointer(&buf), FALSE);
    return TRUE;
}

gboolean
sp_hook_talk(const char *path, const char *line, gint64 deadline, guint reply_ms,
             gboolean *sent, char **reply, GError **error)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_autoptr(GString) in = g_string_new(NULL);
    gsize len = strlen(line), off = 0;
    int fd, e;

    *sent = FALSE;
    if (strlen(path) >= sizeof addr.sun_path) {
        g_set_error(error, SP_HOOK_ERROR, 0, "socket path %s is too long", path);
        return FALSE;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        e = errno;
        g_set_error(error, SP_HOOK_ERROR, 0, "socket: %s", g_strerror(e));
        return FALSE;
    }
    /* A UNIX connect does not go "in progress": EAGAIN is a full backlog
     * (a daemon that does not accept); retry until the deadline. */
    while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        e = errno;
        if (e == EINTR)
            continue;
        if ((e == EAGAIN || e == EINPROGRESS) && ms_left(deadline) > 0) {
            g_usleep(10 * 1000);
            continue;
        }
        g_set_error(error, SP_HOOK_ERROR, 0, "connect: %s",
                    e == EAGAIN ? "its backlog is full (not accepting)" : g_strerror(e));
        goto fail;
    }
    while (off < len) {
        gssize n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += n;
            continue;
        }
        e = errno;
        if (n < 0 && e == EINTR)
            continue;
        if (n < 0 && e == EAGAIN && wait_fd(fd, POLLOUT, deadline))
            continue;
        e = errno;
        g_set_error(error, SP_HOOK_ERROR, 0, "sending the request: %s",
                    e == ETIMEDOUT ? "timed out" : g_strerror(e));
        goto fail;
    }
    *sent = TRUE;
    if (reply_ms)
        deadline = MIN(deadline, g_get_monotonic_time() + reply_ms * G_TIME_SPAN_MILLISECOND);
    while (!memchr(in->str, '\n', in->len)) {
        char chunk[4096];
        gssize n = recv(fd, chunk, sizeof chunk, 0);

        if (n > 0) {
            g_string_append_len(in, chunk, n);
            if (in->len > SP_HOOK_MAX_LINE) {
                g_set_error(error, SP_HOOK_ERROR, 0, "a reply longer than %d bytes",
                            SP_HOOK_MAX_LINE);
                goto fail;
            }
            continue;
        }
        if (n == 0) {
            g_set_error(error, SP_HOOK_ERROR, 0, "it closed the connection without a reply");
            goto fail;
        }
        e = errno;
        if (e == EINTR)
            continue;
        if (e == EAGAIN && wait_fd(fd, POLLIN, deadline))
            continue;
        e = errno;
        if (e == ETIMEDOUT && reply_ms)
            g_set_error(error, SP_HOOK_ERROR, 0, "request sent, no reply within %u ms",
                        reply_ms);
        else if (e == ETIMEDOUT)
            g_set_error(error, SP_HOOK_ERROR, 0, "no reply in time (the hook waits %d ms in all)",
                        SP_HOOK_TIMEOUT_MS);
        else
            g_set_error(error, SP_HOOK_ERROR, 0, "reading the reply: %s", g_strerror(e));
        goto fail;
    }
    close(fd);
    g_string_truncate(in, (char *)memchr(in->str, '\n', in->len) - in->str);
    *reply = g_string_free(g_steal_pointer(&in), FALSE);
    return TRUE;

fail:
    close(fd);
    return FALSE;
}
