/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spjournal.c: the experiment journal: round trip, hostile files,
 * the owner's identity (pid, start time, boot) on a fake procfs
 */
#include "config.h"

#include <sys/stat.h>
#include <unistd.h>

#include "samepage/spjournal.h"
#include "samepage/spproc.h"
#include "sptest.h"

#define BOOT_A "0b6c5b8e-7a53-4a0f-9d6a-3f1e2d4c5b6a"
#define BOOT_B "9f0e1d2c-3b4a-4958-8776-655443322110"

typedef struct {
    char *proc;                      /* fake procfs */
    char *state;                     /* journal directory */
    SpHost *host;
} Fixture;

/* A /proc/PID/stat line whose starttime (field 22) is @start; the command
 * name holds ") (" to catch a parser that splits at the first ')'. */
static void
fake_pid(const char *proc, pid_t pid, char state, guint64 start)
{
    g_autofree char *dir = g_strdup_printf("%s/%d", proc, (int)pid);
    g_autofree char *stat = g_strdup_printf(
        "%d (qemu) (x) %c 1 %d %d 0 -1 4194560 100 0 0 0 10 20 0 0 20 0 3 0 %" G_GUINT64_FORMAT
        " 123456 789 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n",
        (int)pid, state, (int)pid, (int)pid, start);

    g_mkdir_with_parents(dir, 0755);
    sp_test_write(dir, "stat", stat);
}

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    g_autofree char *rnd = NULL;

    f->proc = g_dir_make_tmp("samepage-proc-XXXXXX", NULL);
    f->state = g_dir_make_tmp("samepage-state-XXXXXX", NULL);
    rnd = g_build_filename(f->proc, "sys", "kernel", "random", NULL);
    g_mkdir_with_parents(rnd, 0755);
    sp_test_write(rnd, "boot_id", BOOT_A "\n");
    fake_pid(f->proc, getpid(), 'R', 4242);
    f->host = sp_host_new_with_roots("/nonexistent-sysfs", f->proc);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    sp_test_remove_tree(f->proc);
    sp_test_remove_tree(f->state);
    sp_host_free(f->host);
    g_free(f->proc);
    g_free(f->state);
    g_free(f);
    return 0;
}

static void
test_pid_start(void **state)
{
    Fixture *f = *state;
    guint64 start = 0;

    assert_true(sp_journal_pid_start(f->host, getpid(), &start));
    assert_int_equal(start, 4242);
    /* A zombie is not a live owner; a missing pid neither. */
    fake_pid(f->proc, 777, 'Z', 10);
    assert_false(sp_journal_pid_start(f->host, 777, &start));
    assert_false(sp_journal_pid_start(f->host, 778, &start));
    assert_false(sp_journal_pid_start(f->host, 0, &start));
    /* Truncated and garbled stat files. */
    sp_test_write(f->proc, "777/stat", "777 (qemu) R 1 2 3");
    assert_false(sp_journal_pid_start(f->host, 777, &start));
    sp_test_write(f->proc, "777/stat", "777 qemu R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20");
    assert_false(sp_journal_pid_start(f->host, 777, &start));
    sp_test_write(f->proc, "777/stat",
                  "777 (q) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x9 20\n");
    assert_false(sp_journal_pid_start(f->host, 777, &start));
    /* The parser the reader wraps (SpProc's): a comm with ") " in it, the
     * last ')' counts. */
    {
        g_auto(SpProcStat) st = { 0 };

        assert_true(sp_proc_parse_stat("9 (a) b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 "
                                       "18 99 20\n", &st, NULL));
        assert_int_equal(st.starttime, 99);
        sp_proc_stat_clear(&st);
        assert_false(sp_proc_parse_stat("", &st, NULL));
        assert_false(sp_proc_parse_stat("9 (a) ", &st, NULL));
    }
}

static SpJournal *
make_journal(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    SpJournal *j = sp_journal_new(f->host, f->state, "study-1", "qemu:///system", "/tmp/out",
                                  &error);
    SpJournalDomain *d;

    assert_null(error);
    assert_non_null(j);
    j->overlay_dir = g_strdup("/tmp/samepage-experiment-abc");
    d = sp_journal_add_domain(j, "sp-study-1-abc-1-1", "11111111-2222-3333-4444-555555555555",
                              "/tmp/samepage-experiment-abc/sp-study-1-abc-1-1.qcow2");
    d->defined = TRUE;
    d->qemu_pid = 31337;
    sp_journal_add_domain(j, "sp-study-1-abc-1-2", "66666666-7777-8888-9999-000000000000", NULL);
    j->ksm_changed = TRUE;
    j->ksm_before.entry[SP_KSM_RUN] = (SpKsmEntry){ TRUE, 0 };
    j->ksm_before.entry[SP_KSM_PAGES_TO_SCAN] = (SpKsmEntry){ TRUE, 100 };
    j->ksm_before.entry[SP_KSM_ADVISOR_MODE] = (SpKsmEntry){ TRUE, 1 };
    /* A figure is never journalled: only knobs are restored. */
    j->ksm_before.entry[SP_KSM_PAGES_SHARED] = (SpKsmEntry){ TRUE, 5 };
    return j;
}

static void
test_round_trip(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = make_journal(f);
    g_autoptr(SpJournal) back = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *name = g_strdup_printf("%d-4242.json", (int)getpid());

    assert_true(g_str_has_suffix(j->path, name));
    assert_int_equal(j->owner_start, 4242);
    assert_string_equal(j->boot_id, BOOT_A);
    assert_true(sp_journal_save(j, &error));
    back = sp_journal_load(j->path, &error);
    assert_null(error);
    assert_non_null(back);
    assert_int_equal(back->owner_pid, getpid());
    assert_int_equal(back->owner_start, 4242);
    assert_string_equal(back->boot_id, BOOT_A);
    assert_int_equal(back->started, j->started);
    assert_string_equal(back->plan, "study-1");
    assert_string_equal(back->uri, "qemu:///system");
    assert_string_equal(back->output_dir, "/tmp/out");
    assert_string_equal(back->overlay_dir, "/tmp/samepage-experiment-abc");
    assert_true(back->ksm_changed);
    assert_true(back->ksm_before.entry[SP_KSM_PAGES_TO_SCAN].supported);
    assert_int_equal(back->ksm_before.entry[SP_KSM_PAGES_TO_SCAN].value, 100);
    assert_int_equal(back->ksm_before.entry[SP_KSM_ADVISOR_MODE].value, 1);
    assert_false(back->ksm_before.entry[SP_KSM_PAGES_SHARED].supported);
    assert_false(back->ksm_before.entry[SP_KSM_SLEEP_MILLISECS].supported);
    assert_int_equal(back->domains->len, 2);
    SpJournalDomain *d = sp_journal_find_domain(back, "11111111-2222-3333-4444-555555555555");
    assert_non_null(d);
    assert_string_equal(d->name, "sp-study-1-abc-1-1");
    assert_true(d->defined);
    assert_int_equal(d->qemu_pid, 31337);
    d = sp_journal_find_domain(back, "66666666-7777-8888-9999-000000000000");
    assert_null(d->overlay);
    assert_false(d->defined);
    assert_int_equal(d->qemu_pid, 0);

    /* Removing a domain and saving again; then deleting, twice. */
    sp_journal_remove_domain(j, "11111111-2222-3333-4444-555555555555");
    sp_journal_remove_domain(j, "not-there");
    j->ksm_changed = FALSE;
    assert_true(sp_journal_save(j, &error));
    g_clear_pointer(&back, sp_journal_free);
    back = sp_journal_load(j->path, &error);
    assert_int_equal(back->domains->len, 1);
    assert_false(back->ksm_changed);
    assert_true(sp_journal_delete(j, &error));
    assert_false(g_file_test(j->path, G_FILE_TEST_EXISTS));
    assert_true(sp_journal_delete(j, &error));
}

static void
test_owner(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = make_journal(f);

    assert_int_equal(sp_journal_owner(j, f->host), SP_JOURNAL_OWNER_ALIVE);
    /* The pid reused by another process: a different start time. */
    fake_pid(f->proc, getpid(), 'S', 9999);
    assert_int_equal(sp_journal_owner(j, f->host), SP_JOURNAL_OWNER_GONE);
    /* Gone altogether. */
    j->owner_pid = 4000000;
    assert_int_equal(sp_journal_owner(j, f->host), SP_JOURNAL_OWNER_GONE);
    /* Another boot wins over a pid that happens to match. */
    fake_pid(f->proc, getpid(), 'S', 4242);
    j->owner_pid = getpid();
    sp_test_write(f->proc, "sys/kernel/random/boot_id", BOOT_B "\n");
    assert_int_equal(sp_journal_owner(j, f->host), SP_JOURNAL_OWNER_OTHER_BOOT);
    /* No boot id to compare: the pid decides. */
    g_clear_pointer(&j->boot_id, g_free);
    assert_int_equal(sp_journal_owner(j, f->host), SP_JOURNAL_OWNER_ALIVE);
}

static void
test_list(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) none = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autofree char *missing = g_build_filename(f->state, "no-such-dir", NULL);
    g_autoptr(SpJournal) a = make_journal(f);
    g_autoptr(SpJournal) b = make_journal(f);

    none = sp_journal_list(missing, &error);
    assert_null(error);
    assert_int_equal(none->len, 0);

    /* Two journals, b older than a; a leftover temporary file is ignored. */
    g_free(b->path);
    b->path = g_build_filename(f->state, "123-1.json", NULL);
    b->started = a->started - 1000;
    g_free(b->plan);
    b->plan = g_strdup("older");
    assert_true(sp_journal_save(a, &error));
    assert_true(sp_journal_save(b, &error));
    sp_test_write(f->state, "123-1.json.ABC123", "{ half");
    list = sp_journal_list(f->state, &error);
    assert_null(error);
    assert_int_equal(list->len, 2);
    assert_string_equal(((SpJournal *)g_ptr_array_index(list, 0))->plan, "older");
    assert_string_equal(((SpJournal *)g_ptr_array_index(list, 1))->plan, "study-1");

    /* A garbled journal is an error naming it. */
    g_clear_pointer(&list, g_ptr_array_unref);
    sp_test_write(f->state, "55-5.json", "{ \"version\": 1, \"owner\": ");
    list = sp_journal_list(f->state, &error);
    assert_null(list);
    assert_true(g_error_matches(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_PARSE));
    assert_non_null(strstr(error->message, "55-5.json"));
}

static void
test_hostile(void **state)
{
    static const struct {
        const char *text;
        const char *expect;
    } cases[] = {
        { "", "not a samepage experiment journal" },
        { "[1, 2]", "not a JSON object" },
        { "{\"version\": 2}", "journal version 2" },
        { "{\"version\": 1}", "no \"owner\"" },
        { "{\"version\": 1, \"owner\": {\"pid\": -3, \"start_ticks\": 1}}", "\"pid\"" },
        { "{\"version\": 1, \"owner\": {\"pid\": 3, \"start_ticks\": \"x\"}}", "\"start_ticks\"" },
        { "{\"version\": 1, \"owner\": {\"pid\": 3, \"start_ticks\": 1}}", "\"started_us\"" },
        { "{\"version\": 1, \"owner\": {\"pid\": 3, \"start_ticks\": 1}, \"started_us\": 5, "
          "\"plan\": 7, \"domains\": []}", "\"plan\" is not a string" },
        { "{\"version\": 1, \"owner\": {\"pid\": 3, \"start_ticks\": 1}, \"started_us\": 5, "
          "\"domains\": {}}", "no \"domains\"" },
        { "{\"version\": 1, \"owner\": {\"pid\": 3, \"start_ticks\": 1}, \"started_us\": 5, "
          "\"domains\": [{\"name\": \"a\"}]}", "without \"name\" or \"uuid\"" },
        { "{\"version\": 1, \"owner\": {\"pid\": 3, \"start_ticks\": 1}, \"started_us\": 5, "
          "\"domains\": [], \"ksm_before\": {\"pages_shared\": \"3\"}}", "not a KSM knob" },
        { "{\"version\": 1, \"owner\": {\"pid\": 3, \"start_ticks\": 1}, \"started_us\": 5, "
          "\"domains\": [], \"ksm_before\": {\"run\": \"7\"}}", "\"ksm_before\".run" },
        { "{\"version\": 1, \"owner\": {\"pid\": 3, \"start_ticks\": 1}, \"started_us\": 5, "
          "\"domains\": [], \"ksm_before\": {\"run\": 1}}", "not a string" },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(SpJournal) j = sp_journal_parse(cases[i].text, "/state/x.json", &error);

        if (j || !error || !strstr(error->message, cases[i].expect) ||
            !strstr(error->message, "/state/x.json"))
            fail_msg("case %zu: %s: got %s", i, cases[i].text, error ? error->message : "a journal");
    }
    /* The smallest valid journal; unknown keys are ignored. */
    g_autoptr(GError) error = NULL;
    g_autoptr(SpJournal) j = sp_journal_parse(
        "{\"version\": 1, \"owner\": {\"pid\": 3, \"start_ticks\": 1}, \"started_us\": 5, "
        "\"domains\": [], \"future\": true}", "/state/x.json", &error);
    assert_non_null(j);
    assert_false(j->ksm_changed);
    assert_null(j->boot_id);
}

/* Every field is checked for its JSON type and range: a pid that a cast
 * would wrap, a boolean written as a string, a domain or overlay that is
 * not what the runner makes. */
static void
test_hostile_fields(void **state)
{
#define HEAD "{\"version\": 1, \"owner\": {\"pid\": %s, \"start_ticks\": 1}, \"started_us\": 5, "
#define DOM(name, overlay, pid, def) \
    "\"domains\": [{\"name\": " name ", \"uuid\": \"11111111-2222-3333-4444-555555555555\", " \
    "\"overlay\": " overlay ", \"qemu_pid\": " pid ", \"defined\": " def "}]"
#define OVD "\"overlay_dir\": \"/var/tmp/samepage-experiment-abc\", "
#define OV "\"/var/tmp/samepage-experiment-abc/sp-a-1-1.qcow2\""
    static const struct {
        const char *pid;
        const char *rest;
        const char *expect;
    } cases[] = {
        { "4294967297", "\"domains\": []}", "\"pid\"" },
        { "2147483648", "\"domains\": []}", "\"pid\"" },
        { "0", "\"domains\": []}", "\"pid\"" },
        { "3.5", "\"domains\": []}", "\"pid\"" },
        { "\"3\"", "\"domains\": []}", "\"pid\"" },
        { "3", OVD DOM("\"sp-a-1-1\"", OV, "4294967297", "true") "}", "\"qemu_pid\"" },
        { "3", OVD DOM("\"sp-a-1-1\"", OV, "-1", "true") "}", "\"qemu_pid\"" },
        { "3", OVD DOM("\"sp-a-1-1\"", OV, "5", "\"false\"") "}", "\"defined\"" },
        { "3", OVD DOM("\"sp-a-1-1\"", OV, "5", "1") "}", "\"defined\"" },
        /* The overlay must be NAME.qcow2 in the experiment's overlay directory. */
        { "3", OVD DOM("\"sp-a-1-1\"", "\"/etc/passwd\"", "5", "true") "}", "\"overlay\"" },
        { "3", OVD DOM("\"sp-a-1-1\"", "\"/var/tmp/samepage-experiment-abc/../../etc/x.qcow2\"",
                       "5", "true") "}", "\"overlay\"" },
        { "3", OVD DOM("\"sp-a-1-1\"", "\"/var/tmp/samepage-experiment-abc/sp-a-1-2.qcow2\"",
                       "5", "true") "}", "\"overlay\"" },
        { "3", DOM("\"sp-a-1-1\"", OV, "5", "true") "}", "\"overlay\"" },
        { "3", OVD DOM("\"../sp-a\"", "null", "5", "true") "}", "\"name\"" },
        { "3", "\"overlay_dir\": \"relative/dir\", \"domains\": []}", "\"overlay_dir\"" },
        { "3", "\"overlay_dir\": \"/var/tmp/../etc\", \"domains\": []}", "\"overlay_dir\"" },
        { "3", "\"output_dir\": \"out\\nx\", \"domains\": []}", "\"output_dir\"" },
    };

    (void)state;
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *text = g_strdup_printf(HEAD "%s", cases[i].pid, cases[i].rest);
        g_autoptr(SpJournal) j = sp_journal_parse(text, "/state/x.json", &error);

        if (j || !g_error_matches(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_PARSE) ||
            !strstr(error->message, cases[i].expect) || !strstr(error->message, "/state/x.json"))
            fail_msg("case %zu: %s: got %s", i, text, error ? error->message : "a journal");
    }
    /* The same journal with sane values parses, and comes back as written. */
    g_autoptr(GError) error = NULL;
    g_autoptr(SpJournal) j = sp_journal_parse(
        "{\"version\": 1, \"owner\": {\"pid\": 4194304, \"start_ticks\": 1}, "
        "\"started_us\": 5, " OVD DOM("\"sp-a-1-1\"", OV, "4194304", "false") "}", "/state/x.json",
        &error);
    if (!j)
        fail_msg("%s", error->message);
    assert_int_equal(j->owner_pid, 4194304);
    SpJournalDomain *d = &g_array_index(j->domains, SpJournalDomain, 0);
    assert_int_equal(d->qemu_pid, 4194304);
    assert_false(d->defined);
    g_autofree char *again = sp_journal_to_string(j);
    g_autoptr(SpJournal) back = sp_journal_parse(again, "/state/x.json", &error);
    assert_non_null(back);
    assert_int_equal(back->owner_pid, 4194304);
#undef HEAD
#undef DOM
#undef OVD
#undef OV
}

/* The file is written 0600 whatever the umask, through a new temporary
 * file: a symlink planted at its name is replaced, never followed. */
static void
test_save_private(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = make_journal(f);
    g_autoptr(GError) error = NULL;
    g_autofree char *victim = g_build_filename(f->state, "victim", NULL);
    g_autofree char *victim_text = NULL;
    g_autoptr(GDir) dir = NULL;
    const char *name;
    struct stat st;
    mode_t old = umask(0);

    assert_true(sp_journal_save(j, &error));
    umask(old);
    assert_int_equal(lstat(j->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    sp_test_write(f->state, "victim", "keep me");
    assert_int_equal(g_unlink(j->path), 0);
    assert_int_equal(symlink(victim, j->path), 0);
    assert_true(sp_journal_save(j, &error));
    victim_text = sp_test_read(f->state, "victim");
    assert_string_equal(victim_text, "keep me");
    assert_int_equal(lstat(j->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    /* No temporary file is left behind. */
    dir = g_dir_open(f->state, 0, NULL);
    while ((name = g_dir_read_name(dir)))
        assert_true(g_str_has_suffix(name, ".json") || g_str_equal(name, "victim"));
}

/* A bad journal does not hide the good ones: each bad file is named with
 * what is wrong with it. */
static void
test_list_skips_bad(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) a = make_journal(f);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) bad = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autofree char *link = g_build_filename(f->state, "77-7.json", NULL);

    assert_true(sp_journal_save(a, &error));
    sp_test_write(f->state, "55-5.json", "{ \"version\": 1, \"owner\": ");
    sp_test_write(f->state, "66-6.json", "");
    assert_int_equal(symlink(a->path, link), 0);
    list = sp_journal_list_all(f->state, &bad, &error);
    assert_non_null(list);
    assert_null(error);
    assert_int_equal(list->len, 1);
    assert_string_equal(((SpJournal *)g_ptr_array_index(list, 0))->path, a->path);
    assert_int_equal(bad->len, 3);
    g_autoptr(GString) all = g_string_new(NULL);
    for (guint i = 0; i < bad->len; i++)
        g_string_append_printf(all, "%s\n", (const char *)g_ptr_array_index(bad, i));
    assert_non_null(strstr(all->str, "55-5.json"));
    assert_non_null(strstr(all->str, "66-6.json"));
    assert_non_null(strstr(all->str, "77-7.json"));
    assert_non_null(strstr(all->str, "symbolic link"));
}

static void
test_new_errors(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpJournal) j = NULL;
    g_autofree char *file = g_build_filename(f->state, "a-file", NULL);
    g_autofree char *under = g_build_filename(file, "experiments", NULL);
    g_autofree char *self = g_strdup_printf("%d", (int)getpid());
    g_autofree char *self_dir = g_build_filename(f->proc, self, NULL);

    /* The state directory cannot be made under a file. */
    sp_test_write(f->state, "a-file", "x");
    j = sp_journal_new(f->host, under, "p", NULL, NULL, &error);
    assert_null(j);
    assert_true(g_error_matches(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO));
    assert_non_null(strstr(error->message, under));
    g_clear_error(&error);
    /* No stat for this process in procfs. */
    sp_test_remove_tree(self_dir);
    j = sp_journal_new(f->host, f->state, "p", NULL, NULL, &error);
    assert_null(j);
    assert_non_null(strstr(error->message, "start time"));
}

/* The state directory is refused when others could plant journals in it. */
static void
test_state_dir_foreign(void **state)
{
    Fixture *f = *state;
    g_autofree char *open_dir = g_build_filename(f->state, "open", NULL);
    g_autofree char *theirs = g_build_filename(f->state, "theirs", NULL);
    g_autofree char *link = g_build_filename(f->state, "link", NULL);
    g_autofree char *fresh = g_build_filename(f->state, "fresh", "experiments", NULL);
    const char *const bad[] = { open_dir, theirs, link };
    struct stat st;

    g_mkdir_with_parents(open_dir, 0700);
    assert_int_equal(chmod(open_dir, 0777), 0);
    g_mkdir_with_parents(theirs, 0700);
    assert_int_equal(chown(theirs, 65534, 65534), 0);
    assert_int_equal(symlink(f->state, link), 0);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(SpJournal) j = sp_journal_new(f->host, bad[i], "p", NULL, NULL, &error);
        assert_null(j);
        assert_true(g_error_matches(error, SP_JOURNAL_ERROR, SP_JOURNAL_ERROR_IO));
        assert_non_null(strstr(error->message, bad[i]));
    }
    /* A new one is made 0700. */
    g_autoptr(GError) error = NULL;
    g_autoptr(SpJournal) ok = sp_journal_new(f->host, fresh, "p", NULL, NULL, &error);
    assert_non_null(ok);
    assert_int_equal(stat(fresh, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pid_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
        cmocka_unit_test(test_hostile_fields),
        cmocka_unit_test_setup_teardown(test_save_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_skips_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_dir_foreign, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
