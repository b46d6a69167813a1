/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spmetricsserver.c: SpMetricsServer on 127.0.0.1:0
 *
 * The server runs on this thread's GMainLoop, as in samepaged; each client
 * is a GSocketClient in a second thread (blocking there is fine), which
 * quits the loop when it has its answer.  So a server that blocked the
 * loop would hang the test, and one that answered wrongly fails it.
 */
#include "config.h"

#include <gio/gio.h>

#include "samepage/spmetricsserver.h"
#include "sptest.h"

typedef struct {
    GMainLoop *loop;
    guint16 port;
    char *request;            /* sent as is */
    gsize request_len;
    gboolean send_nothing;    /* connect, then wait for the server to close */
    char *reply;              /* everything read until EOF */
    gint64 elapsed_us;        /* connect to EOF */
    GError *error;
} SpClient;

static gboolean
quit_loop(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

static gpointer
client_thread(gpointer data)
{
    SpClient *c = data;
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketConnection) conn = NULL;
    GString *reply = g_string_new(NULL);
    gint64 t0 = g_get_monotonic_time();
    char buf[4096];
    gssize n;

    g_socket_client_set_timeout(client, 20);
    conn = g_socket_client_connect_to_host(client, "127.0.0.1", c->port, NULL, &c->error);
    if (conn) {
        GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
        GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));

        if (!c->send_nothing)
            g_output_stream_write_all(out, c->request, c->request_len, NULL, NULL, &c->error);
        while (!c->error && (n = g_input_stream_read(in, buf, sizeof buf, NULL, &c->error)) > 0)
            g_string_append_len(reply, buf, n);
    }
    c->elapsed_us = g_get_monotonic_time() - t0;
    c->reply = g_string_free(reply, FALSE);
    g_main_context_invoke(NULL, quit_loop, c->loop);
    return NULL;
}

/* Sends @request to the server from another thread while the loop runs;
 * a client error fails the test unless @error is given. */
static char *
fetch_full(SpMetricsServer *server, const char *request, gsize len, gint64 *elapsed_us,
           GError **error)
{
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    SpClient c = { .loop = loop, .port = sp_metrics_server_get_port(server),
                   .request = (char *)request, .request_len = len,
                   .send_nothing = request == NULL };
    GThread *t = g_thread_new("client", client_thread, &c);

    g_main_loop_run(loop);
    g_thread_join(t);
    if (c.error && error)
        g_propagate_error(error, c.error);
    else if (c.error)
        fail_msg("client: %s", c.error->message);
    if (elapsed_us)
        *elapsed_us = c.elapsed_us;
    return c.reply;
}

static char *
fetch(SpMetricsServer *server, const char *request, gsize len, gint64 *elapsed_us)
{
    return fetch_full(server, request, len, elapsed_us, NULL);
}

static char *
get(SpMetricsServer *server, const char *request)
{
    return fetch(server, request, strlen(request), NULL);
}

static char *
get_timed(SpMetricsServer *server, const char *request, gint64 *elapsed_us)
{
    return fetch(server, request, strlen(request), elapsed_us);
}

typedef struct {
    guint calls;
    gboolean fail;
    gboolean freed;
} SpRenderState;

static char *
render(gpointer data)
{
    SpRenderState *r = data;

    r->calls++;
    if (r->fail)
        return NULL;
    return g_strdup_printf("# HELP samepage_test A test.\n# TYPE samepage_test gauge\n"
                           "samepage_test %u\n", r->calls);
}

static void
render_freed(gpointer data)
{
    ((SpRenderState *)data)->freed = TRUE;
}

/* Lets cancelled connections finish their callbacks (and free themselves). */
static void
drain(void)
{
    for (int i = 0; i < 200; i++) {
        while (g_main_context_iteration(NULL, FALSE))
            ;
        g_usleep(1000);
    }
}

static SpMetricsServer *
start(SpRenderState *r)
{
    g_autoptr(GError) error = NULL;
    SpMetricsServer *s = sp_metrics_server_new("127.0.0.1:0", render, r, render_freed, &error);

    if (!s)
        fail_msg("%s", error->message);
    assert_true(sp_metrics_server_get_port(s) > 0);
    return s;
}

static void
stop(SpMetricsServer *s, SpRenderState *r)
{
    sp_metrics_server_free(s);
    assert_true(r->freed);
    drain();
}

static void
assert_status(const char *reply, const char *status_line)
{
    if (!g_str_has_prefix(reply, status_line))
        fail_msg("want %s, got:\n%s", status_line, reply);
}

static void
test_get_metrics(void **state)
{
    SpRenderState r = { 0 };
    SpMetricsServer *s = start(&r);
    g_autofree char *a = NULL, *b = NULL, *h = NULL, *q = NULL;
    g_autofree char *want_addr = NULL;

    (void)state;
    a = get(s, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
    assert_status(a, "HTTP/1.1 200 OK\r\n");
    assert_non_null(strstr(a, "\r\nContent-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(a, "\r\nContent-Length: 72\r\n"));
    assert_true(g_str_has_suffix(a, "\r\n\r\n# HELP samepage_test A test.\n"
                                    "# TYPE samepage_test gauge\nsamepage_test 1\n"));
    /* each scrape calls the callback again; bare \n line ends and HTTP/1.0 */
    b = get(s, "GET /metrics HTTP/1.0\n\n");
    assert_status(b, "HTTP/1.1 200 OK\r\n");
    assert_true(g_str_has_suffix(b, "samepage_test 2\n"));
    /* a query string is ignored */
    q = get(s, "GET /metrics?name[]=x HTTP/1.1\r\n\r\n");
    assert_true(g_str_has_suffix(q, "samepage_test 3\n"));
    /* HEAD: the headers only */
    h = get(s, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_status(h, "HTTP/1.1 200 OK\r\n");
    assert_true(g_str_has_suffix(h, "\r\n\r\n"));
    assert_int_equal(r.calls, 4);
    assert_int_equal(sp_metrics_server_get_requests(s), 4);
    want_addr = g_strdup_printf("127.0.0.1:%u", sp_metrics_server_get_port(s));
    assert_string_equal(sp_metrics_server_get_address(s), want_addr);
    stop(s, &r);
}

/* The request arrives in pieces, one byte at a time would be slow: three. */
static void
test_split_request(void **state)
{
    SpRenderState r = { 0 };
    SpMetricsServer *s = start(&r);
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketConnection) conn = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *rest = NULL;

    (void)state;
    /* the loop is not running while we send: the pieces queue up, and the
     * server must still find the end of the head across reads */
    conn = g_socket_client_connect_to_host(client, "127.0.0.1",
                                           sp_metrics_server_get_port(s), NULL, &error);
    assert_non_null(conn);
    for (int i = 0; i < 3; i++) {
        static const char *const piece[] = { "GET /met", "rics HTTP/1.1\r\nHost: x\r", "\n\r\n" };
        GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
        assert_true(g_output_stream_write_all(out, piece[i], strlen(piece[i]), NULL, NULL,
                                              &error));
        g_output_stream_flush(out, NULL, NULL);
        for (int k = 0; k < 20; k++) {
            g_main_context_iteration(NULL, FALSE);
            g_usleep(1000);
        }
    }
    for (int k = 0; k < 2000 && r.calls == 0; k++) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
    assert_int_equal(r.calls, 1);
    g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
    stop(s, &r);
}

static void
test_errors(void **state)
{
    SpRenderState r = { 0 };
    SpMetricsServer *s = start(&r);
    g_autofree char *nf = NULL, *root = NULL, *post = NULL, *bad = NULL, *v2 = NULL;
    g_autofree char *prefix = NULL, *fail = NULL;

    (void)state;
    nf = get(s, "GET /metricsx HTTP/1.1\r\n\r\n");
    assert_status(nf, "HTTP/1.1 404 Not Found\r\n");
    root = get(s, "GET / HTTP/1.1\r\n\r\n");
    assert_status(root, "HTTP/1.1 404 Not Found\r\n");
    prefix = get(s, "GET /metrics/../etc/passwd HTTP/1.1\r\n\r\n");
    assert_status(prefix, "HTTP/1.1 404 Not Found\r\n");
    post = get(s, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_status(post, "HTTP/1.1 405 Method Not Allowed\r\n");
    assert_non_null(strstr(post, "\r\nAllow: GET, HEAD\r\n"));
    bad = get(s, "GARBAGE\r\n\r\n");
    assert_status(bad, "HTTP/1.1 400 Bad Request\r\n");
    v2 = get(s, "GET /metrics HTTP/2.0\r\n\r\n");
    assert_status(v2, "HTTP/1.1 505 ");
    assert_int_equal(r.calls, 0);          /* none of these renders */
    r.fail = TRUE;
    fail = get(s, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_status(fail, "HTTP/1.1 500 Internal Server Error\r\n");
    assert_int_equal(r.calls, 1);
    stop(s, &r);
}

/* A head longer than 8 KiB gets 431, and the reply is not lost to a reset
 * although the client keeps sending. */
static void
test_oversized(void **state)
{
    SpRenderState r = { 0 };
    SpMetricsServer *s = start(&r);
    GString *req = g_string_new("GET /metrics HTTP/1.1\r\n");
    g_autofree char *reply = NULL;

    (void)state;
    while (req->len < 3 * SP_METRICS_MAX_REQUEST)
        g_string_append(req, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    g_string_append(req, "\r\n");
    reply = fetch(s, req->str, req->len, NULL);
    assert_status(reply, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
    assert_int_equal(r.calls, 0);
    g_string_free(req, TRUE);
    stop(s, &r);
}

/* A client that connects and says nothing is closed after the timeout;
 * meanwhile the loop keeps serving others. */
static void
test_idle_timeout(void **state)
{
    SpRenderState r = { 0 };
    SpMetricsServer *s = start(&r);
    g_autofree char *reply = NULL;
    gint64 us = 0;

    (void)state;
    sp_metrics_server_set_timeout(s, 300);
    reply = fetch(s, NULL, 0, &us);
    assert_string_equal(reply, "");
    print_message("idle client closed after %.0f ms (timeout 300)\n", us / 1000.0);
    assert_true(us >= 250 * 1000);
    assert_true(us < 5000 * 1000);
    stop(s, &r);
}

/* Idle connections do not hold up a scrape (nothing blocks the loop), and
 * past SP_METRICS_MAX_CLIENTS open ones a new connection is closed at once
 * rather than queued. */
static void
test_busy(void **state)
{
    SpRenderState r = { 0 };
    SpMetricsServer *s = start(&r);
    g_autoptr(GSocketClient) client = g_socket_client_new();
    GSocketConnection *idle[SP_METRICS_MAX_CLIENTS];
    g_autofree char *first = NULL, *refused = NULL;
    g_autoptr(GError) error = NULL;
    gint64 us = 0;

    (void)state;
    for (guint i = 0; i < SP_METRICS_MAX_CLIENTS; i++) {
        g_autoptr(GError) cerr = NULL;

        idle[i] = g_socket_client_connect_to_host(client, "127.0.0.1",
                                                  sp_metrics_server_get_port(s), NULL, &cerr);
        assert_non_null(idle[i]);
        for (int k = 0; k < 5; k++) {
            g_main_context_iteration(NULL, FALSE);
            g_usleep(1000);
        }
        if (i == 0) {
            /* one silent client: a scrape is answered at once all the same */
            first = get_timed(s, "GET /metrics HTTP/1.1\r\n\r\n", &us);
            assert_status(first, "HTTP/1.1 200 OK\r\n");
            print_message("scrape beside an idle connection: %.1f ms\n", us / 1000.0);
            assert_true(us < 1000 * 1000);
        }
    }
    /* closed at once: EOF, or a reset if the request was still unread */
    refused = fetch_full(s, "GET /metrics HTTP/1.1\r\n\r\n", 25, &us, &error);
    print_message("connection %u: closed after %.1f ms (%s)\n", SP_METRICS_MAX_CLIENTS + 1,
                  us / 1000.0, error ? error->message : "EOF");
    assert_string_equal(refused, "");
    assert_true(us < 1000 * 1000);
    assert_int_equal(r.calls, 1);
    for (guint i = 0; i < SP_METRICS_MAX_CLIENTS; i++)
        g_object_unref(idle[i]);
    stop(s, &r);
}

/* Freeing the server with a connection open drops it cleanly. */
static void
test_free_with_client(void **state)
{
    SpRenderState r = { 0 };
    SpMetricsServer *s = start(&r);
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketConnection) conn = NULL;
    g_autoptr(GError) error = NULL;
    char buf[16];

    (void)state;
    conn = g_socket_client_connect_to_host(client, "127.0.0.1",
                                           sp_metrics_server_get_port(s), NULL, &error);
    assert_non_null(conn);
    for (int k = 0; k < 100; k++) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
    stop(s, &r);    /* drains: the client's callbacks run and free it */
    g_socket_set_timeout(g_socket_connection_get_socket(conn), 5);
    assert_int_equal(g_input_stream_read(g_io_stream_get_input_stream(G_IO_STREAM(conn)),
                                         buf, sizeof buf, NULL, NULL), 0);   /* EOF */
}

static void
test_port_taken(void **state)
{
    SpRenderState r = { 0 };
    SpMetricsServer *s = start(&r);
    g_autofree char *addr = g_strdup_printf("127.0.0.1:%u", sp_metrics_server_get_port(s));
    g_autoptr(GError) error = NULL;
    SpRenderState r2 = { 0 };
    SpMetricsServer *s2 = sp_metrics_server_new(addr, render, &r2, render_freed, &error);

    (void)state;
    assert_null(s2);
    assert_true(g_error_matches(error, SP_METRICS_SERVER_ERROR, SP_METRICS_SERVER_ERROR_LISTEN));
    print_message("%s\n", error->message);
    assert_non_null(strstr(error->message, addr));
    assert_non_null(strstr(error->message, "in use"));
    assert_false(r2.freed);        /* not taken over on failure */
    stop(s, &r);
}

static void
test_parse_listen(void **state)
{
    static const struct {
        const char *in;
        const char *host;       /* NULL: an error */
        guint16 port;
    } cases[] = {
        { "127.0.0.1:9987", "127.0.0.1", 9987 },
        { "localhost:0", "127.0.0.1", 0 },
        { "[::1]:9100", "::1", 9100 },
        { "0.0.0.0:65535", "0.0.0.0", 65535 },
        { "127.0.0.1", NULL, 0 },
        { "127.0.0.1:", NULL, 0 },
        { "127.0.0.1:65536", NULL, 0 },
        { "127.0.0.1:-1", NULL, 0 },
        { "127.0.0.1:80x", NULL, 0 },
        { "::1:9100", NULL, 0 },
        { "[::1]9100", NULL, 0 },
        { "example.com:80", NULL, 0 },
        { ":9100", NULL, 0 },
        { "", NULL, 0 },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *host = NULL;
        g_autoptr(GError) error = NULL;
        guint16 port = 1;
        gboolean ok = sp_metrics_parse_listen(cases[i].in, &host, &port, &error);

        if (cases[i].host) {
            if (!ok)
                fail_msg("%s: %s", cases[i].in, error->message);
            assert_string_equal(host, cases[i].host);
            assert_int_equal(port, cases[i].port);
        } else {
            if (ok)
                fail_msg("%s: accepted", cases[i].in);
            assert_true(g_error_matches(error, SP_METRICS_SERVER_ERROR,
                                        SP_METRICS_SERVER_ERROR_ADDRESS));
            if (*cases[i].in)
                assert_non_null(strstr(error->message, cases[i].in));
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_get_metrics),
        cmocka_unit_test(test_split_request),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_free_with_client),
        cmocka_unit_test(test_port_taken),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
