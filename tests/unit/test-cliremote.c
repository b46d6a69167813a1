/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-cliremote.c: the samepage binary given a URI of another host
 *
 * Every command that acts on this host (its /sys/kernel/mm/ksm, /proc,
 * guests' memory) refuses a remote URI with the URI and the reason, exit
 * status 2, before connecting; the commands that act through libvirt (ksm,
 * ksm set, list) try the URI and report the failed connection, exit status
 * 1; none prints this host's figures instead.  -r refuses the commands that
 * change something.  No network is needed: nohost.invalid never resolves,
 * and the refusals come before any connection.
 */
#include "config.h"

#include <unistd.h>

#include "sptest.h"

#define REMOTE "qemu+ssh://nohost.invalid/system"

/* Runs samepage with @args (NULL-terminated), in an environment with no
 * libvirt default and an empty libvirt.conf directory unless @env_uri or
 * @config_home say otherwise; as user nobody (uid 65534, through
 * setpriv(1)) when @unprivileged and we are root. */
static void
run_as(SpTestRun *r, gboolean unprivileged, const char *env_uri, const char *config_home,
       const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) env = sp_test_cli_environ("/nonexistent/sys");
    g_autofree char *empty = g_build_filename(SP_TOP_BUILDDIR, "tests", "unit",
                                              "cliremote-config", NULL);

    g_mkdir_with_parents(empty, 0700);
    if (unprivileged && geteuid() == 0) {
        static const char *const setpriv[] = { "setpriv", "--reuid=65534", "--regid=65534",
                                               "--clear-groups", NULL };
        for (const char *const *a = setpriv; *a; a++)
            g_ptr_array_add(argv, g_strdup(*a));
    }
    g_ptr_array_add(argv, sp_test_cli_path());
    for (const char *const *a = args; *a; a++)
        g_ptr_array_add(argv, g_strdup(*a));
    g_ptr_array_add(argv, NULL);
    env = g_environ_setenv(env, "XDG_CONFIG_HOME", config_home ? config_home : empty, TRUE);
    if (env_uri)
        env = g_environ_setenv(env, "LIBVIRT_DEFAULT_URI", env_uri, TRUE);
    else
        env = g_environ_unsetenv(env, "LIBVIRT_DEFAULT_URI");
    sp_test_spawn(r, argv, env, G_SPAWN_STDIN_FROM_DEV_NULL | G_SPAWN_SEARCH_PATH);
}

static void
run_argv(SpTestRun *r, const char *env_uri, const char *config_home, const char *const *args)
{
    run_as(r, FALSE, env_uri, config_home, args);
}

/* The host-local commands, each as it would be typed after -c URI. */
static const char *const *const host_local[] = {
    (const char *const[]){ "ksm", "numa", "--merge-across-nodes", "0", NULL },
    (const char *const[]){ "ksm", "numa", "--merge-across-nodes", "1", "--dry-run", NULL },
    (const char *const[]){ "estimate", "--all", NULL },
    (const char *const[]){ "estimate", "web1", NULL },
    (const char *const[]){ "estimate", "--pid", "1", NULL },
    (const char *const[]){ "estimate", "--image", "/nonexistent.img", NULL },
    (const char *const[]){ "regions", "web1", NULL },
    (const char *const[]){ "regions", "--qmp", "/nonexistent.sock", NULL },
    (const char *const[]){ "mark", "web1", NULL },
    (const char *const[]){ "mark", "web1", "--off", NULL },
    (const char *const[]){ "doctor", NULL },
    (const char *const[]){ "doctor", "web1", "--json", NULL },
    (const char *const[]){ "status", NULL },
    (const char *const[]){ "experiment", "clean", NULL },
    (const char *const[]){ "experiment", "run", "/nonexistent.plan", NULL },
};

static char *
joined(const char *const *args)
{
    return g_strjoinv(" ", (char **)args);
}

/* -c URI CMD: exit 2, the URI, the host, the command named, stdout empty. */
static void
test_host_local_refused(void **state)
{
    for (gsize i = 0; i < G_N_ELEMENTS(host_local); i++) {
        g_autoptr(GPtrArray) args = g_ptr_array_new();
        g_autofree char *cmd = joined(host_local[i]);
        g_auto(SpTestRun) r = { 0 };

        g_ptr_array_add(args, (char *)"-c");
        g_ptr_array_add(args, (char *)REMOTE);
        for (const char *const *a = host_local[i]; *a; a++)
            g_ptr_array_add(args, (char *)*a);
        g_ptr_array_add(args, NULL);
        run_argv(&r, NULL, NULL, (const char *const *)args->pdata);
        if (r.status != 2 || !strstr(r.err, REMOTE " is remote (host nohost.invalid "
                                            "over ssh)") ||
            !strstr(r.err, "on this host") || !strstr(r.err, host_local[i][0]) || *r.out)
            fail_msg("-c " REMOTE " %s: exit %d, stdout '%s', stderr '%s'", cmd, r.status,
                     r.out, r.err);
    }
}

/* The commands that act through libvirt use the URI: this one cannot be
 * reached, and they say so instead of showing this host. */
static void
test_through_libvirt(void **state)
{
    const char *const *const cmds[] = {
        (const char *const[]){ "-c", REMOTE, "ksm", NULL },
        (const char *const[]){ "-c", REMOTE, "ksm", "--json", NULL },
        (const char *const[]){ "-c", REMOTE, "ksm", "set", "pages_to_scan=100", NULL },
        (const char *const[]){ "-c", REMOTE, "list", NULL },
        (const char *const[]){ "-r", "-c", REMOTE, "list", "--json", NULL },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cmds); i++) {
        g_autofree char *cmd = joined(cmds[i]);
        g_auto(SpTestRun) r = { 0 };

        run_argv(&r, NULL, NULL, cmds[i]);
        if (r.status != 1 || !strstr(r.err, "cannot connect to " REMOTE) ||
            !strstr(r.err, "is the host reachable") || *r.out)
            fail_msg("%s: exit %d, stdout '%s', stderr '%s'", cmd, r.status, r.out, r.err);
    }
}

/* No -c: $LIBVIRT_DEFAULT_URI is the URI in effect for the commands that
 * use libvirt; --pid and --image name local things and do not look at it. */
static void
test_default_uri(void **state)
{
    static const char *const all[] = { "estimate", "--all", NULL };
    static const char *const doctor[] = { "doctor", "--no-estimate", NULL };
    static const char *const numa[] = { "ksm", "numa", "--merge-across-nodes", "0", NULL };
    static const char *const pid[] = { "estimate", "--pid", "1", NULL };
    g_auto(SpTestRun) r1 = { 0 };
    g_auto(SpTestRun) r2 = { 0 };
    g_auto(SpTestRun) r3 = { 0 };
    g_auto(SpTestRun) r4 = { 0 };

    run_argv(&r1, REMOTE, NULL, all);
    assert_int_equal(r1.status, 2);
    assert_non_null(strstr(r1.err, REMOTE " is remote"));
    run_argv(&r2, REMOTE, NULL, doctor);
    assert_int_equal(r2.status, 2);
    assert_non_null(strstr(r2.err, "doctor: " REMOTE " is remote"));
    run_argv(&r3, REMOTE, NULL, numa);
    assert_int_equal(r3.status, 2);
    assert_non_null(strstr(r3.err, "ksm numa: " REMOTE));
    /* --pid: refused for the missing process, not for the URI. */
    run_argv(&r4, REMOTE, NULL, pid);
    if (r4.status == 0 || strstr(r4.err, "another host"))
        fail_msg("estimate --pid 1 with a remote default: exit %d: %s", r4.status, r4.err);
}

/* libvirt.conf's uri_default, through an alias, is the default too (for a
 * user: $XDG_CONFIG_HOME/libvirt/libvirt.conf; root reads /etc's, so as
 * root samepage runs as nobody here). */
static void
test_libvirt_conf(void **state)
{
    static const char *const doctor[] = { "doctor", NULL };
    static const char *const local[] = { "-c", "near", "regions", "web1", NULL };
    static const char *const unknown[] = { "-c", "snow", "regions", "web1", NULL };
    g_autofree char *home = NULL, *dir = NULL, *conf = NULL;
    g_auto(SpTestRun) r1 = { 0 };
    g_auto(SpTestRun) r2 = { 0 };
    g_auto(SpTestRun) r3 = { 0 };

    home = g_dir_make_tmp("sp-cliremote-XXXXXX", NULL);
    assert_non_null(home);
    assert_int_equal(g_chmod(home, 0755), 0);
    dir = g_build_filename(home, "libvirt", NULL);
    conf = g_build_filename(dir, "libvirt.conf", NULL);
    assert_int_equal(g_mkdir_with_parents(dir, 0700), 0);
    assert_true(g_file_set_contents(conf,
                                    "uri_aliases = [\n"
                                    "  \"far=" REMOTE "\",\n"
                                    "  \"near=test:///default\",\n"
                                    "]\n"
                                    "uri_default = \"far\"\n", -1, NULL));
    assert_int_equal(g_chmod(dir, 0755), 0);
    assert_int_equal(g_chmod(conf, 0644), 0);
    run_as(&r1, TRUE, NULL, home, doctor);
    if (r1.status != 2 || !strstr(r1.err, REMOTE " is remote"))
        fail_msg("uri_default far: exit %d: %s", r1.status, r1.err);
    /* A local alias passes the check; the domain is then looked up there. */
    run_as(&r2, TRUE, NULL, home, local);
    if (r2.status != 1 || strstr(r2.err, "another host"))
        fail_msg("-c near: exit %d: %s", r2.status, r2.err);
    run_as(&r3, TRUE, NULL, home, unknown);
    if (r3.status != 2 || !strstr(r3.err, "'snow' is not a libvirt URI"))
        fail_msg("-c snow: exit %d: %s", r3.status, r3.err);
    g_unlink(conf);
    g_rmdir(dir);
    g_rmdir(home);
}

/* -r: the commands that change something stop, naming -r. */
static void
test_readonly(void **state)
{
    const char *const *const cmds[] = {
        (const char *const[]){ "-r", "ksm", "set", "pages_to_scan=100", NULL },
        (const char *const[]){ "--readonly", "ksm", "numa", "--merge-across-nodes", "0", NULL },
        (const char *const[]){ "-r", "mark", "web1", NULL },
        (const char *const[]){ "-r", "mark", "--qmp", "/nonexistent.sock", NULL },
        (const char *const[]){ "-r", "experiment", "clean", NULL },
        (const char *const[]){ "-r", "experiment", "run", "/nonexistent.plan", NULL },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cmds); i++) {
        g_autofree char *cmd = joined(cmds[i]);
        g_auto(SpTestRun) r = { 0 };

        run_argv(&r, "test:///default", NULL, cmds[i]);
        if (r.status != 2 || !strstr(r.err, "-r/--readonly was given") || *r.out)
            fail_msg("%s: exit %d, stdout '%s', stderr '%s'", cmd, r.status, r.out, r.err);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_local_refused),
        cmocka_unit_test(test_through_libvirt),
        cmocka_unit_test(test_default_uri),
        cmocka_unit_test(test_libvirt_conf),
        cmocka_unit_test(test_readonly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
