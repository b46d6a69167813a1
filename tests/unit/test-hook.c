/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-hook.c: the libvirt hook: which operations it forwards, when it
 * refuses a start, its request and reply lines, the socket it picks, its
 * client against live, absent, hung and misbehaving daemons (a UNIX socket
 * served by a thread), and the built program run as libvirtd runs it.
 */
#include "config.h"

#include <gio/gio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "samepage/spjson.h"
#include "../../src/hook/hook.h"
#include "sptest.h"

#define UUID "6f8e2a4c-1d3b-4e5f-9a7b-0c1d2e3f4a5b"
#define XML_POLICY(merge) \
    "<domain type='kvm'>\n  <name>web1</name>\n  <uuid>" UUID "</uuid>\n" \
    "  <metadata>\n    <sp:policy xmlns:sp='urn:samepage:policy:1' merge='" merge "'/>\n" \
    "  </metadata>\n  <memory unit='KiB'>524288</memory>\n</domain>\n"
#define XML_PLAIN \
    "<domain type='kvm'><name>web1</name><uuid>" UUID "</uuid></domain>\n"

/* ---------------------------------------------------------------- decisions */

static void
test_action(void **state)
{
    static const struct {
        const char *op, *phase;
        gboolean handled, gate;
    } cases[] = {
        { "prepare", "begin", TRUE, TRUE },
        { "started", "begin", TRUE, FALSE },
        { "stopped", "end", TRUE, FALSE },
        { "release", "end", TRUE, FALSE },
        { "start", "begin", FALSE, FALSE },
        { "prepare", "end", FALSE, FALSE },
        { "started", "end", FALSE, FALSE },
        { "migrate", "begin", FALSE, FALSE },
        { "restore", "begin", FALSE, FALSE },
        { "reconnect", "begin", FALSE, FALSE },
        { "attach", "begin", FALSE, FALSE },
        { "Prepare", "begin", FALSE, FALSE },
        { "prepare", "", FALSE, FALSE },
        { "", "", FALSE, FALSE },
    };
    SpHookAction a;

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        gboolean handled = sp_hook_action(cases[i].op, cases[i].phase, &a);
        if (handled != cases[i].handled)
            fail_msg("%s %s: handled %d", cases[i].op, cases[i].phase, handled);
        assert_int_equal(a.forward, cases[i].handled);
        assert_int_equal(a.read_xml, cases[i].handled);
        assert_int_equal(a.gate, cases[i].gate);
        /* the gate waits for the reply until the deadline, the others briefly */
        assert_int_equal(a.reply_ms, !cases[i].handled || cases[i].gate ? 0
                                     : SP_HOOK_NOTIFY_REPLY_MS);
    }
    assert_false(sp_hook_action(NULL, "begin", &a));
    assert_false(sp_hook_action("prepare", NULL, &a));
    assert_false(a.forward);
}

static void
test_request_line(void **state)
{
    static const char *const names[] = {
        "web1", "quote\"and\\back", "new\nline", "caf\xc3\xa9", "bad\xff",
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *line = sp_hook_request_line(names[i], i ? UUID : NULL,
                                                     "prepare", "begin");
        g_autoptr(json_object) o = NULL;
        g_autofree char *want = g_utf8_make_valid(names[i], -1);
        json_object *v;

        assert_true(g_str_has_suffix(line, "\n"));
        assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);   /* one line */
        o = json_tokener_parse(line);
        assert_non_null(o);
        assert_string_equal(json_object_get_string(json_object_object_get(o, "request")), "hook");
        assert_string_equal(json_object_get_string(json_object_object_get(o, "domain")), want);
        assert_string_equal(json_object_get_string(json_object_object_get(o, "operation")),
                            "prepare");
        assert_string_equal(json_object_get_string(json_object_object_get(o, "phase")), "begin");
        if (i)
            assert_string_equal(json_object_get_string(json_object_object_get(o, "uuid")), UUID);
        else
            assert_false(json_object_object_get_ex(o, "uuid", &v));
    }
}

static void
test_parse_reply(void **state)
{
    static const struct {
        const char *line;
        gboolean ok;
        const char *error;
    } cases[] = {
        { "{\"ok\":true}", TRUE, NULL },
        { "{\"ok\": true, \"extra\": [1, 2]}", TRUE, NULL },
        { "{\"ok\":false,\"error\":\"unknown request\"}", FALSE, "samepaged refused: unknown request" },
        { "{\"ok\":false}", FALSE, "without saying why" },
        { "{\"ok\":\"true\"}", FALSE, "boolean \"ok\"" },
        { "{}", FALSE, "boolean \"ok\"" },
        { "[true]", FALSE, "not a JSON object" },
        { "HTTP/1.1 400 Bad Request", FALSE, "not JSON" },
        { "", FALSE, "not JSON" },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *err = NULL;
        gboolean ok = sp_hook_parse_reply(cases[i].line, &err);

        if (ok != cases[i].ok)
            fail_msg("%s: ok %d", cases[i].line, ok);
        if (cases[i].error) {
            assert_non_null(err);
            if (!strstr(err, cases[i].error))
                fail_msg("%s: error %s", cases[i].line, err);
        } else {
            assert_null(err);
        }
    }
}

static void
test_socket_path(void **state)
{
    g_autoptr(GKeyFile) with = g_key_file_new();
    g_autoptr(GKeyFile) without = g_key_file_new();
    g_autoptr(GKeyFile) empty = g_key_file_new();
    g_autofree char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *f = NULL;

    (void)state;
    assert_true(g_key_file_load_from_data(with, "[daemon]\nsocket = /srv/sp.sock \n", -1, 0, NULL));
    assert_true(g_key_file_load_from_data(without, "[metrics]\nlisten=127.0.0.1:1\n", -1, 0, NULL));
    assert_true(g_key_file_load_from_data(empty, "[daemon]\nsocket=\n", -1, 0, NULL));
    a = sp_hook_socket_path("/tmp/env.sock", with, "/tmp/run");
    assert_string_equal(a, "/tmp/env.sock");
    b = sp_hook_socket_path(NULL, with, "/tmp/run");
    assert_string_equal(b, "/srv/sp.sock");
    c = sp_hook_socket_path("", without, "/tmp/run");
    assert_string_equal(c, "/tmp/run/samepage/samepaged.sock");
    d = sp_hook_socket_path(NULL, NULL, NULL);
    assert_string_equal(d, "/run/samepage/samepaged.sock");
    e = sp_hook_socket_path(NULL, empty, "");
    assert_string_equal(e, "/run/samepage/samepaged.sock");
    f = sp_hook_socket_path(NULL, without, NULL);
    assert_string_equal(f, "/run/samepage/samepaged.sock");
}

static void
test_verdict(void **state)
{
    SpDomainPolicy req = { .name = (char *)"web1", .merge = SP_POLICY_MERGE_REQUIRED };
    SpDomainPolicy yes = { .name = (char *)"web1", .merge = SP_POLICY_MERGE_YES };
    SpDomainPolicy unset = { .name = (char *)"web1", .merge = SP_POLICY_MERGE_UNSET };
    SpHookAction prepare, started;
    char *msg = NULL;

    (void)state;
    assert_true(sp_hook_action("prepare", "begin", &prepare));
    assert_true(sp_hook_action("started", "begin", &started));

    /* the one refusal: prepare, required, samepaged did not take it */
    assert_int_equal(sp_hook_verdict(&prepare, "web\"1", &req, NULL, FALSE,
                                     "connect: No such file or directory", "/run/x.sock", &msg), 1);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "refusing to start guest \"web\\\"1\""));
    assert_non_null(strstr(msg, "merge=\"required\""));
    assert_non_null(strstr(msg, "/run/x.sock"));
    assert_non_null(strstr(msg, "No such file or directory"));
    assert_null(strchr(msg, '\n'));
    g_clear_pointer(&msg, g_free);
    assert_int_equal(sp_hook_verdict(&prepare, "web1", &req, NULL, FALSE,
                                     "samepaged refused: busy", "/s", &msg), 1);
    g_clear_pointer(&msg, g_free);
    /* a hostile name stays on one line */
    assert_int_equal(sp_hook_verdict(&prepare, "a\nb", &req, NULL, FALSE, NULL, "/s", &msg), 1);
    assert_null(strchr(msg, '\n'));
    g_clear_pointer(&msg, g_free);

    /* delivered: fine, silent */
    assert_int_equal(sp_hook_verdict(&prepare, "web1", &req, NULL, TRUE, NULL, "/s", &msg), 0);
    assert_null(msg);
    /* not required: never refused, but said */
    assert_int_equal(sp_hook_verdict(&prepare, "web1", &yes, NULL, FALSE, "x", "/s", &msg), 0);
    assert_non_null(strstr(msg, "did not confirm"));
    g_clear_pointer(&msg, g_free);
    assert_int_equal(sp_hook_verdict(&prepare, "web1", &unset, NULL, FALSE, "x", "/s", &msg), 0);
    g_clear_pointer(&msg, g_free);
    /* policy unreadable: starts, says why */
    assert_int_equal(sp_hook_verdict(&prepare, "web1", NULL, "line 3: bad merge", FALSE, "x",
                                     "/s", &msg), 0);
    assert_non_null(strstr(msg, "cannot read its policy (line 3: bad merge)"));
    g_clear_pointer(&msg, g_free);
    /* other operations never refuse, even for a required guest */
    assert_int_equal(sp_hook_verdict(&started, "web1", &req, NULL, FALSE, "x", "/s", &msg), 0);
    g_clear_pointer(&msg, g_free);
    assert_int_equal(sp_hook_verdict(&started, "web1", &req, NULL, TRUE, NULL, "/s", &msg), 0);
    assert_null(msg);
}

/* ---------------------------------------------------------------- a fake samepaged */

typedef enum {
    FAKE_REPLY_OK,      /* read a line, answer {"ok":true} */
    FAKE_REFUSE,        /* answer {"ok":false,...} */
    FAKE_HANG,          /* accept, read, never answer */
    FAKE_CLOSE,         /* accept, read the request, close */
    FAKE_FLOOD,         /* answer 100 KiB without a newline */
    FAKE_NO_ACCEPT,     /* listen, never accept */
} FakeMode;

typedef struct {
    char *dir;
    char *path;
    int listen_fd;
    int stop[2];        /* written to end a hanging fake */
    FakeMode mode;
    GThread *thread;
    char *received;     /* the request line it got */
} Fake;

static gpointer
fake_thread(gpointer data)
{
    Fake *f = data;
    GString *in = g_string_new(NULL);
    char buf[4096];
    int fd;

    if (f->mode == FAKE_NO_ACCEPT) {
        g_string_free(in, TRUE);
        return NULL;
    }
    fd = accept(f->listen_fd, NULL, NULL);
    if (fd < 0) {
        g_string_free(in, TRUE);
        return NULL;
    }
    {
        while (!strchr(in->str, '\n')) {
            gssize n = read(fd, buf, sizeof buf);
            if (n <= 0)
                break;
            g_string_append_len(in, buf, n);
        }
    }
    f->received = g_string_free(in, FALSE);
    switch (f->mode) {
    case FAKE_REPLY_OK:
        (void)!send(fd, "{\"ok\":true}\n", 12, MSG_NOSIGNAL);
        break;
    case FAKE_REFUSE:
        (void)!send(fd, "{\"ok\":false,\"error\":\"not now\"}\n", 31, MSG_NOSIGNAL);
        break;
    case FAKE_HANG:
        (void)!read(f->stop[0], buf, 1);
        break;
    case FAKE_FLOOD: {
        g_autofree char *junk = g_malloc(100 * 1024);
        memset(junk, 'x', 100 * 1024);
        for (gsize off = 0; off < 100 * 1024;) {
            gssize n = send(fd, junk + off, 100 * 1024 - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += n;
        }
        break;
    }
    default:
        break;
    }
    close(fd);
    return NULL;
}

static Fake *
fake_start(FakeMode mode)
{
    Fake *f = g_new0(Fake, 1);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    f->dir = g_dir_make_tmp("samepage-hook-XXXXXX", NULL);
    f->path = g_build_filename(f->dir, "samepaged.sock", NULL);
    f->mode = mode;
    assert_int_equal(pipe(f->stop), 0);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->listen_fd >= 0);
    g_strlcpy(addr.sun_path, f->path, sizeof addr.sun_path);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(f->listen_fd, 4), 0);
    f->thread = g_thread_new("fake-samepaged", fake_thread, f);
    return f;
}

static void
fake_stop(Fake *f)
{
    (void)!write(f->stop[1], "x", 1);
    shutdown(f->listen_fd, SHUT_RDWR);      /* a thread still in accept() returns */
    if (f->thread)
        g_thread_join(f->thread);
    close(f->listen_fd);
    close(f->stop[0]);
    close(f->stop[1]);
    g_unlink(f->path);
    g_rmdir(f->dir);
    g_free(f->received);
    g_free(f->path);
    g_free(f->dir);
    g_free(f);
}

static gint64
in_ms(int ms)
{
    return g_get_monotonic_time() + ms * G_TIME_SPAN_MILLISECOND;
}

static void
test_talk(void **state)
{
    static const struct {
        FakeMode mode;
        gboolean ok;
        const char *error;
    } cases[] = {
        { FAKE_REPLY_OK, TRUE, NULL },
        { FAKE_REFUSE, TRUE, NULL },     /* delivered; the reply says no */
        { FAKE_CLOSE, FALSE, "closed the connection without a reply" },
        { FAKE_FLOOD, FALSE, "longer than 65536 bytes" },
    };
    const char *line = "{\"request\":\"hook\",\"domain\":\"web1\"}\n";

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        Fake *f = fake_start(cases[i].mode);
        g_autofree char *reply = NULL;
        g_autoptr(GError) error = NULL;
        gboolean sent;
        gboolean ok = sp_hook_talk(f->path, line, in_ms(2000), 0, &sent, &reply, &error);

        if (ok != cases[i].ok)
            fail_msg("mode %d: %s", cases[i].mode, error ? error->message : "succeeded");
        if (cases[i].error && !strstr(error->message, cases[i].error))
            fail_msg("mode %d: %s", cases[i].mode, error->message);
        g_thread_join(g_steal_pointer(&f->thread));
        assert_true(sent);
        assert_string_equal(f->received, line);
        if (cases[i].mode == FAKE_REPLY_OK)
            assert_string_equal(reply, "{\"ok\":true}");
        if (cases[i].mode == FAKE_REFUSE)
            assert_string_equal(reply, "{\"ok\":false,\"error\":\"not now\"}");
        fake_stop(f);
    }
}

static void
test_talk_absent(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *reply = NULL;
    g_autofree char *dir = g_dir_make_tmp("samepage-hook-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "samepaged.sock", NULL);
    g_autofree char *plain = g_build_filename(dir, "plain", NULL);
    g_autofree char *longpath = g_strnfill(200, 'a');
    gint64 t0 = g_get_monotonic_time();
    gboolean sent = TRUE;

    (void)state;
    assert_false(sp_hook_talk(path, "x\n", in_ms(2000), 0, &sent, &reply, &error));
    assert_non_null(strstr(error->message, "No such file or directory"));
    assert_false(sent);
    assert_true(g_get_monotonic_time() - t0 < 500 * 1000);     /* at once */
    g_clear_error(&error);
    /* a file that is not a socket */
    assert_true(g_file_set_contents(plain, "", 0, NULL));
    assert_false(sp_hook_talk(plain, "x\n", in_ms(2000), 0, &sent, &reply, &error));
    assert_non_null(strstr(error->message, "connect:"));
    g_clear_error(&error);
    assert_false(sp_hook_talk(longpath, "x\n", in_ms(2000), 0, &sent, &reply, &error));
    assert_non_null(strstr(error->message, "too long"));
    g_unlink(plain);
    g_rmdir(dir);
}

/* A daemon that accepts and never answers, or never accepts: the client
 * gives up at the deadline, not later. */
static void
test_talk_hung(void **state)
{
    static const FakeMode modes[] = { FAKE_HANG, FAKE_NO_ACCEPT };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(modes); i++) {
        Fake *f = fake_start(modes[i]);
        g_autofree char *reply = NULL;
        g_autoptr(GError) error = NULL;
        gint64 t0 = g_get_monotonic_time(), us;

        gboolean sent = FALSE;

        assert_false(sp_hook_talk(f->path, "{\"request\":\"hook\"}\n", in_ms(400), 0, &sent,
                                  &reply, &error));
        us = g_get_monotonic_time() - t0;
        print_message("hung daemon (mode %d): gave up after %.0f ms (deadline 400): %s\n",
                      modes[i], us / 1000.0, error->message);
        assert_non_null(strstr(error->message, "no reply in time"));
        assert_true(us >= 380 * 1000);
        assert_true(us < 900 * 1000);
        assert_true(sent);
        fake_stop(f);
    }
}

/* An operation that cannot refuse waits for the reply only briefly once the
 * request is out: the request is in samepaged's queue. */
static void
test_talk_reply_wait(void **state)
{
    Fake *f = fake_start(FAKE_HANG);
    g_autofree char *reply = NULL;
    g_autoptr(GError) error = NULL;
    gboolean sent = FALSE;
    gint64 t0 = g_get_monotonic_time(), us;

    (void)state;
    assert_false(sp_hook_talk(f->path, "{\"request\":\"hook\"}\n", in_ms(2000), 150, &sent,
                              &reply, &error));
    us = g_get_monotonic_time() - t0;
    assert_true(sent);
    assert_non_null(strstr(error->message, "request sent, no reply within 150 ms"));
    assert_true(us >= 140 * 1000 && us < 1000 * 1000);
    fake_stop(f);
}

static void
test_read_fd(void **state)
{
    int p[2];
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    gint64 t0;

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "<domain/>", 9), 9);
    close(p[1]);
    assert_true(sp_hook_read_fd(p[0], 100, in_ms(1000), &text, &error));
    assert_string_equal(text, "<domain/>");
    close(p[0]);
    /* too much */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "0123456789", 10), 10);
    close(p[1]);
    assert_false(sp_hook_read_fd(p[0], 5, in_ms(1000), &text, &error));
    assert_non_null(strstr(error->message, "more than 5 bytes"));
    g_clear_error(&error);
    close(p[0]);
    /* a writer that never closes: the deadline */
    assert_int_equal(pipe(p), 0);
    t0 = g_get_monotonic_time();
    assert_false(sp_hook_read_fd(p[0], 100, in_ms(300), &text, &error));
    assert_true(g_get_monotonic_time() - t0 >= 280 * 1000);
    assert_non_null(strstr(error->message, "timed out"));
    close(p[0]);
    close(p[1]);
}

/* ---------------------------------------------------------------- the program */

typedef struct {
    int status;
    char *err;
    double seconds;
} Run;

/* Runs the hook as libvirtd would; @xml NULL: stdin stays open and empty. */
static Run
run_hook(const char *socket_path, const char *op, const char *phase, const char *xml)
{
    g_autofree char *prog = g_build_filename(SP_TOP_BUILDDIR, "src", "hook", "samepage", NULL);
    const char *argv[] = { prog, "web1", op, phase, "-", NULL };
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE
        | G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) err = NULL;
    gint64 t0 = g_get_monotonic_time();
    Run r = { 0 };

    g_subprocess_launcher_setenv(l, "SAMEPAGE_SOCKET", socket_path, TRUE);
    g_subprocess_launcher_setenv(l, "SAMEPAGE_CONFIG", "/nonexistent/samepaged.conf", TRUE);
    p = g_subprocess_launcher_spawnv(l, argv, &error);
    if (!p)
        fail_msg("%s: %s", prog, error->message);
    if (xml) {
        g_autoptr(GBytes) in = g_bytes_new(xml, strlen(xml));
        assert_true(g_subprocess_communicate(p, in, NULL, NULL, &err, &error));
    } else {
        /* never write nor close stdin: only a hook that does not read it ends */
        GInputStream *es = g_subprocess_get_stderr_pipe(p);
        g_autoptr(GBytes) all = g_input_stream_read_bytes(es, 65536, NULL, &error);
        assert_true(g_subprocess_wait(p, NULL, &error));
        err = g_steal_pointer(&all);
    }
    r.seconds = (g_get_monotonic_time() - t0) / 1e6;
    r.status = g_subprocess_get_exit_status(p);
    r.err = err && g_bytes_get_size(err)
        ? g_strndup(g_bytes_get_data(err, NULL), g_bytes_get_size(err)) : g_strdup("");
    return r;
}

static void
test_program(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("samepage-hook-XXXXXX", NULL);
    g_autofree char *absent = g_build_filename(dir, "samepaged.sock", NULL);
    Run r;

    (void)state;
    /* daemon absent: a required guest is refused at prepare, with one line */
    r = run_hook(absent, "prepare", "begin", XML_POLICY("required"));
    print_message("required, daemon absent: exit %d in %.3f s: %s", r.status, r.seconds, r.err);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "refusing to start guest \"web1\""));
    assert_non_null(strstr(r.err, absent));
    assert_ptr_equal(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
    assert_true(r.seconds < 1.5);
    g_free(r.err);
    /* ... but not at any other operation */
    r = run_hook(absent, "started", "begin", XML_POLICY("required"));
    assert_int_equal(r.status, 0);
    g_free(r.err);
    r = run_hook(absent, "release", "end", XML_POLICY("required"));
    assert_int_equal(r.status, 0);
    g_free(r.err);
    /* other policies start */
    r = run_hook(absent, "prepare", "begin", XML_POLICY("yes"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "did not confirm"));
    g_free(r.err);
    r = run_hook(absent, "prepare", "begin", XML_PLAIN);
    assert_int_equal(r.status, 0);
    g_free(r.err);
    /* bad input never blocks: unknown value, malformed XML, empty stdin */
    r = run_hook(absent, "prepare", "begin", XML_POLICY("always"));
    print_message("unknown merge value: exit %d: %s", r.status, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "cannot read its policy"));
    assert_non_null(strstr(r.err, "always"));
    g_free(r.err);
    r = run_hook(absent, "prepare", "begin", "<domain><name>web1</name><metadata><sp:policy "
                 "xmlns:sp='urn:samepage:policy:1' merge='required'/>");
    print_message("malformed XML: exit %d: %s", r.status, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "cannot read its policy"));
    g_free(r.err);
    r = run_hook(absent, "prepare", "begin", "");
    assert_int_equal(r.status, 0);
    g_free(r.err);
    /* operations it ignores: exit at once without reading stdin */
    r = run_hook(absent, "migrate", "begin", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    assert_true(r.seconds < 1.5);
    g_free(r.err);
    g_rmdir(dir);
}

static void
test_program_daemon(void **state)
{
    Fake *f;
    Run r;
    g_autoptr(json_object) req = NULL;

    (void)state;
    /* a daemon that takes it: the request carries the uuid from the XML */
    f = fake_start(FAKE_REPLY_OK);
    r = run_hook(f->path, "prepare", "begin", XML_POLICY("required"));
    print_message("required, daemon answers: exit %d in %.3f s: %s\n", r.status, r.seconds, r.err);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    g_thread_join(g_steal_pointer(&f->thread));
    req = json_tokener_parse(f->received);
    assert_non_null(req);
    assert_string_equal(json_object_get_string(json_object_object_get(req, "uuid")), UUID);
    assert_string_equal(json_object_get_string(json_object_object_get(req, "domain")), "web1");
    assert_string_equal(json_object_get_string(json_object_object_get(req, "operation")),
                        "prepare");
    g_free(r.err);
    fake_stop(f);

    /* a daemon that says no to a required guest: refused with its words */
    f = fake_start(FAKE_REFUSE);
    r = run_hook(f->path, "prepare", "begin", XML_POLICY("required"));
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "samepaged refused: not now"));
    g_free(r.err);
    fake_stop(f);

    /* a hung daemon: about 2 s, then a normal guest starts ... */
    f = fake_start(FAKE_HANG);
    r = run_hook(f->path, "prepare", "begin", XML_POLICY("yes"));
    print_message("hung daemon, merge=yes: exit %d after %.3f s: %s", r.status, r.seconds, r.err);
    assert_int_equal(r.status, 0);
    assert_true(r.seconds >= 1.9 && r.seconds < 3.0);
    g_free(r.err);
    fake_stop(f);
    /* ... and the hook at "started" waits for the reply only briefly */
    f = fake_start(FAKE_HANG);
    r = run_hook(f->path, "started", "begin", XML_POLICY("required"));
    print_message("hung daemon, started: exit %d after %.3f s: %s", r.status, r.seconds, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "no reply within 250 ms"));
    assert_true(r.seconds >= 0.24 && r.seconds < 1.5);
    g_free(r.err);
    fake_stop(f);
    /* ... and a required one is refused */
    f = fake_start(FAKE_HANG);
    r = run_hook(f->path, "prepare", "begin", XML_POLICY("required"));
    print_message("hung daemon, required: exit %d after %.3f s: %s", r.status, r.seconds, r.err);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no reply in time"));
    assert_true(r.seconds >= 1.9 && r.seconds < 3.0);
    g_free(r.err);
    fake_stop(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_action),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_parse_reply),
        cmocka_unit_test(test_socket_path),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_talk),
        cmocka_unit_test(test_talk_absent),
        cmocka_unit_test(test_talk_hung),
        cmocka_unit_test(test_talk_reply_wait),
        cmocka_unit_test(test_read_fd),
        cmocka_unit_test(test_program),
        cmocka_unit_test(test_program_daemon),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
