/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-splibvirt.c: where a libvirt URI leads (local or another host),
 * libvirt.conf's uri_default and uri_aliases, and the connection's
 * read-only and default-URI behaviour on libvirt's test driver.
 */
#include "config.h"

#include "sptest.h"
#include "samepage/splibvirt.h"

typedef struct {
    const char *uri;
    SpLibvirtPlace place;
    const char *why;      /* a word the reason must hold */
} UriCase;

static void
test_classify(void **state)
{
    static const UriCase cases[] = {
        { "qemu:///system", SP_LIBVIRT_PLACE_LOCAL, "this host" },
        { "qemu:///session", SP_LIBVIRT_PLACE_LOCAL, "this host" },
        { "test:///default", SP_LIBVIRT_PLACE_LOCAL, "this host" },
        { "qemu+unix:///system?socket=/run/libvirt/x.sock", SP_LIBVIRT_PLACE_LOCAL, "this host" },
        { "qemu://localhost/system", SP_LIBVIRT_PLACE_LOCAL, "localhost" },
        { "QEMU://LOCALHOST/system", SP_LIBVIRT_PLACE_LOCAL, "LOCALHOST" },
        { "qemu://[::1]/system", SP_LIBVIRT_PLACE_LOCAL, "::1" },
        { "qemu+ssh://nohost.invalid/system", SP_LIBVIRT_PLACE_REMOTE, "nohost.invalid over ssh" },
        { "qemu+ssh://root@nohost.invalid:2222/system?keyfile=/k", SP_LIBVIRT_PLACE_REMOTE,
          "nohost.invalid over ssh" },
        { "qemu+SSH://h/system", SP_LIBVIRT_PLACE_REMOTE, "over ssh" },
        { "qemu+tls://h.example/system", SP_LIBVIRT_PLACE_REMOTE, "over tls" },
        { "qemu+tcp://10.0.0.2/system", SP_LIBVIRT_PLACE_REMOTE, "10.0.0.2" },
        { "qemu+libssh2://h/system", SP_LIBVIRT_PLACE_REMOTE, "libssh2" },
        { "qemu://h.example/system", SP_LIBVIRT_PLACE_REMOTE, "host h.example" },
        { "esx://10.1.1.1/?no_verify=1", SP_LIBVIRT_PLACE_REMOTE, "10.1.1.1" },
        /* a network transport to this very host is still a network one */
        { "qemu+ssh://localhost/system", SP_LIBVIRT_PLACE_REMOTE, "over ssh" },
        { "qemu+tcp:///system", SP_LIBVIRT_PLACE_REMOTE, "tcp" },
        { "qemu+ext:///system?command=/bin/x", SP_LIBVIRT_PLACE_REMOTE, "ext" },
        { "qemu+unix://other.example/system", SP_LIBVIRT_PLACE_REMOTE, "other.example" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *why = NULL;
        SpLibvirtPlace place = 99;

        if (!sp_libvirt_uri_classify(cases[i].uri, &place, &why, &error))
            fail_msg("%s: %s", cases[i].uri, error->message);
        if (place != cases[i].place || !strstr(why, cases[i].why))
            fail_msg("%s: place %d (%s), want %d (%s)", cases[i].uri, place, why, cases[i].place,
                     cases[i].why);
    }
}

static void
test_classify_bad(void **state)
{
    static const char *const bad[] = { "", "hail", "qemu", "/system", "://h/x" };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        SpLibvirtPlace place;

        if (sp_libvirt_uri_classify(bad[i], &place, NULL, &error))
            fail_msg("'%s' was taken for a URI", bad[i]);
        assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_BAD_URI));
    }
}

static void
test_conf_parse(void **state)
{
    static const char *const conf =
        "# libvirt.conf\n"
        "uri_aliases = [\n"
        "  \"hail=qemu+ssh://root@hail.cloud.example.com/system\",  # a comment\n"
        "  'sleet=qemu+ssh://root@sleet.cloud.example.com/system',\n"
        "  \"here=qemu:///system\"\n"
        "]\n"
        "\n"
        "uri_default = \"qemu:///session\"   # trailing comment\n"
        "some_number = 5\n";
    g_autoptr(GError) error = NULL;
    g_autofree char *def = NULL;
    g_auto(GStrv) aliases = NULL;
    g_autofree char *hail = NULL, *here = NULL, *none = NULL, *prefix = NULL;

    assert_true(sp_libvirt_conf_parse(conf, &def, &aliases, &error));
    assert_string_equal(def, "qemu:///session");
    assert_int_equal(g_strv_length(aliases), 3);
    hail = sp_libvirt_conf_alias((const char *const *)aliases, "hail");
    here = sp_libvirt_conf_alias((const char *const *)aliases, "here");
    none = sp_libvirt_conf_alias((const char *const *)aliases, "snow");
    prefix = sp_libvirt_conf_alias((const char *const *)aliases, "hai");
    assert_string_equal(hail, "qemu+ssh://root@hail.cloud.example.com/system");
    assert_string_equal(here, "qemu:///system");
    assert_null(none);
    assert_null(prefix);

    /* Nothing set: both NULL. */
    g_clear_pointer(&def, g_free);
    g_clear_pointer(&aliases, g_strfreev);
    assert_true(sp_libvirt_conf_parse("# empty\n\n", &def, &aliases, &error));
    assert_null(def);
    assert_null(aliases);
}

static void
test_conf_parse_bad(void **state)
{
    static const struct {
        const char *text;
        const char *line;
    } bad[] = {
        { "uri_default = \"qemu:///system\n", "line 1" },
        { "\n\nuri_default \"qemu:///system\"\n", "line 3" },
        { "uri_aliases = [ hail ]\n", "line 1" },
        { "uri_default = \"a\" \"b\"\n", "line 1" },
        { "= \"a\"\n", "line 1" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *def = NULL;
        g_auto(GStrv) aliases = NULL;

        if (sp_libvirt_conf_parse(bad[i].text, &def, &aliases, &error))
            fail_msg("accepted: %s", bad[i].text);
        if (!strstr(error->message, bad[i].line))
            fail_msg("'%s' does not name %s", error->message, bad[i].line);
    }
}

/* -c wins over $LIBVIRT_DEFAULT_URI, which wins over uri_default; aliases
 * are resolved; nothing at all is this host. */
static void
test_resolve(void **state)
{
    static const char *const conf =
        "uri_aliases = [ \"far=qemu+ssh://far.example/system\", \"near=qemu:///system\" ]\n"
        "uri_default = \"far\"\n";
    static const struct {
        const char *uri, *env, *conf;
        const char *resolved;
        SpLibvirtPlace place;
    } cases[] = {
        { NULL, NULL, NULL, NULL, SP_LIBVIRT_PLACE_LOCAL },
        { NULL, NULL, conf, "qemu+ssh://far.example/system", SP_LIBVIRT_PLACE_REMOTE },
        { NULL, "near", conf, "qemu:///system", SP_LIBVIRT_PLACE_LOCAL },
        { NULL, "qemu+tls://x/system", NULL, "qemu+tls://x/system", SP_LIBVIRT_PLACE_REMOTE },
        { "qemu:///session", "far", conf, "qemu:///session", SP_LIBVIRT_PLACE_LOCAL },
        { "far", NULL, conf, "qemu+ssh://far.example/system", SP_LIBVIRT_PLACE_REMOTE },
        { "", "", "uri_default = 'test:///default'\n", "test:///default", SP_LIBVIRT_PLACE_LOCAL },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *resolved = NULL, *why = NULL;
        SpLibvirtPlace place = 99;

        if (!sp_libvirt_uri_resolve(cases[i].uri, cases[i].env, cases[i].conf, &resolved, &place,
                                    &why, &error))
            fail_msg("case %zu: %s", i, error->message);
        if (g_strcmp0(resolved, cases[i].resolved) != 0 || place != cases[i].place)
            fail_msg("case %zu: %s (%d, %s), want %s (%d)", i, resolved, place, why,
                     cases[i].resolved, cases[i].place);
        assert_non_null(why);
    }
}

static void
test_resolve_bad(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *resolved = NULL;
    SpLibvirtPlace place;

    /* An unknown alias is not a URI: libvirt would refuse it too. */
    assert_false(sp_libvirt_uri_resolve("snow", NULL, "uri_aliases = [ \"far=qemu:///x\" ]\n",
                                        &resolved, &place, NULL, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_BAD_URI));
    assert_non_null(strstr(error->message, "'snow'"));
    g_clear_error(&error);
    /* A broken libvirt.conf is an error, not "local". */
    assert_false(sp_libvirt_uri_resolve(NULL, NULL, "uri_default = \"qemu+ssh://x/system\n",
                                        &resolved, &place, NULL, &error));
    assert_non_null(strstr(error->message, "unterminated"));
}

/* NULL is libvirt's default, here $LIBVIRT_DEFAULT_URI: the URI it
 * connected to names the connection. */
static void
test_open_default(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpLibvirt) lv = NULL;

    g_setenv("LIBVIRT_DEFAULT_URI", "test:///default", TRUE);
    lv = sp_libvirt_open(NULL, &error);
    g_unsetenv("LIBVIRT_DEFAULT_URI");
    if (!lv)
        fail_msg("%s", error->message);
    assert_string_equal(sp_libvirt_get_uri(lv), "test:///default");
    assert_false(sp_libvirt_is_readonly(lv));
    assert_true(sp_libvirt_check_local(lv, &error));
}

/* Read-only: looking works, changing is refused before anything is sent. */
static void
test_open_readonly(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpLibvirt) lv = sp_libvirt_open_full("test:///default", SP_LIBVIRT_OPEN_READONLY,
                                                   &error);
    g_auto(GStrv) names = NULL;
    SpKsmSetting set = { SP_KSM_PAGES_TO_SCAN, 100 };

    if (!lv)
        fail_msg("%s", error->message);
    assert_true(sp_libvirt_is_readonly(lv));
    names = sp_libvirt_list_running(lv, &error);
    assert_non_null(names);
    assert_string_equal(names[0], "test");
    assert_false(sp_libvirt_set_ksm(lv, &set, 1, &error));
    assert_true(g_error_matches(error, SP_LIBVIRT_ERROR, SP_LIBVIRT_ERROR_READ_ONLY));
    assert_non_null(strstr(error->message, "read-only"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_classify_bad),
        cmocka_unit_test(test_conf_parse),
        cmocka_unit_test(test_conf_parse_bad),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_resolve_bad),
        cmocka_unit_test(test_open_default),
        cmocka_unit_test(test_open_readonly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
