/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "samepage/spmaps.h"
#include "sptest.h"

static const SpVma *
find_vma(GPtrArray *vmas, guint64 start)
{
    for (guint i = 0; i < vmas->len; i++) {
        const SpVma *v = g_ptr_array_index(vmas, i);
        if (v->start == start)
            return v;
    }
    return NULL;
}

/* tests/data/@rel, parsed: the test fails if it does not parse. */
static GPtrArray *
parse_data(const char *rel)
{
    g_autofree char *path = sp_test_data_path(rel);
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    GPtrArray *vmas;

    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    vmas = sp_maps_parse_smaps(text, &error);
    assert_null(error);
    assert_non_null(vmas);
    return vmas;
}

/* Recorded from a process that mapped 8 MiB private and 1 MiB shared
 * anonymous memory, touched 4 MiB and 1 page, and madvised both MERGEABLE. */
static void
test_parse_real(void **state)
{
    g_autoptr(GPtrArray) vmas = parse_data("proc/smaps-mergeable.txt");
    const SpVma *v;
    const char *why = NULL;
    guint mergeable = 0;

    assert_int_equal(vmas->len, 112);
    for (guint i = 0; i < vmas->len; i++)
        mergeable += sp_vma_is_mergeable(g_ptr_array_index(vmas, i));
    assert_int_equal(mergeable, 1);

    v = find_vma(vmas, 0x7f30f7e00000);
    assert_non_null(v);
    assert_int_equal(v->end - v->start, 8 << 20);
    assert_string_equal(v->perms, "rw-p");
    assert_string_equal(v->path, "");
    assert_int_equal(v->anonymous_kb, 4096);
    assert_int_equal(v->ksm_kb, 0);
    assert_true(sp_vma_is_mergeable(v));
    assert_true(sp_vma_ksm_compatible(v, NULL));
    assert_true(sp_vma_is_private_anon(v));

    /* MADV_MERGEABLE on a shared mapping quietly did nothing. */
    v = find_vma(vmas, 0x7f30f7d00000);
    assert_non_null(v);
    assert_string_equal(v->path, "/dev/zero (deleted)");
    assert_false(sp_vma_is_mergeable(v));
    assert_false(sp_vma_ksm_compatible(v, &why));
    assert_non_null(strstr(why, "shared"));

    /* The binary's text is private but file-backed. */
    v = g_ptr_array_index(vmas, 0);
    assert_false(sp_vma_is_private_anon(v));
    assert_true(g_str_has_suffix(v->path, "python3.11"));
}

static void
test_flags(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) vmas = sp_maps_parse_smaps(
        "7f0000000000-7f0000200000 rw-p 00000000 00:00 0 \n"
        "Rss:  2048 kB\n"
        "VmFlags: rd wr mr mw me ac hg mg \n"
        "7f0000200000-7f0000400000 rw-p 00000000 00:0f 1234   /anon_hugepage (deleted)\n"
        "VmFlags: rd wr mr mw me ht mg\n"
        "7fff00000000-7fff00002000 r-xp 00000000 00:00 0  [vdso]\n"
        "VmFlags: rd ex mr mw me de \n", &error);
    const char *why = NULL;

    assert_non_null(vmas);
    assert_int_equal(vmas->len, 3);
    const SpVma *a = g_ptr_array_index(vmas, 0), *b = g_ptr_array_index(vmas, 1),
                *c = g_ptr_array_index(vmas, 2);
    assert_int_equal(a->rss_kb, 2048);
    assert_true(sp_vma_has_flag(a, "hg"));
    assert_false(sp_vma_has_flag(a, "h"));
    assert_true(sp_vma_ksm_compatible(a, NULL));
    /* hugetlbfs marked mergeable is still never scanned */
    assert_true(sp_vma_is_mergeable(b));
    assert_false(sp_vma_ksm_compatible(b, &why));
    assert_string_equal(why, "hugetlbfs");
    assert_false(sp_vma_ksm_compatible(c, &why));
    assert_false(sp_vma_is_private_anon(c));
}

static void
test_hostile(void **state)
{
    const char *bad[] = {
        "Rss: 4 kB\n",                                              /* attribute first */
        "zzzz-7f00 rw-p 0 00:00 0\n",                               /* not hex */
        "7f0000001000-7f0000000000 rw-p 00000000 00:00 0\n",       /* end < start */
        "7f0000000000-7f0000001000 rw-p 00000000 00:00\n",         /* no inode */
        "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nRss: lots kB\n",
        "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nRss: 4 MB\n",
        "7f0000000000-7f0000002000 rw-p 00000000 00:00 0\n"
        "7f0000001000-7f0000002000 rw-p 00000000 00:00 0\n",       /* ends with the one before */
        "7f0000001000-7f0000002000 rw-p 00000000 00:00 0\n"
        "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\n",       /* precedes */
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) vmas = sp_maps_parse_smaps(bad[i], &error);
        assert_null(vmas);
        assert_true(g_error_matches(error, SP_MAPS_ERROR, SP_MAPS_ERROR_PARSE));
        assert_non_null(strstr(error->message, "line "));
    }
    /* Unknown keys and an empty file are fine. */
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) v1 = sp_maps_parse_smaps("", &error);
    assert_non_null(v1);
    assert_int_equal(v1->len, 0);
    g_autoptr(GPtrArray) v2 = sp_maps_parse_smaps(
        "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nFutureKey: 7 kB\nKSM: 4 kB\n", &error);
    assert_non_null(v2);
    assert_int_equal(((SpVma *)g_ptr_array_index(v2, 0))->ksm_kb, 4);
}

/*
 * Recorded on 6.18 while the process grew a read-write mapping page by page
 * inside a PROT_NONE reservation, then shrank it to one page (as glibc's
 * arena heaps do), read 512 bytes at a time: two excerpts of one read.
 * The growing VMA is printed again after every read() (three records of
 * it here, each longer), then the reservation, which now starts one page
 * in, inside the last of them.
 */
static void
test_parse_torn(void **state)
{
    g_autoptr(GPtrArray) vmas = parse_data("proc/smaps-torn.txt");
    g_autoptr(GError) error = NULL;
    static const struct { guint64 start, end; char perms[5]; } want[] = {
        { 0x7f8de4bfe000, 0x7f8de4c00000, "rw-p" },
        { 0x7f8de4c00000, 0x7f8de4c01000, "rw-p" },      /* the last record, cut short */
        { 0x7f8de4c01000, 0x7f8de8c00000, "---p" },
        { 0x7f8de8c01000, 0x7f8de8c03000, "r--p" },
    };

    (void)state;
    assert_int_equal(vmas->len, G_N_ELEMENTS(want));
    for (guint i = 0; i < vmas->len; i++) {
        const SpVma *v = g_ptr_array_index(vmas, i);
        assert_int_equal(v->start, want[i].start);
        assert_int_equal(v->end, want[i].end);
        assert_memory_equal(v->perms, want[i].perms, 4);
    }

    /* A record that starts before the one before and covers several: it
     * replaces them all, and cuts the one it starts inside. */
    g_autoptr(GPtrArray) merged = sp_maps_parse_smaps(
        "7f0000000000-7f0000002000 rw-p 00000000 00:00 0\nRss: 8 kB\n"
        "7f0000002000-7f0000003000 r--p 00000000 00:00 0\nRss: 4 kB\n"
        "7f0000003000-7f0000004000 rw-p 00000000 00:00 0\nRss: 4 kB\n"
        "7f0000001000-7f0000005000 rw-p 00000000 00:00 0\nRss: 16 kB\n"
        "7f0000006000-7f0000007000 rw-p 00000000 00:00 0\n", &error);
    assert_non_null(merged);
    assert_int_equal(merged->len, 3);
    const SpVma *a = g_ptr_array_index(merged, 0), *b = g_ptr_array_index(merged, 1);
    assert_int_equal(a->start, 0x7f0000000000);
    assert_int_equal(a->end, 0x7f0000001000);
    assert_int_equal(a->rss_kb, 8);                 /* figures of the longer range */
    assert_int_equal(b->start, 0x7f0000001000);
    assert_int_equal(b->end, 0x7f0000005000);
    assert_int_equal(b->rss_kb, 16);
}

static void
test_read_missing_pid(void **state)
{
    g_autofree char *root = sp_test_tree_new("proc");
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", root);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) vmas = sp_maps_read(host, 999999, &error);

    assert_null(vmas);
    assert_true(g_error_matches(error, SP_MAPS_ERROR, SP_MAPS_ERROR_NO_PROCESS));
    assert_non_null(strstr(error->message, "999999"));

    /* A fake /proc/42/smaps is read through the host's procfs root. */
    g_autofree char *dir = g_build_filename(root, "42", NULL);
    g_autofree char *src = sp_test_data_path("proc/smaps-mergeable.txt");
    g_autofree char *text = NULL;
    g_mkdir(dir, 0755);
    assert_true(g_file_get_contents(src, &text, NULL, NULL));
    sp_test_write(dir, "smaps", text);
    g_clear_error(&error);
    g_autoptr(GPtrArray) v2 = sp_maps_read(host, 42, &error);
    assert_non_null(v2);
    assert_int_equal(v2->len, 112);
    sp_test_remove_tree(root);
}

/* The processes KSM scans: "mg" anywhere in VmFlags, never in a path. */
static void
test_mergeable_pids(void **state)
{
    static const struct {
        const char *pid;
        const char *smaps;          /* NULL: a directory without smaps (exited) */
    } procs[] = {
        { "10", "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nVmFlags: rd wr mr mw me ac mg \n" },
        { "11", "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nVmFlags: rd wr mg mr mw me ac \n" },
        { "12", "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nVmFlags: rd wr mr mw me ac \n"
                "7f0000001000-7f0000002000 rw-p 00000000 00:00 0\nVmFlags: mg\n" },
        /* A file whose name ends in " mg": not a flag. */
        { "13", "7f0000000000-7f0000001000 rw-p 00000000 08:01 77    /tmp/x mg\n"
                "VmFlags: rd wr mr mw me \n" },
        { "14", "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nVmFlags: rd wr mgx mmg \n" },
        { "15", "VmFlags: rd mg\n" },          /* malformed: no mapping header */
        { "16", "" },
        { "17", NULL },
        { "self", "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nVmFlags: mg\n" },
        { "0", "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nVmFlags: mg\n" },
        { "9", "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nVmFlags: mg\n" },
    };
    g_autofree char *root = g_dir_make_tmp("samepage-spmaps-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", root);
    g_autoptr(GArray) pids = NULL;
    static const pid_t want[] = { 9, 10, 11, 12 };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(procs); i++) {
        g_autofree char *dir = g_build_filename(root, procs[i].pid, NULL);

        assert_int_equal(g_mkdir(dir, 0755), 0);
        if (procs[i].smaps)
            sp_test_write(dir, "smaps", procs[i].smaps);
    }
    pids = sp_maps_mergeable_pids(host);
    assert_int_equal(pids->len, G_N_ELEMENTS(want));
    for (guint i = 0; i < pids->len; i++)
        assert_int_equal(g_array_index(pids, pid_t, i), want[i]);
    sp_test_remove_tree(root);

    /* No procfs at all: nobody. */
    g_autoptr(SpHost) none = sp_host_new_with_roots("/nonexistent", "/nonexistent/proc");
    g_autoptr(GArray) empty = sp_maps_mergeable_pids(none);
    assert_int_equal(empty->len, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_real),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_parse_torn),
        cmocka_unit_test(test_read_missing_pid),
        cmocka_unit_test(test_mergeable_pids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
