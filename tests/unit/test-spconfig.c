/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spconfig.c: samepaged's configuration: defaults, every key, and
 * errors naming FILE:LINE for stray lines, unknown names, repeated keys and
 * bad values
 */
#include "config.h"

#include "sptest.h"
#include "samepage/spconfig.h"

static SpConfig *
load(const char *text)
{
    g_autoptr(GError) error = NULL;
    SpConfig *cfg = sp_config_load_data(text, strlen(text), "test.conf", &error);

    if (!cfg)
        print_error("unexpected error: %s\n", error->message);
    assert_non_null(cfg);
    return cfg;
}

static void
load_fails(const char *text, int code, const char *want)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpConfig) cfg = sp_config_load_data(text, strlen(text), "test.conf", &error);

    assert_null(cfg);
    assert_non_null(error);
    if (!strstr(error->message, want))
        print_error("message \"%s\" lacks \"%s\"\n", error->message, want);
    assert_non_null(strstr(error->message, want));
    assert_int_equal(error->code, code);
}

static void
test_defaults(void **state)
{
    g_autoptr(SpConfig) cfg = load("# nothing but a comment\n\n");
    g_autoptr(SpConfig) def = sp_config_new_default();

    assert_string_equal(cfg->libvirt_uri, "qemu:///system");
    assert_true(cfg->merge_default);
    assert_false(cfg->allow_mixing);
    assert_string_equal(cfg->default_group, "default");
    assert_null(cfg->socket_path);
    assert_null(cfg->metrics_listen);
    assert_null(cfg->metrics_textfile);
    assert_int_equal(cfg->mode, SP_CONTROL_STATIC);
    assert_true(cfg->max_ksmd_cpu == 25);
    assert_true(cfg->stop_above_available == 0);
    assert_true(cfg->model_max_cpu == 2);
    assert_int_equal(cfg->ksm_settings->len, 0);
    assert_true(cfg->restore_at_exit);
    assert_string_equal(cfg->path, "test.conf");
    assert_null(def->path);
}

static void
test_every_key(void **state)
{
    g_autoptr(SpConfig) cfg = load(
        "[libvirt]\n"
        "uri = qemu+unix:///system?socket=/tmp/x.sock\n"
        "[policy]\n"
        "merge = no\n"
        "[trust]\n"
        "allow_mixing = yes\n"
        "default_group = shared-1\n"
        "[daemon]\n"
        "socket = /tmp/sp.sock\n"
        "[metrics]\n"
        "listen = 127.0.0.1:9477\n"
        "textfile = /var/lib/node_exporter/samepage.prom\n"
        "[controller]\n"
        "mode = samepage\n"
        "max_ksmd_cpu = 12.5%\n"
        "stop_above_available = 60\n"
        "[model]\n"
        "max_cpu = 1\n"
        "[ksm]\n"
        "  run = 1  \n"
        "pages_to_scan = 1000\n"
        "sleep_millisecs=20\n"
        "restore_at_exit = no\n");
    SpKsmSetting *s = (SpKsmSetting *)cfg->ksm_settings->data;

    assert_string_equal(cfg->libvirt_uri, "qemu+unix:///system?socket=/tmp/x.sock");
    assert_false(cfg->merge_default);
    assert_true(cfg->allow_mixing);
    assert_string_equal(cfg->default_group, "shared-1");
    assert_string_equal(cfg->socket_path, "/tmp/sp.sock");
    assert_string_equal(cfg->metrics_listen, "127.0.0.1:9477");
    assert_string_equal(cfg->metrics_textfile, "/var/lib/node_exporter/samepage.prom");
    assert_int_equal(cfg->mode, SP_CONTROL_SAMEPAGE);
    assert_true(cfg->max_ksmd_cpu == 12.5);
    assert_true(cfg->stop_above_available == 60);
    assert_true(cfg->model_max_cpu == 1);
    assert_false(cfg->restore_at_exit);
    assert_int_equal(cfg->ksm_settings->len, 3);
    assert_int_equal(s[0].key, SP_KSM_RUN);
    assert_int_equal(s[0].value, 1);
    assert_int_equal(s[1].key, SP_KSM_PAGES_TO_SCAN);
    assert_int_equal(s[1].value, 1000);
    assert_int_equal(s[2].key, SP_KSM_SLEEP_MILLISECS);
    assert_int_equal(g_array_index(cfg->ksm_lines, guint, 0), 20);
    assert_int_equal(g_array_index(cfg->ksm_lines, guint, 2), 22);
}

static void
test_syntax_errors(void **state)
{
    load_fails("[policy]\nmerge = yes\nthis is not a key\n", SP_CONFIG_ERROR_SYNTAX,
               "test.conf:3: \"this is not a key\" is not KEY = VALUE");
    load_fails("[policy\nmerge = yes\n", SP_CONFIG_ERROR_SYNTAX, "test.conf:1: a group");
    load_fails("merge = yes\n", SP_CONFIG_ERROR_SYNTAX, "test.conf:1: key merge before any");
    load_fails("[policy]\n= yes\n", SP_CONFIG_ERROR_SYNTAX, "test.conf:2:");
    load_fails("[policy]\nmerge = yes\n\n[ksm]\n[policy]\n", SP_CONFIG_ERROR_SYNTAX,
               "test.conf:5: group [policy] repeated (first on line 1)");
    load_fails("[ksm]\nrun = 1\nrun = 0\n", SP_CONFIG_ERROR_SYNTAX,
               "test.conf:3: run repeated in [ksm] (first on line 2)");
    {
        static const char nul[] = "[policy]\nmerge = yes\0oops\n";
        g_autoptr(GError) error = NULL;
        g_autoptr(SpConfig) cfg = sp_config_load_data(nul, sizeof(nul) - 1, "test.conf", &error);
        assert_null(cfg);
        assert_non_null(strstr(error->message, "test.conf: contains a NUL byte"));
    }
}

static void
test_unknown_names(void **state)
{
    load_fails("[policy]\nmerge = yes\n[polcy]\n", SP_CONFIG_ERROR_UNKNOWN,
               "test.conf:3: unknown group [polcy]");
    load_fails("[policy]\nmerged = yes\n", SP_CONFIG_ERROR_UNKNOWN,
               "test.conf:2: unknown key merged in [policy]");
    load_fails("[ksm]\nrun = 1\nfull_scanz = 3\n", SP_CONFIG_ERROR_UNKNOWN,
               "test.conf:3: unknown key full_scanz in [ksm]");
    /* A KSM knob name belongs in [ksm] only. */
    load_fails("[controller]\npages_to_scan = 3\n", SP_CONFIG_ERROR_UNKNOWN, "test.conf:2:");
}

static void
test_bad_values(void **state)
{
    load_fails("\n[policy]\nmerge = required\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:3: [policy] merge: \"required\" is not yes or no");
    load_fails("[trust]\nallow_mixing = maybe\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [trust] allow_mixing: \"maybe\" is not yes or no");
    load_fails("[trust]\ndefault_group = a b\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [trust] default_group");
    load_fails("[daemon]\nsocket = relative.sock\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [daemon] socket: \"relative.sock\" is not an absolute path");
    load_fails("[metrics]\nlisten = localhost\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [metrics] listen");
    load_fails("[metrics]\nlisten = 127.0.0.1:99999\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [metrics] listen");
    load_fails("[controller]\nmode = turbo\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [controller] mode: \"turbo\"");
    load_fails("[controller]\nmax_ksmd_cpu = 150\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [controller] max_ksmd_cpu");
    load_fails("[controller]\nstop_above_available = -5\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [controller] stop_above_available");
    load_fails("[controller]\nstop_above_available = lots\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [controller] stop_above_available");
    load_fails("[model]\nmax_cpu = -1\n", SP_CONFIG_ERROR_VALUE, "test.conf:2: [model] max_cpu");
    load_fails("[model]\nmax_cpu = 2x\n", SP_CONFIG_ERROR_VALUE, "test.conf:2: [model] max_cpu");
    load_fails("[model]\nmax_cpu =\n", SP_CONFIG_ERROR_VALUE, "test.conf:2: [model] max_cpu");
    load_fails("# c\n[ksm]\npages_to_scan = -5\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:3: [ksm] pages_to_scan");
    load_fails("[ksm]\nrun = 2\n", SP_CONFIG_ERROR_VALUE, "test.conf:2: [ksm] run: run = 2");
    load_fails("[ksm]\npages_sharing = 5\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [ksm] pages_sharing: a KSM figure");
    load_fails("[ksm]\nrestore_at_exit = sometimes\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [ksm] restore_at_exit");
}

static void
test_listen(void **state)
{
    g_autofree char *h = NULL, *h6 = NULL;
    guint16 port = 0;

    assert_true(sp_config_parse_listen("127.0.0.1:9477", &h, &port));
    assert_string_equal(h, "127.0.0.1");
    assert_int_equal(port, 9477);
    assert_true(sp_config_parse_listen("[::1]:80", &h6, &port));
    assert_string_equal(h6, "::1");
    assert_int_equal(port, 80);
    assert_false(sp_config_parse_listen("::1:80", NULL, NULL));
    assert_false(sp_config_parse_listen(":80", NULL, NULL));
    assert_false(sp_config_parse_listen("h:", NULL, NULL));
    assert_false(sp_config_parse_listen("h:0", NULL, NULL));
    assert_false(sp_config_parse_listen("h:-1", NULL, NULL));
    assert_false(sp_config_parse_listen("h:80x", NULL, NULL));
    assert_false(sp_config_parse_listen("[]:80", NULL, NULL));
    assert_false(sp_config_parse_listen(NULL, NULL, NULL));
}

static void
test_load_file(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("spconfig-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "samepaged.conf", NULL);
    g_autoptr(SpConfig) missing = sp_config_load(path, &error);
    g_autoptr(SpConfig) cfg = NULL;

    assert_null(missing);
    assert_int_equal(error->code, SP_CONFIG_ERROR_IO);
    assert_non_null(strstr(error->message, "samepaged.conf"));
    g_clear_error(&error);
    assert_true(g_file_set_contents(path, "[policy]\nmerge = no\n", -1, NULL));
    cfg = sp_config_load(path, &error);
    assert_non_null(cfg);
    assert_false(cfg->merge_default);
    assert_string_equal(cfg->path, path);
    g_unlink(path);
    g_rmdir(dir);
}

/* A URI of another host is refused at load, naming it and why; local
 * ones (and an alias, which only libvirt resolves) are taken. */
static void
test_remote_uri(void **state)
{
    load_fails("[libvirt]\nuri = qemu+ssh://nohost.invalid/system\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:2: [libvirt] uri: qemu+ssh://nohost.invalid/system is remote (host "
               "nohost.invalid over ssh)");
    load_fails("\n[libvirt]\nuri = qemu+tcp:///system\n", SP_CONFIG_ERROR_VALUE,
               "test.conf:3: [libvirt] uri: qemu+tcp:///system is remote");
    {
        g_autoptr(SpConfig) cfg = load("[libvirt]\nuri = qemu:///session\n");
        assert_string_equal(cfg->libvirt_uri, "qemu:///session");
    }
    {
        g_autoptr(SpConfig) cfg = load("[libvirt]\nuri = myalias\n");
        assert_string_equal(cfg->libvirt_uri, "myalias");
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_remote_uri),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
