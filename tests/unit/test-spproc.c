/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spproc: the procfs parsers on the kernel's text and on hostile text
 * (command names built to confuse, files cut short, numbers that are not
 * numbers or do not fit), and the readers on a fake procfs tree.
 */
#include "config.h"

#include <glib/gstdio.h>

#include "samepage/spproc.h"
#include "sptest.h"

/* A parse error, with @part in its message. */
#define assert_parse_error(error, part) do { \
        assert_true(g_error_matches((error), SP_HOST_ERROR, SP_HOST_ERROR_PARSE)); \
        if (!strstr((error)->message, (part))) \
            fail_msg("'%s' not in: %s", (part), (error)->message); \
    } while (0)

/* meminfo fields: "KEY: N kB", decimal, N x 1024 checked. */
static void
test_parse_meminfo(void **state)
{
    static const struct {
        const char *text;
        const char *part;           /* NULL: parses */
    } cases[] = {
        { "MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n", NULL },
        { "MemAvailable: 20000000\tkB", NULL },
        { "MemTotal: 1 kB\n", "no MemAvailable line" },
        { "XMemAvailable: 1 kB\n", "no MemAvailable line" },
        { "MemAvailable: 20000000 MB\n", "not in kB" },
        { "MemAvailable: 20000000\n", "not in kB" },
        { "MemAvailable: 0x10 kB\n", "not a decimal number" },
        { "MemAvailable: +5 kB\n", "not a decimal number" },
        { "MemAvailable: 18446744073709551616 kB\n", "not a decimal number" },
        { "MemAvailable: 18014398509481984 kB\n", "does not fit in 64 bits" },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        guint64 bytes = 0;
        gboolean ok = sp_proc_parse_meminfo(cases[i].text, "MemAvailable", &bytes, &error);

        if (!cases[i].part) {
            assert_true(ok);
            assert_true(bytes == G_GUINT64_CONSTANT(20000000) * 1024);
            continue;
        }
        if (ok)
            fail_msg("accepted: %s", cases[i].text);
        assert_true(g_error_matches(error, SP_HOST_ERROR, SP_HOST_ERROR_PARSE));
        if (!strstr(error->message, cases[i].part))
            fail_msg("'%s' not in: %s", cases[i].part, error->message);
    }
}

static void
test_meminfo_hostile(void **state)
{
    static const struct {
        const char *text;
        const char *key;
        const char *part;           /* NULL: parses to 5 kB */
    } cases[] = {
        { "", "MemTotal", "no MemTotal line" },
        { "\n\n\n", "MemTotal", "no MemTotal line" },
        { "MemTotalX: 5 kB\n", "MemTotal", "no MemTotal line" },
        { "memtotal: 5 kB\n", "MemTotal", "no MemTotal line" },
        { " MemTotal: 5 kB\n", "MemTotal", "no MemTotal line" },
        { "MemTotal 5 kB\n", "MemTotal", "no MemTotal line" },
        { "MemFree: 1 kB\nMemTotal:\t\t5 kB\nMemTotal: 6 kB\n", "MemTotal", NULL },
        { "MemTotal: 5 kB", "MemTotal", NULL },
        { "MemTotal: 5 kB \n", "MemTotal", NULL },
        { "MemTotal: 5 kb\n", "MemTotal", "not in kB" },
        { "MemTotal: 5 B\n", "MemTotal", "not in kB" },
        { "MemTotal: 5 pages\n", "MemTotal", "not in kB" },
        { "MemTotal: 5 kB kB\n", "MemTotal", "not in kB" },
        { "MemTotal: kB\n", "MemTotal", "not in kB" },
        { "MemTotal:\n", "MemTotal", "not in kB" },
        { "MemTotal: -5 kB\n", "MemTotal", "not a decimal number" },
        { "MemTotal: 5.0 kB\n", "MemTotal", "not a decimal number" },
        { "MemTotal: 5x kB\n", "MemTotal", "not a decimal number" },
        { "MemTotal: 99999999999999999999999 kB\n", "MemTotal", "not a decimal number" },
        { "HugePages_Total: 5\n", "HugePages_Total", "not in kB" },
        /* /proc/PID/status's memory lines have the same form. */
        { "Name:\tq: x\nVmPeak:\t 9 kB\nVmRSS:\t       5 kB\n", "VmRSS", NULL },
        { "Name:\tkthreadd\nPPid:\t2\n", "VmRSS", "no VmRSS line" },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        guint64 bytes = 0;
        gboolean ok = sp_proc_parse_meminfo(cases[i].text, cases[i].key, &bytes, &error);

        if (!cases[i].part) {
            if (!ok)
                fail_msg("refused: %s: %s", cases[i].text, error->message);
            assert_int_equal(bytes, 5 * 1024);
            continue;
        }
        if (ok)
            fail_msg("accepted: %s", cases[i].text);
        assert_parse_error(error, cases[i].part);
    }
}

static void
test_osrelease(void **state)
{
    static const struct {
        const char *text;
        const char *release;        /* NULL: refused */
    } cases[] = {
        { "6.12.9-amd64\n", "6.12.9-amd64" },
        { "6.1.0-rc1", "6.1.0-rc1" },
        { "  6.6.0 \t\nsecond line\n", "6.6.0" },
        { "", NULL },
        { "\n", NULL },
        { " \t \n6.1\n", NULL },
    };
    static const struct {
        const char *release;
        gboolean ok;
        guint major, minor;
    } versions[] = {
        { "6.12.9-amd64", TRUE, 6, 12 },
        { "6.6", TRUE, 6, 6 },
        { "10.0-x", TRUE, 10, 0 },
        { "4294967295.1", TRUE, G_MAXUINT, 1 },
        { "4294967296.1", FALSE, 0, 0 },
        { "6.99999999999999999999", FALSE, 0, 0 },
        { "6", FALSE, 0, 0 },
        { "6.", FALSE, 0, 0 },
        { ".12", FALSE, 0, 0 },
        { "x.12", FALSE, 0, 0 },
        { "6.x", FALSE, 0, 0 },
        { "+6.1", FALSE, 0, 0 },
        { " 6.1", FALSE, 0, 0 },
        { "6 .1", FALSE, 0, 0 },
        { "", FALSE, 0, 0 },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *r = sp_proc_parse_osrelease(cases[i].text, &error);

        if (cases[i].release) {
            assert_non_null(r);
            assert_string_equal(r, cases[i].release);
        } else {
            assert_null(r);
            assert_parse_error(error, "osrelease is empty");
        }
    }
    for (gsize i = 0; i < G_N_ELEMENTS(versions); i++) {
        guint ma = 77, mi = 77;
        gboolean ok = sp_proc_release_version(versions[i].release, &ma, &mi);

        if (ok != versions[i].ok)
            fail_msg("%s: %s", versions[i].release, ok ? "accepted" : "refused");
        if (ok) {
            assert_int_equal(ma, versions[i].major);
            assert_int_equal(mi, versions[i].minor);
        } else {
            assert_int_equal(ma, 77);        /* untouched on failure */
            assert_int_equal(mi, 77);
        }
    }
}

static void
test_cpu_stat(void **state)
{
    static const struct {
        const char *text;
        const char *part;
    } bad[] = {
        { "", "does not start with a \"cpu\" line" },
        { "intr 1 2 3\n", "does not start with a \"cpu\" line" },
        { "cpu0 1 2 3 4\ncpu  1 2 3 4\n", "does not start with a \"cpu\" line" },
        { "\ncpu  1 2 3 4\n", "does not start with a \"cpu\" line" },
        { "cpu\n", "does not start with a \"cpu\" line" },
        { "cpu  1 x 3 4\n", "'x' is not a number" },
        { "cpu  1 -2 3 4\n", "'-2' is not a number" },
        { "cpu  1 2 3 18446744073709551616\n", "is not a number" },
        { "cpu  1 2\n", "has 2 fields, not at least 4" },
        { "cpu \n", "has 0 fields" },
        { "cpu  18446744073709551615 1 0 0\n", "do not fit in 64 bits" },
        { "cpu  1 1 1 1 1 1 1 18446744073709551615\n", "do not fit in 64 bits" },
    };
    guint64 busy = 0, total = 0;

    (void)state;
    /* The kernel's text: guest and guest_nice are already in user and nice. */
    assert_true(sp_proc_parse_cpu_stat("cpu  100 5 50 1000 20 1 2 3 7 0\ncpu0 1 2 3 4\n",
                                       &busy, &total, NULL));
    assert_int_equal(total, 100 + 5 + 50 + 1000 + 20 + 1 + 2 + 3);
    assert_int_equal(busy, total - 1000 - 20);
    /* An old kernel's four fields; more than ten are ignored. */
    assert_true(sp_proc_parse_cpu_stat("cpu 1 2 3 4", &busy, &total, NULL));
    assert_int_equal(total, 10);
    assert_int_equal(busy, 6);
    assert_true(sp_proc_parse_cpu_stat("cpu 1 2 3 4 5 6 7 8 9 10 x y", &busy, &total, NULL));
    assert_int_equal(total, 36);
    assert_int_equal(busy, 36 - 4 - 5);
    /* Huge but fitting: idle and iowait are parts of the total, never more. */
    assert_true(sp_proc_parse_cpu_stat("cpu  0 0 0 18446744073709551615\n", &busy, &total, NULL));
    assert_true(total == G_MAXUINT64);
    assert_int_equal(busy, 0);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;

        if (sp_proc_parse_cpu_stat(bad[i].text, &busy, &total, &error))
            fail_msg("accepted: %s", bad[i].text);
        assert_parse_error(error, bad[i].part);
    }
}

/* A stat line as 6.x writes it, fields 3 to 52, around @comm. */
static char *
stat_line(int pid, const char *comm, const char *state, const char *utime,
          const char *starttime)
{
    return g_strdup_printf("%d (%s) %s 1 %d %d 0 -1 4194560 2345 0 12 0 %s 75 0 0 20 0 "
                           "3 0 %s 1263341568 45123 18446744073709551615 1 1 0 0 0 0 0 "
                           "4096 0 0 0 0 17 2 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                           pid, comm, state, pid, pid, utime, starttime);
}

static void
test_stat(void **state)
{
    static const char *const comms[] = {
        "qemu-system-x86",
        "",
        "a b",
        "a) (b",
        ") (",
        "x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        "two\nlines",
        "(((",
        ")))",
        "tab\there",
        "\n",
    };
    guint64 max = G_MAXUINT64;

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(comms); i++) {
        g_autofree char *line = stat_line(4242, comms[i], "S", "250", "98765");
        g_auto(SpProcStat) st = { 0 };
        g_autoptr(GError) error = NULL;

        if (!sp_proc_parse_stat(line, &st, &error))
            fail_msg("refused comm '%s': %s", comms[i], error->message);
        assert_int_equal(st.pid, 4242);
        assert_string_equal(st.comm, comms[i]);
        assert_int_equal(st.state, 'S');
        assert_int_equal(st.ppid, 1);
        assert_int_equal(st.utime, 250);
        assert_int_equal(st.stime, 75);
        assert_int_equal(st.starttime, 98765);
    }

    /* The journal's and the experiment's cases: the last ')' counts. */
    {
        g_auto(SpProcStat) st = { 0 };

        assert_true(sp_proc_parse_stat("9 (a) b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 "
                                       "18 99 20\n", &st, NULL));
        assert_string_equal(st.comm, "a) b");
        assert_int_equal(st.starttime, 99);
        assert_int_equal(st.utime, 11);
        assert_int_equal(st.stime, 12);
        sp_proc_stat_clear(&st);
        assert_true(sp_proc_parse_stat("42 (qemu ) (x) S 1 42 42 0 -1 4194560 100 0 0 0 "
                                       "250 75 0 0 20 0 3 0 7", &st, NULL));
        assert_int_equal(st.utime + st.stime, 325);
        assert_int_equal(st.starttime, 7);
        sp_proc_stat_clear(&st);
        /* A zombie parses; whether it counts is the caller's business. */
        assert_true(sp_proc_parse_stat("7 (z) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 "
                                       "18 0 20", &st, NULL));
        assert_int_equal(st.state, 'Z');
    }

    /* Numbers at the edge of 64 bits: the largest fits, one more does not. */
    {
        g_autofree char *u = g_strdup_printf("%" G_GUINT64_FORMAT, max);
        g_autofree char *line = stat_line(1, "big", "R", u, u);
        g_auto(SpProcStat) st = { 0 };

        assert_true(sp_proc_parse_stat(line, &st, NULL));
        assert_true(st.utime == G_MAXUINT64);
        assert_true(st.starttime == G_MAXUINT64);
    }

    static const struct {
        const char *text;
        const char *part;
    } bad[] = {
        { "", "no ')' after the command name" },
        { "\n", "no ')' after the command name" },
        { "42 (ksmd S 1", "no ')' after the command name" },
        { "42 ksmd) S 1", "no ')' after the command name" },
        { "42 )ksmd( S 1", "no ')' after the command name" },
        { "777 qemu R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
          "no ')' after the command name" },
        { "(a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "no pid" },
        { "x (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "no pid" },
        { "0 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "no pid" },
        { "-1 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "no pid" },
        { "4294967297 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "no pid" },
        { "9(a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "no pid" },
        { "9 (a)", "no fields after the command name" },
        { "9 (a)S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
          "no fields after the command name" },
        { "9 (a) ", "0 fields after the command name" },
        { "777 (qemu) R 1 2 3", "4 fields after the command name" },
        { "9 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18",
          "19 fields after the command name" },
        { "9 (a) S  1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "ppid '' is not" },
        { "9 (a) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "state 'SS'" },
        { "9 (a)  1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21", "state ''" },
        { "9 (a) S -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "ppid '-1'" },
        { "9 (a) S x 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "ppid 'x'" },
        { "9 (a) S 1 2 3 4 5 6 7 8 9 10 x1 12 13 14 15 16 17 18 19 20",
          "field 14 'x1' is not a number" },
        { "9 (a) S 1 2 3 4 5 6 7 8 9 10 11 -12 13 14 15 16 17 18 19 20",
          "field 15 '-12' is not a number" },
        { "777 (q) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x9 20\n",
          "field 22 'x9' is not a number" },
        { "9 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 18446744073709551616 20",
          "field 22 '18446744073709551616'" },
        { "9 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 \n",
          "field 22 '' is not a number" },
        { "9 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99\n\n",
          "field 22 '99\n' is not a number" },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_auto(SpProcStat) st = { 0 };
        g_autoptr(GError) error = NULL;

        if (sp_proc_parse_stat(bad[i].text, &st, &error))
            fail_msg("accepted: %s", bad[i].text);
        assert_parse_error(error, bad[i].part);
        assert_null(st.comm);
    }

    /* Cut short anywhere before starttime (a process exiting while it is
     * read): refused, never a field taken from the wrong place. */
    {
        g_autofree char *line = stat_line(4242, "a) (b", "S", "250", "98765");
        const char *start = strstr(line, " 98765 ") + 1;

        for (gsize len = 0; len < (gsize)(start - line); len++) {
            g_autofree char *cut = g_strndup(line, len);
            g_auto(SpProcStat) st = { 0 };

            if (sp_proc_parse_stat(cut, &st, NULL))
                fail_msg("accepted a stat cut at %zu: '%s'", len, cut);
        }
    }
}

/* ksmd is the kernel thread: named ksmd and kthreadd's child. */
static void
test_find_ksmd(void **state)
{
    static const struct {
        const char *pid;
        const char *stat;           /* NULL: no stat file (exited) */
    } procs[] = {
        { "1", "1 (systemd) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 1 2 3\n" },
        { "2", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0\n" },
        { "40", "40 (ksmd) S 1 40 40 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0\n" },
        { "41", "41 (ksmd ) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 25 5 1 0 9 0 0\n" },
        { "42", "42 (xksmd) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 25 5 1 0 9 0 0\n" },
        { "43", "43 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 25 5 1 0\n" },
        { "96", "96 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 25 5 1 0 9 0 0\n" },
        { "97", NULL },
        { "self", "96 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 25 5 1 0 9 0 0\n" },
    };
    g_autofree char *proc = g_dir_make_tmp("samepage-spproc-XXXXXX", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);
    g_autoptr(SpHost) none = sp_host_new_with_roots("/nonexistent", "/nonexistent/proc");

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(procs); i++) {
        g_autofree char *dir = g_build_filename(proc, procs[i].pid, NULL);

        assert_int_equal(g_mkdir(dir, 0700), 0);
        if (procs[i].stat)
            sp_test_write(dir, "stat", procs[i].stat);
    }
    /* 40 is a user process that named itself ksmd; 43's stat is cut short. */
    assert_int_equal(sp_proc_find_ksmd(host), 96);
    sp_test_write(proc, "40/stat", "40 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 25 5 1 0 9 0 0\n");
    assert_int_equal(sp_proc_find_ksmd(host), 40);
    assert_int_equal(sp_proc_find_ksmd(none), 0);
    sp_test_remove_tree(proc);
}

static void
test_ksm_stat(void **state)
{
    SpKsmStat k;

    (void)state;
    /* 6.14: every line, the yes/no ones with a colon. */
    assert_true(sp_proc_parse_ksm_stat("ksm_rmap_items 10\nksm_zero_pages 2\n"
                                       "ksm_merging_pages 7\nksm_process_profit -4096\n"
                                       "ksm_merge_any: no\nksm_mergeable: yes\n", &k, NULL));
    assert_true(k.present);
    assert_int_equal(k.ksm_rmap_items, 10);
    assert_int_equal(k.ksm_zero_pages, 2);
    assert_int_equal(k.ksm_merging_pages, 7);
    assert_int_equal(k.ksm_process_profit, -4096);
    assert_int_equal(k.ksm_merge_any, 0);
    assert_int_equal(k.ksm_mergeable, 1);

    /* An empty file: present, nothing known. */
    assert_true(sp_proc_parse_ksm_stat("", &k, NULL));
    assert_true(k.present);
    assert_int_equal(k.ksm_rmap_items, 0);
    assert_int_equal(k.ksm_zero_pages, -1);
    assert_int_equal(k.ksm_merge_any, -1);
    assert_int_equal(k.ksm_mergeable, -1);

    /* Unknown keys (a later kernel's), blank lines, tabs, no final newline. */
    assert_true(sp_proc_parse_ksm_stat("ksm_future_thing lots of words\n\n"
                                       "ksm_rmap_items\t3\nksm_rmap_itemsX nonsense\n"
                                       "KSM_MERGING_PAGES bad\nksm_merging_pages 9", &k, NULL));
    assert_int_equal(k.ksm_rmap_items, 3);
    assert_int_equal(k.ksm_merging_pages, 9);
    assert_int_equal(k.ksm_zero_pages, -1);

    /* Extremes of 64 bits fit. */
    assert_true(sp_proc_parse_ksm_stat("ksm_process_profit -9223372036854775808\n"
                                       "ksm_rmap_items 9223372036854775807\n", &k, NULL));
    assert_true(k.ksm_process_profit == G_MININT64);
    assert_true(k.ksm_rmap_items == G_MAXINT64);

    static const struct {
        const char *text;
        const char *part;
    } bad[] = {
        { "ksm_rmap_items lots\n", "ksm_rmap_items is 'lots', not a number" },
        { "ksm_rmap_items 9223372036854775808\n", "not a number" },
        { "ksm_process_profit -9223372036854775809\n", "not a number" },
        { "ksm_merging_pages 1.5\n", "not a number" },
        { "ksm_merging_pages 0x10\n", "not a number" },
        { "ksm_merging_pages 5 pages\n", "'5 pages', not a number" },
        { "ksm_zero_pages \n", "ksm_zero_pages is '', not a number" },
        { "ksm_merge_any: maybe\n", "ksm_merge_any is 'maybe', not yes or no" },
        { "ksm_mergeable: YES\n", "not yes or no" },
        { "ksm_mergeable 1\n", "not yes or no" },
        { "justoneword\n", "malformed line 'justoneword'" },
        { "ksm_rmap_items 1\nksm_merging_pages\n", "malformed line" },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;

        if (sp_proc_parse_ksm_stat(bad[i].text, &k, &error))
            fail_msg("accepted: %s", bad[i].text);
        assert_parse_error(error, bad[i].part);
    }
}

/* The readers: thin, below the host's procfs root, NOT_FOUND for what is
 * not there, parse errors named by their path. */
static void
test_readers(void **state)
{
    g_autofree char *proc = g_dir_make_tmp("samepage-spproc-XXXXXX", NULL);
    g_autofree char *sys = g_build_filename(proc, "sys", "kernel", NULL);
    g_autofree char *pid = g_build_filename(proc, "42", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);
    g_auto(SpProcStat) st = { 0 };
    g_autofree char *release = NULL;
    guint64 bytes = 0, busy = 0, total = 0;
    SpKsmStat k;

    (void)state;
    assert_int_equal(g_mkdir_with_parents(sys, 0700), 0);
    assert_int_equal(g_mkdir_with_parents(pid, 0700), 0);

    /* Nothing there yet. */
    {
        g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL, e6 = NULL;

        assert_false(sp_proc_read_meminfo(host, "MemTotal", &bytes, &e1));
        assert_true(g_error_matches(e1, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
        assert_null(sp_proc_read_osrelease(host, &e2));
        assert_true(g_error_matches(e2, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
        assert_false(sp_proc_read_cpu_stat(host, &busy, &total, &e3));
        assert_true(g_error_matches(e3, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
        assert_false(sp_proc_read_stat(host, 42, &st, &e4));
        assert_true(g_error_matches(e4, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
        assert_false(sp_proc_read_ksm_stat(host, 42, &k, &e5));
        assert_true(g_error_matches(e5, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
        assert_false(sp_proc_read_stat(host, 0, &st, &e6));
        assert_true(g_error_matches(e6, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
    }

    sp_test_write(proc, "meminfo", "MemTotal:       24684084 kB\nMemAvailable: 7 kB\n");
    sp_test_write(proc, "sys/kernel/osrelease", "6.12.9-amd64\n");
    sp_test_write(proc, "stat", "cpu  10 0 10 80 0 0 0 0 0 0\nintr 1\n");
    sp_test_write(proc, "42/stat", "42 (qemu) (x) S 1 42 42 0 -1 4194560 100 0 0 0 "
                  "250 75 0 0 20 0 3 0 5555 1 2 3\n");
    sp_test_write(proc, "42/ksm_stat", "ksm_rmap_items 5\nksm_merging_pages 2\n");
    assert_true(sp_proc_read_meminfo(host, "MemTotal", &bytes, NULL));
    assert_true(bytes == G_GUINT64_CONSTANT(24684084) * 1024);
    release = sp_proc_read_osrelease(host, NULL);
    assert_string_equal(release, "6.12.9-amd64");
    assert_true(sp_proc_read_cpu_stat(host, &busy, &total, NULL));
    assert_int_equal(busy, 20);
    assert_int_equal(total, 100);
    assert_true(sp_proc_read_stat(host, 42, &st, NULL));
    assert_string_equal(st.comm, "qemu) (x");
    assert_int_equal(st.starttime, 5555);
    assert_true(sp_proc_read_ksm_stat(host, 42, &k, NULL));
    assert_int_equal(k.ksm_merging_pages, 2);

    /* Garbage: a parse error that names the file. */
    sp_test_write(proc, "meminfo", "MemTotal: lots kB\n");
    sp_test_write(proc, "sys/kernel/osrelease", "\n");
    sp_test_write(proc, "stat", "cpu 1 2\n");
    sp_test_write(proc, "42/stat", "42 (qemu) R 1 2 3");
    sp_test_write(proc, "42/ksm_stat", "ksm_merging_pages many\n");
    {
        g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL;
        g_autofree char *p1 = g_build_filename(proc, "meminfo", NULL);
        g_autofree char *p4 = g_build_filename(proc, "42", "stat", NULL);
        g_autofree char *p5 = g_build_filename(proc, "42", "ksm_stat", NULL);

        sp_proc_stat_clear(&st);
        assert_false(sp_proc_read_meminfo(host, "MemTotal", &bytes, &e1));
        assert_parse_error(e1, p1);
        assert_null(sp_proc_read_osrelease(host, &e2));
        assert_parse_error(e2, "osrelease: osrelease is empty");
        assert_false(sp_proc_read_cpu_stat(host, &busy, &total, &e3));
        assert_parse_error(e3, "not at least 4");
        assert_false(sp_proc_read_stat(host, 42, &st, &e4));
        assert_parse_error(e4, p4);
        assert_null(st.comm);
        assert_false(sp_proc_read_ksm_stat(host, 42, &k, &e5));
        assert_parse_error(e5, p5);
    }
    sp_test_remove_tree(proc);
}

/* /proc/pressure/memory: the kernel's text, and text that is not. */
static void
test_pressure(void **state)
{
    static const char *const kernel =
        "some avg10=1.25 avg60=0.50 avg300=0.07 total=123456\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=42\n";
    static const struct { const char *text; const char *part; } bad[] = {
        { "", "no 'some' line" },
        { "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "no 'some' line" },
        { "somewhat avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "no 'some' line" },
        { "some avg10=abc avg60=0.00 avg300=0.00 total=0\n", "malformed 'some'" },
        { "some avg10=101.00 avg60=0.00 avg300=0.00 total=0\n", "malformed 'some'" },
        { "some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n", "malformed 'some'" },
        { "some avg10=nan avg60=0.00 avg300=0.00 total=0\n", "malformed 'some'" },
        { "some avg10=1.0x avg60=0.00 avg300=0.00 total=0\n", "malformed 'some'" },
        { "some avg60=0.00 avg10=0.00 avg300=0.00 total=0\n", "malformed 'some'" },
        { "some avg10=0.00 avg60=0.00 avg300=0.00\n", "malformed 'some'" },
        { "some avg10=0.00 avg60=0.00 avg300=0.00 total=0 extra=1\n", "malformed 'some'" },
        { "some avg10=0.00 avg60=0.00 avg300=0.00 total=99999999999999999999\n",
          "malformed 'some'" },
        { "some avg10=0.00  avg60=0.00 avg300=0.00 total=0\n", "malformed 'some'" },
    };
    SpProcPressure p;

    (void)state;
    assert_true(sp_proc_parse_pressure(kernel, "some", &p, NULL));
    assert_true(p.avg10 == 1.25 && p.avg60 == 0.5 && p.avg300 == 0.07);
    assert_true(p.total_us == 123456);
    assert_true(sp_proc_parse_pressure(kernel, "full", &p, NULL));
    assert_true(p.total_us == 42);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        if (sp_proc_parse_pressure(bad[i].text, "some", &p, &error))
            fail_msg("accepted: %s", bad[i].text);
        assert_parse_error(error, bad[i].part);
    }
}

/* The PSI and multi-key meminfo readers on a fake procfs. */
static void
test_pressure_meminfo_readers(void **state)
{
    g_autofree char *proc = g_dir_make_tmp("samepage-spproc-XXXXXX", NULL);
    g_autofree char *pressure = g_build_filename(proc, "pressure", NULL);
    g_autoptr(SpHost) host = sp_host_new_with_roots("/nonexistent", proc);
    static const char *const keys[] = { "MemTotal", "MemAvailable", NULL };
    guint64 mem[2] = { 0, 0 };
    SpProcPressure p;

    (void)state;
    {
        g_autoptr(GError) e1 = NULL, e2 = NULL;
        assert_false(sp_proc_read_memory_pressure(host, &p, &e1));
        assert_true(g_error_matches(e1, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
        assert_false(sp_proc_read_meminfo_keys(host, keys, mem, &e2));
        assert_true(g_error_matches(e2, SP_HOST_ERROR, SP_HOST_ERROR_NOT_FOUND));
    }
    assert_int_equal(g_mkdir_with_parents(pressure, 0700), 0);
    sp_test_write(proc, "pressure/memory",
                  "some avg10=3.50 avg60=0.00 avg300=0.00 total=7\n"
                  "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    sp_test_write(proc, "meminfo", "MemTotal: 100 kB\nMemFree: 5 kB\nMemAvailable: 60 kB\n");
    assert_true(sp_proc_read_memory_pressure(host, &p, NULL));
    assert_true(p.avg10 == 3.5);
    assert_true(sp_proc_read_meminfo_keys(host, keys, mem, NULL));
    assert_true(mem[0] == 102400 && mem[1] == 61440);

    sp_test_write(proc, "pressure/memory", "some avg10=x\n");
    sp_test_write(proc, "meminfo", "MemTotal: 100 kB\n");
    {
        g_autoptr(GError) e1 = NULL, e2 = NULL;
        g_autofree char *p1 = g_build_filename(proc, "pressure", "memory", NULL);
        g_autofree char *p2 = g_build_filename(proc, "meminfo", NULL);
        assert_false(sp_proc_read_memory_pressure(host, &p, &e1));
        assert_parse_error(e1, p1);
        assert_false(sp_proc_read_meminfo_keys(host, keys, mem, &e2));
        assert_parse_error(e2, p2);
        assert_parse_error(e2, "no MemAvailable line");
    }
    sp_test_remove_tree(proc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_meminfo),
        cmocka_unit_test(test_meminfo_hostile),
        cmocka_unit_test(test_osrelease),
        cmocka_unit_test(test_cpu_stat),
        cmocka_unit_test(test_stat),
        cmocka_unit_test(test_find_ksmd),
        cmocka_unit_test(test_ksm_stat),
        cmocka_unit_test(test_readers),
        cmocka_unit_test(test_pressure),
        cmocka_unit_test(test_pressure_meminfo_readers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
