/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spqmp.c: the QMP client against a fake monitor
 *
 * The fake monitor listens on a real UNIX socket in a temporary directory
 * and runs in a thread.  It plays a script of steps:
 *
 *   SEND    write bytes, in one write or a few bytes at a time with a pause
 *           in between (so that the client sees partial reads);
 *   EXPECT  read one command line from the client and compare it with the
 *           expected command, ignoring the "id" value and key order;
 *   CLOSE   drop the connection.
 *
 * After the last step it waits for the client to hang up; a command that
 * arrives then is a failure.  Scripts come from the transcripts recorded
 * from QEMU 7.2 in tests/data/qmp (see its README); hostile cases build on
 * recorded lines.  When the client's id differs from the recorded one, the
 * monitor puts the client's id into the recorded reply.  The thread never
 * asserts: it notes what went wrong and the test checks that after joining.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "samepage/spqmp.h"
#include "sptest.h"

/* Like assert_true, but shows the GError called `error` when it fails. */
#define assert_ok(expr) do { \
        if (!(expr)) \
            fail_msg("%s: %s", #expr, error ? error->message : "(no error)"); \
    } while (0)

#define TIMEOUT_MS 10000        /* for the client; tests that time out set less */
#define MONITOR_WAIT_MS 10000   /* the monitor gives up waiting after this */

typedef enum { STEP_SEND, STEP_EXPECT, STEP_CLOSE } StepKind;

typedef struct {
    StepKind kind;
    char *text;                 /* SEND: bytes; EXPECT: the command as recorded */
    gsize chunk;                /* SEND: bytes per write, 0 for one write */
} Step;

typedef struct {
    char *dir;
    char *path;                 /* the socket */
    int listen_fd;
    int stop[2];                /* a pipe: teardown wakes the thread */
    GPtrArray *steps;
    GThread *thread;
    /* Written by the thread, read after joining it. */
    char *failure;
    GPtrArray *received;        /* command lines the client sent */
    json_object *recorded_id;   /* id of the last expected command, as recorded */
    json_object *client_id;     /* ... and as the client sent it */
} Monitor;

static void
step_free(gpointer p)
{
    Step *s = p;

    g_free(s->text);
    g_free(s);
}

static Monitor *
monitor_new(void)
{
    Monitor *m = g_new0(Monitor, 1);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    m->dir = g_dir_make_tmp("samepage-qmp-XXXXXX", NULL);
    assert_non_null(m->dir);
    m->path = g_build_filename(m->dir, "qmp.sock", NULL);
    assert_true(strlen(m->path) < sizeof(addr.sun_path));
    strcpy(addr.sun_path, m->path);
    m->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(m->listen_fd >= 0);
    assert_int_equal(bind(m->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(m->listen_fd, 4), 0);
    assert_int_equal(pipe(m->stop), 0);
    m->steps = g_ptr_array_new_with_free_func(step_free);
    m->received = g_ptr_array_new_with_free_func(g_free);
    return m;
}

static void
monitor_add(Monitor *m, StepKind kind, const char *text, gsize chunk)
{
    Step *s = g_new0(Step, 1);

    s->kind = kind;
    s->text = g_strdup(text);
    s->chunk = chunk;
    g_ptr_array_add(m->steps, s);
}

/* One message as QEMU sends it: the line and "\r\n". */
static void
monitor_send_line(Monitor *m, const char *line, gsize chunk)
{
    g_autofree char *t = g_strconcat(line, "\r\n", NULL);
    monitor_add(m, STEP_SEND, t, chunk);
}

/* The lines of tests/data/qmp/FILE that start with PREFIX ("S: ", "C: "). */
static GPtrArray *
transcript(const char *file, const char *prefix)
{
    g_autofree char *rel = g_build_filename("qmp", file, NULL);
    g_autofree char *path = sp_test_data_path(rel);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i]; i++)
        if (!prefix || g_str_has_prefix(lines[i], prefix))
            g_ptr_array_add(out, g_strdup(lines[i]));
    return out;
}

/* The Nth (from 0) line of FILE with PREFIX, without the prefix. */
static char *
recorded(const char *file, const char *prefix, guint n)
{
    g_autoptr(GPtrArray) lines = transcript(file, prefix);

    assert_true(n < lines->len);
    return g_strdup((char *)g_ptr_array_index(lines, n) + strlen(prefix));
}

/* Every S: and C: line of FILE as a step; S: lines are written CHUNK bytes at a time. */
static void
monitor_load(Monitor *m, const char *file, gsize chunk)
{
    g_autoptr(GPtrArray) lines = transcript(file, NULL);
    guint n = 0;

    for (guint i = 0; i < lines->len; i++) {
        const char *l = g_ptr_array_index(lines, i);

        if (g_str_has_prefix(l, "S: ")) {
            monitor_send_line(m, l + 3, chunk);
            n++;
        } else if (g_str_has_prefix(l, "C: ")) {
            monitor_add(m, STEP_EXPECT, l + 3, 0);
            n++;
        } else {
            assert_true(l[0] == '#' || l[0] == '\0');
        }
    }
    assert_true(n >= 3);
}

static gboolean
monitor_wait(Monitor *m, int fd, const char **why)
{
    struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = m->stop[0], .events = POLLIN } };
    int r;

    do
        r = poll(p, 2, MONITOR_WAIT_MS);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        *why = "timed out";
    else if (r < 0 || p[1].revents)
        *why = "stopped";
    return r > 0 && !p[1].revents;
}

static char *
monitor_read_line(Monitor *m, int fd, GString *in, const char **why)
{
    for (;;) {
        char *nl = memchr(in->str, '\n', in->len);
        char buf[4096];
        ssize_t n;

        if (nl) {
            char *line = g_strndup(in->str, nl - in->str);
            g_string_erase(in, 0, nl - in->str + 1);
            return line;
        }
        if (!monitor_wait(m, fd, why))
            return NULL;
        n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            *why = in->len ? "the client closed in the middle of a line"
                           : "the client closed the connection";
            return NULL;
        }
        g_string_append_len(in, buf, n);
    }
}

static gboolean
monitor_write(int fd, const char *data, gsize len, gsize chunk)
{
    gsize done = 0;

    while (done < len) {
        gsize n = chunk ? MIN(chunk, len - done) : len - done;
        ssize_t w = send(fd, data + done, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return FALSE;
        done += w;
        if (chunk && done < len)
            g_usleep(200);
    }
    return TRUE;
}

/* The recorded reply with the client's id, if the client numbered differently. */
static char *
monitor_fix_id(Monitor *m, const char *text)
{
    g_autofree char *line = g_strchomp(g_strdup(text));
    g_autoptr(json_object) obj = NULL;
    json_object *id;

    if (!m->recorded_id || !m->client_id || json_object_equal(m->recorded_id, m->client_id))
        return g_strdup(text);
    obj = json_tokener_parse(line);
    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, "id", &id) || !json_object_equal(id, m->recorded_id))
        return g_strdup(text);
    json_object_object_add(obj, "id", json_object_get(m->client_id));
    return g_strconcat(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN), "\r\n", NULL);
}

/* Read one command and compare it with @expected, ignoring "id" and key order. */
static gboolean
monitor_expect(Monitor *m, int fd, GString *in, const char *expected)
{
    g_autoptr(json_object) want = json_tokener_parse(expected);
    g_autoptr(json_object) got = NULL;
    g_autofree char *line = NULL;
    const char *why = NULL;
    json_object *id = NULL;

    if (!want) {
        m->failure = g_strdup_printf("bad expected command in the script: %s", expected);
        return FALSE;
    }
    if (!(line = monitor_read_line(m, fd, in, &why))) {
        m->failure = g_strdup_printf("waiting for %s: %s", expected, why);
        return FALSE;
    }
    g_ptr_array_add(m->received, g_strdup(line));
    got = json_tokener_parse(line);
    if (!got || !json_object_is_type(got, json_type_object) ||
        !json_object_object_get_ex(got, "id", &id)) {
        m->failure = g_strdup_printf("not a command with an id: %s", line);
        return FALSE;
    }
    g_clear_pointer(&m->client_id, json_object_put);
    m->client_id = json_object_get(id);
    json_object_object_del(got, "id");
    g_clear_pointer(&m->recorded_id, json_object_put);
    if (json_object_object_get_ex(want, "id", &id))
        m->recorded_id = json_object_get(id);
    json_object_object_del(want, "id");
    if (!json_object_equal(want, got)) {
        m->failure = g_strdup_printf("expected %s, got %s", expected, line);
        return FALSE;
    }
    return TRUE;
}

static gpointer
monitor_thread(gpointer data)
{
    Monitor *m = data;
    g_autoptr(GString) in = g_string_new(NULL);
    const char *why = NULL;
    g_autofree char *extra = NULL;
    int fd;

    if (!monitor_wait(m, m->listen_fd, &why)) {
        m->failure = g_strdup_printf("no client: %s", why);
        return NULL;
    }
    fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        m->failure = g_strdup_printf("accept: %s", g_strerror(errno));
        return NULL;
    }
    for (guint i = 0; i < m->steps->len; i++) {
        Step *s = g_ptr_array_index(m->steps, i);

        if (s->kind == STEP_SEND) {
            g_autofree char *text = monitor_fix_id(m, s->text);
            if (!monitor_write(fd, text, strlen(text), s->chunk)) {
                m->failure = g_strdup_printf("cannot send step %u: %s", i, g_strerror(errno));
                break;
            }
        } else if (s->kind == STEP_EXPECT) {
            if (!monitor_expect(m, fd, in, s->text))
                break;
        } else {
            close(fd);
            return NULL;
        }
    }
    /* The script is done: the client should now hang up without another command. */
    if (!m->failure) {
        if ((extra = monitor_read_line(m, fd, in, &why)))
            m->failure = g_strdup_printf("unexpected command: %s", extra);
        else if (!g_str_has_prefix(why, "the client closed"))
            m->failure = g_strdup_printf("after the script: %s", why);
    }
    close(fd);
    return NULL;
}

static void
monitor_start(Monitor *m)
{
    m->thread = g_thread_new("fake-qmp", monitor_thread, m);
}

/* Join the thread and fail the test if the monitor did not like the client. */
static void
monitor_assert_ok(Monitor *m)
{
    assert_non_null(m->thread);
    g_thread_join(g_steal_pointer(&m->thread));
    if (m->failure)
        fail_msg("fake monitor: %s", m->failure);
}

static void
monitor_free(Monitor *m)
{
    if (m->thread) {
        assert_int_equal(write(m->stop[1], "x", 1), 1);
        g_thread_join(m->thread);
    }
    close(m->listen_fd);
    close(m->stop[0]);
    close(m->stop[1]);
    sp_test_remove_tree(m->dir);
    g_ptr_array_unref(m->steps);
    g_ptr_array_unref(m->received);
    if (m->recorded_id)
        json_object_put(m->recorded_id);
    if (m->client_id)
        json_object_put(m->client_id);
    g_free(m->failure);
    g_free(m->path);
    g_free(m->dir);
    g_free(m);
}

static int
setup(void **state)
{
    *state = monitor_new();
    return 0;
}

static int
teardown(void **state)
{
    monitor_free(*state);
    return 0;
}

static SpQmp *
connect_ok(Monitor *m)
{
    g_autoptr(GError) error = NULL;
    SpQmp *qmp = sp_qmp_connect_unix(m->path, TIMEOUT_MS, &error);

    if (!qmp)
        fail_msg("connect: %s", error->message);
    return qmp;
}

static void
assert_error(const GError *error, SpQmpErrorCode code, const char *part)
{
    assert_non_null(error);
    if (!g_error_matches(error, SP_QMP_ERROR, code))
        fail_msg("expected code %d, got %s %d: %s", code, g_quark_to_string(error->domain),
                 error->code, error->message);
    if (part && !strstr(error->message, part))
        fail_msg("'%s' not in the message: %s", part, error->message);
}

/* A recorded reply line rebuilt: keys in reverse order, an unknown key added. */
static char *
reshape(const char *line, const char *extra_key)
{
    g_autoptr(json_object) in = json_tokener_parse(line);
    g_autoptr(json_object) out = json_object_new_object();
    g_autoptr(GPtrArray) keys = g_ptr_array_new();

    assert_non_null(in);
    json_object_object_foreach(in, key, val) {
        (void)val;
        g_ptr_array_add(keys, key);
    }
    json_object_object_add(out, extra_key, json_tokener_parse("{\"future\": [1, \"x\", null]}"));
    for (guint i = keys->len; i-- > 0;) {
        const char *k = g_ptr_array_index(keys, i);
        json_object *v = json_object_object_get(in, k);
        json_object_object_add(out, k, json_object_get(v));
    }
    return g_strdup(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
}

/* ---------------------------------------------------------------- tests */

static void
test_greeting(void **state)
{
    Monitor *m = *state;
    g_autoptr(json_object) cmd = NULL;
    guint major = 0, minor = 0, micro = 0;

    monitor_load(m, "greeting.txt", 0);
    monitor_start(m);
    SpQmp *qmp = connect_ok(m);
    assert_true(sp_qmp_get_version(qmp, &major, &minor, &micro));
    assert_int_equal(major, 7);
    assert_int_equal(minor, 2);
    assert_int_equal(micro, 22);
    assert_string_equal(sp_qmp_get_name(qmp), m->path);
    sp_qmp_free(qmp);
    monitor_assert_ok(m);
    /* qmp_capabilities went out, with an id. */
    assert_int_equal(m->received->len, 1);
    cmd = json_tokener_parse(g_ptr_array_index(m->received, 0));
    assert_string_equal(json_object_get_string(json_object_object_get(cmd, "execute")),
                        "qmp_capabilities");
    assert_non_null(json_object_object_get(cmd, "id"));
}

static void
check_pc_ram(const SpQmpMemdev *d, gboolean merge)
{
    assert_string_equal(d->id, "pc.ram");
    assert_true(d->size == 512 * G_GUINT64_CONSTANT(1048576));
    assert_int_equal(d->merge, merge);
    assert_true(d->dump);
    assert_false(d->prealloc);
    assert_true(d->has_share);
    assert_false(d->share);
    assert_true(d->has_reserve);
    assert_true(d->reserve);
    assert_int_equal(d->host_nodes->len, 0);
    assert_string_equal(d->policy, "default");
}

static void
test_query_memdev(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;

    monitor_load(m, "query-memdev.txt", 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    list = sp_qmp_query_memdev(qmp, &error);
    assert_ok(list);
    assert_int_equal(list->len, 1);
    check_pc_ram(g_ptr_array_index(list, 0), TRUE);
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* Two NUMA nodes; mem1 was created with merge=off. */
static void
test_query_memdev_numa(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autofree char *r0 = NULL, *r1 = NULL;
    guint64 h0 = 0, h1 = 0;

    monitor_load(m, "query-memdev-numa.txt", 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    list = sp_qmp_query_memdev(qmp, &error);
    assert_ok(list);
    assert_int_equal(list->len, 2);
    const SpQmpMemdev *a = g_ptr_array_index(list, 0), *b = g_ptr_array_index(list, 1);
    assert_string_equal(a->id, "mem1");
    assert_true(a->size == 64 * G_GUINT64_CONSTANT(1048576));
    assert_false(a->merge);
    assert_string_equal(b->id, "ram-node0");
    assert_true(b->merge);
    assert_ok(sp_qmp_gpa2hva(qmp, 0, &r0, &h0, &error));
    assert_string_equal(r0, "ram-node0");
    assert_true(h0 == G_GUINT64_CONSTANT(0x7fb32be00000));
    assert_ok(sp_qmp_gpa2hva(qmp, 0x20000000, &r1, &h1, &error));
    assert_string_equal(r1, "mem1");
    assert_true(h1 == G_GUINT64_CONSTANT(0x7fb327c00000));
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* -machine mem-merge=off: the backend's merge defaults to false. */
static void
test_query_memdev_mem_merge_off(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    gboolean merge = TRUE;

    monitor_load(m, "query-memdev-mem-merge-off.txt", 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    list = sp_qmp_query_memdev(qmp, &error);
    assert_ok(list);
    assert_int_equal(list->len, 1);
    check_pc_ram(g_ptr_array_index(list, 0), FALSE);
    assert_ok(sp_qmp_qom_get_bool(qmp, "/objects/pc.ram", "merge", &merge, &error));
    assert_false(merge);
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* The property called @name; fails the test if there is none. */
static const SpQmpProperty *
find_property(GPtrArray *list, const char *name)
{
    static const SpQmpProperty none = { (char *)"", (char *)"", NULL };

    for (guint i = 0; i < list->len; i++) {
        const SpQmpProperty *p = g_ptr_array_index(list, i);
        if (g_str_equal(p->name, name))
            return p;
    }
    fail_msg("no property %s", name);
    return &none;
}

static void
test_qom_list(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) objects = NULL;
    g_autoptr(GPtrArray) props = NULL;
    const SpQmpProperty *p;

    monitor_load(m, "qom-list-objects.txt", 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    objects = sp_qmp_qom_list(qmp, "/objects", &error);
    assert_ok(objects);
    assert_int_equal(objects->len, 2);
    p = find_property(objects, "pc.ram");
    assert_string_equal(p->type, "child<memory-backend-ram>");
    assert_null(p->description);
    props = sp_qmp_qom_list(qmp, "/objects/pc.ram", &error);
    assert_ok(props);
    assert_int_equal(props->len, 13);
    p = find_property(props, "merge");
    assert_string_equal(p->type, "bool");
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

static void
test_qom_merge(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    gboolean v = FALSE;

    monitor_load(m, "qom-merge.txt", 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    assert_ok(sp_qmp_qom_get_bool(qmp, "/objects/pc.ram", "merge", &v, &error));
    assert_true(v);
    assert_ok(sp_qmp_qom_set_bool(qmp, "/objects/pc.ram", "merge", FALSE, &error));
    assert_ok(sp_qmp_qom_get_bool(qmp, "/objects/pc.ram", "merge", &v, &error));
    assert_false(v);
    assert_ok(sp_qmp_qom_set_bool(qmp, "/objects/pc.ram", "merge", TRUE, &error));
    assert_ok(sp_qmp_qom_get_bool(qmp, "/objects/pc.ram", "merge", &v, &error));
    assert_true(v);
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
    /* Every command had its own, increasing id. */
    assert_int_equal(m->received->len, 6);
    for (guint i = 0; i < m->received->len; i++) {
        g_autoptr(json_object) c = json_tokener_parse(g_ptr_array_index(m->received, i));
        assert_int_equal(json_object_get_int64(json_object_object_get(c, "id")), i + 1);
    }
}

static void
test_gpa2hva(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autofree char *r0 = NULL, *r1 = NULL, *r2 = NULL;
    guint64 hva = 0;

    monitor_load(m, "gpa2hva.txt", 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    assert_ok(sp_qmp_gpa2hva(qmp, 0, &r0, &hva, &error));
    assert_string_equal(r0, "pc.ram");
    assert_true(hva == G_GUINT64_CONSTANT(0x7f2d17e00000));
    assert_ok(sp_qmp_gpa2hva(qmp, 0x100000, &r1, &hva, &error));
    assert_string_equal(r1, "pc.ram");
    assert_true(hva == G_GUINT64_CONSTANT(0x7f2d17f00000));
    /* Beyond the 512 MiB of RAM: HMP answers with an error text. */
    assert_false(sp_qmp_gpa2hva(qmp, 0x40000000, &r2, &hva, &error));
    assert_error(error, SP_QMP_ERROR_BAD_REPLY, "No memory is mapped at address 0x40000000");
    assert_non_null(strstr(error->message, m->path));
    assert_null(r2);
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

static json_object *
qom_args(const char *path, const char *prop, json_object *value)
{
    json_object *a = json_object_new_object();

    json_object_object_add(a, "path", json_object_new_string(path));
    json_object_object_add(a, "property", json_object_new_string(prop));
    if (value)
        json_object_object_add(a, "value", value);
    return a;
}

/* Recorded error replies: the code comes from the class, the message has desc. */
static void
test_error_reply(void **state)
{
    Monitor *m = *state;
    gboolean v = FALSE;
    g_autofree char *text = NULL;

    monitor_load(m, "errors.txt", 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_qmp_qom_get_bool(qmp, "/objects/nosuch", "merge", &v, &error));
        assert_error(error, SP_QMP_ERROR_DEVICE_NOT_FOUND, "Device '/objects/nosuch' not found");
        assert_non_null(strstr(error->message, m->path));
    }
    {
        g_autoptr(GError) error = NULL;
        assert_false(sp_qmp_qom_get_bool(qmp, "/objects/pc.ram", "nosuch", &v, &error));
        assert_error(error, SP_QMP_ERROR_GENERIC, "Property 'memory-backend-ram.nosuch' not found");
    }
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) r = sp_qmp_execute(qmp, "no-such-command", NULL, &error);
        assert_null(r);
        assert_error(error, SP_QMP_ERROR_COMMAND_NOT_FOUND, "no-such-command has not been found");
    }
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) a = qom_args("/objects/pc.ram", "merge", json_object_new_string("yes"));
        g_autoptr(json_object) r = sp_qmp_execute(qmp, "qom-set", a, &error);
        assert_null(r);
        assert_error(error, SP_QMP_ERROR_GENERIC, "expected: boolean");
    }
    {
        /* A failing HMP command is a successful QMP command with error text. */
        g_autoptr(GError) error = NULL;
        text = sp_qmp_hmp(qmp, "gpa2hva", &error);
        assert_ok(text);
        assert_non_null(strstr(text, "unexpected end of expression\r\n"));
    }
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* Real STOP/RESUME events before the replies of stop/cont. */
static void
test_events(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) r1 = NULL, r2 = NULL, r3 = NULL;
    g_autoptr(GPtrArray) events = NULL;
    const SpQmpEvent *e;

    monitor_load(m, "events.txt", 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    sp_qmp_set_record_events(qmp, TRUE);
    assert_ok(r1 = sp_qmp_execute(qmp, "cont", NULL, &error));
    assert_ok(r2 = sp_qmp_execute(qmp, "stop", NULL, &error));
    assert_ok(r3 = sp_qmp_execute(qmp, "query-status", NULL, &error));
    assert_string_equal(json_object_get_string(json_object_object_get(r3, "status")), "paused");
    events = sp_qmp_take_events(qmp);
    assert_int_equal(events->len, 2);
    e = g_ptr_array_index(events, 0);
    assert_string_equal(e->name, "RESUME");
    assert_int_equal(e->seconds, 1795319794);
    assert_int_equal(e->microseconds, 819034);
    assert_null(e->data);
    e = g_ptr_array_index(events, 1);
    assert_string_equal(e->name, "STOP");
    assert_int_equal(e->microseconds, 19959);
    g_ptr_array_unref(sp_qmp_take_events(qmp));
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* Events before the capabilities reply, between replies and before a reply. */
static void
test_events_between(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GPtrArray) events = NULL;
    g_autofree char *resume = recorded("events.txt", "S: ", 2);
    g_autofree char *stop = recorded("events.txt", "S: ", 4);
    g_autofree char *greeting = recorded("query-memdev.txt", "S: ", 0);
    g_autofree char *caps = recorded("query-memdev.txt", "C: ", 0);
    g_autofree char *caps_reply = recorded("query-memdev.txt", "S: ", 1);
    g_autofree char *query = recorded("query-memdev.txt", "C: ", 1);
    g_autofree char *reply = recorded("query-memdev.txt", "S: ", 2);

    assert_non_null(strstr(resume, "RESUME"));
    assert_non_null(strstr(stop, "STOP"));
    monitor_send_line(m, greeting, 0);
    monitor_add(m, STEP_EXPECT, caps, 0);
    monitor_send_line(m, stop, 0);
    monitor_send_line(m, caps_reply, 0);
    monitor_send_line(m, resume, 0);           /* between replies, unasked */
    monitor_add(m, STEP_EXPECT, query, 0);
    monitor_send_line(m, stop, 0);
    monitor_send_line(m, resume, 0);
    monitor_send_line(m, reply, 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    sp_qmp_set_record_events(qmp, TRUE);
    list = sp_qmp_query_memdev(qmp, &error);
    assert_ok(list);
    check_pc_ram(g_ptr_array_index(list, 0), TRUE);
    /* The STOP during the handshake came before recording was on. */
    events = sp_qmp_take_events(qmp);
    assert_int_equal(events->len, 3);
    assert_string_equal(((SpQmpEvent *)g_ptr_array_index(events, 0))->name, "RESUME");
    assert_string_equal(((SpQmpEvent *)g_ptr_array_index(events, 1))->name, "STOP");
    assert_string_equal(((SpQmpEvent *)g_ptr_array_index(events, 2))->name, "RESUME");
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* Every message, greeting included, arrives one byte per write. */
static void
test_split_bytes(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;

    monitor_load(m, "query-memdev.txt", 1);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    list = sp_qmp_query_memdev(qmp, &error);
    assert_ok(list);
    check_pc_ram(g_ptr_array_index(list, 0), TRUE);
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* One write holds an event, a reply, an event and the reply to the next
 * command (sent early): what follows a message must be kept. */
static void
test_one_chunk(void **state)
{
    Monitor *m = *state;
    const char *f = "query-memdev-mem-merge-off.txt";
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GPtrArray) events = NULL;
    g_autofree char *greeting = recorded(f, "S: ", 0);
    g_autofree char *caps = recorded(f, "C: ", 0);
    g_autofree char *caps_reply = recorded(f, "S: ", 1);
    g_autofree char *query = recorded(f, "C: ", 1);
    g_autofree char *reply = recorded(f, "S: ", 2);
    g_autofree char *get = recorded(f, "C: ", 2);
    g_autofree char *get_reply = recorded(f, "S: ", 3);
    g_autofree char *resume = recorded("events.txt", "S: ", 2);
    g_autofree char *stop = recorded("events.txt", "S: ", 4);
    g_autofree char *chunk = g_strconcat(resume, "\r\n", reply, "\r\n", stop, "\r\n",
                                         get_reply, "\r\n", NULL);
    gboolean merge = TRUE;

    monitor_send_line(m, greeting, 0);
    monitor_add(m, STEP_EXPECT, caps, 0);
    monitor_send_line(m, caps_reply, 0);
    monitor_add(m, STEP_EXPECT, query, 0);
    monitor_add(m, STEP_SEND, chunk, 0);
    monitor_add(m, STEP_EXPECT, get, 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    sp_qmp_set_record_events(qmp, TRUE);
    list = sp_qmp_query_memdev(qmp, &error);
    assert_ok(list);
    check_pc_ram(g_ptr_array_index(list, 0), FALSE);
    assert_ok(sp_qmp_qom_get_bool(qmp, "/objects/pc.ram", "merge", &merge, &error));
    assert_false(merge);
    events = sp_qmp_take_events(qmp);
    assert_int_equal(events->len, 2);
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* Unknown keys everywhere and keys in another order. */
static void
test_unknown_keys(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autofree char *greeting = recorded("query-memdev.txt", "S: ", 0);
    g_autofree char *caps = recorded("query-memdev.txt", "C: ", 0);
    g_autofree char *caps_reply = recorded("query-memdev.txt", "S: ", 1);
    g_autofree char *query = recorded("query-memdev.txt", "C: ", 1);
    g_autofree char *reply = recorded("query-memdev.txt", "S: ", 2);
    g_autoptr(json_object) g = json_tokener_parse(greeting);
    g_autoptr(json_object) r = json_tokener_parse(reply);
    json_object *elem = json_object_array_get_idx(json_object_object_get(r, "return"), 0);

    /* Inside the greeting and inside a memdev, too. */
    json_object_object_add(json_object_object_get(g, "QMP"), "x-later", json_object_new_int(3));
    json_object_object_add(elem, "x-hugetlb", json_object_new_boolean(TRUE));
    g_autofree char *elem_text = reshape(json_object_to_json_string(elem), "x-future");
    json_object_array_put_idx(json_object_object_get(r, "return"), 0,
                              json_tokener_parse(elem_text));
    g_autofree char *g2 = reshape(json_object_to_json_string(g), "x-banner");
    g_autofree char *c2 = reshape(caps_reply, "x-trace");
    g_autofree char *r2 = reshape(json_object_to_json_string(r), "x-trace");
    assert_true(g_str_has_prefix(r2, "{\"x-trace\""));

    monitor_send_line(m, g2, 0);
    monitor_add(m, STEP_EXPECT, caps, 0);
    monitor_send_line(m, c2, 0);
    monitor_add(m, STEP_EXPECT, query, 0);
    monitor_send_line(m, r2, 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    list = sp_qmp_query_memdev(qmp, &error);
    if (!list)
        fail_msg("%s", error->message);
    check_pc_ram(g_ptr_array_index(list, 0), TRUE);
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* A late reply with another id is dropped; the client waits for its own. */
static void
test_reply_id(void **state)
{
    Monitor *m = *state;
    const char *f = "qom-merge.txt";
    g_autoptr(GError) error = NULL;
    g_autofree char *greeting = recorded(f, "S: ", 0);
    g_autofree char *caps = recorded(f, "C: ", 0);
    g_autofree char *caps_reply = recorded(f, "S: ", 1);
    g_autofree char *get = recorded(f, "C: ", 1);
    g_autofree char *get_true = recorded(f, "S: ", 2);   /* id 2 */
    g_autofree char *get_false = recorded(f, "S: ", 4);  /* id 4: not ours */
    gboolean v = FALSE;

    assert_non_null(strstr(get_false, "false"));
    monitor_send_line(m, greeting, 0);
    monitor_add(m, STEP_EXPECT, caps, 0);
    monitor_send_line(m, caps_reply, 0);
    monitor_add(m, STEP_EXPECT, get, 0);
    monitor_send_line(m, get_false, 0);
    monitor_send_line(m, get_true, 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    assert_ok(sp_qmp_qom_get_bool(qmp, "/objects/pc.ram", "merge", &v, &error));
    assert_true(v);
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

/* Not JSON, JSON that is not an object, an object that is no reply. */
static void
test_garbage(void **state)
{
    const char *bad[] = {
        "this is not JSON",
        "{\"return\": [], \"id\": 2} trailing",
        "[{\"return\": []}]",
        "{\"id\": 2, \"result\": []}",
        "{\"error\": \"GenericError\", \"id\": 2}",
        "{\"return\": \"\\u00e9\xff\", \"id\": 2}",
    };
    const char *part[] = { "this is not JSON", "trailing", "not a JSON object", "result",
                           "GenericError", "not JSON" };

    (void)state;
    g_log_set_debug_enabled(TRUE);   /* also exercise the traffic log */
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        Monitor *m = monitor_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) list = NULL;
        g_autofree char *query = recorded("query-memdev.txt", "C: ", 1);

        monitor_load(m, "greeting.txt", 0);
        monitor_add(m, STEP_EXPECT, query, 0);
        monitor_send_line(m, bad[i], 0);
        monitor_start(m);
        g_autoptr(SpQmp) qmp = connect_ok(m);
        list = sp_qmp_query_memdev(qmp, &error);
        assert_null(list);
        assert_error(error, SP_QMP_ERROR_PROTOCOL, part[i]);
        assert_non_null(strstr(error->message, m->path));
        g_clear_pointer(&qmp, sp_qmp_free);
        monitor_assert_ok(m);
        monitor_free(m);
    }
    g_log_set_debug_enabled(FALSE);
}

/* Something that is not QEMU answers on the socket. */
static void
test_not_qmp(void **state)
{
    const char *greetings[] = {
        "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
        "{\"return\": {}}",
        "{\"QMP\": {\"capabilities\": []}}",
        "{\"QMP\": {\"version\": {\"qemu\": {\"major\": -7, \"minor\": 2, \"micro\": 0}}, "
        "\"capabilities\": []}}",
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(greetings); i++) {
        Monitor *m = monitor_new();
        g_autoptr(GError) error = NULL;

        monitor_send_line(m, greetings[i], 0);
        monitor_start(m);
        g_autoptr(SpQmp) qmp = sp_qmp_connect_unix(m->path, TIMEOUT_MS, &error);
        assert_null(qmp);
        assert_error(error, SP_QMP_ERROR_PROTOCOL, m->path);
        assert_non_null(strstr(error->message, "greeting"));
        monitor_assert_ok(m);
        monitor_free(m);
    }
}

static void
test_closed_mid_reply(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GError) error2 = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(json_object) r = NULL;
    g_autofree char *reply = recorded("query-memdev.txt", "S: ", 2);
    g_autofree char *half = g_strndup(reply, strlen(reply) / 2);

    monitor_load(m, "query-memdev.txt", 0);
    g_ptr_array_remove_index(m->steps, m->steps->len - 1);
    monitor_add(m, STEP_SEND, half, 0);
    monitor_add(m, STEP_CLOSE, NULL, 0);
    monitor_start(m);
    g_autoptr(SpQmp) qmp = connect_ok(m);
    list = sp_qmp_query_memdev(qmp, &error);
    assert_null(list);
    assert_error(error, SP_QMP_ERROR_CLOSED, m->path);
    assert_non_null(strstr(error->message, "in the middle of the reply to query-memdev"));
    /* Later commands fail at once, the same way. */
    r = sp_qmp_execute(qmp, "query-status", NULL, &error2);
    assert_null(r);
    assert_error(error2, SP_QMP_ERROR_CLOSED, m->path);
    g_clear_pointer(&qmp, sp_qmp_free);
    monitor_assert_ok(m);
}

static void
test_nothing_listens(void **state)
{
    Monitor *m = *state;
    g_autofree char *missing = g_build_filename(m->dir, "missing.sock", NULL);
    g_autofree char *dead = g_build_filename(m->dir, "dead.sock", NULL);
    g_autofree char *longp = g_strnfill(200, 'x');
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    {
        g_autoptr(GError) error = NULL;
        assert_null(sp_qmp_connect_unix(missing, TIMEOUT_MS, &error));
        assert_error(error, SP_QMP_ERROR_CONNECT, missing);
        assert_non_null(strstr(error->message, g_strerror(ENOENT)));
    }
    /* A socket file whose listener is gone. */
    strcpy(addr.sun_path, dead);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(fd);
    {
        g_autoptr(GError) error = NULL;
        assert_null(sp_qmp_connect_unix(dead, TIMEOUT_MS, &error));
        assert_error(error, SP_QMP_ERROR_CONNECT, dead);
        assert_non_null(strstr(error->message, g_strerror(ECONNREFUSED)));
    }
    {
        g_autoptr(GError) error = NULL;
        assert_null(sp_qmp_connect_unix(longp, TIMEOUT_MS, &error));
        assert_error(error, SP_QMP_ERROR_CONNECT, "too long");
    }
}

/* The socket accepts but says nothing: the timeout ends the wait. */
static void
test_no_greeting(void **state)
{
    Monitor *m = *state;
    g_autoptr(GError) error = NULL;
    gint64 t0;

    monitor_start(m);
    t0 = g_get_monotonic_time();
    g_autoptr(SpQmp) qmp = sp_qmp_connect_unix(m->path, 200, &error);
    gint64 took = g_get_monotonic_time() - t0;
    assert_null(qmp);
    assert_error(error, SP_QMP_ERROR_TIMEOUT, m->path);
    assert_non_null(strstr(error->message, "greeting within 200 ms"));
    assert_non_null(strstr(error->message, ": no QMP greeting within 200 ms"));
    assert_true(took >= 190 * 1000);
    assert_true(took < 5 * G_USEC_PER_SEC);
    monitor_assert_ok(m);
}

/* QEMU hangs after a command, or sends half a reply and stops. */
static void
test_no_reply(void **state)
{
    (void)state;
    for (guint half = 0; half < 2; half++) {
        Monitor *m = monitor_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) list = NULL;
        g_autofree char *reply = recorded("query-memdev.txt", "S: ", 2);

        monitor_load(m, "query-memdev.txt", 0);
        g_ptr_array_remove_index(m->steps, m->steps->len - 1);
        if (half)
            monitor_add(m, STEP_SEND, reply, 0);   /* no line end */
        monitor_start(m);
        g_autoptr(SpQmp) qmp = connect_ok(m);
        sp_qmp_set_timeout(qmp, 300);
        list = sp_qmp_query_memdev(qmp, &error);
        assert_null(list);
        assert_error(error, SP_QMP_ERROR_TIMEOUT, m->path);
        assert_non_null(strstr(error->message, "reply to query-memdev"));
        /* "no reply to X within", not "no the reply to X within". */
        if (!half)
            assert_non_null(strstr(error->message, ": no reply to query-memdev within 300 ms"));
        assert_null(strstr(error->message, "no the"));
        g_clear_pointer(&qmp, sp_qmp_free);
        monitor_assert_ok(m);
        monitor_free(m);
    }
}

/* ---------------------------------------------------------------- parsers */

static void
test_parse_gpa2hva(void **state)
{
    g_autofree char *rec = NULL;
    g_autoptr(json_object) reply = NULL;
    g_autofree char *region = NULL;
    guint64 gpa = 1, hva = 0;
    g_autoptr(GError) error = NULL;

    (void)state;
    /* The recorded answer, "\r\n" and all. */
    rec = recorded("gpa2hva.txt", "S: ", 3);
    reply = json_tokener_parse(rec);
    assert_ok(sp_qmp_parse_gpa2hva(json_object_get_string(json_object_object_get(reply, "return")),
                                     &gpa, &region, &hva, &error));
    assert_true(gpa == 0x100000);
    assert_string_equal(region, "pc.ram");
    assert_true(hva == G_GUINT64_CONSTANT(0x7f2d17f00000));
    g_clear_pointer(&region, g_free);
    assert_ok(sp_qmp_parse_gpa2hva("Host virtual address for 0xffffffffffffffff "
                                     "(/objects/mem-1[0]) is 0xFFFF800000000000",
                                     &gpa, &region, &hva, &error));
    assert_true(gpa == G_MAXUINT64);
    assert_string_equal(region, "/objects/mem-1[0]");
    assert_true(hva == G_GUINT64_CONSTANT(0xffff800000000000));
    g_clear_pointer(&region, g_free);

    const char *hostile[] = {
        "",
        "\r\n",
        "No memory is mapped at address 0x40000000\r\n",
        "Memory at address 0xfee00000 is not RAM\r\n",
        "unexpected end of expression\r\nTry \"help gpa2hva\" for more information\r\n",
        "host virtual address for 0x0 (pc.ram) is 0x7f0000000000",
        "Host virtual address for 0x0 (pc.ram) is 0x",
        "Host virtual address for 0x0 (pc.ram) is (nil)",
        "Host virtual address for 0x0 (pc.ram) is 0x7f00000000000 trailing",
        "Host virtual address for 0x0 (pc.ram) is 0x7f0000000000\r\nand more\r\n",
        "Host virtual address for 0x0 () is 0x7f0000000000",
        "Host virtual address for 0x0 (pc\tram) is 0x7f0000000000",
        "Host virtual address for 0x0 (pc.ram is 0x7f0000000000",
        "Host virtual address for 0x0 (pc.ram) is 0x10000000000000000",
        "Host virtual address for 0x10000000000000000 (pc.ram) is 0x1",
        "Host virtual address for 0x0 (pc.ram) is -0x1",
        "Host virtual address for 0x0 (pc.ram) is 0x7fg0",
        "Host virtual address for 0 (pc.ram) is 0x7f0000000000",
        "Host virtual address for 0x0(pc.ram) is 0x7f0000000000",
        " Host virtual address for 0x0 (pc.ram) is 0x7f0000000000",
        "Host virtual address for ",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(hostile); i++) {
        g_autoptr(GError) e = NULL;
        char *r = NULL;

        if (sp_qmp_parse_gpa2hva(hostile[i], &gpa, &r, &hva, &e))
            fail_msg("accepted: '%s' (region '%s')", hostile[i], r);
        assert_null(r);
        assert_error(e, SP_QMP_ERROR_BAD_REPLY, "not a gpa2hva answer");
        /* The message quotes the text, escaped and cut short. */
        assert_null(strchr(e->message, '\n'));
        assert_true(strlen(e->message) < 200);
    }
}

static void
test_parse_memdevs(void **state)
{
    g_autofree char *rec = recorded("query-memdev-numa.txt", "S: ", 2);
    g_autoptr(json_object) reply = json_tokener_parse(rec);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    const SpQmpMemdev *d;

    (void)state;
    list = sp_qmp_parse_memdevs(json_object_object_get(reply, "return"), &error);
    assert_ok(list);
    assert_int_equal(list->len, 2);
    g_clear_pointer(&list, g_ptr_array_unref);

    /* Optional members absent (QEMU < 6.1), host nodes, the largest size. */
    g_autoptr(json_object) old = json_tokener_parse(
        "[{\"size\": 18446744073709551615, \"merge\": true, \"dump\": false,"
        " \"prealloc\": true, \"host-nodes\": [0, 65535], \"policy\": \"bind\"}]");
    list = sp_qmp_parse_memdevs(old, &error);
    assert_ok(list);
    d = g_ptr_array_index(list, 0);
    assert_null(d->id);
    assert_true(d->size == G_MAXUINT64);
    assert_false(d->has_share);
    assert_false(d->has_reserve);
    assert_int_equal(d->host_nodes->len, 2);
    assert_int_equal(g_array_index(d->host_nodes, guint, 1), 65535);
    assert_string_equal(d->policy, "bind");

    const char *base = "\"merge\": true, \"dump\": true, \"prealloc\": false, \"policy\": \"default\"";
    const char *hostile[] = {
        "{}",
        "null",
        "[1]",
        "[{\"size\": 1, \"host-nodes\": [], \"merge\": \"yes\", \"dump\": true, "
        "\"prealloc\": false, \"policy\": \"default\"}]",
        "[{\"size\": -1, \"host-nodes\": [], %s}]",
        "[{\"size\": \"512M\", \"host-nodes\": [], %s}]",
        "[{\"size\": 1.5, \"host-nodes\": [], %s}]",
        "[{\"host-nodes\": [], %s}]",
        "[{\"size\": 1, %s}]",
        "[{\"size\": 1, \"host-nodes\": [65536], %s}]",
        "[{\"size\": 1, \"host-nodes\": [-1], %s}]",
        "[{\"size\": 1, \"host-nodes\": [\"0\"], %s}]",
        "[{\"size\": 1, \"host-nodes\": {}, %s}]",
        "[{\"size\": 1, \"host-nodes\": [], \"id\": 7, %s}]",
        "[{\"size\": 1, \"host-nodes\": [], \"share\": 0, %s}]",
        "[{\"size\": 1, \"host-nodes\": [], \"merge\": true, \"dump\": true, \"prealloc\": false}]",
        "[{\"size\": 1, \"host-nodes\": [], %s}, 7]",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(hostile); i++) {
        g_autoptr(GError) e = NULL;
        g_autofree char *text = NULL;
        g_autoptr(json_object) j = NULL;
        g_autoptr(GPtrArray) l = NULL;

        g_auto(GStrv) parts = g_strsplit(hostile[i], "%s", -1);

        text = g_strjoinv(base, parts);
        j = json_tokener_parse(text);
        assert_true(j != NULL || g_str_equal(text, "null"));
        l = sp_qmp_parse_memdevs(j, &e);
        if (l)
            fail_msg("accepted: %s", text);
        assert_error(e, SP_QMP_ERROR_BAD_REPLY, NULL);
    }
}

static void
test_parse_properties(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) ok = json_tokener_parse(
        "[{\"name\": \"merge\", \"type\": \"bool\", \"description\": \"Mark as mergeable\","
        " \"default-value\": true}]");
    g_autoptr(GPtrArray) list = sp_qmp_parse_properties(ok, &error);
    const char *hostile[] = { "{}", "[[]]", "[{\"name\": \"x\"}]", "[{\"type\": \"bool\"}]",
                              "[{\"name\": 1, \"type\": \"bool\"}]",
                              "[{\"name\": \"x\", \"type\": \"bool\", \"description\": []}]" };

    (void)state;
    assert_non_null(list);
    assert_string_equal(((SpQmpProperty *)g_ptr_array_index(list, 0))->description,
                        "Mark as mergeable");
    for (gsize i = 0; i < G_N_ELEMENTS(hostile); i++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(json_object) j = json_tokener_parse(hostile[i]);
        g_autoptr(GPtrArray) l = sp_qmp_parse_properties(j, &e);

        if (l)
            fail_msg("accepted: %s", hostile[i]);
        assert_error(e, SP_QMP_ERROR_BAD_REPLY, NULL);
    }
}

static void
test_parse_reply(void **state)
{
    static const struct {
        const char *text;
        SpQmpErrorCode code;
        const char *part;
    } bad[] = {
        { "{\"error\": {\"class\": \"DeviceNotActive\", \"desc\": \"no\"}}", SP_QMP_ERROR_DEVICE_NOT_ACTIVE, "no" },
        { "{\"error\": {\"class\": \"KVMMissingCap\", \"desc\": \"cap\"}}", SP_QMP_ERROR_KVM_MISSING_CAP, "cap" },
        { "{\"error\": {\"desc\": \"x\", \"class\": \"FutureError\", \"more\": 1}}", SP_QMP_ERROR_GENERIC, "FutureError" },
        { "{\"error\": {\"class\": \"GenericError\"}}", SP_QMP_ERROR_PROTOCOL, "not a QMP reply" },
        { "{\"error\": {\"class\": 3, \"desc\": \"x\"}}", SP_QMP_ERROR_PROTOCOL, "not a QMP reply" },
        { "{\"error\": []}", SP_QMP_ERROR_PROTOCOL, "not a QMP reply" },
        { "{\"return\": null}", SP_QMP_ERROR_PROTOCOL, "null" },
        { "{}", SP_QMP_ERROR_PROTOCOL, "not a QMP reply" },
        { "", SP_QMP_ERROR_PROTOCOL, "not JSON" },
        { "   ", SP_QMP_ERROR_PROTOCOL, "not JSON" },
        { "{\"return\": {}", SP_QMP_ERROR_PROTOCOL, "not JSON" },
        { "{\"return\": {}}{\"return\": {}}", SP_QMP_ERROR_PROTOCOL, "not JSON" },
        { "{\"return\": 'x'}", SP_QMP_ERROR_PROTOCOL, "not JSON" },
        { "{\"return\": {},}", SP_QMP_ERROR_PROTOCOL, "not JSON" },
        { "\"return\"", SP_QMP_ERROR_PROTOCOL, "not a JSON object" },
        { "17", SP_QMP_ERROR_PROTOCOL, "not a JSON object" },
    };
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) ok = sp_qmp_parse_reply("{\"id\": \"libvirt-42\", \"return\": {\"status\": "
                                                   "\"running\"}}\r\n", &error);
    g_autofree char *deep = NULL;

    (void)state;
    assert_non_null(ok);
    assert_string_equal(json_object_get_string(json_object_object_get(ok, "status")), "running");
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(json_object) r = sp_qmp_parse_reply(bad[i].text, &e);

        if (r)
            fail_msg("accepted: %s", bad[i].text);
        assert_error(e, bad[i].code, bad[i].part);
    }
    /* Nesting deeper than json-c allows is refused, not a crash. */
    {
        g_autofree char *open = g_strnfill(100000, '[');
        g_autoptr(GError) e = NULL;

        deep = g_strconcat("{\"return\": ", open, NULL);
        assert_null(sp_qmp_parse_reply(deep, &e));
        assert_error(e, SP_QMP_ERROR_PROTOCOL, "...");
        assert_true(strlen(e->message) < 200);
    }
    assert_int_equal(sp_qmp_error_code_from_class("CommandNotFound"), SP_QMP_ERROR_COMMAND_NOT_FOUND);
    assert_int_equal(sp_qmp_error_code_from_class("DeviceNotFound"), SP_QMP_ERROR_DEVICE_NOT_FOUND);
    assert_int_equal(sp_qmp_error_code_from_class("genericerror"), SP_QMP_ERROR_GENERIC);
}

/* ---------------------------------------------------------------- a command transport */

/*
 * What a libvirt transport looks like: no greeting, no ids, one reply per
 * command (libvirt numbers commands itself: "libvirt-N").  This one answers
 * from a transcript and checks each command it is given.
 */
typedef struct {
    SpQmpTransport parent;
    GPtrArray *commands;       /* recorded C: lines, after qmp_capabilities */
    GPtrArray *replies;        /* recorded S: replies, in the same order */
    guint next;
    char *failure;
} FakeCommandTransport;

static char *
fake_command(SpQmpTransport *self, const char *command, gint64 deadline, GError **error)
{
    FakeCommandTransport *t = (FakeCommandTransport *)self;
    g_autoptr(json_object) got = json_tokener_parse(command);
    g_autoptr(json_object) want = NULL;

    assert_true(deadline > g_get_monotonic_time());
    if (t->next >= t->commands->len) {
        t->failure = g_strdup_printf("unexpected command %s", command);
        g_set_error_literal(error, SP_QMP_ERROR, SP_QMP_ERROR_IO, "no more replies");
        return NULL;
    }
    want = json_tokener_parse(g_ptr_array_index(t->commands, t->next));
    json_object_object_del(want, "id");
    if (!got || json_object_object_get_ex(got, "id", NULL) || !json_object_equal(got, want))
        t->failure = g_strdup_printf("expected %s without id, got %s",
                                     json_object_to_json_string(want), command);
    return g_strdup(g_ptr_array_index(t->replies, t->next++));
}

static void
fake_command_free(SpQmpTransport *self)
{
    FakeCommandTransport *t = (FakeCommandTransport *)self;

    g_ptr_array_unref(t->commands);
    g_ptr_array_unref(t->replies);
    g_free(t->failure);
    g_free(self->name);
    g_free(t);
}

static const SpQmpTransportOps fake_command_ops = {
    .command = fake_command,
    .free = fake_command_free,
};

static FakeCommandTransport *
fake_command_new(const char *file)
{
    FakeCommandTransport *t = g_new0(FakeCommandTransport, 1);
    g_autoptr(GPtrArray) lines = transcript(file, NULL);

    t->parent.ops = &fake_command_ops;
    t->parent.name = g_strdup("domain fake");
    t->commands = g_ptr_array_new_with_free_func(g_free);
    t->replies = g_ptr_array_new_with_free_func(g_free);
    /* Skip greeting and capabilities: libvirt did those. */
    for (guint i = 0; i < lines->len; i++) {
        const char *l = g_ptr_array_index(lines, i);
        if (g_str_has_prefix(l, "C: ") && !strstr(l, "qmp_capabilities"))
            g_ptr_array_add(t->commands, g_strdup(l + 3));
        else if (g_str_has_prefix(l, "S: ") && t->commands->len > t->replies->len &&
                 !strstr(l, "\"event\""))
            g_ptr_array_add(t->replies, g_strdup(l + 3));
    }
    assert_int_equal(t->commands->len, t->replies->len);
    return t;
}

static void
test_command_transport(void **state)
{
    g_autoptr(GError) error = NULL;
    FakeCommandTransport *t = fake_command_new("query-memdev-numa.txt");
    g_autoptr(SpQmp) qmp = sp_qmp_new(&t->parent, 1000, &error);
    g_autoptr(GPtrArray) list = NULL;
    g_autofree char *region = NULL;
    guint64 hva = 0;
    guint a, b, c;

    (void)state;
    assert_non_null(qmp);
    assert_false(sp_qmp_get_version(qmp, &a, &b, &c));
    assert_string_equal(sp_qmp_get_name(qmp), "domain fake");
    list = sp_qmp_query_memdev(qmp, &error);
    assert_ok(list);
    assert_int_equal(list->len, 2);
    assert_ok(sp_qmp_gpa2hva(qmp, 0, &region, &hva, &error));
    assert_string_equal(region, "ram-node0");
    assert_null(t->failure);
    g_clear_pointer(&qmp, sp_qmp_free);

    /* Errors come back as reply text and map the same way. */
    t = fake_command_new("errors.txt");
    qmp = sp_qmp_new(&t->parent, 1000, &error);
    gboolean v;
    assert_false(sp_qmp_qom_get_bool(qmp, "/objects/nosuch", "merge", &v, &error));
    assert_error(error, SP_QMP_ERROR_DEVICE_NOT_FOUND, "domain fake: qom-get: Device");
    assert_null(t->failure);
}

/* ---------------------------------------------------------------- an in-process stream */

/*
 * A stream transport without a socket or a thread: it hands out a greeting,
 * answers qmp_capabilities, queues a script after the client's next
 * command and, once that is out, a filler, again and again, at once.  It
 * never runs dry, so the client never has to wait (poll) for data: only its
 * own deadline can end a wait.  After GIVE_UP_MS it fails with an IO error,
 * so that a client that ignores its deadline fails the test instead of
 * hanging it.
 */
#define GIVE_UP_MS 5000

typedef struct {
    SpQmpTransport parent;
    GString *out;               /* bytes not handed out yet */
    char *script;               /* queued after the client's 2nd command */
    char *filler;               /* handed out when out is empty; NULL: closed */
    guint64 received;           /* bytes handed out so far */
    gsize pos;                  /* bytes of out already handed out */
    guint commands;
    gint64 started;
} FakeStream;

static gboolean
fake_stream_send(SpQmpTransport *self, const char *data, gsize len, gint64 deadline,
                 GError **error)
{
    FakeStream *t = (FakeStream *)self;

    (void)data;
    (void)len;
    (void)deadline;
    (void)error;
    if (++t->commands == 1)
        g_string_append(t->out, "{\"return\": {}, \"id\": 1}\r\n");
    else if (t->commands == 2 && t->script)
        g_string_append(t->out, t->script);
    return TRUE;
}

static gssize
fake_stream_receive(SpQmpTransport *self, char *buf, gsize size, gint64 deadline,
                    GError **error)
{
    FakeStream *t = (FakeStream *)self;
    gsize n;

    (void)deadline;
    if (g_get_monotonic_time() - t->started > GIVE_UP_MS * 1000) {
        g_set_error(error, SP_QMP_ERROR, SP_QMP_ERROR_IO,
                    "fake stream: still asked for bytes after %d ms", GIVE_UP_MS);
        return -1;
    }
    if (t->pos == t->out->len) {
        /* All handed out: start over (what a send appends comes next). */
        g_string_truncate(t->out, 0);
        t->pos = 0;
    }
    if (t->out->len == 0 && t->commands >= 2) {
        if (!t->filler)
            return 0;
        /* A few KiB of filler per call, as a fast peer would send. */
        while (t->out->len < 4096)
            g_string_append(t->out, t->filler);
    }
    if (t->out->len == 0) {
        g_set_error_literal(error, SP_QMP_ERROR, SP_QMP_ERROR_IO,
                            "fake stream: asked for bytes before a command");
        return -1;
    }
    /* An offset, not erasing the front: megabytes of script stay linear. */
    n = MIN(size, t->out->len - t->pos);
    memcpy(buf, t->out->str + t->pos, n);
    t->pos += n;
    t->received += n;
    return (gssize)n;
}

static void
fake_stream_free(SpQmpTransport *self)
{
    FakeStream *t = (FakeStream *)self;

    g_string_free(t->out, TRUE);
    g_free(t->script);
    g_free(t->filler);
    g_free(self->name);
    g_free(t);
}

static const SpQmpTransportOps fake_stream_ops = {
    .send = fake_stream_send,
    .receive = fake_stream_receive,
    .free = fake_stream_free,
};

/* A client on a new fake stream; *stream stays valid until the client is freed. */
static SpQmp *
fake_stream_connect(const char *script, const char *filler, FakeStream **stream)
{
    FakeStream *t = g_new0(FakeStream, 1);
    g_autofree char *greeting = recorded("greeting.txt", "S: ", 0);
    g_autoptr(GError) error = NULL;
    SpQmp *qmp;

    t->parent.ops = &fake_stream_ops;
    t->parent.name = g_strdup("fake stream");
    t->out = g_string_new(greeting);
    g_string_append(t->out, "\r\n");
    t->script = g_strdup(script);
    t->filler = g_strdup(filler);
    t->started = g_get_monotonic_time();
    *stream = t;
    qmp = sp_qmp_new(&t->parent, TIMEOUT_MS, &error);
    assert_ok(qmp);
    return qmp;
}

/*
 * A peer that never runs dry (endless events, late replies with other ids,
 * blank lines) cannot hold the client past its deadline.
 */
static void
test_deadline_never_dry(void **state)
{
    const char *fillers[] = {
        "{\"timestamp\": {\"seconds\": 1795319794, \"microseconds\": 819034}, \"event\": \"RESUME\"}\r\n",
        "{\"return\": {}, \"id\": 1}\r\n",
        "\r\n",
        " \t \r\n",
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(fillers); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) r = NULL;
        FakeStream *t;
        g_autoptr(SpQmp) qmp = fake_stream_connect(NULL, fillers[i], &t);
        gint64 t0, took;

        sp_qmp_set_record_events(qmp, TRUE);
        sp_qmp_set_timeout(qmp, 300);
        t0 = g_get_monotonic_time();
        r = sp_qmp_execute(qmp, "query-status", NULL, &error);
        took = g_get_monotonic_time() - t0;
        assert_null(r);
        assert_error(error, SP_QMP_ERROR_TIMEOUT, "fake stream: ");
        assert_non_null(strstr(error->message, "reply to query-status"));
        if (took >= 5 * 300 * 1000)
            fail_msg("filler %zu: the 300 ms timeout ended the wait after %" G_GINT64_FORMAT
                     " ms", i, took / 1000);
        assert_true(t->received > 0);
    }
}

/*
 * A line longer than the limit (2 MiB) is refused before more of it is
 * buffered; a reply just under the limit is still read.
 */
#define LINE_LIMIT (2u * 1024 * 1024)

static void
test_line_limit(void **state)
{
    (void)state;
    {
        /* Bytes and no line end, forever. */
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) r = NULL;
        FakeStream *t;
        g_autoptr(SpQmp) qmp = fake_stream_connect("{\"return\": \"", "0123456789abcdef", &t);

        r = sp_qmp_execute(qmp, "query-status", NULL, &error);
        assert_null(r);
        assert_error(error, SP_QMP_ERROR_PROTOCOL, "longer than 2097152 bytes");
        assert_non_null(strstr(error->message, "reply to query-status"));
        if (t->received > LINE_LIMIT + 64 * 1024)
            fail_msg("%" G_GUINT64_FORMAT " bytes read for a line of at most %u",
                     t->received, LINE_LIMIT);
    }
    for (guint over = 0; over < 2; over++) {
        /* A whole reply of LINE_LIMIT + over bytes, "\r\n" not counted. */
        const char *head = "{\"id\": 2, \"return\": \"";
        const char *tail = "\"}";
        gsize fill = LINE_LIMIT + over - strlen(head) - strlen(tail);
        g_autofree char *pad = g_strnfill(fill, 'x');
        g_autofree char *line = g_strconcat(head, pad, tail, "\r\n", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) r = NULL;
        FakeStream *t;
        g_autoptr(SpQmp) qmp = fake_stream_connect(line, NULL, &t);

        r = sp_qmp_execute(qmp, "query-status", NULL, &error);
        if (over) {
            assert_null(r);
            assert_error(error, SP_QMP_ERROR_PROTOCOL, "longer than 2097152 bytes");
        } else {
            assert_ok(r);
            assert_int_equal(json_object_get_string_len(r), fill);
        }
    }
    {
        /* After a refused line, the next command skips the rest of it. */
        g_autofree char *pad = g_strnfill(LINE_LIMIT + 100000, 'x');
        g_autofree char *script = g_strconcat(pad, "\r\n{\"return\": {\"status\": \"running\"}, "
                                              "\"id\": 3}\r\n", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) r = NULL;
        g_autoptr(json_object) r2 = NULL;
        FakeStream *t;
        g_autoptr(SpQmp) qmp = fake_stream_connect(script, NULL, &t);

        r = sp_qmp_execute(qmp, "query-status", NULL, &error);
        assert_null(r);
        assert_error(error, SP_QMP_ERROR_PROTOCOL, "longer than 2097152 bytes");
        g_clear_error(&error);
        r2 = sp_qmp_execute(qmp, "query-status", NULL, &error);
        assert_ok(r2);
        assert_string_equal(json_object_get_string(json_object_object_get(r2, "status")), "running");
    }
    {
        /* The same limit for a reply a command transport returns. */
        g_autofree char *pad = g_strnfill(LINE_LIMIT, 'x');
        g_autofree char *text = g_strconcat("{\"return\": \"", pad, "\"}", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) r = sp_qmp_parse_reply(text, &error);

        assert_null(r);
        assert_error(error, SP_QMP_ERROR_PROTOCOL, "longer than 2097152 bytes");
    }
}

/* Recorded events are capped by their total size (1 MiB), not only by count. */
#define EVENT_BYTES (1024u * 1024)

static void
test_events_bytes(void **state)
{
    g_autoptr(GString) script = g_string_new(NULL);
    g_autofree char *blob = g_strnfill(64 * 1024, 'a');
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) r = NULL;
    g_autoptr(GPtrArray) events = NULL;
    const SpQmpEvent *last;
    gsize total = 0;
    FakeStream *t;

    (void)state;
    for (guint i = 0; i < 100; i++)
        g_string_append_printf(script, "{\"event\": \"BLOB\", \"data\": {\"n\": %u, "
                               "\"blob\": \"%s\"}}\r\n", i, blob);
    g_string_append(script, "{\"return\": {}, \"id\": 2}\r\n");
    g_autoptr(SpQmp) qmp = fake_stream_connect(script->str, NULL, &t);
    sp_qmp_set_record_events(qmp, TRUE);
    r = sp_qmp_execute(qmp, "query-status", NULL, &error);
    assert_ok(r);
    events = sp_qmp_take_events(qmp);
    assert_true(events->len > 0);
    for (guint i = 0; i < events->len; i++) {
        const SpQmpEvent *e = g_ptr_array_index(events, i);
        total += strlen(e->name) + strlen(json_object_to_json_string(e->data));
    }
    if (total > EVENT_BYTES)
        fail_msg("%u events of %zu bytes kept, more than %u", events->len, total, EVENT_BYTES);
    /* The newest are kept. */
    last = g_ptr_array_index(events, events->len - 1);
    assert_int_equal(json_object_get_int(json_object_object_get(last->data, "n")), 99);
}

/* A command transport that answers after the deadline: a timeout, not the answer. */
static char *
slow_command(SpQmpTransport *self, const char *command, gint64 deadline, GError **error)
{
    (void)self;
    (void)command;
    (void)error;
    while (g_get_monotonic_time() <= deadline + 50 * 1000)
        g_usleep(10 * 1000);
    return g_strdup("{\"return\": {\"status\": \"running\"}}");
}

static void
slow_command_free(SpQmpTransport *self)
{
    g_free(self->name);
    g_free(self);
}

static const SpQmpTransportOps slow_command_ops = {
    .command = slow_command,
    .free = slow_command_free,
};

static void
test_command_deadline(void **state)
{
    SpQmpTransport *t = g_new0(SpQmpTransport, 1);
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) r = NULL;

    (void)state;
    t->ops = &slow_command_ops;
    t->name = g_strdup("domain slow");
    g_autoptr(SpQmp) qmp = sp_qmp_new(t, 100, &error);
    assert_ok(qmp);
    r = sp_qmp_execute(qmp, "query-status", NULL, &error);
    assert_null(r);
    assert_error(error, SP_QMP_ERROR_TIMEOUT, "domain slow: ");
    assert_non_null(strstr(error->message, "reply to query-status"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_greeting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_memdev, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_memdev_numa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_memdev_mem_merge_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qom_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qom_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpa2hva, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_between, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_id, setup, teardown),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_not_qmp),
        cmocka_unit_test_setup_teardown(test_closed_mid_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_listens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_greeting, setup, teardown),
        cmocka_unit_test(test_no_reply),
        cmocka_unit_test(test_parse_gpa2hva),
        cmocka_unit_test(test_parse_memdevs),
        cmocka_unit_test(test_parse_properties),
        cmocka_unit_test(test_parse_reply),
        cmocka_unit_test(test_command_transport),
        cmocka_unit_test(test_deadline_never_dry),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_events_bytes),
        cmocka_unit_test(test_command_deadline),
    };

    /* Debug output (the QMP traffic) must not mix with TAP on stdout. */
    g_log_writer_default_set_use_stderr(TRUE);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
