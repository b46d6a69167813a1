/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "samepage/spdoctor.h"
#include "sptest.h"

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_guest_rules),
        cmocka_unit_test(test_merged_below_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
