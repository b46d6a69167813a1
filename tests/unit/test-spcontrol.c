/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spcontrol.c: the scan-rate controller on sequences of snapshots,
 * hostile ones included (counters that go backwards, a new ksmd, a stale
 * prediction)
 */
#include "config.h"

#include "sptest.h"
#include "samepage/spcontrol.h"

#define GIB_KIB (1024ULL * 1024)

/* A host with 4 guests' worth of registered pages and a prediction. */
static void
snap_init(SpControlSnapshot *s)
{
    memset(s, 0, sizeof(*s));
    s->run = TRUE;
    s->pages_to_scan = 100;
    s->sleep_ms = 20;
    s->has_smart_scan = TRUE;
    s->smart_scan = TRUE;
    s->has_advisor = TRUE;
    s->has_pages_scanned = TRUE;
    s->ksmd_pid = 42;
    s->mem_total_kib = 24 * GIB_KIB;
    s->mem_available_kib = 20 * GIB_KIB;
    s->mem_free_kib = 20 * GIB_KIB;
    s->psi_some_avg10 = -1;
    s->registered_pages = 262144;
    s->have_prediction = TRUE;
    s->predicted_sharing = 125953;
    s->prediction_t = 0;
    s->prediction_registered_pages = 262144;
    s->last_guest_start_t = -1;
}

/* ksmd ran @secs at @cpu_pct of a CPU scanning @pages_per_s. */
static void
advance(SpControlSnapshot *s, double secs, double cpu_pct, double pages_per_s)
{
    s->t += secs;
    s->ksmd_cpu_s += secs * cpu_pct / 100.0;
    s->pages_scanned += (guint64)(secs * pages_per_s);
    s->full_scans = s->pages_scanned / s->registered_pages;
}

/* A controller in @mode (the other settings as given, or the defaults)
 * and the snapshot of snap_init(). */
static SpControl *
start(SpControlMode mode, const SpControlConfig *with, SpControlSnapshot *s)
{
    SpControlConfig cfg;

    if (with)
        cfg = *with;
    else
        sp_control_config_init(&cfg);
    cfg.mode = mode;
    snap_init(s);
    return sp_control_new(&cfg);
}

static void
test_modes_by_name(void **state)
{
    SpControlMode m;

    (void)state;
    for (guint i = 0; i < SP_CONTROL_N_MODES; i++) {
        assert_true(sp_control_mode_from_name(sp_control_mode_name(i), &m));
        assert_int_equal(m, i);
    }
    assert_false(sp_control_mode_from_name("fast", &m));
    assert_false(sp_control_mode_from_name(NULL, &m));
}

/* Below the prediction it spends the budget; at it, it backs off to a
 * maintenance rate far below. */
static void
test_boost_then_maintain(void **state)
{
    SpControlConfig cfg;
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;
    guint boost_pages;

    (void)state;
    sp_control_config_init(&cfg);
    cfg.max_ksmd_cpu_pct = 20;
    ctl = start(SP_CONTROL_SAMEPAGE, &cfg, &s);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_BOOST);
    assert_int_equal(d.run, 1);
    /* no measurement yet: 1 us a page, 20% -> 200,000 pages/s, capped at a
     * full scan a second: 262,144 pages/s -> 4,000 pages every 20 ms */
    assert_int_equal(d.sleep_ms, 20);
    assert_int_equal(d.pages_to_scan, 4000);
    assert_non_null(strstr(d.reason, "below the prediction"));
    assert_true(d.next_s <= 1.0);           /* boosting: decided again every second */

    /* Measured: 4 us a page; the first measurement replaces the prior.
     * The rate follows: 50,000 pages/s -> 1,000 every 20 ms. */
    advance(&s, 5, 20, 50000);
    s.pages_sharing = 40000;
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_BOOST);
    boost_pages = d.pages_to_scan;
    assert_int_equal(boost_pages, 1000);

    /* Within 2% of the prediction: maintain, one full scan in 600 s. */
    advance(&s, 5, 20, 100000);
    s.pages_sharing = 125000;
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_MAINTAIN);
    assert_int_equal(d.sleep_ms, 200);
    /* 262,144 / 600 s = 437 pages/s -> 87 every 200 ms */
    assert_int_equal(d.pages_to_scan, 87);
    assert_true(d.pages_to_scan * 1000 / d.sleep_ms * 20 < boost_pages * 1000 / 20);
    assert_int_equal(d.smart_scan, -1);
    assert_non_null(strstr(d.reason, "at the prediction"));

    /* A guest starts: new sharing to find, the prediction is stale. */
    advance(&s, 15, 1, 2185);
    s.last_guest_start_t = s.t - 1;
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_BOOST);
    assert_non_null(strstr(d.reason, "stale (a guest started since)"));
}

/* The budget holds over the last minute: ksmd above it gets a cut rate. */
static void
test_budget_over_a_minute(void **state)
{
    SpControlConfig cfg;
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;
    guint first;

    (void)state;
    sp_control_config_init(&cfg);
    cfg.max_ksmd_cpu_pct = 10;
    ctl = start(SP_CONTROL_SAMEPAGE, &cfg, &s);
    sp_control_decide(ctl, &s, &d);
    advance(&s, 5, 10, 50000);     /* 2 us a page */
    sp_control_decide(ctl, &s, &d);
    first = d.pages_to_scan;
    assert_true(d.ksmd_cpu_pct > 9.9 && d.ksmd_cpu_pct < 10.1);
    /* ksmd burns 30% for a while (a batch of large pages, say), while the
     * kernel keeps gaining */
    for (int i = 0; i < 6; i++) {
        advance(&s, 5, 30, 150000);
        s.pages_sharing += 15000;
        sp_control_decide(ctl, &s, &d);
    }
    assert_true(d.ksmd_cpu_pct > 20);
    assert_true(d.pages_to_scan < first / 2);
    assert_non_null(strstr(d.reason, "cut: over budget"));
}

/* A toy ksmd: @pages_to_scan every @sleep_ms for @secs, a page costing
 * 1 us in the first pass over the registered pages (checksums), 6.5 us in
 * the second (merging, pages_sharing grows with it up to @pred) and 3 us
 * after, as measured on a 6.18 kernel.  A batch takes its pages' cost, then
 * ksmd sleeps. */
static void
toy_ksmd(SpControlSnapshot *s, double secs, guint pages_to_scan, guint sleep_ms, guint64 pred)
{
    for (double done = 0; done < secs - 1e-9; done += 0.01) {
        guint64 pass = s->pages_scanned / s->registered_pages;
        double cost = pass == 0 ? 1e-6 : pass == 1 ? 6.5e-6 : 3e-6;
        double batch = pages_to_scan * cost;
        guint64 pages = (guint64)(0.01 * pages_to_scan / (batch + sleep_ms / 1000.0));
        guint64 in_pass;

        s->t += 0.01;
        s->ksmd_cpu_s += pages * cost;
        s->pages_scanned += pages;
        s->full_scans = s->pages_scanned / s->registered_pages;
        in_pass = s->pages_scanned % s->registered_pages;
        if (s->full_scans == 1)
            s->pages_sharing = pred * in_pass / s->registered_pages;
        else if (s->full_scans > 1)
            s->pages_sharing = pred;
    }
}

/* The first boost: the cheap first pass, then the merging pass that costs
 * 6.5 times as much.  The cost is learnt from the first second, followed
 * upwards at once, and ksmd's CPU stays within the budget averaged over the
 * run (every minute of it); at the prediction it backs off. */
static void
test_first_boost_within_budget(void **state)
{
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;
    double t90 = -1;
    typedef struct { double t, cpu; } Point;
    GArray *hist = g_array_new(FALSE, FALSE, sizeof(Point));
    guint boost_ticks = 0, merging_seconds = 0;
    guint64 prev_scanned = 0;

    (void)state;
    ctl = start(SP_CONTROL_SAMEPAGE, NULL, &s);     /* budget 25% */
    s.predicted_sharing = 131012;
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_BOOST);
    assert_int_equal(d.pages_to_scan, 5000);        /* the prior: 1 us a page */
    while (s.t < 120) {
        Point now;

        prev_scanned = s.pages_scanned;
        toy_ksmd(&s, d.next_s, d.pages_to_scan, d.sleep_ms, s.predicted_sharing);
        sp_control_decide(ctl, &s, &d);
        now.t = s.t;
        now.cpu = s.ksmd_cpu_s;
        g_array_append_val(hist, now);
        if (d.phase == SP_CONTROL_PHASE_BOOST)
            boost_ticks++;
        if (t90 < 0 && s.pages_sharing * 10 >= s.predicted_sharing * 9)
            t90 = s.t;
        /* a second wholly in the merging pass: its cost, 6.5 us, not the prior */
        if (s.full_scans == 1 && prev_scanned >= s.registered_pages &&
            s.pages_scanned - prev_scanned >= 10000 && d.phase == SP_CONTROL_PHASE_BOOST) {
            merging_seconds++;
            assert_non_null(strstr(d.reason, "6.50 us a page"));
            assert_true(d.pages_to_scan <= 770);    /* 25% / 6.5 us = 38,461 pages/s */
        }
    }
    /* decided every second while boosting */
    assert_true(boost_ticks >= 5);
    assert_true(merging_seconds >= 3);
    /* the old law (1 us a page for 5 s) ran ksmd at 62% in the merging pass;
     * now the second the pass changes runs over, paid back within two
     * seconds; every minute is within 25% */
    for (guint i = 0; i < hist->len; i++) {
        const Point *a = &g_array_index(hist, Point, i);
        assert_true(a->cpu <= 0.25 * a->t + 0.25);
        if (a->t > 3.9)
            assert_true(a->cpu <= 0.25 * a->t + 0.01);
        for (guint j = i + 1; j < hist->len; j++) {
            const Point *b = &g_array_index(hist, Point, j);
            if (b->t - a->t >= 59.5 && b->t - a->t <= 61)
                assert_true(b->cpu - a->cpu <= 0.25 * (b->t - a->t) + 0.01);
        }
    }
    /* 90% of the prediction: two passes at the budget, within 15 s */
    assert_true(t90 > 0 && t90 < 15);
    /* at the prediction: backed off */
    assert_int_equal(d.phase, SP_CONTROL_PHASE_MAINTAIN);
    assert_int_equal(d.sleep_ms, 200);
    assert_true(d.next_s >= 10);
    g_array_unref(hist);
}

/* The cost follows a dearer second at once, a cheaper one by halves. */
static void
test_cost_up_fast_down_slow(void **state)
{
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;

    (void)state;
    ctl = start(SP_CONTROL_SAMEPAGE, NULL, &s);
    s.ksmd_cpu_s = 100;                     /* a long-running ksmd */
    sp_control_decide(ctl, &s, &d);
    advance(&s, 60, 2, 10000);              /* 2 us a page, 2% of a CPU: a quiet minute */
    sp_control_decide(ctl, &s, &d);
    assert_non_null(strstr(d.reason, "2.00 us a page"));
    advance(&s, 1, 24, 30000);              /* 8 us */
    sp_control_decide(ctl, &s, &d);
    assert_non_null(strstr(d.reason, "8.00 us a page"));
    assert_int_equal(d.pages_to_scan, 625); /* 25% / 8 us = 31,250 pages/s */
    advance(&s, 1, 8, 40000);               /* 2 us: halfway down, 5 us */
    sp_control_decide(ctl, &s, &d);
    assert_non_null(strstr(d.reason, "5.00 us a page"));
    assert_int_equal(d.pages_to_scan, 1000);
}

/* run=2 while it steers: figures go back; a new ksmd: CPU restarts. */
static void
test_hostile_counters(void **state)
{
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;

    (void)state;
    ctl = start(SP_CONTROL_SAMEPAGE, NULL, &s);
    sp_control_decide(ctl, &s, &d);
    advance(&s, 10, 20, 100000);
    s.pages_sharing = 125900;
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_MAINTAIN);

    /* Someone wrote run=2: everything unmerged, full_scans kept. */
    advance(&s, 5, 1, 2000);
    s.pages_sharing = 0;
    s.pages_shared = 0;
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_BOOST);

    /* ksmd restarted under another pid with a smaller CPU time. */
    s.ksmd_pid = 43;
    s.ksmd_cpu_s = 0.5;
    advance(&s, 5, 20, 100000);
    sp_control_decide(ctl, &s, &d);
    assert_true(d.ksmd_cpu_pct < 0);        /* one point of the new ksmd: unknown */
    advance(&s, 5, 20, 100000);
    sp_control_decide(ctl, &s, &d);
    assert_true(d.ksmd_cpu_pct > 19.9 && d.ksmd_cpu_pct < 20.1);

    /* A CPU time that goes backwards under the same pid is not a negative
     * load, and a pages_scanned reset teaches no cost. */
    s.ksmd_cpu_s -= 10;
    s.pages_scanned = 0;
    advance(&s, 5, 20, 100000);
    sp_control_decide(ctl, &s, &d);
    assert_true(d.ksmd_cpu_pct < 0);
    assert_true(d.pages_to_scan >= 100);
}

/* No prediction yet, or registrations changed: stale, said so. */
static void
test_stale_prediction(void **state)
{
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;

    (void)state;
    ctl = start(SP_CONTROL_SAMEPAGE, NULL, &s);
    s.have_prediction = FALSE;
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_BOOST);
    assert_non_null(strstr(d.reason, "stale (none yet)"));

    s.have_prediction = TRUE;
    s.pages_sharing = s.predicted_sharing;  /* "at" a prediction made for other pages */
    s.registered_pages = 400000;
    advance(&s, 5, 10, 50000);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_BOOST);
    assert_non_null(strstr(d.reason, "registered pages changed"));
}

/* When registered memory has moved enough for a prediction to be out of
 * date: more than 5% of today's pages and more than 1024 pages, either
 * way (samepaged predicts again on it, the decision calls it stale). */
static void
test_registered_moved(void **state)
{
    (void)state;
    /* a booting guest: nothing present when predicted, 40,000 pages now */
    assert_true(sp_control_registered_moved(40000, 0));
    assert_true(sp_control_registered_moved(100000, 90000));
    assert_true(sp_control_registered_moved(100000, 110000));
    /* 5% of 100,000 + 1024 = 6,024: at the edge, not beyond */
    assert_false(sp_control_registered_moved(100000, 93976));
    assert_true(sp_control_registered_moved(100000, 93975));
    assert_false(sp_control_registered_moved(100000, 106024));
    /* small processes: the 1024 pages hold */
    assert_false(sp_control_registered_moved(1000, 0));
    assert_false(sp_control_registered_moved(0, 1024));
    assert_true(sp_control_registered_moved(0, 1025));
    assert_false(sp_control_registered_moved(262144, 262144));
}

/* Stuck below the prediction: smart_scan=0 for 3 full scans, then 1
 * again, then a maintenance rate with the gap reported, not chased. */
static void
test_settles_below(void **state)
{
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;

    (void)state;
    ctl = start(SP_CONTROL_SAMEPAGE, NULL, &s);
    sp_control_decide(ctl, &s, &d);
    s.pages_sharing = 100000;               /* 20% below, and stays there */
    for (int i = 0; i < 3; i++) {
        advance(&s, 5, 10, 50000);          /* about a full scan each */
        sp_control_decide(ctl, &s, &d);
        assert_int_equal(d.phase, SP_CONTROL_PHASE_BOOST);
        assert_int_equal(d.smart_scan, -1);
    }
    /* 4 full scans without gain */
    while (d.phase == SP_CONTROL_PHASE_BOOST) {
        advance(&s, 5, 20, 100000);
        sp_control_decide(ctl, &s, &d);
    }
    assert_int_equal(d.phase, SP_CONTROL_PHASE_SMART_OFF);
    assert_int_equal(d.smart_scan, 0);
    assert_non_null(strstr(d.reason, "smart_scan=0 for 3 full scans"));
    s.smart_scan = FALSE;
    guint64 from = s.full_scans;
    while (s.full_scans < from + 3) {
        advance(&s, 5, 20, 100000);
        sp_control_decide(ctl, &s, &d);
        if (s.full_scans < from + 3)
            assert_int_equal(d.smart_scan, 0);
    }
    assert_int_equal(d.smart_scan, 1);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_MAINTAIN);
    s.smart_scan = TRUE;
    advance(&s, 15, 1, 2000);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_MAINTAIN);
    assert_int_equal(d.smart_scan, -1);
    assert_non_null(strstr(d.reason, "settled below the prediction"));
    assert_int_equal(d.sleep_ms, 200);

    /* A new prediction above the kernel: chase it again. */
    s.prediction_t = s.t;
    s.predicted_sharing = 130000;
    advance(&s, 5, 1, 2000);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_BOOST);
}

/* Plenty of memory, at the prediction, configured to stop: run=0. */
static void
test_stop_when_plenty(void **state)
{
    SpControlConfig cfg;
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;

    (void)state;
    sp_control_config_init(&cfg);
    cfg.stop_above_available_pct = 50;
    ctl = start(SP_CONTROL_SAMEPAGE, &cfg, &s);
    s.pages_sharing = s.predicted_sharing;
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.run, 0);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_OFF);
    assert_non_null(strstr(d.reason, "scanning stopped"));
    /* Memory gets tight: scan again. */
    s.mem_available_kib = 4 * GIB_KIB;
    advance(&s, 15, 0, 0);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.run, 1);
}

/* ksmtuned's law with its defaults, on a 16 GiB host. */
static void
test_ksmtuned_law(void **state)
{
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;

    (void)state;
    ctl = start(SP_CONTROL_KSMTUNED, NULL, &s);
    s.mem_total_kib = 16 * GIB_KIB;
    /* threshold 20% = 3,355,443 KiB; committed 14 GiB + that > 16 GiB */
    s.committed_kib = 14 * GIB_KIB;
    s.mem_free_kib = 2 * GIB_KIB;           /* below the threshold: boost */
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.run, 1);
    assert_int_equal(d.pages_to_scan, 400);
    assert_int_equal(d.sleep_ms, 10);
    assert_int_equal(d.next_s, 60);
    /* Within the minute nothing moves. */
    advance(&s, 30, 1, 0);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.pages_to_scan, 400);
    /* Then +300 up to the cap of 1250. */
    for (int i = 0; i < 5; i++) {
        advance(&s, 60, 1, 0);
        sp_control_decide(ctl, &s, &d);
    }
    assert_int_equal(d.pages_to_scan, 1250);
    /* Free memory back above the threshold: -50 a minute. */
    s.mem_free_kib = 8 * GIB_KIB;
    advance(&s, 60, 1, 0);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.pages_to_scan, 1200);
    /* Guests' memory well below MemTotal - threshold: KSM off. */
    s.committed_kib = 4 * GIB_KIB;
    advance(&s, 60, 1, 0);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.run, 0);
    assert_int_equal(d.phase, SP_CONTROL_PHASE_OFF);
    /* A 32 GiB host sleeps less; the floor is 10 ms. */
    s.mem_total_kib = 8 * GIB_KIB;
    s.committed_kib = 8 * GIB_KIB;
    advance(&s, 60, 1, 0);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.sleep_ms, 20);
}

/* KubeVirt's law: on only under pressure (MemAvailable <= 20%), sleep
 * from the memory in use, off again once the rate decays to its floor. */
static void
test_kubevirt_law(void **state)
{
    SpControlSnapshot s;
    SpControlDecision d;
    g_autoptr(SpControl) ctl = NULL;

    (void)state;
    ctl = start(SP_CONTROL_KUBEVIRT, NULL, &s);
    s.mem_total_kib = 32 * GIB_KIB;
    s.mem_available_kib = 16 * GIB_KIB;
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.run, 0);
    s.mem_available_kib = 4 * GIB_KIB;      /* 12.5%: pressure; 28 GiB in use */
    advance(&s, 180, 0, 0);
    sp_control_decide(ctl, &s, &d);
    assert_int_equal(d.run, 1);
    assert_int_equal(d.pages_to_scan, 400);
    assert_int_equal(d.sleep_ms, 57);       /* 100 ms x 16 / 28 */
    assert_int_equal(d.next_s, 180);
    s.mem_available_kib = 16 * GIB_KIB;
    for (int i = 0; i < 20 && d.run; i++) {
        advance(&s, 180, 0, 0);
        sp_control_decide(ctl, &s, &d);
    }
    assert_int_equal(d.run, 0);
    assert_non_null(strstr(d.reason, "floor"));
}

static void
test_fixed_modes(void **state)
{
    SpControlConfig cfg;
    SpControlSnapshot s;
    SpControlDecision d;

    (void)state;
    sp_control_config_init(&cfg);
    snap_init(&s);
    cfg.mode = SP_CONTROL_STATIC;
    g_autoptr(SpControl) a = sp_control_new(&cfg);
    sp_control_decide(a, &s, &d);
    assert_int_equal(d.pages_to_scan, 1000);
    assert_int_equal(d.sleep_ms, 20);
    assert_int_equal(d.advisor_scan_time, 0);
    cfg.mode = SP_CONTROL_KERNEL_ADVISOR;
    g_autoptr(SpControl) b = sp_control_new(&cfg);
    sp_control_decide(b, &s, &d);
    assert_int_equal(d.advisor_scan_time, 1);
    assert_int_equal(d.pages_to_scan, 0);   /* the advisor's to set */
    s.has_advisor = FALSE;
    g_autoptr(SpControl) c = sp_control_new(&cfg);
    sp_control_decide(c, &s, &d);
    assert_int_equal(d.advisor_scan_time, -1);
    assert_int_equal(d.pages_to_scan, 1000);
    assert_non_null(strstr(d.reason, "no advisor_mode"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes_by_name),
        cmocka_unit_test(test_boost_then_maintain),
        cmocka_unit_test(test_budget_over_a_minute),
        cmocka_unit_test(test_first_boost_within_budget),
        cmocka_unit_test(test_cost_up_fast_down_slow),
        cmocka_unit_test(test_hostile_counters),
        cmocka_unit_test(test_stale_prediction),
        cmocka_unit_test(test_registered_moved),
        cmocka_unit_test(test_settles_below),
        cmocka_unit_test(test_stop_when_plenty),
        cmocka_unit_test(test_ksmtuned_law),
        cmocka_unit_test(test_kubevirt_law),
        cmocka_unit_test(test_fixed_modes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
