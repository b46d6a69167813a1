/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * splibvirt.c: guests under libvirt
 *
 * The only file of libsamepage that calls libvirt: connections, the
 * domains the experiment runner and SpCleanup make and remove, their guest
 * agents, and the guests samepage looks at.  libvirt's errors become
 * GErrors here (one reader of its last error, one silencer of its stderr
 * printing, in sp_libvirt_open()).
 *
 * libvirt owns each domain's QMP socket; commands go through
 * virDomainQemuMonitorCommand(), wrapped as an SpQmp "command" transport.
 * libvirt has no API for the QEMU pid.  For qemu:///system its pid file
 * (/run/libvirt/qemu/NAME.pid) names it; the process must also hold
 * "-uuid <domain uuid>" (libvirt always passes -uuid) and belong to root or
 * libvirt's QEMU user.  Without the pid file every process is looked at,
 * and one of another user is never taken: anyone can start a process with
 * that -uuid.  All of it goes through the host's procfs and /run so tests
 * can point them elsewhere.  Whoever signals QEMU holds it by a pidfd
 * (sp_libvirt_open_qemu(), SpProcess).
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-libvirt"

#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <libvirt-glib/libvirt-glib.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "samepage/splibvirt.h"

G_DEFINE_QUARK(sp-libvirt-error-quark, sp_libvirt_error)

struct _SpLibvirt {
    virConnectPtr conn;
    char *requested;            /* the URI asked for; NULL: libvirt's default */
    char *uri;                  /* the one connected to (virConnectGetURI), for messages */
    SpLibvirtOpenFlags flags;
    /* sp_libvirt_watch() */
    int lifecycle_id;           /* -1: none */
    gboolean close_registered;
    SpLibvirtLifecycleFunc lifecycle;
    SpLibvirtClosedFunc closed;
    gpointer user_data;
};

/* The one reader of libvirt's (per-thread) last error. */
static const char *
sp_libvirt_last_error(void)
{
    const char *msg = virGetLastErrorMessage();
    return msg && *msg ? msg : "unknown libvirt error";
}

/* libvirt's last error as our code. */
static SpLibvirtErrorCode
sp_libvirt_last_code(void)
{
    switch (virGetLastErrorCode()) {
    case VIR_ERR_NO_DOMAIN:
        return SP_LIBVIRT_ERROR_NO_DOMAIN;
    case VIR_ERR_AGENT_UNRESPONSIVE:
    case VIR_ERR_AGENT_UNSYNCED:
        return SP_LIBVIRT_ERROR_AGENT;
    default:
        return SP_LIBVIRT_ERROR_FAILED;
    }
}

/* @error from libvirt's last error: its code, its message; callers add
 * what they were doing with g_prefix_error(). */
static void
sp_libvirt_fail(GError **error)
{
    g_set_error_literal(error, SP_LIBVIRT_ERROR, sp_libvirt_last_code(), sp_libvirt_last_error());
}

/* libvirt prints every error on stderr unless told otherwise; we report
 * errors ourselves, once. */
static void
sp_libvirt_silent(void *opaque, virErrorPtr err)
{
}

static virConnectPtr
sp_libvirt_connect(const char *uri, SpLibvirtOpenFlags flags, GError **error)
{
    virConnectPtr conn;
    SpLibvirtPlace place = SP_LIBVIRT_PLACE_LOCAL;

    /* Credentials (an ssh password, a SASL user) are asked for on the
     * terminal only when the caller has one; a daemon never waits on it. */
    conn = virConnectOpenAuth(uri, (flags & SP_LIBVIRT_OPEN_ASK) ? virConnectAuthPtrDefault : NULL,
                              (flags & SP_LIBVIRT_OPEN_READONLY) ? VIR_CONNECT_RO : 0);
    if (!conn) {
        if (uri && !sp_libvirt_uri_classify(uri, &place, NULL, NULL))
            place = SP_LIBVIRT_PLACE_LOCAL;
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT,
                    "cannot connect to %s: %s (%s)", uri ? uri : "libvirt's default URI",
                    sp_libvirt_last_error(),
                    place == SP_LIBVIRT_PLACE_REMOTE
                        ? "is the host reachable, and libvirtd running there?"
                        : "is libvirtd running?");
    }
    return conn;
}

/* The URI libvirt says @conn is connected to (an alias or the default
 * resolved); @fallback when it cannot tell. */
static char *
sp_libvirt_conn_uri(virConnectPtr conn, const char *fallback)
{
    char *uri = virConnectGetURI(conn);
    char *copy;

    if (!uri)
        return g_strdup(fallback ? fallback : "libvirt's default URI");
    copy = g_strdup(uri);
    free(uri);
    return copy;
}

/**
 * sp_libvirt_open:
 * @uri: (nullable): a libvirt URI or alias; NULL: libvirt's default
 *
 * sp_libvirt_open_full() with no flags: read-write, no credentials asked
 * (the daemon, the experiment runner).
 */
SpLibvirt *
sp_libvirt_open(const char *uri, GError **error)
{
    return sp_libvirt_open_full(uri, 0, error);
}

/**
 * sp_libvirt_open_full:
 * @uri: (nullable): a libvirt URI or alias; NULL: the URI the user's
 *   libvirt picks ($LIBVIRT_DEFAULT_URI, uri_default of libvirt.conf, else
 *   a local driver)
 * @flags: read-only, ask for credentials
 *
 * The connection is to @uri, opened with virConnectOpenAuth(), and every
 * call through it reports libvirt's errors in its GError only: this is the
 * one place that silences libvirt's printing of errors on stderr (a
 * process-wide setting of libvirt's).
 */
SpLibvirt *
sp_libvirt_open_full(const char *uri, SpLibvirtOpenFlags flags, GError **error)
{
    SpLibvirt *lv;
    virConnectPtr conn;

    virSetErrorFunc(NULL, sp_libvirt_silent);
    conn = sp_libvirt_connect(uri, flags, error);
    if (!conn)
        return NULL;
    lv = g_new0(SpLibvirt, 1);
    lv->conn = conn;
    lv->requested = g_strdup(uri);
    lv->uri = uri ? g_strdup(uri) : sp_libvirt_conn_uri(conn, NULL);
    lv->flags = flags;
    lv->lifecycle_id = -1;
    return lv;
}

/**
 * sp_libvirt_is_readonly:
 *
 * TRUE for a connection opened with SP_LIBVIRT_OPEN_READONLY: libvirt
 * refuses every change through it, and QEMU monitor passthrough too.
 */
gboolean
sp_libvirt_is_readonly(const SpLibvirt *lv)
{
    return (lv->flags & SP_LIBVIRT_OPEN_READONLY) != 0;
}

/**
 * sp_libvirt_is_alive:
 *
 * TRUE while libvirtd answers on the connection.
 */
gboolean
sp_libvirt_is_alive(SpLibvirt *lv)
{
    return lv->conn && virConnectIsAlive(lv->conn) == 1;
}

/**
 * sp_libvirt_reconnect:
 *
 * Drops the connection and opens a new one to the same URI (libvirtd was
 * restarted, say).  Domain handles of the old connection must be looked up
 * again.  On failure the connection stays closed: calls fail with
 * SP_LIBVIRT_ERROR_CONNECT until a reconnect succeeds.
 */
gboolean
sp_libvirt_reconnect(SpLibvirt *lv, GError **error)
{
    sp_libvirt_unwatch(lv);
    if (lv->conn)
        virConnectClose(lv->conn);
    lv->conn = sp_libvirt_connect(lv->requested, lv->flags, error);
    return lv->conn != NULL;
}

static gboolean
sp_libvirt_check_conn(SpLibvirt *lv, GError **error)
{
    if (lv->conn)
        return TRUE;
    g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_CONNECT,
                "not connected to %s (is libvirtd running?)", lv->uri);
    return FALSE;
}

void
sp_libvirt_free(SpLibvirt *lv)
{
    if (!lv)
        return;
    sp_libvirt_unwatch(lv);
    if (lv->conn)
        virConnectClose(lv->conn);
    g_free(lv->requested);
    g_free(lv->uri);
    g_free(lv);
}

const char *
sp_libvirt_get_uri(const SpLibvirt *lv)
{
    return lv->uri;
}

static int
sp_cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/**
 * sp_libvirt_list_running:
 *
 * Returns: (transfer full): the names of the running domains, sorted.
 */
GStrv
sp_libvirt_list_running(SpLibvirt *lv, GError **error)
{
    virDomainPtr *doms = NULL;
    GPtrArray *names;
    int n;

    if (!sp_libvirt_check_conn(lv, error))
        return NULL;
    n = virConnectListAllDomains(lv->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                    "%s: cannot list domains: %s", lv->uri, sp_libvirt_last_error());
        return NULL;
    }
    names = g_ptr_array_new();
    for (int i = 0; i < n; i++) {
        g_ptr_array_add(names, g_strdup(virDomainGetName(doms[i])));
        virDomainFree(doms[i]);
    }
    free(doms);
    g_ptr_array_sort(names, sp_cmp_str);
    g_ptr_array_add(names, NULL);
    return (GStrv)g_ptr_array_free(names, FALSE);
}

static virDomainPtr
sp_libvirt_lookup(SpLibvirt *lv, const char *name, gboolean need_running, GError **error)
{
    virDomainPtr dom;

    if (!sp_libvirt_check_conn(lv, error))
        return NULL;
    dom = virDomainLookupByName(lv->conn, name);
    if (!dom) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_DOMAIN,
                    "no domain '%s' on %s", name, lv->uri);
        return NULL;
    }
    if (need_running && virDomainIsActive(dom) != 1) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NOT_RUNNING,
                    "domain '%s' is not running", name);
        virDomainFree(dom);
        return NULL;
    }
    return dom;
}

/* ------------------------------------------------------------- domains */

struct _SpLibvirtDomain {
    virDomainPtr dom;
    char *name;
    char uuid[VIR_UUID_STRING_BUFLEN];
};

G_STATIC_ASSERT(SP_LIBVIRT_STATE_RUNNING == (int)VIR_DOMAIN_RUNNING);
G_STATIC_ASSERT(SP_LIBVIRT_STATE_SHUTOFF == (int)VIR_DOMAIN_SHUTOFF);
G_STATIC_ASSERT(SP_LIBVIRT_STATE_PMSUSPENDED == (int)VIR_DOMAIN_PMSUSPENDED);

/* Takes @dom. */
static SpLibvirtDomain *
sp_libvirt_domain_new(virDomainPtr dom, GError **error)
{
    g_autoptr(SpLibvirtDomain) d = g_new0(SpLibvirtDomain, 1);
    const char *name;

    d->dom = dom;
    name = virDomainGetName(dom);
    if (!name || virDomainGetUUIDString(dom, d->uuid) < 0) {
        sp_libvirt_fail(error);
        return NULL;
    }
    d->name = g_strdup(name);
    return g_steal_pointer(&d);
}

void
sp_libvirt_domain_free(SpLibvirtDomain *dom)
{
    if (!dom)
        return;
    if (dom->dom)
        virDomainFree(dom->dom);
    g_free(dom->name);
    g_free(dom);
}

/**
 * sp_libvirt_define_xml:
 * @xml: a domain's XML
 *
 * Defines (persistently) the domain @xml describes; it is not started.
 *
 * Returns: (transfer full): the domain, or NULL with @error set (libvirt's
 * message: the XML refused, a name or UUID taken).
 */
SpLibvirtDomain *
sp_libvirt_define_xml(SpLibvirt *lv, const char *xml, GError **error)
{
    virDomainPtr dom;

    if (!sp_libvirt_check_conn(lv, error))
        return NULL;
    dom = virDomainDefineXML(lv->conn, xml);
    if (!dom) {
        sp_libvirt_fail(error);
        return NULL;
    }
    return sp_libvirt_domain_new(dom, error);
}

/**
 * sp_libvirt_lookup_uuid:
 *
 * Returns: (transfer full): the domain of @uuid, or NULL with @error set:
 * SP_LIBVIRT_ERROR_NO_DOMAIN when libvirt knows no such domain, another
 * code when it could not tell (libvirtd gone, say).
 */
SpLibvirtDomain *
sp_libvirt_lookup_uuid(SpLibvirt *lv, const char *uuid, GError **error)
{
    virDomainPtr dom;

    if (!sp_libvirt_check_conn(lv, error))
        return NULL;
    dom = virDomainLookupByUUIDString(lv->conn, uuid);
    if (!dom) {
        sp_libvirt_fail(error);
        return NULL;
    }
    return sp_libvirt_domain_new(dom, error);
}

const char *
sp_libvirt_domain_get_name(const SpLibvirtDomain *dom)
{
    return dom->name;
}

const char *
sp_libvirt_domain_get_uuid(const SpLibvirtDomain *dom)
{
    return dom->uuid;
}

/**
 * sp_libvirt_start:
 *
 * Starts the defined domain (virDomainCreate()).
 */
gboolean
sp_libvirt_start(SpLibvirtDomain *dom, GError **error)
{
    if (virDomainCreate(dom->dom) < 0) {
        sp_libvirt_fail(error);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_libvirt_destroy:
 *
 * Stops the running domain at once (its QEMU is killed); it stays defined.
 */
gboolean
sp_libvirt_destroy(SpLibvirtDomain *dom, GError **error)
{
    if (virDomainDestroy(dom->dom) < 0) {
        sp_libvirt_fail(error);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_libvirt_undefine:
 *
 * Removes the domain's definition (a running domain becomes transient).
 */
gboolean
sp_libvirt_undefine(SpLibvirtDomain *dom, GError **error)
{
    if (virDomainUndefine(dom->dom) < 0) {
        sp_libvirt_fail(error);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_libvirt_is_active:
 *
 * Returns: TRUE when the domain runs; FALSE when it does not, or with
 * @error set when libvirt could not tell.
 */
gboolean
sp_libvirt_is_active(SpLibvirtDomain *dom, GError **error)
{
    int active = virDomainIsActive(dom->dom);

    if (active < 0)
        sp_libvirt_fail(error);
    return active == 1;
}

/**
 * sp_libvirt_get_state:
 * @state: (out): the domain's state
 * @reason: (out): why, libvirt's reason code of that state
 */
gboolean
sp_libvirt_get_state(SpLibvirtDomain *dom, SpLibvirtState *state, int *reason, GError **error)
{
    int st = 0, why = 0;

    if (virDomainGetState(dom->dom, &st, &why, 0) < 0) {
        sp_libvirt_fail(error);
        return FALSE;
    }
    *state = (SpLibvirtState)st;
    *reason = why;
    return TRUE;
}

/**
 * sp_libvirt_agent_command:
 * @json: a guest agent command ({"execute": ..., "arguments": ...})
 * @timeout_s: seconds to wait for the answer
 *
 * Sends @json to the domain's QEMU guest agent through libvirt.
 *
 * Returns: (transfer full): the agent's reply, JSON text, or NULL with
 * @error set (SP_LIBVIRT_ERROR_AGENT: no agent connected or no answer in
 * time).
 */
char *
sp_libvirt_agent_command(SpLibvirtDomain *dom, const char *json, int timeout_s, GError **error)
{
    char *reply = virDomainQemuAgentCommand(dom->dom, json, timeout_s, 0);
    char *copy;

    if (!reply) {
        sp_libvirt_fail(error);
        return NULL;
    }
    /* libvirt allocates with malloc; hand back glib memory. */
    copy = g_strdup(reply);
    free(reply);
    return copy;
}

/**
 * sp_libvirt_hmp_command:
 * @command: a human monitor command ("gpa2hva 0")
 *
 * Returns: (transfer full): QEMU's answer, or NULL with @error set.
 */
char *
sp_libvirt_hmp_command(SpLibvirtDomain *dom, const char *command, GError **error)
{
    char *reply = NULL;
    char *copy;

    if (virDomainQemuMonitorCommand(dom->dom, command, &reply,
                                    VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) < 0) {
        sp_libvirt_fail(error);
        return NULL;
    }
    copy = g_strdup(reply);
    free(reply);
    return copy;
}

/* ------------------------------------------------------------- transport */

typedef struct {
    SpQmpTransport parent;
    virDomainPtr dom;
    gboolean readonly;          /* its connection's: libvirt refuses passthrough */
} SpLibvirtQmp;

static char *
sp_libvirt_qmp_command(SpQmpTransport *self, const char *command, gint64 deadline,
                       GError **error)
{
    SpLibvirtQmp *t = (SpLibvirtQmp *)self;
    char *result = NULL;

    if (t->readonly) {
        /* libvirt would refuse it too, less clearly. */
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_READ_ONLY,
                    "%s: the QEMU monitor is reached through libvirt's passthrough "
                    "(qemu-monitor-command), which a read-only connection may not use: drop -r, "
                    "or give the guest's own QMP socket with --qmp", t->parent.name);
        return NULL;
    }
    if (virDomainQemuMonitorCommand(t->dom, command, &result, 0) < 0) {
        sp_libvirt_fail(error);
        return NULL;
    }
    /* libvirt allocates with malloc; hand back glib memory. */
    char *copy = g_strdup(result);
    free(result);
    return copy;
}

static void
sp_libvirt_qmp_free(SpQmpTransport *self)
{
    SpLibvirtQmp *t = (SpLibvirtQmp *)self;

    virDomainFree(t->dom);
    g_free(t->parent.name);
    g_free(t);
}

static const SpQmpTransportOps sp_libvirt_qmp_ops = {
    .command = sp_libvirt_qmp_command,
    .free = sp_libvirt_qmp_free,
};

/* An SpGuest named @name on QMP through @dom (its reference is taken over). */
static SpGuest *
sp_libvirt_guest_new(virDomainPtr dom, const char *name, pid_t pid, gboolean readonly,
                     GError **error)
{
    SpLibvirtQmp *t = g_new0(SpLibvirtQmp, 1);
    SpQmp *qmp;

    t->parent.ops = &sp_libvirt_qmp_ops;
    t->parent.name = g_strdup_printf("domain %s", name);
    t->dom = dom;
    t->readonly = readonly;
    qmp = sp_qmp_new(&t->parent, 0, error);
    if (!qmp)
        return NULL;
    return sp_guest_new(name, pid, qmp);
}

/* ------------------------------------------------------------- pid */

/**
 * sp_cmdline_has_uuid:
 * @cmdline: /proc/PID/cmdline (NUL-separated)
 *
 * TRUE when the arguments hold "-uuid" followed by @uuid.
 */
gboolean
sp_cmdline_has_uuid(const char *cmdline, gsize len, const char *uuid)
{
    const char *p = cmdline, *end = cmdline + len;
    gboolean next_is_uuid = FALSE;

    while (p < end) {
        gsize l = strnlen(p, end - p);
        if (next_is_uuid)
            return l == strlen(uuid) && g_ascii_strncasecmp(p, uuid, l) == 0;
        next_is_uuid = (l == 5 && memcmp(p, "-uuid", 5) == 0);
        p += l + 1;
    }
    return FALSE;
}

/**
 * sp_libvirt_qemu_owners:
 *
 * Returns: (transfer full) (element-type uid_t): the users a QEMU started
 * by libvirt may run as: root, libvirt's QEMU user (libvirt-qemu on Debian,
 * qemu on Fedora; whichever exists), and ourselves (qemu:///session).
 */
GArray *
sp_libvirt_qemu_owners(void)
{
    static const char *const users[] = { "libvirt-qemu", "qemu" };
    GArray *uids = g_array_new(FALSE, FALSE, sizeof(uid_t));
    uid_t root = 0, self = geteuid();

    g_array_append_val(uids, root);
    if (self != 0)
        g_array_append_val(uids, self);
    for (gsize i = 0; i < G_N_ELEMENTS(users); i++) {
        struct passwd pw, *found = NULL;
        char buf[1024];
        if (getpwnam_r(users[i], &pw, buf, sizeof(buf), &found) == 0 && found)
            g_array_append_val(uids, found->pw_uid);
    }
    return uids;
}

typedef enum {
    SP_QEMU_NO,          /* not this domain's (no such process, no -uuid) */
    SP_QEMU_FOREIGN,     /* carries the -uuid, but another user owns it */
    SP_QEMU_YES,
} SpQemuMatch;

/* Whether /proc/@pid is a QEMU of @uuid owned by one of @owners (every uid
 * of its Uid line); *@uid is the real uid read. */
static SpQemuMatch
sp_libvirt_match_qemu(const SpHost *host, pid_t pid, const char *uuid, GArray *owners, uid_t *uid)
{
    g_autofree char *cmd_path = sp_host_procfs_path(host, "%d/cmdline", (int)pid);
    g_autofree char *status_path = sp_host_procfs_path(host, "%d/status", (int)pid);
    g_autofree char *cmdline = NULL;
    g_autofree char *status = NULL;
    SpProcessStatus st;
    gsize len;

    if (!g_file_get_contents(cmd_path, &cmdline, &len, NULL) ||
        !sp_cmdline_has_uuid(cmdline, len, uuid))
        return SP_QEMU_NO;
    if (!g_file_get_contents(status_path, &status, NULL, NULL) ||
        !sp_process_parse_status(status, &st, NULL))
        return SP_QEMU_NO;
    *uid = st.uid[0];
    for (guint i = 0; i < G_N_ELEMENTS(st.uid); i++) {
        gboolean ok = FALSE;
        for (guint j = 0; j < owners->len && !ok; j++)
            ok = st.uid[i] == g_array_index(owners, uid_t, j);
        if (!ok) {
            *uid = st.uid[i];
            return SP_QEMU_FOREIGN;
        }
    }
    return SP_QEMU_YES;
}

/* The pid in libvirt's pid file of @name (qemu:///system writes
 * <run>/libvirt/qemu/NAME.pid), or 0. */
static pid_t
sp_libvirt_pid_file(const SpHost *host, const char *name)
{
    g_autofree char *path = sp_host_run_path(host, "libvirt/qemu/%s.pid", name);
    g_autofree char *text = NULL;
    gint64 pid;

    if (strchr(name, '/') || !g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    if (!g_ascii_string_to_signed(g_strstrip(text), 10, 1, G_MAXINT32, &pid, NULL)) {
        g_debug("%s: '%s' is not a pid; ignored", path, text);
        return 0;
    }
    return (pid_t)pid;
}

/**
 * sp_libvirt_find_qemu:
 * @name: the domain's name (for libvirt's pid file)
 * @uuid: the domain's uuid
 * @owners: (nullable) (element-type uid_t): the users QEMU may run as;
 *   NULL: sp_libvirt_qemu_owners()
 *
 * The pid of the domain's QEMU.  libvirt's pid file names it; the process
 * must still carry "-uuid @uuid" and belong to one of @owners.  Without a
 * usable pid file (another URI, an older libvirt), every process is looked
 * at: any local user can start one with that -uuid, so a process of another
 * user is never taken (SP_LIBVIRT_ERROR_REFUSED when there is no other),
 * and two candidates are an error (SP_LIBVIRT_ERROR_AMBIGUOUS), not a
 * guess.
 *
 * Returns: the pid, or 0 with @error set.
 */
pid_t
sp_libvirt_find_qemu(const SpHost *host, const char *name, const char *uuid, GArray *owners,
                     GError **error)
{
    g_autoptr(GArray) own = owners ? g_array_ref(owners) : sp_libvirt_qemu_owners();
    g_autofree char *proc = sp_host_procfs_path(host, "%s", "");
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GArray) found = g_array_new(FALSE, FALSE, sizeof(pid_t));
    g_autoptr(GString) foreign = g_string_new(NULL);
    pid_t pid = sp_libvirt_pid_file(host, name);
    const char *entry;
    uid_t uid = 0;

    if (pid) {
        SpQemuMatch m = sp_libvirt_match_qemu(host, pid, uuid, own, &uid);
        if (m == SP_QEMU_YES)
            return pid;
        g_debug("libvirt's pid file of %s names pid %d, which is %s; looking at every process",
                name, (int)pid, m == SP_QEMU_FOREIGN ? "another user's" : "not its QEMU");
    }
    dir = g_dir_open(proc, 0, NULL);
    while (dir && (entry = g_dir_read_name(dir))) {
        gint64 n;

        if (!g_ascii_string_to_signed(entry, 10, 1, G_MAXINT32, &n, NULL))
            continue;
        pid = (pid_t)n;
        switch (sp_libvirt_match_qemu(host, pid, uuid, own, &uid)) {
        case SP_QEMU_YES:
            g_array_append_val(found, pid);
            break;
        case SP_QEMU_FOREIGN:
            g_string_append_printf(foreign, "%spid %d (uid %u)", foreign->len ? ", " : "",
                                   (int)pid, (guint)uid);
            break;
        case SP_QEMU_NO:
            break;
        }
    }
    if (found->len == 1)
        return g_array_index(found, pid_t, 0);
    if (found->len > 1) {
        g_autoptr(GString) pids = g_string_new(NULL);
        for (guint i = 0; i < found->len; i++)
            g_string_append_printf(pids, "%s%d", i ? ", " : "", (int)g_array_index(found, pid_t, i));
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_AMBIGUOUS,
                    "domain '%s' (uuid %s): processes %s all carry its -uuid and libvirt's pid "
                    "file does not say which is its QEMU: refusing to guess", name, uuid,
                    pids->str);
        return 0;
    }
    if (foreign->len) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_REFUSED,
                    "domain '%s' (uuid %s): %s carries its -uuid but belongs to neither root "
                    "nor libvirt's QEMU user: refused", name, uuid, foreign->str);
        return 0;
    }
    g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID,
                "domain '%s' (uuid %s): no QEMU process with that uuid on this host "
                "(a remote URI?)", name, uuid);
    return 0;
}

/**
 * sp_libvirt_open_qemu_pid:
 * @pid: a pid that was the domain's QEMU (recorded earlier, say)
 *
 * The process @pid held by a pidfd, if it is (still) the QEMU of @uuid:
 * it carries the -uuid and belongs to one of @owners (NULL:
 * sp_libvirt_qemu_owners()).  The check is made after the pidfd is open and
 * the process is then seen not to have exited, so it was of this process,
 * not of an earlier one with the same pid.
 *
 * Returns: (transfer full): the process, or NULL with @error set
 * (SP_LIBVIRT_ERROR_NO_PID: gone or not that QEMU; _REFUSED: another
 * user's).
 */
SpProcess *
sp_libvirt_open_qemu_pid(const SpHost *host, pid_t pid, const char *name, const char *uuid,
                         GArray *owners, GError **error)
{
    g_autoptr(GArray) own = owners ? g_array_ref(owners) : sp_libvirt_qemu_owners();
    g_autoptr(SpProcess) qemu = NULL;
    g_autoptr(GError) local = NULL;
    SpQemuMatch match;
    uid_t uid = 0;

    qemu = sp_process_open(pid, &local);
    if (!qemu) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID,
                    "domain '%s': QEMU pid %d: %s", name, (int)pid, local->message);
        return NULL;
    }
    match = sp_libvirt_match_qemu(host, pid, uuid, own, &uid);
    if (match == SP_QEMU_FOREIGN) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_REFUSED,
                    "domain '%s': pid %d carries its -uuid but belongs to uid %u, neither root "
                    "nor libvirt's QEMU user: refused", name, (int)pid, (guint)uid);
        return NULL;
    }
    if (match != SP_QEMU_YES || sp_process_has_exited(qemu)) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_NO_PID,
                    "domain '%s': pid %d is not (or no longer) its QEMU", name, (int)pid);
        return NULL;
    }
    return g_steal_pointer(&qemu);
}

/**
 * sp_libvirt_open_qemu:
 *
 * sp_libvirt_find_qemu(), then sp_libvirt_open_qemu_pid(): signals through
 * the result reach that QEMU or fail, never another process.
 *
 * Returns: (transfer full): the process, or NULL with @error set.
 */
SpProcess *
sp_libvirt_open_qemu(const SpHost *host, const char *name, const char *uuid, GArray *owners,
                     GError **error)
{
    g_autoptr(GArray) own = owners ? g_array_ref(owners) : sp_libvirt_qemu_owners();
    pid_t pid = sp_libvirt_find_qemu(host, name, uuid, own, error);

    if (!pid)
        return NULL;
    return sp_libvirt_open_qemu_pid(host, pid, name, uuid, own, error);
}

/**
 * sp_libvirt_get_guest:
 *
 * The running domain @name as an SpGuest: its QEMU pid and a QMP
 * connection through libvirt.  Errors: no such domain, not running, QEMU
 * process not found on this host (a remote URI).
 */
SpGuest *
sp_libvirt_get_guest(SpLibvirt *lv, const SpHost *host, const char *name, GError **error)
{
    virDomainPtr dom = sp_libvirt_lookup(lv, name, TRUE, error);
    char uuid[VIR_UUID_STRING_BUFLEN];
    pid_t pid;

    if (!dom)
        return NULL;
    if (virDomainGetUUIDString(dom, uuid) < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED, "domain '%s': %s",
                    name, sp_libvirt_last_error());
        virDomainFree(dom);
        return NULL;
    }
    pid = sp_libvirt_find_qemu(host, name, uuid, NULL, error);
    if (!pid) {
        virDomainFree(dom);
        return NULL;
    }
    return sp_libvirt_guest_new(dom, name, pid, sp_libvirt_is_readonly(lv), error);
}

/**
 * sp_libvirt_domain_get_guest:
 * @pid: its QEMU process, found before (sp_libvirt_open_qemu())
 *
 * The running domain as an SpGuest, as sp_libvirt_get_guest(), for a
 * caller that holds the domain and knows its QEMU already.
 */
SpGuest *
sp_libvirt_domain_get_guest(SpLibvirtDomain *dom, pid_t pid, GError **error)
{
    if (virDomainRef(dom->dom) < 0) {
        sp_libvirt_fail(error);
        return NULL;
    }
    return sp_libvirt_guest_new(dom->dom, dom->name, pid, FALSE, error);
}

/**
 * sp_libvirt_open_guest:
 * @lv: (inout): the connection; opened on @uri when NULL, and left open
 * @uri: (nullable): libvirt's URI, NULL for the default
 *
 * Returns: the domain's guest, or NULL with the connection's or
 * sp_libvirt_get_guest()'s error.
 */
SpGuest *
sp_libvirt_open_guest(SpLibvirt **lv, const char *uri, const SpHost *host, const char *name,
                      GError **error)
{
    if (!*lv && !(*lv = sp_libvirt_open(uri, error)))
        return NULL;
    return sp_libvirt_get_guest(*lv, host, name, error);
}

/**
 * sp_libvirt_has_nosharepages:
 *
 * Whether the domain's XML opts out of memory sharing
 * (<memoryBacking><nosharepages/>).
 */
gboolean
sp_libvirt_has_nosharepages(SpLibvirt *lv, const char *name, gboolean *nosharepages,
                            GError **error)
{
    virDomainPtr dom = sp_libvirt_lookup(lv, name, FALSE, error);
    char *xml;

    if (!dom)
        return FALSE;
    xml = virDomainGetXMLDesc(dom, 0);
    virDomainFree(dom);
    if (!xml) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED, "domain '%s': %s", name,
                    sp_libvirt_last_error());
        return FALSE;
    }
    *nosharepages = strstr(xml, "<nosharepages/>") != NULL;
    free(xml);
    return TRUE;
}

/* ------------------------------------------------- where a URI leads */

/* Host names that are this host whatever the resolver says. */
static gboolean
sp_libvirt_host_is_local(const char *host)
{
    return !host || !*host || g_ascii_strcasecmp(host, "localhost") == 0 ||
        g_str_equal(host, "127.0.0.1") || g_str_equal(host, "::1");
}

/**
 * sp_libvirt_uri_classify:
 * @uri: a libvirt URI, driver[+transport]://[user@][host][:port]/path[?params]
 * @place: (out): where its hypervisor runs
 * @why: (out) (optional) (transfer full): the reason, a phrase ("host
 *   nohost.invalid over ssh")
 *
 * Tells from the text alone whether @uri leads to this host: a host other
 * than localhost, or a transport other than a UNIX socket (ssh, libssh,
 * libssh2, tls, tcp, ext, or one unknown), makes it remote; no host and no
 * transport (qemu:///system, qemu:///session, test:///default,
 * qemu+unix:///system?socket=...) is local.  Nothing is resolved or
 * connected to.
 *
 * Returns: FALSE with @error (SP_LIBVIRT_ERROR_BAD_URI) when @uri is not an
 * absolute URI (an alias of libvirt.conf, say: resolve it first).
 */
gboolean
sp_libvirt_uri_classify(const char *uri, SpLibvirtPlace *place, char **why, GError **error)
{
    g_autoptr(GUri) u = NULL;
    g_autoptr(GError) local = NULL;
    const char *scheme, *plus, *host;
    g_autofree char *transport = NULL;

    if (!uri || !*uri) {
        g_set_error_literal(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_BAD_URI,
                            "an empty libvirt URI");
        return FALSE;
    }
    u = g_uri_parse(uri, G_URI_FLAGS_ENCODED | G_URI_FLAGS_NON_DNS, &local);
    if (!u) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_BAD_URI,
                    "'%s' is not a libvirt URI (driver[+transport]://[host]/path): %s", uri,
                    local->message);
        return FALSE;
    }
    scheme = g_uri_get_scheme(u);
    plus = strchr(scheme, '+');
    if (plus)
        transport = g_ascii_strdown(plus + 1, -1);
    host = g_uri_get_host(u);
    if (!sp_libvirt_host_is_local(host)) {
        *place = SP_LIBVIRT_PLACE_REMOTE;
        if (why)
            *why = transport ? g_strdup_printf("host %s over %s", host, transport)
                             : g_strdup_printf("host %s", host);
        return TRUE;
    }
    if (transport && !g_str_equal(transport, "unix")) {
        *place = SP_LIBVIRT_PLACE_REMOTE;
        if (why)
            *why = host && *host
                ? g_strdup_printf("host %s over %s, not a UNIX socket", host, transport)
                : g_strdup_printf("transport %s, not a UNIX socket", transport);
        return TRUE;
    }
    *place = SP_LIBVIRT_PLACE_LOCAL;
    if (why)
        *why = host && *host ? g_strdup_printf("host %s", host)
                             : g_strdup("this host (no host named)");
    return TRUE;
}

/* libvirt.conf's syntax (virConf): NAME = VALUE lines, VALUE a string in
 * double or single quotes, a number, or a [list] of strings spanning
 * lines; '#' starts a comment outside strings. */
typedef struct {
    const char *p;
    guint line;
} SpConfReader;

static void
sp_conf_skip(SpConfReader *r, gboolean newlines)
{
    for (;;) {
        if (*r->p == '#') {
            while (*r->p && *r->p != '\n')
                r->p++;
        } else if (*r->p == '\n' && newlines) {
            r->line++;
            r->p++;
        } else if (*r->p == ' ' || *r->p == '\t' || *r->p == '\r') {
            r->p++;
        } else {
            return;
        }
    }
}

static char *
sp_conf_string(SpConfReader *r, GError **error)
{
    char quote = *r->p++;
    const char *start = r->p;

    while (*r->p && *r->p != quote && *r->p != '\n')
        r->p++;
    if (*r->p != quote) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_BAD_URI,
                    "libvirt.conf line %u: unterminated string", r->line);
        return NULL;
    }
    return g_strndup(start, r->p++ - start);
}

/**
 * sp_libvirt_conf_parse:
 * @text: libvirt.conf's contents
 * @uri_default: (out) (transfer full): its uri_default, or NULL
 * @aliases: (out) (transfer full): its uri_aliases ("NAME=URI"), or NULL
 *
 * Returns: FALSE with @error naming the line when @text is not in
 * libvirt.conf's syntax.
 */
gboolean
sp_libvirt_conf_parse(const char *text, char **uri_default, GStrv *aliases, GError **error)
{
    SpConfReader r = { text, 1 };
    g_autofree char *def = NULL;
    g_auto(GStrv) list = NULL;

    for (;;) {
        const char *name;
        gsize len;

        sp_conf_skip(&r, TRUE);
        if (!*r.p)
            break;
        name = r.p;
        while (g_ascii_isalnum(*r.p) || *r.p == '_' || *r.p == '-' || *r.p == '.')
            r.p++;
        len = r.p - name;
        sp_conf_skip(&r, FALSE);
        if (len == 0 || *r.p != '=') {
            g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_BAD_URI,
                        "libvirt.conf line %u: expected NAME = VALUE", r.line);
            return FALSE;
        }
        r.p++;
        sp_conf_skip(&r, FALSE);
        if (*r.p == '"' || *r.p == '\'') {
            g_autofree char *v = sp_conf_string(&r, error);
            if (!v)
                return FALSE;
            if (len == strlen("uri_default") && strncmp(name, "uri_default", len) == 0) {
                g_free(def);
                def = g_steal_pointer(&v);
            }
        } else if (*r.p == '[') {
            g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);
            r.p++;
            for (;;) {
                sp_conf_skip(&r, TRUE);
                if (*r.p == ']') {
                    r.p++;
                    break;
                }
                if (*r.p != '"' && *r.p != '\'') {
                    g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_BAD_URI,
                                "libvirt.conf line %u: a list holds quoted strings", r.line);
                    return FALSE;
                }
                char *v = sp_conf_string(&r, error);
                if (!v)
                    return FALSE;
                g_ptr_array_add(items, v);
                sp_conf_skip(&r, TRUE);
                if (*r.p == ',')
                    r.p++;
            }
            if (len == strlen("uri_aliases") && strncmp(name, "uri_aliases", len) == 0) {
                g_ptr_array_add(items, NULL);
                g_strfreev(list);
                list = (GStrv)g_ptr_array_free(g_steal_pointer(&items), FALSE);
            }
        } else {
            /* a number or a bare word: none that matters here */
            while (*r.p && *r.p != '\n' && *r.p != '#' && !g_ascii_isspace(*r.p))
                r.p++;
        }
        sp_conf_skip(&r, FALSE);
        if (*r.p && *r.p != '\n') {
            g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_BAD_URI,
                        "libvirt.conf line %u: unexpected text after the value", r.line);
            return FALSE;
        }
    }
    *uri_default = g_steal_pointer(&def);
    *aliases = g_steal_pointer(&list);
    return TRUE;
}

/**
 * sp_libvirt_conf_alias:
 * @aliases: (nullable): uri_aliases entries, "NAME=URI"
 *
 * Returns: (transfer full) (nullable): the URI @name stands for, as
 * libvirt resolves it (the whole name, before the first '='), or NULL.
 */
char *
sp_libvirt_conf_alias(const char *const *aliases, const char *name)
{
    gsize len = strlen(name);

    for (const char *const *a = aliases; a && *a; a++) {
        const char *eq = strchr(*a, '=');
        if (eq && (gsize)(eq - *a) == len && strncmp(*a, name, len) == 0)
            return g_strdup(eq + 1);
    }
    return NULL;
}

/**
 * sp_libvirt_uri_resolve:
 * @uri: (nullable): the URI or alias asked for (-c)
 * @env_uri: (nullable): $LIBVIRT_DEFAULT_URI
 * @conf_text: (nullable): the user's libvirt.conf
 * @resolved: (out) (transfer full) (nullable): the URI classified; NULL
 *   when libvirt would probe its local drivers
 * @place: (out): where it leads
 * @why: (out) (optional) (transfer full): the reason, a phrase
 *
 * The URI libvirt would connect to, as libvirt picks it: @uri, else
 * @env_uri, else libvirt.conf's uri_default, an alias of libvirt.conf
 * replaced by its URI; none at all means a driver of this host.  A pure
 * function of its arguments: nothing is read or connected to.
 */
gboolean
sp_libvirt_uri_resolve(const char *uri, const char *env_uri, const char *conf_text,
                       char **resolved, SpLibvirtPlace *place, char **why, GError **error)
{
    g_autofree char *conf_default = NULL;
    g_auto(GStrv) aliases = NULL;
    g_autofree char *name = NULL;
    g_autofree char *target = NULL;

    if (conf_text && !sp_libvirt_conf_parse(conf_text, &conf_default, &aliases, error))
        return FALSE;
    name = g_strdup(uri && *uri ? uri : env_uri && *env_uri ? env_uri : conf_default);
    if (!name) {
        *resolved = NULL;
        *place = SP_LIBVIRT_PLACE_LOCAL;
        if (why)
            *why = g_strdup("libvirt's default: a driver of this host");
        return TRUE;
    }
    target = sp_libvirt_conf_alias((const char *const *)aliases, name);
    if (target) {
        g_free(name);
        name = g_steal_pointer(&target);
    }
    if (!sp_libvirt_uri_classify(name, place, why, error))
        return FALSE;
    *resolved = g_steal_pointer(&name);
    return TRUE;
}

/**
 * sp_libvirt_default_place:
 * @uri: (nullable): the URI or alias asked for; NULL: libvirt's default
 *
 * sp_libvirt_uri_resolve() over this process's $LIBVIRT_DEFAULT_URI and
 * libvirt.conf (/etc/libvirt/libvirt.conf for root, else
 * $XDG_CONFIG_HOME/libvirt/libvirt.conf, as libvirt reads them): where a
 * connection would lead, told before connecting.
 */
gboolean
sp_libvirt_default_place(const char *uri, char **resolved, SpLibvirtPlace *place, char **why,
                         GError **error)
{
    g_autofree char *path = geteuid() == 0
        ? g_strdup("/etc/libvirt/libvirt.conf")
        : g_build_filename(g_get_user_config_dir(), "libvirt", "libvirt.conf", NULL);
    g_autofree char *text = NULL;

    /* A missing or unreadable file is libvirt's "no configuration". */
    if (!g_file_get_contents(path, &text, NULL, NULL))
        g_clear_pointer(&text, g_free);
    if (!sp_libvirt_uri_resolve(uri, g_getenv("LIBVIRT_DEFAULT_URI"), text, resolved, place, why,
                                error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    return TRUE;
}

/**
 * sp_libvirt_check_local:
 *
 * For work on this host's kernel through a connection: TRUE when the URI
 * libvirt is connected to (virConnectGetURI) leads here, else FALSE with
 * SP_LIBVIRT_ERROR_REMOTE naming it and why.
 */
gboolean
sp_libvirt_check_local(SpLibvirt *lv, GError **error)
{
    g_autofree char *uri = NULL;
    g_autofree char *why = NULL;
    SpLibvirtPlace place;

    if (!sp_libvirt_check_conn(lv, error))
        return FALSE;
    uri = sp_libvirt_conn_uri(lv->conn, lv->uri);
    if (!sp_libvirt_uri_classify(uri, &place, &why, error))
        return FALSE;
    if (place == SP_LIBVIRT_PLACE_REMOTE) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_REMOTE,
                    "%s is remote (%s)", uri, why);
        return FALSE;
    }
    return TRUE;
}

/* libvirt's node memory parameters and the KSM keys they are. */
static const struct {
    const char *field;
    SpKsmKey key;
} sp_libvirt_ksm_fields[] = {
    { VIR_NODE_MEMORY_SHARED_PAGES_TO_SCAN, SP_KSM_PAGES_TO_SCAN },
    { VIR_NODE_MEMORY_SHARED_SLEEP_MILLISECS, SP_KSM_SLEEP_MILLISECS },
    { VIR_NODE_MEMORY_SHARED_MERGE_ACROSS_NODES, SP_KSM_MERGE_ACROSS_NODES },
    { VIR_NODE_MEMORY_SHARED_PAGES_SHARED, SP_KSM_PAGES_SHARED },
    { VIR_NODE_MEMORY_SHARED_PAGES_SHARING, SP_KSM_PAGES_SHARING },
    { VIR_NODE_MEMORY_SHARED_PAGES_UNSHARED, SP_KSM_PAGES_UNSHARED },
    { VIR_NODE_MEMORY_SHARED_PAGES_VOLATILE, SP_KSM_PAGES_VOLATILE },
    { VIR_NODE_MEMORY_SHARED_FULL_SCANS, SP_KSM_FULL_SCANS },
};

/**
 * sp_libvirt_get_ksm:
 * @state: (out caller-allocates): the keys libvirt passes, supported; every
 *   other key unsupported
 *
 * The KSM knobs and figures of the connection's host, read by its libvirtd
 * (virNodeGetMemoryParameters): pages_to_scan, sleep_millisecs,
 * merge_across_nodes, pages_shared, pages_sharing, pages_unshared,
 * pages_volatile and full_scans, those of them its kernel has.  Works on a
 * read-only connection.
 */
gboolean
sp_libvirt_get_ksm(SpLibvirt *lv, SpKsmState *state, GError **error)
{
    g_autofree virTypedParameterPtr params = NULL;
    int n = 0;

    if (!sp_libvirt_check_conn(lv, error))
        return FALSE;
    if (virNodeGetMemoryParameters(lv->conn, NULL, &n, 0) < 0 || n < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                    "%s: cannot read the node's memory parameters: %s", lv->uri,
                    sp_libvirt_last_error());
        return FALSE;
    }
    params = g_new0(virTypedParameter, MAX(n, 1));
    if (n > 0 && virNodeGetMemoryParameters(lv->conn, params, &n, 0) < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                    "%s: cannot read the node's memory parameters: %s", lv->uri,
                    sp_libvirt_last_error());
        return FALSE;
    }
    memset(state, 0, sizeof(*state));
    for (int i = 0; i < n; i++) {
        const virTypedParameter *p = &params[i];
        for (gsize f = 0; f < G_N_ELEMENTS(sp_libvirt_ksm_fields); f++) {
            SpKsmEntry *e;
            if (!g_str_equal(p->field, sp_libvirt_ksm_fields[f].field))
                continue;
            e = &state->entry[sp_libvirt_ksm_fields[f].key];
            switch (p->type) {
            case VIR_TYPED_PARAM_UINT:
                e->value = p->value.ui;
                break;
            case VIR_TYPED_PARAM_ULLONG:
                e->value = (gint64)MIN(p->value.ul, (unsigned long long)G_MAXINT64);
                break;
            case VIR_TYPED_PARAM_INT:
                e->value = p->value.i;
                break;
            case VIR_TYPED_PARAM_LLONG:
                e->value = p->value.l;
                break;
            default:
                continue;   /* not a number: left unsupported */
            }
            e->supported = TRUE;
        }
    }
    virTypedParamsClear(params, n);
    return TRUE;
}

/**
 * sp_libvirt_set_ksm:
 *
 * KSM knobs of a remote host through virNodeSetMemoryParameters(), which
 * knows only shm_pages_to_scan, shm_sleep_millisecs and
 * shm_merge_across_nodes; any other key is refused before anything is sent.
 * libvirt writes them in order and stops at the first failure.
 */
gboolean
sp_libvirt_set_ksm(SpLibvirt *lv, const SpKsmSetting *settings, gsize n, GError **error)
{
    g_autofree virTypedParameterPtr params = g_new0(virTypedParameter, MAX(n, 1));

    for (gsize i = 0; i < n; i++) {
        const char *field;
        switch (settings[i].key) {
        case SP_KSM_PAGES_TO_SCAN:
            field = VIR_NODE_MEMORY_SHARED_PAGES_TO_SCAN;
            break;
        case SP_KSM_SLEEP_MILLISECS:
            field = VIR_NODE_MEMORY_SHARED_SLEEP_MILLISECS;
            break;
        case SP_KSM_MERGE_ACROSS_NODES:
            field = VIR_NODE_MEMORY_SHARED_MERGE_ACROSS_NODES;
            break;
        default:
            g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                        "%s cannot be set over %s: libvirt only passes pages_to_scan, "
                        "sleep_millisecs and merge_across_nodes",
                        sp_ksm_key_info(settings[i].key)->name, lv->uri);
            return FALSE;
        }
        g_strlcpy(params[i].field, field, VIR_TYPED_PARAM_FIELD_LENGTH);
        params[i].type = VIR_TYPED_PARAM_UINT;
        params[i].value.ui = (unsigned int)settings[i].value;
    }
    if (!sp_libvirt_check_conn(lv, error))
        return FALSE;
    if (sp_libvirt_is_readonly(lv)) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_READ_ONLY,
                    "%s: the connection is read-only (-r): nothing is changed through it",
                    lv->uri);
        return FALSE;
    }
    if (virNodeSetMemoryParameters(lv->conn, params, (int)n, 0) < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED, "%s: %s", lv->uri,
                    sp_libvirt_last_error());
        return FALSE;
    }
    return TRUE;
}

/* ------------------------------------------------------------- events */

void
sp_libvirt_event_loop_init(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        gvir_event_register();
        g_once_init_leave(&done, 1);
    }
}

static int
sp_libvirt_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
                        void *opaque)
{
    SpLibvirt *lv = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN] = "";
    const char *name = virDomainGetName(dom);
    SpLibvirtEvent ev;

    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
        ev = SP_LIBVIRT_EVENT_STARTED;
        break;
    case VIR_DOMAIN_EVENT_STOPPED:
        ev = SP_LIBVIRT_EVENT_STOPPED;
        break;
    default:
        ev = SP_LIBVIRT_EVENT_OTHER;
        break;
    }
    if (virDomainGetUUIDString(dom, uuid) < 0)
        uuid[0] = '\0';
    if (lv->lifecycle && name)
        lv->lifecycle(name, uuid, ev, lv->user_data);
    return 0;
}

static void
sp_libvirt_on_close(virConnectPtr conn, int reason, void *opaque)
{
    SpLibvirt *lv = opaque;
    const char *why;

    switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_EOF:
        why = "eof";
        break;
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
        why = "keepalive";
        break;
    case VIR_CONNECT_CLOSE_REASON_CLIENT:
        why = "client";
        break;
    default:
        why = "error";
        break;
    }
    if (lv->closed)
        lv->closed(why, lv->user_data);
}

gboolean
sp_libvirt_watch(SpLibvirt *lv, SpLibvirtLifecycleFunc lifecycle, SpLibvirtClosedFunc closed,
                 gpointer user_data, GError **error)
{
    if (!sp_libvirt_check_conn(lv, error))
        return FALSE;
    sp_libvirt_unwatch(lv);
    lv->lifecycle = lifecycle;
    lv->closed = closed;
    lv->user_data = user_data;
    lv->lifecycle_id = virConnectDomainEventRegisterAny(
        lv->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(sp_libvirt_on_lifecycle), lv, NULL);
    if (lv->lifecycle_id < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                    "%s: cannot register for domain events: %s", lv->uri,
                    sp_libvirt_last_error());
        return FALSE;
    }
    if (virConnectRegisterCloseCallback(lv->conn, sp_libvirt_on_close, lv, NULL) < 0) {
        g_set_error(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_FAILED,
                    "%s: cannot register a close callback: %s", lv->uri,
                    sp_libvirt_last_error());
        sp_libvirt_unwatch(lv);
        return FALSE;
    }
    lv->close_registered = TRUE;
    /* A local connection sees libvirtd go (EOF); keepalive also catches a
     * hung one.  Not every driver has keepalive (qemu:///session over a
     * direct socket does); its absence is not an error. */
    virConnectSetKeepAlive(lv->conn, 5, 3);
    return TRUE;
}

void
sp_libvirt_unwatch(SpLibvirt *lv)
{
    if (!lv->conn)
        return;
    if (lv->lifecycle_id >= 0)
        virConnectDomainEventDeregisterAny(lv->conn, lv->lifecycle_id);
    lv->lifecycle_id = -1;
    if (lv->close_registered)
        virConnectUnregisterCloseCallback(lv->conn, sp_libvirt_on_close);
    lv->close_registered = FALSE;
    lv->lifecycle = NULL;
    lv->closed = NULL;
}

char *
sp_libvirt_get_xml(SpLibvirt *lv, const char *name, GError **error)
{
    virDomainPtr dom = sp_libvirt_lookup(lv, name, FALSE, error);
    char *xml, *copy;

    if (!dom)
        return NULL;
    xml = virDomainGetXMLDesc(dom, 0);
    virDomainFree(dom);
    if (!xml) {
        g_set_error(error, SP_LIBVIRT_ERROR, sp_libvirt_last_code(), "domain '%s': %s", name,
                    sp_libvirt_last_error());
        return NULL;
    }
    copy = g_strdup(xml);
    free(xml);
    return copy;
}
