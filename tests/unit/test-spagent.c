/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spagent.c: samepaged's socket client against a fake server in a
 * thread: a reply, an error reply, garbage, silence (the timeout), a
 * closed connection, no socket at all
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sptest.h"
#include "samepage/spagent.h"

typedef struct {
    int listen_fd;
    const char *reply;      /* sent after one request line; NULL: close at once */
    gboolean silent;        /* read the request, answer nothing */
    char *request;          /* what the server read */
} Fake;

static gpointer
fake_server(gpointer data)
{
    Fake *f = data;
    int fd = accept(f->listen_fd, NULL, NULL);
    GString *in = g_string_new(NULL);
    char buf[1024];
    ssize_t n;

    if (fd < 0) {
        g_string_free(in, TRUE);
        return NULL;
    }
    if (f->reply || f->silent) {
        while (!strchr(in->str, '\n') && (n = read(fd, buf, sizeof(buf))) > 0)
            g_string_append_len(in, buf, n);
        f->request = g_strdup(in->str);
    }
    if (f->reply)
        (void)!write(fd, f->reply, strlen(f->reply));
    if (f->silent)
        g_usleep(600 * 1000);
    close(fd);
    g_string_free(in, TRUE);
    return NULL;
}

static char *
start_fake(Fake *f, GThread **thread, char **dir)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *path;

    *dir = g_dir_make_tmp("spagent-XXXXXX", NULL);
    path = g_build_filename(*dir, "s.sock", NULL);
    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->listen_fd >= 0);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->listen_fd, 1), 0);
    *thread = g_thread_new("fake", fake_server, f);
    return path;
}

/* Joins the server; @want_request: what it must have read, or NULL. */
static void
stop_fake(Fake *f, GThread *thread, char *path, char *dir, const char *want_request)
{
    g_thread_join(thread);
    if (want_request)
        assert_string_equal(f->request, want_request);
    close(f->listen_fd);
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
    g_free(f->request);
}

static json_object *
status_request(void)
{
    json_object *req = json_object_new_object();
    json_object_object_add(req, "request", json_object_new_string("status"));
    return req;
}

static void
test_reply(void **state)
{
    Fake f = { .reply = "{\"ok\":true,\"format\":1}\n" };
    GThread *t;
    char *dir, *path = start_fake(&f, &t, &dir);
    g_autoptr(json_object) req = status_request();
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) reply = sp_agent_call(path, req, 5000, &error);
    json_object *v;

    assert_non_null(reply);
    assert_true(json_object_object_get_ex(reply, "format", &v));
    assert_int_equal(json_object_get_int(v), 1);
    stop_fake(&f, t, path, dir, NULL);
}

static void
test_request_line(void **state)
{
    Fake f = { .reply = "{\"ok\":true}\n" };
    GThread *t;
    char *dir, *path = start_fake(&f, &t, &dir);
    g_autoptr(json_object) req = status_request();
    g_autoptr(json_object) reply = sp_agent_call(path, req, 5000, NULL);

    assert_non_null(reply);
    stop_fake(&f, t, path, dir, "{\"request\":\"status\"}\n");
}

static void
test_refused(void **state)
{
    Fake f = { .reply = "{\"ok\":false,\"error\":\"unknown request\"}\n" };
    GThread *t;
    char *dir, *path = start_fake(&f, &t, &dir);
    g_autoptr(json_object) req = status_request();
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) reply = sp_agent_call(path, req, 5000, &error);

    assert_null(reply);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_REFUSED));
    assert_string_equal(error->message, "samepaged: unknown request");
    stop_fake(&f, t, path, dir, NULL);
}

static void
test_garbage(void **state)
{
    static const char *const bad[] = { "garbage\n", "[1,2]\n", "{\"ok\":1}\n", "{}\n" };

    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        Fake f = { .reply = bad[i] };
        GThread *t;
        char *dir, *path = start_fake(&f, &t, &dir);
        g_autoptr(json_object) req = status_request();
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) reply = sp_agent_call(path, req, 5000, &error);

        assert_null(reply);
        assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_PROTOCOL));
        stop_fake(&f, t, path, dir, NULL);
    }
}

static void
test_timeout_and_close(void **state)
{
    Fake slow = { .silent = TRUE };
    Fake gone = { .reply = NULL };
    GThread *t;
    char *dir, *path = start_fake(&slow, &t, &dir);
    g_autoptr(json_object) req = status_request();
    g_autoptr(GError) error = NULL;
    gint64 t0 = g_get_monotonic_time();
    json_object *reply = sp_agent_call(path, req, 200, &error);

    assert_null(reply);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_IO));
    assert_non_null(strstr(error->message, "did not answer in time"));
    assert_true(g_get_monotonic_time() - t0 < 550 * 1000);
    stop_fake(&slow, t, path, dir, NULL);
    g_clear_error(&error);

    path = start_fake(&gone, &t, &dir);
    reply = sp_agent_call(path, req, 2000, &error);
    assert_null(reply);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_IO));
    stop_fake(&gone, t, path, dir, NULL);
}

static void
test_not_running(void **state)
{
    g_autoptr(json_object) req = status_request();
    g_autoptr(GError) error = NULL;
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent-sys", "/nonexistent-proc");
    g_autofree char *path = NULL;

    sp_host_set_run_root(host, "/nonexistent-run");
    path = sp_agent_default_socket(host);
    assert_string_equal(path, "/nonexistent-run/samepage/samepaged.sock");
    assert_null(sp_agent_call(path, req, 1000, &error));
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_NOT_RUNNING));
    assert_non_null(strstr(error->message, "is samepaged running?"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_timeout_and_close),
        cmocka_unit_test(test_not_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
