/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The results model (SpExpRun): derived figures, the steady state and
 * run.json, from hand-made samples, hostile ones included (no samples, one
 * sample, no guests, figures the kernel did not give, a prediction that
 * scanned nothing).  Pure: no host, no libvirt.
 */
#include "config.h"

#include "samepage/spresults.h"
#include "sptest.h"

/* A sample at @t: @resident guest pages, @frames KSM pages mapped @ksm
 * times in all (so @ksm - @frames sharing), @zero_mapped zero-page maps. */
static SpExpSample
sample(double t, guint64 resident, guint64 frames, guint64 ksm, guint64 zero_mapped)
{
    SpExpSample s;

    memset(&s, 0, sizeof(s));
    s.t = t;
    s.census.total.resident_pages = resident;
    s.census.total.ksm_pages = ksm;
    s.census.ksm_frames = frames;
    s.census.total.zero_mapped_pages = zero_mapped;
    for (guint k = 0; k < SP_KSM_N_KEYS; k++)
        s.ksm.entry[k].supported = TRUE;
    s.ksm.entry[SP_KSM_PAGES_SHARED].value = (gint64)frames;
    s.ksm.entry[SP_KSM_PAGES_SHARING].value = (gint64)(ksm - frames);
    return s;
}

static void
add(SpExpRun *run, SpExpSample s)
{
    if (run->samples->len) {
        guint64 z0 = g_array_index(run->samples, SpExpSample, 0).census.total.zero_mapped_pages;
        guint64 z = s.census.total.zero_mapped_pages;
        s.zero_freed_pages = z > z0 ? z - z0 : 0;
    }
    g_array_append_val(run->samples, s);
}

static json_object *
member(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("no \"%s\" in %s", key, json_object_to_json_string(o));
    return v;
}

static void
test_derive(void **state)
{
    SpExpSample s = sample(30, 1000, 100, 400, 0);
    SpExpGuestSample g1 = { 0 }, g2 = { 0 };
    SpExpDerived d;

    s.zero_freed_pages = 50;
    s.census.total.ksm_zero_pages = 120;
    s.census.ksm_zero_frames = 20;
    s.ksm.entry[SP_KSM_PAGES_SHARED].value = 110;       /* 10 frames of someone else's */
    s.ksm.entry[SP_KSM_PAGES_SHARING].value = 320;
    s.guests = g_array_new(FALSE, TRUE, sizeof(SpExpGuestSample));
    g1.ksm_merging_pages = 70;
    g1.ksm_zero_pages = 5;
    g2.ksm_merging_pages = -1;                           /* ksm_stat unreadable */
    g2.ksm_zero_pages = -1;
    g_array_append_val(s.guests, g1);
    g_array_append_val(s.guests, g2);

    sp_exp_sample_derive(&s, &d);
    assert_int_equal(d.denominator, 1050);
    assert_int_equal(d.shared, 100);
    assert_int_equal(d.sharing, 300);
    assert_int_equal(d.sharing_zero, 100);
    assert_int_equal(d.saved, 350);
    assert_int_equal(d.saved_zero, 150);
    assert_int_equal(d.saved_nonzero, 200);
    /* (400 KSM mappings + 50 zero pages) of 1050; 350 of 1050 saved. */
    assert_float_equal(d.shared_pct, 100.0 * 450 / 1050, 1e-9);
    assert_float_equal(d.reclaimed_pct, 100.0 * 350 / 1050, 1e-9);
    assert_int_equal(d.other_ksm_pages, 430 - 400);
    /* An unreadable ksm_stat (-1) adds nothing. */
    assert_int_equal(d.stat_merging, 70);
    assert_int_equal(d.stat_zero, 5);
    /* No prediction: nothing predicted. */
    assert_int_equal(d.pred_saved, 0);

    /* A prediction counts the zero pages freed before it was made. */
    s.prediction.valid = TRUE;
    s.prediction.saved_zero = 10;
    s.prediction.saved_nonzero = 290;
    s.prediction.zero_freed_at = 40;
    sp_exp_sample_derive(&s, &d);
    assert_int_equal(d.pred_saved, 340);
    assert_int_equal(d.pred_saved_zero, 50);
    sp_exp_sample_clear(&s);
    assert_null(s.guests);
}

/* Nothing resident, no guests, no figures: zeros, never a division by 0. */
static void
test_derive_empty(void **state)
{
    SpExpSample s;
    SpExpDerived d;

    memset(&s, 0, sizeof(s));
    sp_exp_sample_derive(&s, &d);
    assert_int_equal(d.denominator, 0);
    assert_float_equal(d.shared_pct, 0, 0);
    assert_float_equal(d.reclaimed_pct, 0, 0);
    assert_int_equal(d.saved, 0);
    assert_int_equal(d.other_ksm_pages, 0);
    assert_int_equal(d.stat_merging, 0);
    sp_exp_sample_clear(&s);
}

/* No samples, or only t=0: no steady state, and run.json says so. */
static void
test_steady_too_few(void **state)
{
    g_autoptr(SpExpRun) empty = sp_exp_run_new(1, 2);
    g_autoptr(SpExpRun) t0 = sp_exp_run_new(2, 0);

    sp_exp_run_compute_steady(empty);
    assert_false(empty->steady.valid);
    assert_float_equal(empty->steady.converged_at, -1, 0);
    g_autoptr(json_object) j = sp_exp_run_json(empty);
    assert_true(json_object_is_type(member(j, "steady"), json_type_null));
    assert_int_equal(json_object_get_int(member(j, "samples")), 0);
    assert_int_equal(json_object_array_length(member(j, "data")), 0);
    assert_int_equal(json_object_array_length(member(j, "guests")), 0);
    assert_true(json_object_is_type(member(j, "dir"), json_type_null));
    assert_true(json_object_is_type(member(j, "incomplete_reason"), json_type_null));

    add(t0, sample(0, 0, 0, 0, 0));
    sp_exp_run_compute_steady(t0);
    assert_false(t0->steady.valid);
    g_autoptr(json_object) j0 = sp_exp_run_json(t0);
    json_object *s0 = json_object_array_get_idx(member(j0, "data"), 0);
    /* A sample without guests or prediction. */
    assert_int_equal(json_object_array_length(member(s0, "guests")), 0);
    assert_true(json_object_is_type(member(s0, "prediction"), json_type_null));
    assert_int_equal(json_object_get_int64(member(s0, "denominator_pages")), 0);
}

/* The last third of the sampled time, its mean, and from when the saving
 * stayed within 2% (or 1 MiB) of it. */
static void
test_steady_window(void **state)
{
    g_autoptr(SpExpRun) run = sp_exp_run_new(1, 1);
    static const guint64 sharing[] = { 0, 10000, 40000, 51000, 51200, 51100, 51200 };

    for (guint i = 0; i < G_N_ELEMENTS(sharing); i++) {
        SpExpSample s = sample(10.0 * i, 262144, 1000, 1000 + sharing[i], 0);
        s.ksmd_cpu_pct = i == 2 ? 80 : 10;
        add(run, s);
    }
    sp_exp_run_compute_steady(run);
    const SpExpSteady *st = &run->steady;
    assert_true(st->valid);
    /* t_last 60: from 40 on, three samples. */
    assert_int_equal(st->n_samples, 3);
    assert_float_equal(st->from_t, 40, 0);
    assert_float_equal(st->to_t, 60, 0);
    assert_float_equal(st->sharing_pages, (51200 + 51100 + 51200) / 3.0, 1e-9);
    assert_float_equal(st->saved_mib, SP_EXP_MIB((51200 + 51100 + 51200) / 3.0), 1e-9);
    assert_float_equal(st->ksmd_cpu_pct, 10, 1e-9);
    assert_float_equal(st->ksmd_cpu_peak_pct, 80, 1e-9);
    /* 51000 pages is within 2% of the mean, 40000 is not: from t=30 on. */
    assert_true(st->converged);
    assert_float_equal(st->converged_at, 30, 0);
    assert_int_equal(st->n_pred_checked, 0);

    g_autoptr(json_object) j = sp_exp_run_json(run);
    json_object *steady = member(j, "steady");
    assert_int_equal(json_object_get_int(member(steady, "samples")), 3);
    assert_true(json_object_get_boolean(member(steady, "converged")));
    assert_float_equal(json_object_get_double(member(steady, "converged_at")), 30, 0);
    /* No prediction was checked: null, not 0. */
    assert_true(json_object_is_type(member(steady, "pred_error_max_pct"), json_type_null));
    assert_int_equal(json_object_array_length(member(j, "data")), 7);
    g_autoptr(json_object) head = sp_exp_run_head_json(run);
    assert_false(json_object_object_get_ex(head, "data", NULL));
    assert_int_equal(json_object_get_int(member(head, "samples")), 7);
}

/* Still rising at the end: not converged, no converged_at. */
static void
test_steady_not_converged(void **state)
{
    g_autoptr(SpExpRun) run = sp_exp_run_new(1, 1);

    for (guint i = 0; i < 7; i++)
        add(run, sample(10.0 * i, 262144, 1000, 1000 + 20000 * i, 0));
    sp_exp_run_compute_steady(run);
    assert_true(run->steady.valid);
    assert_false(run->steady.converged);
    assert_float_equal(run->steady.converged_at, -1, 0);
    g_autoptr(json_object) j = sp_exp_run_json(run);
    assert_true(json_object_is_type(member(member(j, "steady"), "converged_at"), json_type_null));
}

/* Predictions against the kernel: the error at the end, the largest once
 * settled, the volatile peak; a prediction that scanned nothing or found
 * no sharing divides by nothing. */
static void
test_steady_predictions(void **state)
{
    g_autoptr(SpExpRun) run = sp_exp_run_new(1, 1);

    for (guint i = 0; i < 7; i++) {
        SpExpSample s = sample(10.0 * i, 262144, 1000, 1000 + 50000, 0);
        s.prediction.valid = TRUE;
        s.prediction.t = 10.0 * i;
        s.prediction.pages_sharing = i == 3 ? 40000 : 50000;
        s.prediction.scanned_pages = 262144;
        s.prediction.volatile_pages = i == 2 ? 26214 : 0;
        s.prediction.saved_nonzero = 50000;
        s.fresh_prediction = TRUE;
        add(run, s);
    }
    sp_exp_run_compute_steady(run);
    const SpExpSteady *st = &run->steady;
    assert_true(st->converged);
    assert_float_equal(st->converged_at, 10, 0);
    assert_float_equal(st->pred_error_pct, 0, 1e-9);
    /* At t=30 the kernel had 50000 against 40000 predicted: +25%. */
    assert_int_equal(st->n_pred_checked, 6);
    assert_float_equal(st->pred_error_max_pct, 25, 1e-9);
    assert_float_equal(st->volatile_peak_pct, 100.0 * 26214 / 262144, 1e-9);
    assert_float_equal(st->volatile_peak_t, 20, 0);
    assert_float_equal(st->pred_t0_saved_mib, SP_EXP_MIB(50000), 1e-9);

    /* Hostile: the last prediction scanned nothing and found no sharing. */
    SpExpSample *last = &g_array_index(run->samples, SpExpSample, 6);
    last->prediction.pages_sharing = 0;
    last->prediction.scanned_pages = 0;
    last->prediction.volatile_pages = 7;
    sp_exp_run_compute_steady(run);
    assert_float_equal(run->steady.pred_error_pct, 0, 0);
    assert_float_equal(run->steady.volatile_pct, 0, 0);
    assert_int_equal(run->steady.n_pred_checked, 5);
}

/* run.json: the guests, their RAM, a sample's figures, sysfs keys the
 * kernel lacks as null. */
static void
test_run_json(void **state)
{
    g_autoptr(SpExpRun) run = sp_exp_run_new(3, 1);
    SpExpGuestInfo gi = { 0 };
    SpExpGuestSample gs = { 0 };
    SpExpSample s = sample(0, 1000, 10, 30, 0);

    run->dir = g_strdup("/out/run-03-1vm");
    run->incomplete_reason = g_strdup("interrupted");
    gi.name = g_strdup("sp-t-3-1");
    gi.uuid = g_strdup("u");
    gi.mac = g_strdup("m");
    gi.serial_log = g_strdup("/out/run-03-1vm/sp-t-3-1.serial.log");
    gi.pid = 4242;
    gi.ram_start = 0x7f0000000000;
    gi.ram_end = 0x7f0000000000 + (512ULL << 20);
    gi.ready_s = 12.3456;
    gi.workload_pid = -1;
    g_array_append_val(run->guests, gi);
    s.wall_us = 0;
    s.ksm.entry[SP_KSM_SMART_SCAN].supported = FALSE;
    s.ksm.entry[SP_KSM_ADVISOR_MODE].value = 1;
    s.guests = g_array_new(FALSE, TRUE, sizeof(SpExpGuestSample));
    gs.pid = 4242;
    gs.ksm_rmap_items = -1;
    g_array_append_val(s.guests, gs);
    add(run, s);

    g_autoptr(json_object) j = sp_exp_run_json(run);
    assert_int_equal(json_object_get_int(member(j, "index")), 3);
    assert_false(json_object_get_boolean(member(j, "complete")));
    assert_string_equal(json_object_get_string(member(j, "incomplete_reason")), "interrupted");
    json_object *g = json_object_array_get_idx(member(j, "guests"), 0);
    assert_string_equal(json_object_get_string(member(g, "ram_start")), "0x7f0000000000");
    assert_int_equal(json_object_get_int64(member(g, "ram_mib")), 512);
    assert_float_equal(json_object_get_double(member(g, "ready_seconds")), 12.35, 1e-9);
    json_object *d = json_object_array_get_idx(member(j, "data"), 0);
    assert_string_equal(json_object_get_string(member(d, "time")), "1970-01-01T00:00:00Z");
    assert_int_equal(json_object_get_int64(member(d, "guest_pages_sharing")), 20);
    json_object *sys = member(d, "sysfs");
    assert_true(json_object_is_type(member(sys, "smart_scan"), json_type_null));
    assert_string_equal(json_object_get_string(member(sys, "advisor_mode")), "scan-time");
    json_object *dg = json_object_array_get_idx(member(d, "guests"), 0);
    assert_int_equal(json_object_get_int64(member(dg, "ksm_rmap_items")), -1);
}

static void
test_formats(void **state)
{
    g_autoptr(json_object) a = sp_exp_json_number(1.236);
    g_autoptr(json_object) b = sp_exp_json_number(-1.236);
    g_autoptr(json_object) c = sp_exp_json_number(0);
    g_autofree char *epoch = sp_exp_format_time(0);
    g_autofree char *later = sp_exp_format_time(1700000000LL * G_USEC_PER_SEC + 999999);
    g_autofree char *far = sp_exp_format_time(G_MAXINT64);

    assert_float_equal(json_object_get_double(a), 1.24, 1e-12);
    assert_float_equal(json_object_get_double(b), -1.24, 1e-12);
    assert_float_equal(json_object_get_double(c), 0, 0);
    assert_string_equal(epoch, "1970-01-01T00:00:00Z");
    assert_string_equal(later, "2023-11-14T22:13:20Z");
    /* Beyond what a date can say: "?", not garbage. */
    assert_string_equal(far, "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive),
        cmocka_unit_test(test_derive_empty),
        cmocka_unit_test(test_steady_too_few),
        cmocka_unit_test(test_steady_window),
        cmocka_unit_test(test_steady_not_converged),
        cmocka_unit_test(test_steady_predictions),
        cmocka_unit_test(test_run_json),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
