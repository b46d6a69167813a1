/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "samepage/spplan.h"
#include "samepage/spproc.h"
#include "sptest.h"

#define GOOD \
    "# a plan\n" \
    "[plan]\n" \
    "name = sweep\n" \
    "vm_counts = 1, 2,3;5 10\n" \
    "[guest]\n" \
    "memory_mib=256\n" \
    "vcpus=1\n" \
    "boot_timeout=600\n" \
    "[ksm]\n" \
    "pages_to_scan=1000\n" \
    "sleep_millisecs=20\n" \
    "use_zero_pages=0\n" \
    "merge_across_nodes=1\n" \
    "max_page_sharing=256\n" \
    "[workload]\n" \
    "command=stress-ng --vm 2 --vm-madvise mergeable --vm-hang 10\n" \
    "[sampling]\n" \
    "interval=10\n" \
    "duration=300\n" \
    "settle=5\n" \
    "predict_interval=60\n"

static SpPlan *
parse(const char *text, guint64 avail_kib, GError **error)
{
    SpPlanLimits limits = { avail_kib };
    return sp_plan_parse(text, -1, "p.ini", &limits, error);
}

/* The plan must fail with @code and a message holding every @want. */
static void
expect_error(const char *text, int code, const char *want1, const char *want2)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = parse(text, 16ULL << 20, &error);

    assert_null(plan);
    assert_non_null(error);
    if (!g_error_matches(error, SP_PLAN_ERROR, code) ||
        (want1 && !strstr(error->message, want1)) || (want2 && !strstr(error->message, want2)))
        fail_msg("got code %d '%s', wanted code %d with '%s' and '%s'", error->code,
                 error->message, code, want1, want2 ? want2 : "");
}

static void
test_good(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = parse(GOOD, 16ULL << 20, &error);
    static const guint counts[] = { 1, 2, 3, 5, 10 };

    assert_non_null(plan);
    assert_null(error);
    assert_string_equal(plan->name, "sweep");
    assert_int_equal(plan->vm_counts->len, 5);
    for (guint i = 0; i < 5; i++)
        assert_int_equal(g_array_index(plan->vm_counts, guint, i), counts[i]);
    assert_int_equal(sp_plan_max_vms(plan), 10);
    assert_int_equal(plan->memory_mib, 256);
    assert_true(plan->boot_timeout_s == 600);
    assert_int_equal(plan->n_ksm, 5);
    assert_int_equal(sp_plan_find_ksm(plan, SP_KSM_PAGES_TO_SCAN)->value, 1000);
    assert_int_equal(sp_plan_find_ksm(plan, SP_KSM_USE_ZERO_PAGES)->value, 0);
    assert_null(sp_plan_find_ksm(plan, SP_KSM_SMART_SCAN));
    assert_string_equal(plan->workload, "stress-ng --vm 2 --vm-madvise mergeable --vm-hang 10");
    assert_int_equal(g_strv_length(plan->workload_argv), 6);
    assert_string_equal(plan->workload_argv[0], "--vm");
    assert_string_equal(plan->workload_argv[5], "10");
    assert_true(plan->interval_s == 10 && plan->duration_s == 300);
    assert_true(plan->settle_s == 5 && plan->predict_interval_s == 60);

    g_autofree char *ksm = sp_plan_describe_ksm(plan);
    assert_string_equal(ksm, "pages_to_scan=1000 sleep_millisecs=20 max_page_sharing=256 "
                             "merge_across_nodes=1 use_zero_pages=0");
    g_autoptr(json_object) j = sp_plan_to_json(plan);
    json_object *jc;
    assert_true(json_object_object_get_ex(j, "vm_counts", &jc));
    assert_int_equal(json_object_array_length(jc), 5);
    assert_int_equal(json_object_get_int(json_object_array_get_idx(jc, 4)), 10);
}

static void
test_defaults(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = sp_plan_parse("[plan]\nvm_counts=3\n", -1, "dir/short.ini",
                                           NULL, &error);

    assert_non_null(plan);
    assert_string_equal(plan->name, "short");
    assert_int_equal(plan->memory_mib, 512);
    assert_int_equal(plan->vcpus, 1);
    assert_int_equal(plan->n_ksm, 0);
    assert_null(plan->workload);
    assert_null(plan->workload_argv);
    assert_true(plan->interval_s == 10 && plan->duration_s == 300);
    /* A prediction at every sample unless the plan says otherwise. */
    assert_true(plan->predict_interval_s == 10);
    g_autofree char *ksm = sp_plan_describe_ksm(plan);
    assert_string_equal(ksm, "the host's settings");
    g_autoptr(SpPlan) never = sp_plan_parse("[plan]\nvm_counts=3\n[sampling]\ninterval=5\n"
                                            "predict_interval=0\n", -1, "p.ini", NULL, &error);
    assert_non_null(never);
    assert_true(never->predict_interval_s == 0);
    g_autoptr(SpPlan) every = sp_plan_parse("[plan]\nvm_counts=3\n[sampling]\ninterval=5\n",
                                            -1, "p.ini", NULL, &error);
    assert_true(every->predict_interval_s == 5);
}

static void
test_crlf_and_none(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = parse("[plan]\r\nvm_counts=2\r\n[workload]\r\ncommand = none\r\n",
                                   0, &error);

    assert_non_null(plan);
    assert_null(plan->workload);
}

static void
test_vm_counts(void **state)
{
    expect_error("[plan]\nvm_counts=0\n", SP_PLAN_ERROR_INVALID, "p.ini:2: [plan] vm_counts",
                 "a VM count of 0");
    expect_error("[plan]\nvm_counts=1,0,2\n", SP_PLAN_ERROR_INVALID, "p.ini:2:", "count of 0");
    expect_error("[plan]\nvm_counts=-1\n", SP_PLAN_ERROR_INVALID, "vm_counts", "negative");
    expect_error("[plan]\nvm_counts=two\n", SP_PLAN_ERROR_INVALID, "vm_counts",
                 "not a whole number");
    expect_error("[plan]\nvm_counts=99999999999999999999999\n", SP_PLAN_ERROR_INVALID,
                 "vm_counts", NULL);
    expect_error("[plan]\nvm_counts=65\n", SP_PLAN_ERROR_INVALID, "vm_counts", "more than 64");
    expect_error("[plan]\nvm_counts=2,3,2\n", SP_PLAN_ERROR_INVALID, "vm_counts", "twice");
    expect_error("[plan]\nvm_counts= , ;\n", SP_PLAN_ERROR_INVALID, "vm_counts", "no VM counts");
    expect_error("[plan]\nvm_counts=1.5\n", SP_PLAN_ERROR_INVALID, "vm_counts", NULL);
    expect_error("[plan]\nvm_counts=0x3\n", SP_PLAN_ERROR_INVALID, "vm_counts", NULL);
    expect_error("[plan]\nname=x\n", SP_PLAN_ERROR_MISSING, "[plan] vm_counts", "missing");
    expect_error("", SP_PLAN_ERROR_MISSING, "vm_counts", NULL);
    expect_error("# only a comment\n", SP_PLAN_ERROR_MISSING, "vm_counts", NULL);
}

/* A plan's name becomes domain, file and script text: a safe set only. */
static void
test_name_safe(void **state)
{
    static const char *const bad[] = {
        "demo\\nsystem(\"id > /tmp/x\")", "../etc", ".hidden", "-x", "a b", "a/b", "a`id`",
        "a'b", "caf\xc3\xa9",
        "a1234567890123456789012345678901234567890123456789012345678901234",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *text = g_strdup_printf("[plan]\nname = %s\nvm_counts=1\n", bad[i]);
        g_autoptr(GError) error = NULL;
        g_autoptr(SpPlan) plan = parse(text, 0, &error);

        if (plan || !g_error_matches(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID) ||
            !strstr(error->message, "p.ini:2: [plan] name") ||
            !strstr(error->message, "A-Z a-z 0-9"))
            fail_msg("name '%s': got %s", bad[i], error ? error->message : plan->name);
        /* The value is named, with a newline escaped, not written raw. */
        assert_null(strchr(error->message, '\n'));
    }
    expect_error("[plan]\nname = demo\\nsystem(\"id\")\nvm_counts=1\n", SP_PLAN_ERROR_INVALID,
                 "'demo\\nsystem(\\\"id\\\")'", NULL);
    /* The longest (64) and the usual characters are fine. */
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) ok = parse("[plan]\nname=Study-8.sweep_10vms\nvm_counts=1\n", 0, &error);
    assert_non_null(ok);
    g_autoptr(SpPlan) ok64 = parse("[plan]\nname=a123456789012345678901234567890123456789012345678"
                                   "901234567890123\nvm_counts=1\n", 0, &error);
    assert_non_null(ok64);
    /* A name taken from the file name is held to the same rule. */
    g_autoptr(GError) e2 = NULL;
    g_autoptr(SpPlan) from_file = sp_plan_parse("[plan]\nvm_counts=1\n", -1, "dir/my plan;x.ini",
                                                NULL, &e2);
    assert_null(from_file);
    assert_true(g_error_matches(e2, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID));
    assert_non_null(strstr(e2->message, "'my plan;x'"));
    assert_non_null(strstr(e2->message, "[plan] name"));
}

static void
test_unknown(void **state)
{
    expect_error("[plan]\nvm_counts=1\n[guests]\nmemory_mib=512\n", SP_PLAN_ERROR_UNKNOWN,
                 "p.ini:3: [guests]", "unknown group");
    expect_error("[plan]\nvm_counts=1\n[guest]\n\nmemory=512\n", SP_PLAN_ERROR_UNKNOWN,
                 "p.ini:5: [guest] memory", "keys of [guest]: memory_mib");
    expect_error("[plan]\nvm_counts=1\n[ksm]\npages_to_scna=100\n", SP_PLAN_ERROR_UNKNOWN,
                 "p.ini:4: [ksm] pages_to_scna", "pages_to_scan");
    expect_error("[plan]\nvm_counts=1\n[ksm]\npages_shared=100\n", SP_PLAN_ERROR_UNKNOWN,
                 "[ksm] pages_shared", "not a KSM knob");
    expect_error("[plan]\nvm_counts=1\nname[fr]=x\n", SP_PLAN_ERROR_UNKNOWN,
                 "p.ini:3: [plan] name[fr]", "unknown key");
}

static void
test_syntax(void **state)
{
    expect_error("vm_counts=1\n", SP_PLAN_ERROR_SYNTAX, "p.ini:1:", "before the first [group]");
    expect_error("[plan]\nvm_counts=1\nthis is not a key\n", SP_PLAN_ERROR_SYNTAX, "p.ini:3:",
                 "not KEY=VALUE");
    expect_error("[plan\nvm_counts=1\n", SP_PLAN_ERROR_SYNTAX, "p.ini:1:", "[group]");
    expect_error("[]\n", SP_PLAN_ERROR_SYNTAX, "p.ini:1:", NULL);
    expect_error("[plan]\n=1\n", SP_PLAN_ERROR_SYNTAX, "p.ini:2:", NULL);
    expect_error("[plan]\nvm_counts=1\nvm_counts=2\n", SP_PLAN_ERROR_DUPLICATE,
                 "p.ini:3: [plan] vm_counts", "first on line 2");
    expect_error("[plan]\nvm_counts=1\n[guest]\n[plan]\n", SP_PLAN_ERROR_DUPLICATE,
                 "p.ini:4: [plan]", "given again");
    expect_error("[plan]\nvm_counts=1\n\xff\xfe=1\n", SP_PLAN_ERROR_SYNTAX, "p.ini:3:", "UTF-8");

    /* A NUL byte in the middle. */
    static const char nul[] = "[plan]\nvm_counts=1\nna\0me=x\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = sp_plan_parse(nul, sizeof(nul) - 1, "p.ini", NULL, &error);
    assert_null(plan);
    assert_true(g_error_matches(error, SP_PLAN_ERROR, SP_PLAN_ERROR_SYNTAX));
    assert_non_null(strstr(error->message, "p.ini:3: a NUL byte"));

    /* Binary garbage. */
    g_autoptr(GError) e2 = NULL;
    static const char junk[] = "\x7f" "ELF\x02\x01\x01\n\x89PNG";
    g_autoptr(SpPlan) p2 = sp_plan_parse(junk, sizeof(junk) - 1, "p.ini", NULL, &e2);
    assert_null(p2);
    assert_non_null(e2);
}

static void
test_values(void **state)
{
    expect_error("[plan]\nvm_counts=1\n[sampling]\ninterval=-5\n", SP_PLAN_ERROR_INVALID,
                 "p.ini:4: [sampling] interval", "negative");
    expect_error("[plan]\nvm_counts=1\n[sampling]\ninterval=0\n", SP_PLAN_ERROR_INVALID,
                 "[sampling] interval", "out of range");
    expect_error("[plan]\nvm_counts=1\n[sampling]\ninterval=nan\n", SP_PLAN_ERROR_INVALID,
                 "interval", "not a number");
    expect_error("[plan]\nvm_counts=1\n[sampling]\ninterval=inf\n", SP_PLAN_ERROR_INVALID,
                 "interval", NULL);
    expect_error("[plan]\nvm_counts=1\n[sampling]\ninterval=1e999\n", SP_PLAN_ERROR_INVALID,
                 "interval", NULL);
    expect_error("[plan]\nvm_counts=1\n[sampling]\ninterval=10 # seconds\n",
                 SP_PLAN_ERROR_INVALID, "p.ini:4:", "not a number");
    expect_error("[plan]\nvm_counts=1\n[sampling]\ninterval=60\nduration=30\n",
                 SP_PLAN_ERROR_INVALID, "p.ini:4: [sampling] interval", "longer than");
    expect_error("[plan]\nvm_counts=1\n[sampling]\nduration=-1\n", SP_PLAN_ERROR_INVALID,
                 "[sampling] duration", "negative");
    expect_error("[plan]\nvm_counts=1\n[sampling]\nsettle=-1\n", SP_PLAN_ERROR_INVALID,
                 "[sampling] settle", NULL);
    expect_error("[plan]\nvm_counts=1\n[sampling]\ninterval=10\npredict_interval=5\n",
                 SP_PLAN_ERROR_INVALID, "predict_interval", "shorter");
    expect_error("[plan]\nvm_counts=1\n[guest]\nmemory_mib=0\n", SP_PLAN_ERROR_INVALID,
                 "[guest] memory_mib", "out of range");
    expect_error("[plan]\nvm_counts=1\n[guest]\nvcpus=0\n", SP_PLAN_ERROR_INVALID,
                 "[guest] vcpus", NULL);
    expect_error("[plan]\nvm_counts=1\n[guest]\nboot_timeout=0\n", SP_PLAN_ERROR_INVALID,
                 "boot_timeout", NULL);
    expect_error("[plan]\nvm_counts=1\n[guest]\nimage_dir=\n", SP_PLAN_ERROR_INVALID,
                 "image_dir", "empty");
    expect_error("[plan]\nvm_counts=1\n[ksm]\npages_to_scan=-5\n", SP_PLAN_ERROR_INVALID,
                 "p.ini:4: [ksm] pages_to_scan", NULL);
    expect_error("[plan]\nvm_counts=1\n[ksm]\nuse_zero_pages=2\n", SP_PLAN_ERROR_INVALID,
                 "[ksm] use_zero_pages", "out of range");
    expect_error("[plan]\nvm_counts=1\n[ksm]\nmax_page_sharing=1\n", SP_PLAN_ERROR_INVALID,
                 "[ksm] max_page_sharing", NULL);
    expect_error("[plan]\nvm_counts=1\n[ksm]\nrun=1\n", SP_PLAN_ERROR_INVALID, "[ksm] run",
                 "runner controls run");
    expect_error("[plan]\nvm_counts=1\n[ksm]\nadvisor_mode=scan-time\npages_to_scan=100\n",
                 SP_PLAN_ERROR_INVALID, "pages_to_scan", "advisor_mode");
    expect_error("[plan]\nvm_counts=1\n[ksm]\nadvisor_mode=fast\n", SP_PLAN_ERROR_INVALID,
                 "advisor_mode", "not one of");
}

/* Every number is bounded to what makes sense; the error names the key and
 * the allowed range. */
static void
test_bounds(void **state)
{
    static const struct {
        const char *group, *line, *key, *range;
    } cases[] = {
        { "sampling", "interval=1e-300", "[sampling] interval", "[1, 3600]" },
        { "sampling", "interval=0.5", "[sampling] interval", "[1, 3600]" },
        { "sampling", "interval=3601", "[sampling] interval", "[1, 3600]" },
        { "sampling", "duration=1e-9", "[sampling] duration", "[1, 604800]" },
        { "sampling", "settle=1e-300\nduration=1e300", "[sampling] duration", "[1, 604800]" },
        { "sampling", "settle=86401", "[sampling] settle", "[0, 86400]" },
        { "sampling", "predict_interval=1e-300", "[sampling] predict_interval", "shorter" },
        { "guest", "boot_timeout=1e-300", "[guest] boot_timeout", "[1, 86400]" },
        { "guest", "memory_mib=2000000", "[guest] memory_mib", "[64, 1048576]" },
        { "guest", "vcpus=65", "[guest] vcpus", "[1, 64]" },
        { "ksm", "pages_to_scan=0", "[ksm] pages_to_scan", "[1, 1000000]" },
        { "ksm", "pages_to_scan=4294967295", "[ksm] pages_to_scan", "[1, 1000000]" },
        { "ksm", "sleep_millisecs=4294967295", "[ksm] sleep_millisecs", "[0, 600000]" },
        { "ksm", "stable_node_chains_prune_millisecs=4294967295",
          "[ksm] stable_node_chains_prune_millisecs", "[0, 86400000]" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text = g_strdup_printf("[plan]\nvm_counts=1\n[%s]\n%s\n", cases[i].group,
                                                cases[i].line);
        expect_error(text, SP_PLAN_ERROR_INVALID, cases[i].key, cases[i].range);
    }
    /* Too many samples in one run: interval 1 s over 7 days. */
    expect_error("[plan]\nvm_counts=1\n[sampling]\ninterval=1\nduration=604800\n",
                 SP_PLAN_ERROR_INVALID, "[sampling] duration", "100000 samples");
    /* The edges themselves are fine. */
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) edge = parse("[plan]\nvm_counts=64\n[guest]\nmemory_mib=64\nvcpus=64\n"
                                   "boot_timeout=1\n[ksm]\npages_to_scan=1000000\n"
                                   "sleep_millisecs=0\n[sampling]\ninterval=1\nduration=100000\n"
                                   "settle=86400\n", 0, &error);
    if (!edge)
        fail_msg("%s", error->message);
}

static void
test_workload(void **state)
{
    expect_error("[plan]\nvm_counts=1\n[workload]\ncommand=rm -rf /\n", SP_PLAN_ERROR_INVALID,
                 "p.ini:4: [workload] command", "not \"none\" or a stress-ng");
    expect_error("[plan]\nvm_counts=1\n[workload]\ncommand=stress-ng\n", SP_PLAN_ERROR_INVALID,
                 "command", "needs stressors");
    expect_error("[plan]\nvm_counts=1\n[workload]\ncommand=stress-ng --vm '2\n",
                 SP_PLAN_ERROR_INVALID, "command", "does not parse");
    expect_error("[plan]\nvm_counts=1\n[workload]\ncommand=\n", SP_PLAN_ERROR_INVALID,
                 "command", "empty");
    expect_error("[plan]\nvm_counts=1\n[workload]\ncommand=/usr/bin/stress-ng --vm 1\n",
                 SP_PLAN_ERROR_INVALID, "command", NULL);
}

static void
test_memory_available(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) ok = NULL;
    static const char text[] = "[plan]\nvm_counts=1,10\n[guest]\nmemory_mib=512\n";

    /* 10 x 512 MiB = 5120 MiB: fits in 6 GiB, not in 4 GiB. */
    ok = parse(text, 6ULL << 20, &error);
    assert_non_null(ok);
    g_autoptr(SpPlan) bad = parse(text, 4ULL << 20, &error);
    assert_null(bad);
    assert_true(g_error_matches(error, SP_PLAN_ERROR, SP_PLAN_ERROR_INVALID));
    assert_non_null(strstr(error->message, "p.ini:4: [guest] memory_mib"));
    assert_non_null(strstr(error->message, "10 VMs x 512 MiB = 5120 MiB"));
    assert_non_null(strstr(error->message, "MemAvailable (4096 MiB)"));
    assert_non_null(strstr(error->message, "line 2"));
    /* Without limits (0), no check. */
    g_autoptr(GError) e2 = NULL;
    g_autoptr(SpPlan) unchecked = parse(text, 0, &e2);
    assert_non_null(unchecked);
}

static void
test_meminfo(void **state)
{
    guint64 v = 0;
    g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;

    /* The plan's MemAvailable check reads meminfo through SpProc. */
    assert_true(sp_proc_parse_meminfo("MemTotal:       24684084 kB\nMemFree:  1 kB\n"
                                      "MemAvailable:   21556432 kB\n", "MemAvailable", &v, NULL));
    assert_int_equal(v / 1024, 21556432);
    assert_false(sp_proc_parse_meminfo("MemTotal: 1 kB\n", "MemAvailable", &v, &e1));
    assert_false(sp_proc_parse_meminfo("MemAvailable: lots kB\n", "MemAvailable", &v, &e2));
    assert_false(sp_proc_parse_meminfo("MemAvailable: 5 MB\n", "MemAvailable", &v, &e3));
}

static void
test_load_missing(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = sp_plan_load("/nonexistent/plan.ini", NULL, &error);

    assert_null(plan);
    assert_true(g_error_matches(error, SP_PLAN_ERROR, SP_PLAN_ERROR_IO));
    assert_non_null(strstr(error->message, "/nonexistent/plan.ini"));
}

static void
test_shipped_plans(void **state)
{
    /* Every plan in vm-images/plans parses (without the host's limits). */
    g_autofree char *dir = g_build_filename(SP_TOP_SRCDIR, "vm-images", "plans", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    guint n = 0;

    assert_non_null(d);
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(SpPlan) plan = NULL;
        if (!g_str_has_suffix(name, ".ini"))
            continue;
        plan = sp_plan_load(path, NULL, &error);
        if (!plan)
            fail_msg("%s: %s", name, error->message);
        n++;
    }
    assert_true(n >= 9);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_crlf_and_none),
        cmocka_unit_test(test_vm_counts),
        cmocka_unit_test(test_name_safe),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_workload),
        cmocka_unit_test(test_memory_available),
        cmocka_unit_test(test_meminfo),
        cmocka_unit_test(test_load_missing),
        cmocka_unit_test(test_shipped_plans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
