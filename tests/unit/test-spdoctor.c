/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <unistd.h>

#include "samepage/spdoctor.h"
#include "sptest.h"
#include "spqmpreplay.h"

static const SpFinding *
find(GPtrArray *f, const char *code)
{
    for (guint i = 0; i < f->len; i++) {
        const SpFinding *x = g_ptr_array_index(f, i);
        if (g_str_equal(x->code, code))
            return x;
    }
    return NULL;
}

static SpKsmState
ksm_state(gint64 run, gint64 pts, gint64 sleep_ms)
{
    SpKsmState st;
    memset(&st, 0, sizeof(st));
    for (guint i = 0; i < SP_KSM_N_KEYS; i++)
        st.entry[i].supported = TRUE;
    st.entry[SP_KSM_RUN].value = run;
    st.entry[SP_KSM_PAGES_TO_SCAN].value = pts;
    st.entry[SP_KSM_SLEEP_MILLISECS].value = sleep_ms;
    return st;
}

static void
test_host(void **state)
{
    SpDoctorHost h = { 0 };

    g_autoptr(GPtrArray) a = sp_doctor_host(&h);
    assert_non_null(find(a, "ksm-missing"));
    assert_int_equal(a->len, 1);

    h.ksm_available = TRUE;
    h.ksm = ksm_state(0, 100, 20);
    h.candidate_pages = 1000;
    g_autoptr(GPtrArray) b = sp_doctor_host(&h);
    assert_non_null(find(b, "ksm-stopped"));
    assert_null(find(b, "scan-slow"));

    /* 10 guests of 1 GiB at the default 100 pages / 20 ms: a pass takes 524 s. */
    h.ksm = ksm_state(1, 100, 20);
    h.candidate_pages = 10 * 262144;
    g_autoptr(GPtrArray) c = sp_doctor_host(&h);
    const SpFinding *slow = find(c, "scan-slow");
    assert_non_null(slow);
    assert_null(find(c, "ksm-stopped"));
    assert_non_null(strstr(slow->message, "524 s"));
    /* the fix gives a pass of 150 s: 150 s / 20 ms = 7500 batches of 2621440 / 7500 = 349.5 */
    assert_non_null(strstr(slow->fix, "pages_to_scan=350 "));

    h.ksm = ksm_state(1, 10000, 20);
    g_autoptr(GPtrArray) d = sp_doctor_host(&h);
    assert_int_equal(d->len, 0);
}

static SpGuestRegion *
region(const char *id, gboolean merge, gboolean mg, SpBacking backing, guint64 locked_kb)
{
    SpGuestRegion *r = g_new0(SpGuestRegion, 1);
    r->id = g_strdup(id);
    r->size = 512 << 20;
    r->merge = merge;
    r->vma = g_new0(SpVma, 1);
    r->vma->start = 0x7f0000000000;
    r->vma->end = r->vma->start + r->size;
    memcpy(r->vma->perms, backing == SP_BACKING_SHARED ? "rw-s" : "rw-p", 5);
    r->vma->path = g_strdup("");
    r->vma->vmflags = g_strsplit(mg ? "rd wr mg" : "rd wr", " ", -1);
    r->vma->locked_kb = locked_kb;
    r->vma_mergeable = mg;
    r->backing = backing;
    return r;
}

static void
test_guest_rules(void **state)
{
    g_autoptr(GPtrArray) regions = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_region_free);
    SpDoctorGuest g = { "g1", regions, FALSE, FALSE, FALSE, 0, 0, 0 };

    g_ptr_array_add(regions, region("pc.ram", TRUE, TRUE, SP_BACKING_ANON_PRIVATE, 0));
    g_autoptr(GPtrArray) ok = sp_doctor_guest(&g);
    assert_non_null(find(ok, "ok"));
    assert_int_equal(ok->len, 1);

    g.nosharepages = TRUE;
    g.vfio = TRUE;
    g_ptr_array_add(regions, region("shm", TRUE, FALSE, SP_BACKING_SHARED, 0));
    g_ptr_array_add(regions, region("huge", TRUE, FALSE, SP_BACKING_HUGETLB, 0));
    g_ptr_array_add(regions, region("off", FALSE, FALSE, SP_BACKING_ANON_PRIVATE, 0));
    g_ptr_array_add(regions, region("lost", TRUE, FALSE, SP_BACKING_ANON_PRIVATE, 0));
    g_ptr_array_add(regions, region("odd", FALSE, TRUE, SP_BACKING_ANON_PRIVATE, 0));
    g_ptr_array_add(regions, region("locked", TRUE, TRUE, SP_BACKING_ANON_PRIVATE, 4096));
    g.estimated = TRUE;
    g.scanned_pages = 1000;
    g.volatile_pages = 600;
    g.saved_pages = 10;
    g_autoptr(GPtrArray) f = sp_doctor_guest(&g);
    const char *codes[] = { "nosharepages", "pinned-vfio", "backing-shared", "backing-hugetlb",
                            "merge-off", "vma-not-mergeable", "merge-mismatch", "pinned-mlock",
                            "mostly-volatile", "few-duplicates" };
    for (gsize i = 0; i < G_N_ELEMENTS(codes); i++) {
        const SpFinding *x = find(f, codes[i]);
        if (!x)
            fail_msg("no finding %s", codes[i]);
        assert_string_equal(x->subject, "g1");
        assert_true(*x->fix && *x->evidence);
    }
    assert_null(find(f, "ok"));
    assert_int_equal(find(f, "merge-off")->severity, SP_FINDING_ERROR);
    assert_string_equal(find(f, "merge-off")->fix, "samepage mark g1");
    assert_non_null(strstr(find(f, "mostly-volatile")->message, "60%"));
    assert_non_null(strstr(find(f, "pinned-mlock")->evidence, "4096 kB"));
    assert_int_equal(f->len, G_N_ELEMENTS(codes));

    /* A guest named by its QMP socket is marked through it. */
    SpDoctorGuest q = { "/run/q.sock", regions, FALSE, FALSE, FALSE, 0, 0, 0 };
    g_autoptr(GPtrArray) qf = sp_doctor_guest(&q);
    assert_string_equal(find(qf, "merge-off")->fix, "samepage mark --qmp /run/q.sock");
}

/* The kernel merges fewer of a guest's pages than its own duplicates allow. */
static void
test_merged_below_model(void **state)
{
    g_autoptr(GPtrArray) regions = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_region_free);
    SpKsmState ksm = ksm_state(1, 1000, 20);
    SpDoctorGuest g = { "g1", regions, FALSE, FALSE, FALSE, 0, 0, 0 };

    (void)state;
    g_ptr_array_add(regions, region("pc.ram", TRUE, TRUE, SP_BACKING_ANON_PRIVATE, 0));
    g.estimated = TRUE;
    g.scanned_pages = 100000;
    g.saved_pages = 30000;
    g.model_merging_pages = 40000;
    g.kernel_merging_pages = 21000;
    g.model_unmerged_pages = 18000;     /* the scan saw the equal pages held apart */
    g.ksm = &ksm;
    ksm.entry[SP_KSM_SMART_SCAN].value = 1;
    g_autoptr(GPtrArray) a = sp_doctor_guest(&g);
    const SpFinding *x = find(a, "merged-below-model");
    assert_non_null(x);
    assert_int_equal(x->severity, SP_FINDING_WARNING);
    assert_non_null(strstr(x->message, "KSM merges 21000 of the guest's pages"));
    assert_non_null(strstr(x->message, "40000 that can merge"));
    assert_non_null(strstr(x->message, "18000 pages of duplicated contents are not KSM pages"));
    assert_non_null(strstr(x->fix, "smart_scan=0"));
    assert_non_null(strstr(x->evidence, "smart_scan=1"));
    assert_null(find(a, "ok"));

    /* The scan does not show the equal pages held apart: no cause named. */
    g.model_unmerged_pages = 500;
    g_autoptr(GPtrArray) u = sp_doctor_guest(&g);
    const SpFinding *y = find(u, "merged-below-model");
    assert_non_null(y);
    assert_non_null(strstr(y->message, "unexplained"));
    assert_non_null(strstr(y->message, "only 500 of the pages"));
    assert_null(strstr(y->message, "smart_scan"));
    assert_null(strstr(y->fix, "smart_scan"));
    g.model_unmerged_pages = 18000;

    /* Without smart scan the advice is time. */
    ksm.entry[SP_KSM_SMART_SCAN].value = 0;
    g_autoptr(GPtrArray) b = sp_doctor_guest(&g);
    assert_null(strstr(find(b, "merged-below-model")->fix, "smart_scan"));
    /* Within 5% (or 256 pages): nothing to say. */
    g.kernel_merging_pages = 38500;
    g_autoptr(GPtrArray) c = sp_doctor_guest(&g);
    assert_null(find(c, "merged-below-model"));
    assert_non_null(find(c, "ok"));
    /* The kernel's figure unknown, KSM stopped, or merging blocked anyway. */
    g.kernel_merging_pages = -1;
    g_autoptr(GPtrArray) d = sp_doctor_guest(&g);
    assert_null(find(d, "merged-below-model"));
    g.kernel_merging_pages = 0;
    ksm.entry[SP_KSM_RUN].value = 0;
    g_autoptr(GPtrArray) e = sp_doctor_guest(&g);
    assert_null(find(e, "merged-below-model"));
    ksm.entry[SP_KSM_RUN].value = 1;
    g.nosharepages = TRUE;
    g_autoptr(GPtrArray) h = sp_doctor_guest(&g);
    assert_non_null(find(h, "nosharepages"));
    assert_null(find(h, "merged-below-model"));
}

/* The JSON of findings: every field, in the order `samepage doctor --json`
 * prints them; the errors counted. */
static void
test_findings_json(void **state)
{
    SpKsmState ksm = ksm_state(0, 100, 20);
    SpDoctorHost h = { .ksm_available = TRUE, .ksm = ksm };
    g_autoptr(GPtrArray) f = sp_doctor_host(&h);
    g_autoptr(json_object) arr = NULL;
    g_autoptr(GPtrArray) none = g_ptr_array_new();
    g_autoptr(json_object) empty = sp_doctor_findings_to_json(none);

    assert_int_equal(f->len, 1);
    arr = sp_doctor_findings_to_json(f);
    assert_int_equal(json_object_array_length(arr), 1);
    assert_string_equal(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN),
                        "[{\"severity\":\"error\",\"subject\":\"host\",\"code\":\"ksm-stopped\","
                        "\"message\":\"KSM is not running\",\"evidence\":\"run=0 (stopped)\","
                        "\"fix\":\"samepage ksm set run=1\"}]");
    assert_int_equal(sp_doctor_count_errors(f), 1);

    /* A warning and an info are not errors; an empty list is an empty array. */
    ((SpFinding *)g_ptr_array_index(f, 0))->severity = SP_FINDING_WARNING;
    assert_int_equal(sp_doctor_count_errors(f), 0);
    g_autoptr(json_object) one = sp_finding_to_json(g_ptr_array_index(f, 0));
    assert_string_equal(json_object_get_string(json_object_object_get(one, "severity")), "warning");
    assert_int_equal(json_object_array_length(empty), 0);
    assert_int_equal(sp_doctor_count_errors(none), 0);
}

static void
make_link(const char *dir, const char *name, const char *target)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    assert_int_equal(g_mkdir_with_parents(dir, 0755), 0);
    assert_int_equal(symlink(target, path), 0);
}

/* VFIO: a /proc/PID/fd link into /dev/vfio, on a fake /proc. */
static void
test_has_vfio(void **state)
{
    g_autofree char *proc = g_dir_make_tmp("samepage-test-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);
    g_autofree char *fd = g_build_filename(proc, "4242", "fd", NULL);

    assert_false(sp_doctor_has_vfio(host, 4242));       /* no such process */
    make_link(fd, "0", "/dev/null");
    make_link(fd, "1", "anon_inode:[eventfd]");
    make_link(fd, "3", "/srv/dev/vfio/1");           /* not /dev */
    assert_false(sp_doctor_has_vfio(host, 4242));
    make_link(fd, "17", "/dev/vfio/12");
    assert_true(sp_doctor_has_vfio(host, 4242));
    assert_false(sp_doctor_has_vfio(host, 4243));
    sp_test_remove_tree(proc);
}

/* The snapshot of a guest placed from a QMP transcript on a fake /proc
 * (tests/data/proc/guest-numa) and a fake KSM sysfs. */
static void
test_snapshot(void **state)
{
    g_autofree char *proc = sp_test_tree_new("proc/guest-numa");
    g_autofree char *sys = sp_test_tree_new("sysfs-6.18");
    g_autoptr(SpHost) host = sp_host_new_with_roots(sys, proc);
    g_autoptr(SpHost) no_ksm = sp_host_new_with_roots("/nonexistent", proc);
    g_autoptr(GPtrArray) guests = g_ptr_array_new_with_free_func((GDestroyNotify)sp_guest_free);
    g_autoptr(GError) error = NULL;
    g_autofree char *fd = g_build_filename(proc, "4242", "fd", NULL);
    SpGuest *g = sp_guest_new("g1", 4242, replay_qmp("qmp/query-memdev-numa.txt"));
    SpDoctorHost dh;
    SpDoctorGuest dg;

    g_ptr_array_add(guests, g);
    assert_true(sp_guest_load_regions(g, host, &error));
    sp_test_write(sys, "kernel/mm/ksm/run", "1\n");
    sp_doctor_host_snapshot(host, guests, &dh);
    assert_true(dh.ksm_available);
    assert_int_equal(dh.ksm.entry[SP_KSM_RUN].value, 1);
    /* Rss of both backends' VMAs (both carry mg), in 4 KiB pages. */
    assert_int_equal(dh.candidate_pages, (8192 + 131072) / 4);

    assert_true(sp_doctor_guest_snapshot(host, NULL, g, &dh, FALSE, &dg, &error));
    assert_string_equal(dg.name, "g1");
    assert_ptr_equal(dg.regions, sp_guest_get_regions(g));
    assert_ptr_equal(dg.ksm, &dh.ksm);
    assert_false(dg.vfio);
    assert_false(dg.nosharepages);
    assert_false(dg.estimated);
    assert_int_equal(dg.kernel_merging_pages, 10496);      /* its ksm_stat */

    /* Device assignment, and a ksm_stat gone: unknown, not 0. */
    make_link(fd, "9", "/dev/vfio/vfio");
    g_autofree char *ks = g_build_filename(proc, "4242", "ksm_stat", NULL);
    assert_int_equal(g_unlink(ks), 0);
    assert_true(sp_doctor_guest_snapshot(host, NULL, g, &dh, FALSE, &dg, &error));
    assert_true(dg.vfio);
    assert_int_equal(dg.kernel_merging_pages, -1);

    /* No KSM: the host says so, and the guest has no KSM state. */
    sp_doctor_host_snapshot(no_ksm, guests, &dh);
    assert_false(dh.ksm_available);
    assert_int_equal(dh.candidate_pages, (8192 + 131072) / 4);
    assert_true(sp_doctor_guest_snapshot(no_ksm, NULL, g, &dh, FALSE, &dg, &error));
    assert_null(dg.ksm);

    /* The estimate reads the guest's memory: the fake /proc has none, and
     * the error names the guest. */
    assert_false(sp_doctor_guest_snapshot(host, NULL, g, &dh, TRUE, &dg, &error));
    assert_non_null(error);
    assert_true(g_str_has_prefix(error->message, "guest g1: "));
    assert_false(dg.estimated);

    sp_test_remove_tree(proc);
    sp_test_remove_tree(sys);
}

static const SpFinding *
find_at(GPtrArray *f, guint i, const char *subject, const char *code)
{
    assert_true(i < f->len);
    const SpFinding *x = g_ptr_array_index(f, i);
    if (!g_str_equal(x->subject, subject) || !g_str_equal(x->code, code))
        fail_msg("finding %u: expected %s/%s, got %s/%s", i, subject, code, x->subject, x->code);
    return x;
}

static void
collect(const SpFinding *f, gpointer data)
{
    g_ptr_array_add(data, (gpointer)f);
}

/* The whole examination on libvirt's test driver, whose running domain
 * "test" has no QEMU process here: an unreadable guest is a finding; a QMP
 * socket that cannot be read is an error, after the findings so far. */
static void
test_examine(void **state)
{
    g_autofree char *sys = sp_test_tree_new("sysfs-6.18");
    g_autoptr(SpHost) host = sp_host_new_with_roots(sys, "/nonexistent-proc");

    {   /* every running domain */
        g_autoptr(SpLibvirt) lv = NULL;
        g_autoptr(GPtrArray) f = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) told = g_ptr_array_new();
        SpDoctorRequest req = { .uri = "test:///default", .estimate = TRUE,
                                .found = collect, .found_data = told };

        if (!sp_doctor_examine(host, &lv, &req, f, &error))
            fail_msg("%s", error->message);
        /* found() saw each finding, in order. */
        assert_int_equal(told->len, f->len);
        for (guint i = 0; i < f->len; i++)
            assert_ptr_equal(g_ptr_array_index(told, i), g_ptr_array_index(f, i));
        assert_non_null(lv);
        assert_int_equal(f->len, 2);
        const SpFinding *u = find_at(f, 0, "test", "unreadable");
        assert_int_equal(u->severity, SP_FINDING_ERROR);
        assert_true(*u->evidence);
        find_at(f, 1, "host", "ksm-stopped");               /* run=0 in the tree */
    }
    {   /* named domains, on a connection opened when needed */
        g_autoptr(SpLibvirt) lv = NULL;
        g_autoptr(GPtrArray) f = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
        g_autoptr(GError) error = NULL;
        const char *const names[] = { "nosuch", "test", NULL };
        SpDoctorRequest req = { .uri = "test:///default", .domains = names };

        sp_test_write(sys, "kernel/mm/ksm/run", "1\n");
        assert_true(sp_doctor_examine(host, &lv, &req, f, &error));
        assert_int_equal(f->len, 2);
        assert_non_null(strstr(find_at(f, 0, "nosuch", "unreadable")->evidence, "nosuch"));
        find_at(f, 1, "test", "unreadable");
        assert_int_equal(sp_doctor_count_errors(f), 2);
    }
    {   /* no libvirt: the host alone, with a finding saying so */
        g_autoptr(SpLibvirt) lv = NULL;
        g_autoptr(GPtrArray) f = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
        g_autoptr(GError) error = NULL;
        SpDoctorRequest req = { .uri = "test:///nonexistent/samepage-no-such.xml" };

        sp_test_write(sys, "kernel/mm/ksm/run", "0\n");
        assert_true(sp_doctor_examine(host, &lv, &req, f, &error));
        assert_int_equal(f->len, 2);
        const SpFinding *n = find_at(f, 0, "host", "no-libvirt");
        assert_int_equal(n->severity, SP_FINDING_INFO);
        assert_true(*n->evidence);
        find_at(f, 1, "host", "ksm-stopped");
    }
    {   /* a QMP socket nothing serves */
        g_autoptr(SpLibvirt) lv = NULL;
        g_autoptr(GPtrArray) f = g_ptr_array_new_with_free_func((GDestroyNotify)sp_finding_free);
        g_autoptr(GError) error = NULL;
        const char *const names[] = { "nosuch", NULL };
        const char *const qmps[] = { "/nonexistent/samepage-qmp.sock", NULL };
        g_autoptr(GPtrArray) told = g_ptr_array_new();
        SpDoctorRequest req = { .uri = "test:///default", .domains = names, .qmp_sockets = qmps,
                                .found = collect, .found_data = told };

        assert_false(sp_doctor_examine(host, &lv, &req, f, &error));
        assert_int_equal(told->len, 1);         /* told before the failure */
        assert_non_null(error);
        assert_non_null(strstr(error->message, "/nonexistent/samepage-qmp.sock"));
        assert_int_equal(f->len, 1);
        find_at(f, 0, "nosuch", "unreadable");
    }
    sp_test_remove_tree(sys);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_guest_rules),
        cmocka_unit_test(test_merged_below_model),
        cmocka_unit_test(test_findings_json),
        cmocka_unit_test(test_has_vfio),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_examine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
