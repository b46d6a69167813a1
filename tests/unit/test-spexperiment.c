/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The experiment runner's pure parts: the census count, the /proc parsers,
 * the domain template, the KSM write orders, derived figures, the steady
 * state, the conclusions and the output files.  No libvirt, no root.
 */
#include "config.h"

#include <sys/stat.h>
#include <utime.h>

#include "samepage/spcensus.h"
#include "samepage/spexperiment.h"
#include "samepage/spjournal.h"
#include "samepage/splibvirt.h"
#include "samepage/spmaps.h"
#include "samepage/spproc.h"
#include "samepage/spreport.h"
#include "../../src/lib/experiment/spexperimentpriv.h"
#include "sptest.h"

#define P(pfn) (SP_PM_PRESENT | (guint64)(pfn))
#define KSM (1ULL << SP_KPF_KSM)
#define THP (1ULL << SP_KPF_THP)
#define ZP (1ULL << SP_KPF_ZERO_PAGE)

/* Frames 100 and 200 hold zeros. */
static gboolean
zero_frames(gsize entry, gpointer data)
{
    const guint64 *entries = data;
    guint64 pfn = entries[entry] & SP_PM_PFN_MASK;
    return pfn == 100 || pfn == 200;
}

static void
test_census_count(void **state)
{
    /* Two ranges.  Range 0: KSM 100 twice, KSM 300, zero page, plain THP
     * page, not present, swapped.  Range 1: KSM 100, KSM 300, KSM 200
     * (only mapping: a KSM page shared with someone outside), plain. */
    const guint64 entries[] = {
        P(100), P(100), P(300), P(7), P(1000), 0, SP_PM_SWAPPED,
        P(100), P(300), P(200), P(2000),
    };
    const guint64 kflags[] = {
        KSM, KSM, KSM, ZP, THP, 0, 0,
        KSM, KSM, KSM | THP, 0,
    };
    const guint range_of[] = { 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1 };
    SpCensusRange r[2];
    SpCensusTotals t;

    sp_census_count(entries, kflags, range_of, G_N_ELEMENTS(entries), 2, zero_frames,
                    (gpointer)entries, r, &t);
    assert_int_equal(r[0].pages, 7);
    assert_int_equal(r[0].resident_pages, 4);
    assert_int_equal(r[0].zero_mapped_pages, 1);
    assert_int_equal(r[0].swapped_pages, 1);
    assert_int_equal(r[0].thp_pages, 1);
    assert_int_equal(r[0].ksm_pages, 3);
    assert_int_equal(r[0].ksm_zero_pages, 2);
    assert_int_equal(r[1].resident_pages, 4);
    assert_int_equal(r[1].ksm_pages, 3);
    assert_int_equal(r[1].ksm_zero_pages, 2);
    assert_int_equal(r[1].thp_pages, 1);
    assert_int_equal(t.total.ksm_pages, 6);
    assert_int_equal(t.ksm_frames, 3);
    assert_int_equal(t.ksm_zero_frames, 2);
    assert_int_equal(SP_CENSUS_SHARING(&t), 3);
    assert_int_equal(SP_CENSUS_SHARING_ZERO(&t), 2);
    assert_int_equal(t.total.resident_pages, 8);
    assert_int_equal(t.total.pages, 11);

    /* Nothing at all. */
    sp_census_count(NULL, NULL, NULL, 0, 0, NULL, NULL, r, &t);
    assert_int_equal(t.ksm_frames, 0);
}

static void
test_census_live_self(void **state)
{
    /* Our own heap, without privilege: frame numbers are zero unless root,
     * and the census says so instead of miscounting. */
    g_autoptr(SpHost) host = sp_host_new();
    g_autoptr(SpCensus) c = sp_census_new(host);
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *buf = g_malloc(64 * 4096);
    guint64 start = ((guint64)GPOINTER_TO_SIZE(buf) + 4095) & ~4095ULL;
    SpCensusTotals t;

    memset(buf, 1, 64 * 4096);
    sp_census_add_range(c, getpid(), start, start + 32 * 4096);
    if (sp_census_run(c, &t, &error)) {
        /* root: every page of the range is resident and ours alone */
        assert_int_equal(t.total.pages, 32);
        assert_int_equal(t.total.resident_pages, 32);
        assert_int_equal(t.ksm_frames, 0);
    } else {
        assert_true(g_error_matches(error, SP_CENSUS_ERROR, SP_CENSUS_ERROR_ACCESS));
    }
}

static void
test_proc_parsers(void **state)
{
    guint64 busy = 0, total = 0;
    SpKsmStat g;
    g_auto(SpProcStat) st = { 0 };
    g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL;

    /* The runner's /proc parsers are SpProc's now (test-spproc has the
     * hostile cases); what the runner relies on is kept here. */
    assert_true(sp_proc_parse_cpu_stat("cpu  100 5 50 1000 20 1 2 3 7 0\ncpu0 1 2 3 4\n",
                                       &busy, &total, NULL));
    assert_int_equal(total, 100 + 5 + 50 + 1000 + 20 + 1 + 2 + 3);
    assert_int_equal(busy, total - 1000 - 20);
    assert_false(sp_proc_parse_cpu_stat("intr 1 2 3\n", &busy, &total, &e1));
    assert_false(sp_proc_parse_cpu_stat("cpu  1 x 3 4\n", &busy, &total, &e2));
    assert_false(sp_proc_parse_cpu_stat("cpu  1 2\n", &busy, &total, &e3));

    /* A comm with spaces and a ')' in it (field 22, starttime, added: the
     * parser wants the whole line the kernel writes). */
    assert_true(sp_proc_parse_stat("42 (qemu ) (x) S 1 42 42 0 -1 4194560 100 0 0 0 "
                                   "250 75 0 0 20 0 3 0 1234", &st, NULL));
    assert_int_equal(st.utime + st.stime, 325);
    sp_proc_stat_clear(&st);
    assert_false(sp_proc_parse_stat("42 (ksmd S 1", &st, &e4));

    assert_true(sp_proc_parse_ksm_stat("ksm_rmap_items 10\nksm_zero_pages 2\n"
                                       "ksm_merging_pages 7\nksm_process_profit -4096\n"
                                       "ksm_merge_any: no\nksm_mergeable: yes\n", &g, NULL));
    assert_int_equal(g.ksm_rmap_items, 10);
    assert_int_equal(g.ksm_zero_pages, 2);
    assert_int_equal(g.ksm_merging_pages, 7);
    assert_int_equal(g.ksm_process_profit, -4096);
    assert_true(sp_proc_parse_ksm_stat("ksm_rmap_items 3\n", &g, NULL));
    assert_int_equal(g.ksm_zero_pages, -1);
    g_autoptr(GError) e5 = NULL;
    assert_false(sp_proc_parse_ksm_stat("ksm_merging_pages many\n", &g, &e5));

    assert_int_equal(sp_exp_parse_vmrss("Name:\tqemu\nVmRSS:\t  123456 kB\nVmData: 1 kB\n"), 123456);
    assert_int_equal(sp_exp_parse_vmrss("Name:\tkthreadd\n"), 0);
    /* Through SpProc's "KEY: N kB" parser: no wrapping, no half numbers. */
    assert_int_equal(sp_exp_parse_vmrss("VmRSS: 18446744073709551616 kB\n"), 0);
    assert_int_equal(sp_exp_parse_vmrss("VmRSS: 12x kB\n"), 0);
    assert_int_equal(sp_exp_parse_vmrss("VmRSS: 7 kB\n"), 7);
}

static void
test_cmdline_uuid(void **state)
{
    static const char cmd[] = "qemu-system-x86_64\0-name\0guest=sp-1\0-uuid\0"
                              "3F2504E0-4F89-11D3-9A0C-0305E82C3301\0-m\0512";
    static const char other[] = "qemu\0-name\0-uuid\0-uuid2\0x";

    /* SpLibvirt's parser (the runner's own copy is gone). */
    assert_true(sp_cmdline_has_uuid(cmd, sizeof(cmd) - 1,
                                    "3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
    assert_false(sp_cmdline_has_uuid(cmd, sizeof(cmd) - 1,
                                     "3f2504e0-4f89-11d3-9a0c-0305e82c3302"));
    /* The uuid as some other argument's value does not count. */
    assert_false(sp_cmdline_has_uuid(cmd, sizeof(cmd) - 1, "guest=sp-1"));
    assert_false(sp_cmdline_has_uuid(other, sizeof(other) - 1, "x"));
    assert_false(sp_cmdline_has_uuid("", 0, "x"));
}

static void
test_template(void **state)
{
    g_autoptr(GHashTable) vars = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;

    g_hash_table_insert(vars, (char *)"NAME", (char *)"sp-a&b");
    g_hash_table_insert(vars, (char *)"DISK", (char *)"/tmp/<x>.qcow2");
    out = sp_exp_fill_template("<!-- @NAME@ user@host -->\n<name>@NAME@</name>"
                               "<disk file='@DISK@'/>@@ @lower@", vars, &error);
    assert_non_null(out);
    assert_string_equal(out, "<!-- sp-a&amp;b user@host -->\n<name>sp-a&amp;b</name>"
                             "<disk file='/tmp/&lt;x&gt;.qcow2'/>@@ @lower@");
    g_autofree char *bad = sp_exp_fill_template("<uuid>@UUID@</uuid>", vars, &error);
    assert_null(bad);
    assert_non_null(strstr(error->message, "@UUID@"));

    /* The template shipped in vm-images fills completely. */
    g_autofree char *path = g_build_filename(SP_TOP_SRCDIR, "vm-images", "domain.xml.in", NULL);
    g_autofree char *tmpl = NULL;
    static const char *keys[] = { "NAME", "UUID", "MAC", "DISK", "KERNEL", "INITRD",
                                  "MEMORY_MIB", "VCPUS", "SERIAL_LOG" };
    g_autoptr(GError) e2 = NULL;
    assert_true(g_file_get_contents(path, &tmpl, NULL, NULL));
    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
        g_hash_table_insert(vars, (gpointer)keys[i], (char *)"v");
    g_autofree char *full = sp_exp_fill_template(tmpl, vars, &e2);
    assert_non_null(full);
    assert_null(strstr(full, "@NAME@"));
}

static SpKsmState
state_with(gint64 run, gint64 pts, gint64 mps, gint64 adv)
{
    SpKsmState st;
    memset(&st, 0, sizeof(st));
    for (guint k = 0; k < SP_KSM_N_KEYS; k++)
        st.entry[k].supported = TRUE;
    st.entry[SP_KSM_RUN].value = run;
    st.entry[SP_KSM_PAGES_TO_SCAN].value = pts;
    st.entry[SP_KSM_SLEEP_MILLISECS].value = 20;
    st.entry[SP_KSM_MAX_PAGE_SHARING].value = mps;
    st.entry[SP_KSM_MERGE_ACROSS_NODES].value = 1;
    st.entry[SP_KSM_ADVISOR_MODE].value = adv;
    st.entry[SP_KSM_ADVISOR_MAX_CPU].value = 70;
    st.entry[SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN].value = 500;
    st.entry[SP_KSM_ADVISOR_MAX_PAGES_TO_SCAN].value = 30000;
    st.entry[SP_KSM_ADVISOR_TARGET_SCAN_TIME].value = 200;
    st.entry[SP_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS].value = 2000;
    st.entry[SP_KSM_SMART_SCAN].value = 1;
    st.entry[SP_KSM_PAGES_SHARED].value = 1000;
    return st;
}

static void
test_ksm_orders(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = sp_plan_parse("[plan]\nvm_counts=1\n[ksm]\npages_to_scan=1000\n"
                                           "max_page_sharing=16\n", -1, "p", NULL, &error);
    SpKsmState host = state_with(0, 100, 256, 1);
    g_autoptr(GArray) set = NULL;

    assert_non_null(plan);
    /* advisor on: advisor_mode=none goes first; then the plan's knobs. */
    set = sp_exp_ksm_plan_settings(plan, &host);
    assert_int_equal(set->len, 3);
    assert_int_equal(g_array_index(set, SpKsmSetting, 0).key, SP_KSM_ADVISOR_MODE);
    assert_int_equal(g_array_index(set, SpKsmSetting, 0).value, 0);
    /* After run=2 (pages_shared 0) the kernel takes them. */
    host.entry[SP_KSM_PAGES_SHARED].value = 0;
    assert_true(sp_ksm_validate(&host, (SpKsmSetting *)set->data, set->len, NULL));
}

static void
test_disturbed(void **state)
{
    g_autoptr(SpPlan) plan = sp_plan_parse("[plan]\nvm_counts=1\n[ksm]\npages_to_scan=1000\n"
                                           "use_zero_pages=1\n", -1, "p", NULL, NULL);
    SpKsmState st = state_with(1, 1000, 256, 0);
    g_autofree char *ok = NULL, *before = NULL, *changed = NULL;

    st.entry[SP_KSM_USE_ZERO_PAGES].value = 1;
    ok = sp_exp_ksm_disturbed(plan, &st, TRUE, 30);
    assert_null(ok);
    /* Before run=1 the runner leaves run=2. */
    before = sp_exp_ksm_disturbed(plan, &st, FALSE, 0);
    assert_non_null(strstr(before, "run=1 (the runner set 2)"));
    st.entry[SP_KSM_PAGES_TO_SCAN].value = 20000;
    changed = sp_exp_ksm_disturbed(plan, &st, TRUE, 42);
    assert_non_null(strstr(changed, "at t=42 s"));
    assert_non_null(strstr(changed, "pages_to_scan=20000 (the plan says 1000)"));
}

static void
test_domain_name(void **state)
{
    g_autofree char *a = sp_exp_domain_name("Idle 1000/20ms", "a1b2c3", 2, 3);
    g_autofree char *b = sp_exp_domain_name("a-very-long-plan-name-that-goes-on-and-on", "000001", 1, 10);
    g_autofree char *c = sp_exp_domain_name("///", "ffffff", 1, 1);

    assert_string_equal(a, "sp-idle-1000-20ms-a1b2c3-2-3");
    assert_true(strlen(b) < 40);
    assert_true(g_str_has_suffix(b, "-000001-1-10"));
    assert_string_equal(c, "sp-ffffff-1-1");
}

/* A synthetic run: N guests, samples every 10 s; saving ramps up then flat. */
static SpExpRun *
fake_run(guint index, guint n_vms, guint n_samples, guint64 flat_sharing, gboolean predict)
{
    SpExpRun *r = sp_exp_run_new(index, n_vms);

    r->dir = g_strdup_printf("/tmp/out/run-%02u-%uvm", index, n_vms);
    r->complete = TRUE;
    for (guint g = 0; g < n_vms; g++) {
        SpExpGuestInfo gi = { 0 };
        gi.name = g_strdup_printf("sp-t-%u-%u", index, g + 1);
        gi.uuid = g_strdup("u");
        gi.mac = g_strdup("m");
        gi.serial_log = g_strdup("s");
        gi.ram_start = 0x7f0000000000;
        gi.ram_end = gi.ram_start + (512 << 20);
        g_array_append_val(r->guests, gi);
    }
    for (guint i = 0; i < n_samples; i++) {
        SpExpSample s = { 0 };
        guint64 sharing = i == 0 ? 0 : i < 4 ? flat_sharing * i / 4 : flat_sharing;
        s.t = i * 10.0;
        s.wall_us = G_GINT64_CONSTANT(1790000000) * G_USEC_PER_SEC + i * 10 * G_USEC_PER_SEC;
        for (guint k = 0; k < SP_KSM_N_KEYS; k++)
            s.ksm.entry[k].supported = TRUE;
        s.ksm.entry[SP_KSM_PAGES_SHARED].value = sharing / 4;
        s.ksm.entry[SP_KSM_PAGES_SHARING].value = sharing;
        s.ksm.entry[SP_KSM_FULL_SCANS].value = i;
        s.census.total.resident_pages = 100000ULL * n_vms;
        s.census.ksm_frames = sharing / 4;
        s.census.total.ksm_pages = sharing + sharing / 4;
        s.census.ksm_zero_frames = sharing / 40;
        s.census.total.ksm_zero_pages = sharing / 2;
        s.zero_freed_pages = i ? 1000 : 0;
        s.ksmd_cpu_pct = i ? 30 : 0;
        s.host_cpu_pct = 80;
        s.guests = g_array_new(FALSE, TRUE, sizeof(SpExpGuestSample));
        for (guint g = 0; g < n_vms; g++) {
            SpExpGuestSample gs = { 0 };
            gs.ksm_merging_pages = (gint64)((sharing + sharing / 4) / n_vms);
            g_array_append_val(s.guests, gs);
        }
        if (predict) {
            s.prediction.valid = TRUE;
            s.prediction.pages_sharing = flat_sharing + flat_sharing / 100;
            s.prediction.saved_nonzero = flat_sharing / 2;
            s.prediction.saved_zero = flat_sharing / 2;
            s.prediction.scanned_pages = 100000ULL * n_vms;
            /* The workload's busiest moment: t=100. */
            s.prediction.volatile_pages = i == 10 ? 5000ULL * n_vms : 1000;
            s.fresh_prediction = TRUE;
        }
        g_array_append_val(r->samples, s);
    }
    sp_exp_run_compute_steady(r);
    return r;
}

static void
test_derive_and_steady(void **state)
{
    g_autoptr(SpExpRun) r = fake_run(1, 2, 31, 40000, TRUE);
    SpExpDerived d;
    const SpExpSample *last = &g_array_index(r->samples, SpExpSample, 30);
    const SpExpSteady *st = &r->steady;

    sp_exp_sample_derive(last, &d);
    assert_int_equal(d.denominator, 200000 + 1000);
    assert_int_equal(d.shared, 10000);
    assert_int_equal(d.sharing, 40000);
    assert_int_equal(d.sharing_zero, 20000 - 1000);
    assert_int_equal(d.saved, 41000);
    assert_int_equal(d.saved_zero, 20000);
    assert_int_equal(d.saved_nonzero, 21000);
    assert_int_equal(d.other_ksm_pages, 0);
    assert_int_equal(d.stat_merging, 50000);
    assert_true(d.reclaimed_pct > 20.39 && d.reclaimed_pct < 20.41);
    /* Shared: the KSM mappings plus the 1000 zero-page mappings gained
     * (50000 + 1000 of 201000). */
    assert_true(d.shared_pct > 25.37 && d.shared_pct < 25.38);

    assert_true(st->valid);
    assert_true(st->from_t >= 200 && st->to_t == 300);
    assert_int_equal(st->n_samples, 11);
    assert_true(st->converged);
    assert_true(st->converged_at == 40);
    assert_int_equal(st->full_scans, 30);
    assert_true(st->pred_error_pct < -0.9 && st->pred_error_pct > -1.1);
    assert_true(st->ksmd_cpu_peak_pct == 30);

    /* Still climbing at the end: not settled. */
    g_autoptr(SpExpRun) r2 = fake_run(2, 1, 31, 40000, FALSE);
    for (guint i = 20; i < 31; i++) {
        SpExpSample *s = &g_array_index(r2->samples, SpExpSample, i);
        s->census.total.ksm_pages += i * 2000;
        s->census.ksm_frames += i * 400;
    }
    sp_exp_run_compute_steady(r2);
    assert_false(r2->steady.converged);
    assert_true(r2->steady.converged_at < 0);

    /* Only the t=0 sample: no steady state. */
    g_autoptr(SpExpRun) r3 = fake_run(3, 1, 1, 0, FALSE);
    assert_false(r3->steady.valid);
}

/* The conclusions, one per line. */
static char *
conclusions_text(const SpPlan *plan, GPtrArray *runs)
{
    g_autoptr(GPtrArray) conc = sp_report_conclusions(plan, runs);
    GString *all = g_string_new(NULL);

    for (guint i = 0; i < conc->len; i++)
        g_string_append_printf(all, "%s\n", (char *)g_ptr_array_index(conc, i));
    return g_string_free(all, FALSE);
}

/* RFC 4180: a field with a comma, a double quote, CR or LF is quoted, its
 * quotes doubled; any other is written as it is. */
static void
test_csv_quoting(void **state)
{
    static const struct { const char *in, *out; } cases[] = {
        { "sp-t-1-1", "sp-t-1-1" },
        { "", "" },
        { "a b;c'd\\e", "a b;c'd\\e" },
        { "web,1", "\"web,1\"" },
        { "say \"hi\"", "\"say \"\"hi\"\"\"" },
        { "\"", "\"\"\"\"" },
        { "two\nlines", "\"two\nlines\"" },
        { "cr\r", "\"cr\r\"" },
    };
    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GString) out = g_string_new("x,");
        sp_report_csv_field(out, cases[i].in);
        g_autofree char *want = g_strconcat("x,", cases[i].out, NULL);
        assert_string_equal(out->str, want);
    }

    /* A guest named with a comma, quotes and a newline: guests.csv keeps
     * its row's 13 fields, and the name reads back whole. */
    g_autoptr(SpExpRun) run = fake_run(1, 2, 2, 1000, FALSE);
    SpExpGuestInfo *gi = &g_array_index(run->guests, SpExpGuestInfo, 1);
    g_free(gi->name);
    gi->name = g_strdup("evil,\"name\"\nx");
    g_autofree char *csv = sp_report_guests_csv(run);
    g_autofree char *row = g_strdup(strstr(csv, "\n0.0,\"evil"));
    assert_non_null(row);
    assert_true(g_str_has_prefix(row, "\n0.0,\"evil,\"\"name\"\"\nx\","));
    /* the fields after the name: a pid and 10 numbers */
    char *after = row + strlen("\n0.0,\"evil,\"\"name\"\"\nx\",");
    *strchr(after, '\n') = 0;
    g_auto(GStrv) rest = g_strsplit(after, ",", -1);
    assert_int_equal(g_strv_length(rest), 11);
}

static void
test_outputs(void **state)
{
    g_autoptr(GPtrArray) runs = g_ptr_array_new_with_free_func((GDestroyNotify)sp_exp_run_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = sp_plan_parse("[plan]\nname=t\nvm_counts=3,1\n[ksm]\n"
                                           "pages_to_scan=1000\n[workload]\n"
                                           "command=stress-ng --vm 2\n", -1, "t.ini", NULL,
                                           &error);
    SpReportInfo info;

    g_ptr_array_add(runs, fake_run(1, 3, 31, 90000, TRUE));
    g_ptr_array_add(runs, fake_run(2, 1, 31, 20000, TRUE));

    /* CSV: the header and every row have as many fields. */
    g_autofree char *csv = sp_report_samples_csv(g_ptr_array_index(runs, 0));
    g_auto(GStrv) lines = g_strsplit(csv, "\n", -1);
    g_auto(GStrv) head = g_strsplit(lines[0], ",", -1);
    guint nf = g_strv_length(head);
    assert_int_equal(g_strv_length(lines), 33);   /* header, 31 rows, "" */
    for (guint i = 1; i < 32; i++) {
        g_auto(GStrv) f = g_strsplit(lines[i], ",", -1);
        assert_int_equal(g_strv_length(f), nf);
    }
    assert_non_null(strstr(lines[0], "t_s,time,host_cpu_pct"));
    assert_non_null(strstr(lines[0], "sys_pages_sharing"));
    assert_non_null(strstr(lines[0], "reclaimed_pct"));

    g_autofree char *gcsv = sp_report_guests_csv(g_ptr_array_index(runs, 0));
    assert_non_null(strstr(gcsv, "\n0.0,sp-t-1-1,"));

    /* summary.csv: by VM count. */
    g_autofree char *sum = sp_report_summary_csv(runs);
    g_auto(GStrv) sl = g_strsplit(sum, "\n", -1);
    assert_true(g_str_has_prefix(sl[1], "1,1,"));
    assert_true(g_str_has_prefix(sl[2], "3,1,"));

    /* Conclusions name the numbers. */
    g_autofree char *all = conclusions_text(plan, runs);
    assert_non_null(strstr(all, "With 3 guests, KSM reclaimed"));
    assert_non_null(strstr(all, "grows with the number of guests"));
    assert_non_null(strstr(all, "Zero-filled pages are"));
    assert_non_null(strstr(all, "(agreement)"));
    assert_non_null(strstr(all, "Every run settled"));
    assert_non_null(strstr(all, "ksmd used 30.0% of one CPU"));
    assert_non_null(strstr(all, "KSM merged nothing outside"));
    assert_non_null(strstr(all, "up to 5.0% of the guests' scanned pages changed"));
    assert_non_null(strstr(all, "(at t=100 s;"));
    assert_null(strstr(all, "settled below the model"));

    /* A run that settled well below the model is named; a cause only when
     * its data show one.  Here the last scan found none of the missing
     * pages unmerged: unexplained, with the numbers, and no smart scan. */
    SpExpRun *one = g_ptr_array_index(runs, 1);
    double sharing0 = one->steady.sharing_pages, pred0 = one->steady.pred_sharing;
    one->steady.pred_error_pct = -20;
    one->steady.sharing_pages = 8000;
    one->steady.pred_sharing = 10000;
    one->steady.pred_unmerged_pages = 100;
    g_autofree char *all_below = conclusions_text(plan, runs);
    assert_non_null(strstr(all_below, "settled below the model's last prediction, unexplained: "
                                      "1 VM: the guests' pages_sharing 8000, the model's 10000 "
                                      "(-20.0%); only 100 of the pages"));
    assert_null(strstr(all_below, "smart_scan"));
    /* The scan found the missing pages held apart: that is named. */
    one->steady.pred_unmerged_pages = 1900;
    g_autofree char *all_held = conclusions_text(plan, runs);
    assert_non_null(strstr(all_held, "with equal pages it did not merge: 1 VM -20.0% (2000 pages "
                                     "short; 1900 pages of duplicated contents were not KSM pages)"));
    assert_non_null(strstr(all_held, "smart_scan=0"));
    assert_null(strstr(all_held, "unexplained"));
    one->steady.pred_error_pct = -1;
    one->steady.sharing_pages = sharing0;
    one->steady.pred_sharing = pred0;
    one->steady.pred_unmerged_pages = 0;

    /* An incomplete run is said so. */
    SpExpRun *bad = g_ptr_array_index(runs, 1);
    bad->complete = FALSE;
    bad->incomplete_reason = g_strdup("guest sp-x never became ready");
    g_autoptr(GPtrArray) conc2 = sp_report_conclusions(plan, runs);
    assert_non_null(strstr(g_ptr_array_index(conc2, 0), "INCOMPLETE: guest sp-x never"));

    /* A disturbed run is said so, and left out of the conclusions. */
    SpExpRun *three = g_ptr_array_index(runs, 0);
    three->disturbed = g_strdup("at t=10 s KSM was changed by someone else: run=0");
    g_autofree char *all3 = conclusions_text(plan, runs);
    assert_non_null(strstr(all3, "Run 1 (3 VMs) was DISTURBED: at t=10 s"));
    assert_non_null(strstr(all3, "leave out the 1 disturbed run."));
    assert_non_null(strstr(all3, "With 1 guest, KSM reclaimed"));
    g_clear_pointer(&three->disturbed, g_free);

    /* gnuplot: a plot per metric, each run's samples by column name. */
    g_autoptr(GPtrArray) pngs = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *gp = sp_report_gnuplot_script(plan, runs, pngs);
    assert_true(pngs->len >= 15);
    assert_non_null(strstr(gp, "'run-01-3vm/samples.csv' every ::1 using \"t_s\":\"reclaimed_pct\""));
    assert_non_null(strstr(gp, "'summary.csv' using \"vm_count\":\"reclaimed_pct\""));
    assert_non_null(strstr(gp, "1 VM (incomplete)"));

    /* The report. */
    sp_report_info_init(&info);
    info.complete = FALSE;
    info.error_message = "interrupted";
    info.wall_start = G_GINT64_CONSTANT(1790000000) * G_USEC_PER_SEC;
    info.wall_end = info.wall_start + 600 * G_USEC_PER_SEC;
    g_autofree char *md = sp_report_markdown(&info, plan, runs, pngs);
    assert_non_null(strstr(md, "**Status: INCOMPLETE** — interrupted"));
    assert_non_null(strstr(md, "| VM counts | 3, 1 |"));
    assert_non_null(strstr(md, "pages_to_scan=1000"));
    assert_non_null(strstr(md, "stress-ng --vm 2"));
    assert_non_null(strstr(md, "![reclaimed_pct-vs-time.png](plots/reclaimed_pct-vs-time.png)"));
    assert_non_null(strstr(md, "| 3 | complete |"));

    g_autoptr(json_object) j = sp_report_results_json(&info, plan, runs);
    json_object *runs_j, *c;
    assert_true(json_object_object_get_ex(j, "runs", &runs_j));
    assert_int_equal(json_object_array_length(runs_j), 2);
    assert_true(json_object_object_get_ex(j, "complete", &c));
    assert_false(json_object_get_boolean(c));

    g_autofree char *table = sp_report_summary_table(plan, runs);
    assert_non_null(strstr(table, "INCOMPLETE"));
}

/* Nothing from a plan reaches the gnuplot script unquoted: a name that
 * slipped past the plan's rule (a hand-built SpPlan) cannot add a line or
 * a backquote command. */
static void
test_gnuplot_hostile(void **state)
{
    g_autoptr(GPtrArray) runs = g_ptr_array_new_with_free_func((GDestroyNotify)sp_exp_run_free);
    g_autoptr(GPtrArray) pngs = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(SpPlan) plan = sp_plan_parse("[plan]\nname=t\nvm_counts=1\n", -1, "t.ini", NULL,
                                           &error);

    assert_non_null(plan);
    g_free(plan->name);
    plan->name = g_strdup("demo\nsystem(\"id > /tmp/x\")\r`id`\nprint 'x'");
    g_ptr_array_add(runs, fake_run(1, 1, 4, 100, FALSE));
    g_autofree char *gp = sp_report_gnuplot_script(plan, runs, pngs);
    g_auto(GStrv) lines = g_strsplit(gp, "\n", -1);

    assert_null(strchr(gp, '`'));
    assert_null(strchr(gp, '\r'));
    for (char **l = lines; *l; l++) {
        const char *s = *l;
        while (*s == ' ')
            s++;
        if (g_str_has_prefix(s, "system") || g_str_has_prefix(s, "print"))
            fail_msg("the plan's name added a command line: %s", *l);
    }
}

/* The sampling schedule is integer arithmetic that always moves on: no
 * interval, however small, and no lateness makes it spin. */
static void
test_sample_slots(void **state)
{
    gboolean last = FALSE;

    /* 10 s over 300 s: slots 1..30, the 30th is the last. */
    assert_int_equal(sp_exp_slot_count(10 * G_USEC_PER_SEC, 300 * G_USEC_PER_SEC), 30);
    assert_int_equal(sp_exp_next_slot(10 * G_USEC_PER_SEC, 300 * G_USEC_PER_SEC, 0, 0, &last), 1);
    assert_false(last);
    /* On time: the next one. */
    assert_int_equal(sp_exp_next_slot(10 * G_USEC_PER_SEC, 300 * G_USEC_PER_SEC, 1,
                                      10 * G_USEC_PER_SEC + 5000, &last), 2);
    /* A sample that took 35 s: slots 2-4 are skipped. */
    assert_int_equal(sp_exp_next_slot(10 * G_USEC_PER_SEC, 300 * G_USEC_PER_SEC, 1,
                                      45 * G_USEC_PER_SEC, &last), 5);
    /* Far too late: the last slot is never skipped, and then it ends. */
    assert_int_equal(sp_exp_next_slot(10 * G_USEC_PER_SEC, 300 * G_USEC_PER_SEC, 3,
                                      G_GINT64_CONSTANT(1) << 50, &last), 30);
    assert_true(last);
    assert_int_equal(sp_exp_next_slot(10 * G_USEC_PER_SEC, 300 * G_USEC_PER_SEC, 30,
                                      G_GINT64_CONSTANT(1) << 50, &last), 0);
    /* A duration a hair short of a slot still gets it (1 ms of slack). */
    assert_int_equal(sp_exp_slot_count(10 * G_USEC_PER_SEC, 300 * G_USEC_PER_SEC - 500), 30);

    /* Degenerate values: an interval of 0 us (1e-300 s) or a negative one,
     * a huge duration, time going nowhere: each call moves on. */
    static const gint64 intervals[] = { 0, -5, 1 };
    for (gsize i = 0; i < G_N_ELEMENTS(intervals); i++) {
        guint64 k = 0, steps = 0;
        while ((k = sp_exp_next_slot(intervals[i], G_MAXINT64 / 2, k, G_MAXINT64 / 2, &last))) {
            assert_true(++steps <= 2);
        }
        assert_true(last);
    }
    guint64 k1 = sp_exp_next_slot(1, 1000000, 0, 0, &last);
    guint64 k2 = sp_exp_next_slot(1, 1000000, k1, 0, &last);
    assert_true(k2 > k1);
}

/* ---------------------------------------------------------------- the runner, hermetic
 *
 * sp_experiment_run() up to its first KSM write: a fake sysfs, a fake image
 * directory, libvirt's test driver, a state directory.  The progress
 * callback acts at "KSM reset (run=2)", the moment before the first change
 * to the host. */

typedef struct {
    char *sysfs;
    char *tmp;
    char *state;
    char *out;
    char *images;
    char *tmpl;
    SpHost *host;
    SpPlan *plan;
    SpExperimentOptions opt;
    gboolean sabotage_state;         /* make the state directory unusable */
    gboolean interrupt;              /* interrupt at the reset */
    gboolean reached_reset;
    char *journal_text;              /* the journal as it was at the reset */
    SpExperiment *exp;
} Runner;

/* Mark the knobs: a write after this moves their mtime off 0. */
static void
runner_mark_knobs(Runner *r)
{
    for (const char *const *k = (const char *const[]){ "run", "pages_to_scan", NULL }; *k; k++) {
        g_autofree char *knob = g_build_filename(r->sysfs, "kernel/mm/ksm", *k, NULL);
        struct utimbuf zero = { 0, 0 };
        assert_int_equal(utime(knob, &zero), 0);
    }
}

static void
runner_progress(const SpExperimentProgress *p, gpointer data)
{
    Runner *r = data;
    g_autoptr(GDir) dir = NULL;
    const char *name;

    if (!g_str_has_prefix(p->stage, "KSM reset") || r->reached_reset)
        return;
    r->reached_reset = TRUE;
    dir = g_dir_open(r->state, 0, NULL);
    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *path = g_build_filename(r->state, name, NULL);
        if (g_str_has_suffix(name, ".json"))
            g_file_get_contents(path, &r->journal_text, NULL, NULL);
    }
    runner_mark_knobs(r);
    if (r->sabotage_state) {
        g_autofree char *moved = g_strconcat(r->state, ".moved", NULL);
        assert_int_equal(rename(r->state, moved), 0);
        sp_test_write(r->tmp, "state", "not a directory");
    }
    if (r->interrupt)
        sp_experiment_interrupt(r->exp);
}

static Runner *
runner_new(const char *plan_extra)
{
    Runner *r = g_new0(Runner, 1);
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;

    r->sysfs = sp_test_tree_new("sysfs-6.18");
    r->tmp = g_dir_make_tmp("samepage-exp-XXXXXX", NULL);
    r->state = g_build_filename(r->tmp, "state", NULL);
    r->out = g_build_filename(r->tmp, "out", NULL);
    r->images = g_build_filename(r->tmp, "images", NULL);
    r->tmpl = g_build_filename(r->tmp, "domain.xml", NULL);
    g_mkdir_with_parents(r->images, 0755);
    sp_test_write(r->images, "base.qcow2", "x");
    sp_test_write(r->images, "vmlinuz", "x");
    sp_test_write(r->images, "initrd.img", "x");
    sp_test_write(r->tmp, "domain.xml", "<domain type='test'><name>@NAME@</name></domain>\n");
    r->host = sp_host_new_with_roots(r->sysfs, "/proc");
    runner_mark_knobs(r);
    text = g_strdup_printf("[plan]\nname=t\nvm_counts=1\n[ksm]\npages_to_scan=1000\n"
                           "[sampling]\ninterval=1\nduration=2\n%s", plan_extra ? plan_extra : "");
    r->plan = sp_plan_parse(text, -1, "t.ini", NULL, &error);
    assert_non_null(r->plan);
    r->opt.uri = "test:///default";
    r->opt.output_dir = r->out;
    r->opt.default_image_dir = r->images;
    r->opt.default_template = r->tmpl;
    r->opt.state_dir = r->state;
    return r;
}

static gboolean
runner_run(Runner *r, GError **error)
{
    gboolean ok;

    r->exp = sp_experiment_new(r->plan, r->host, &r->opt);
    sp_experiment_set_progress_func(r->exp, runner_progress, r);
    ok = sp_experiment_run(r->exp, error);
    return ok;
}

static void
runner_free(Runner *r)
{
    g_autofree char *moved = g_strconcat(r->state, ".moved", NULL);

    sp_experiment_free(r->exp);
    sp_plan_free(r->plan);
    sp_host_free(r->host);
    sp_test_remove_tree(r->sysfs);
    sp_test_remove_tree(r->tmp);
    sp_test_remove_tree(moved);
    g_free(r->sysfs);
    g_free(r->tmp);
    g_free(r->state);
    g_free(r->out);
    g_free(r->images);
    g_free(r->tmpl);
    g_free(r->journal_text);
    g_free(r);
}

/* Whether a KSM knob was written after the reset's mark. */
static gboolean
knob_written(Runner *r, const char *knob)
{
    g_autofree char *path = g_build_filename(r->sysfs, "kernel/mm/ksm", knob, NULL);
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mtime != 0;
}

/* A journal that cannot be written stops the run before KSM is touched. */
static void
test_run_journal_unwritable(void **state)
{
    Runner *r = runner_new(NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *run = NULL, *pts = NULL;

    r->sabotage_state = TRUE;
    assert_false(runner_run(r, &error));
    assert_true(r->reached_reset);
    assert_non_null(strstr(error->message, "journal"));
    run = sp_test_read(r->sysfs, "kernel/mm/ksm/run");
    pts = sp_test_read(r->sysfs, "kernel/mm/ksm/pages_to_scan");
    /* Never written: not run=2, not the plan's pages_to_scan. */
    assert_false(knob_written(r, "run"));
    assert_false(knob_written(r, "pages_to_scan"));
    assert_string_equal(run, "0");
    assert_string_equal(pts, "100");
    runner_free(r);
}

/* Output and overlay directories: made fresh, or refused when another
 * user could have put something there; never written through a symlink. */
static void
test_run_dirs(void **state)
{
    enum { SYMLINK, FOREIGN, OPEN, NONEMPTY, N_BAD };

    for (int c = 0; c < N_BAD; c++) {
        Runner *r = runner_new(NULL);
        g_autoptr(GError) error = NULL;
        g_autofree char *elsewhere = g_build_filename(r->tmp, "elsewhere", NULL);
        g_autofree char *text = NULL;

        g_mkdir_with_parents(elsewhere, 0755);
        if (c == SYMLINK) {
            assert_int_equal(symlink(elsewhere, r->out), 0);
        } else {
            g_mkdir_with_parents(r->out, 0755);
            if (c == FOREIGN)
                assert_int_equal(chown(r->out, 65534, 65534), 0);
            if (c == OPEN)
                assert_int_equal(chmod(r->out, 0777), 0);
            if (c == NONEMPTY)
                sp_test_write(r->out, "report.md", "someone's report");
        }
        assert_false(runner_run(r, &error));
        if (!g_error_matches(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT) ||
            !strstr(error->message, r->out))
            fail_msg("case %d: %s", c, error->message);
        assert_false(r->reached_reset);
        assert_false(knob_written(r, "run"));
        /* Nothing was written where the symlink points. */
        g_autoptr(GDir) d = g_dir_open(elsewhere, 0, NULL);
        assert_null(g_dir_read_name(d));
        if (c == NONEMPTY) {
            text = sp_test_read(r->out, "report.md");
            assert_string_equal(text, "someone's report");
        }
        runner_free(r);
    }

    /* The plan's overlay_dir is the parent of a new directory of the run's
     * own, 0755 (QEMU must reach it), removed at the end; the parent stays. */
    g_autofree char *parent = g_dir_make_tmp("samepage-ovp-XXXXXX", NULL);
    g_autofree char *extra = g_strdup_printf("[guest]\noverlay_dir=%s\n", parent);
    Runner *r = runner_new(extra);
    g_autoptr(GError) error = NULL;
    struct stat st;

    r->interrupt = TRUE;
    assert_false(runner_run(r, &error));
    assert_true(r->reached_reset);
    assert_non_null(r->journal_text);
    g_autoptr(SpJournal) j = sp_journal_parse(r->journal_text, "j.json", &error);
    assert_non_null(j);
    assert_non_null(j->overlay_dir);
    g_autofree char *dirname = g_path_get_dirname(j->overlay_dir);
    g_autofree char *base = g_path_get_basename(j->overlay_dir);
    assert_string_equal(dirname, parent);
    assert_true(g_str_has_prefix(base, "samepage-experiment-"));
    assert_false(g_file_test(j->overlay_dir, G_FILE_TEST_EXISTS));
    assert_true(g_file_test(parent, G_FILE_TEST_IS_DIR));
    runner_free(r);

    /* A parent others may write to (without the sticky bit) is refused. */
    assert_int_equal(chmod(parent, 0777), 0);
    r = runner_new(extra);
    g_clear_error(&error);
    assert_false(runner_run(r, &error));
    assert_true(g_error_matches(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_OUTPUT));
    assert_non_null(strstr(error->message, parent));
    assert_false(r->reached_reset);
    runner_free(r);
    /* With the sticky bit (as /tmp), it is fine. */
    assert_int_equal(chmod(parent, 01777), 0);
    r = runner_new(extra);
    r->interrupt = TRUE;
    g_clear_error(&error);
    assert_false(runner_run(r, &error));
    assert_true(r->reached_reset);
    runner_free(r);
    assert_int_equal(stat(parent, &st), 0);
    sp_test_remove_tree(parent);
}

/* run=2 unmerges every page on the host: refused when MemAvailable does
 * not cover the copies, unless forced. */
static void
test_run_unmerge_check(void **state)
{
    Runner *r = runner_new(NULL);
    g_autoptr(GError) error = NULL;

    /* 2^40 pages merged (by processes that are not ours): 4 PiB to copy. */
    sp_test_write(r->sysfs, "kernel/mm/ksm/pages_shared", "1\n");
    sp_test_write(r->sysfs, "kernel/mm/ksm/pages_sharing", "1099511627776\n");
    runner_mark_knobs(r);
    assert_false(runner_run(r, &error));
    if (!g_error_matches(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_KSM) ||
        !strstr(error->message, "1099511627776") || !strstr(error->message, "MemAvailable") ||
        !strstr(error->message, "--force"))
        fail_msg("%s", error->message);
    assert_false(knob_written(r, "run"));
    assert_false(knob_written(r, "pages_to_scan"));
    runner_free(r);

    /* Forced: run=2 is written (interrupted while waiting for the unmerge). */
    r = runner_new(NULL);
    sp_test_write(r->sysfs, "kernel/mm/ksm/pages_shared", "1\n");
    sp_test_write(r->sysfs, "kernel/mm/ksm/pages_sharing", "1099511627776\n");
    runner_mark_knobs(r);
    r->opt.force_unmerge = TRUE;
    r->interrupt = TRUE;
    g_clear_error(&error);
    assert_false(runner_run(r, &error));
    assert_true(g_error_matches(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_INTERRUPTED));
    assert_true(knob_written(r, "run"));
    runner_free(r);
}

static gboolean
interrupt_cb(gpointer data)
{
    sp_experiment_interrupt(data);
    return G_SOURCE_REMOVE;
}

static gboolean
flag_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* While it waits (here for an unmerge that never ends), the runner
 * iterates its own context, where a caller's source (a signal handler's)
 * can interrupt it, and never the caller's default context. */
static void
test_run_own_context(void **state)
{
    Runner *r = runner_new(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSource) stop = g_timeout_source_new(300);
    gboolean caller_dispatched = FALSE;
    guint idle;

    sp_test_write(r->sysfs, "kernel/mm/ksm/pages_shared", "1\n");
    sp_test_write(r->sysfs, "kernel/mm/ksm/pages_sharing", "1\n");
    runner_mark_knobs(r);
    r->opt.force_unmerge = TRUE;
    r->exp = sp_experiment_new(r->plan, r->host, &r->opt);
    sp_experiment_set_progress_func(r->exp, runner_progress, r);
    g_source_set_callback(stop, interrupt_cb, r->exp, NULL);
    g_source_attach(stop, sp_experiment_get_context(r->exp));
    idle = g_idle_add(flag_cb, &caller_dispatched);
    assert_false(sp_experiment_run(r->exp, &error));
    assert_true(g_error_matches(error, SP_EXPERIMENT_ERROR, SP_EXPERIMENT_ERROR_INTERRUPTED));
    assert_true(r->reached_reset);
    assert_true(knob_written(r, "run"));
    assert_false(caller_dispatched);
    g_source_remove(idle);
    runner_free(r);
}

/* Relative --output and overlay_dir (the CLI's default output is relative)
 * are journalled as absolute paths: the journal of a running experiment
 * must read back, or `clean` and a second `run` could not see it. */
static void
test_run_relative_paths(void **state)
{
    Runner *r = runner_new("[guest]\noverlay_dir=ovp\n");
    g_autoptr(GError) error = NULL;
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *want_out = NULL, *want_parent = NULL;

    assert_int_equal(g_chdir(r->tmp), 0);
    r->opt.output_dir = "out-rel";
    r->interrupt = TRUE;
    assert_false(runner_run(r, &error));
    assert_int_equal(g_chdir(cwd), 0);
    assert_true(r->reached_reset);
    assert_non_null(r->journal_text);
    g_autoptr(GError) perr = NULL;
    g_autoptr(SpJournal) j = sp_journal_parse(r->journal_text, "j.json", &perr);
    if (!j)
        fail_msg("%s", perr->message);
    want_out = g_build_filename(r->tmp, "out-rel", NULL);
    want_parent = g_build_filename(r->tmp, "ovp", NULL);
    assert_string_equal(j->output_dir, want_out);
    g_autofree char *parent = g_path_get_dirname(j->overlay_dir);
    assert_string_equal(parent, want_parent);
    runner_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_census_count),
        cmocka_unit_test(test_census_live_self),
        cmocka_unit_test(test_proc_parsers),
        cmocka_unit_test(test_cmdline_uuid),
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_ksm_orders),
        cmocka_unit_test(test_disturbed),
        cmocka_unit_test(test_domain_name),
        cmocka_unit_test(test_derive_and_steady),
        cmocka_unit_test(test_csv_quoting),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_gnuplot_hostile),
        cmocka_unit_test(test_sample_slots),
        cmocka_unit_test(test_run_journal_unwritable),
        cmocka_unit_test(test_run_dirs),
        cmocka_unit_test(test_run_unmerge_check),
        cmocka_unit_test(test_run_relative_paths),
        cmocka_unit_test(test_run_own_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
