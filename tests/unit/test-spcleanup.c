/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-spcleanup.c: undoing a killed experiment's journal
 *
 * libvirt is its in-process test driver, loaded from a node file that
 * holds the "killed" experiment's running domain; KSM is a fake sysfs;
 * QEMU processes are real children whose command line does (or does not)
 * hold -uuid UUID, so the PID rule is tested on the real /proc.
 */
#include "config.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "samepage/spcleanup.h"
#include "samepage/spksm.h"
#include "sptest.h"

#define UUID_LIVE "11111111-2222-3333-4444-555555555555"
#define UUID_GONE "66666666-7777-8888-9999-000000000000"

typedef struct {
    char *sysfs;                     /* fake sysfs (KSM) */
    char *tmp;                       /* overlays, output, node file, journals */
    char *state;
    char *uri;                       /* test:///TMP/node.xml */
    SpHost *host;                    /* fake sysfs, real /proc */
    GString *log;
    GPid children[2];
} Fixture;

static void
collect(const SpJournal *j, const char *line, gpointer data)
{
    Fixture *f = data;

    (void)j;
    g_string_append_printf(f->log, "%s\n", line);
}

/* A process that looks like QEMU of @uuid (or of nothing when NULL). */
static GPid
spawn_fake_qemu(const char *uuid)
{
    const char *argv[] = { "/bin/sh", "-c", "while :; do sleep 0.2; done", "qemu-system-x86_64",
                           uuid ? "-uuid" : "-name", uuid ? uuid : "other", NULL };
    GPid pid = 0;
    g_autoptr(GError) error = NULL;

    assert_true(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                              &pid, &error));
    return pid;
}

/* The pid of a process that has exited: an owner that was killed. */
static pid_t
dead_pid(void)
{
    const char *argv[] = { "/bin/true", NULL };
    GPid pid = 0;
    int status;

    assert_true(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                              &pid, NULL));
    waitpid(pid, &status, 0);
    return pid;
}

static gboolean
alive(GPid pid)
{
    int status;
    /* Reap it if it died, so that kill(0) tells the truth. */
    if (waitpid(pid, &status, WNOHANG) == pid)
        return FALSE;
    return kill(pid, 0) == 0;
}

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    g_autofree char *node = NULL;

    f->sysfs = sp_test_tree_new("sysfs-6.18");
    f->tmp = g_dir_make_tmp("samepage-cleanup-XXXXXX", NULL);
    f->state = g_build_filename(f->tmp, "state", NULL);
    f->host = sp_host_new_with_roots(f->sysfs, "/proc");
    f->log = g_string_new(NULL);
    node = g_strdup_printf(
        "<node>\n"
        "  <domain type='test'>\n"
        "    <name>sp-study-1-abc-1-1</name>\n"
        "    <uuid>" UUID_LIVE "</uuid>\n"
        "    <memory unit='MiB'>64</memory>\n"
        "    <os><type>hvm</type></os>\n"
        "  </domain>\n"
        "</node>\n");
    sp_test_write(f->tmp, "node.xml", node);
    f->uri = g_strdup_printf("test://%s/node.xml", f->tmp);
    *state = f;
    return 0;
}

static void
reap_children(Fixture *f)
{
    for (gsize i = 0; i < G_N_ELEMENTS(f->children); i++) {
        if (f->children[i] > 0) {
            kill(f->children[i], SIGKILL);
            waitpid(f->children[i], NULL, 0);
        }
        f->children[i] = 0;
    }
}

static int
teardown(void **state)
{
    Fixture *f = *state;

    reap_children(f);
    sp_test_remove_tree(f->sysfs);
    sp_test_remove_tree(f->tmp);
    sp_host_free(f->host);
    g_string_free(f->log, TRUE);
    g_free(f->sysfs);
    g_free(f->tmp);
    g_free(f->state);
    g_free(f->uri);
    g_free(f);
    return 0;
}

/* The journal of an experiment killed while sampling: one guest running
 * (in libvirt and as a process), one already gone whose pid now belongs to
 * an unrelated process, overlays, an output directory without results,
 * and KSM at the plan's knobs. */
static SpJournal *
killed_experiment(Fixture *f, gboolean ksm)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *proc_stat = NULL;
    g_autoptr(SpHost) real = sp_host_new();
    g_autoptr(SpJournal) j = NULL;
    g_autofree char *overlays = g_build_filename(f->tmp, "overlays", NULL);
    g_autofree char *out = g_build_filename(f->tmp, "out", "run-01-2vm", NULL);
    g_autofree char *ov1 = g_build_filename(overlays, "sp-study-1-abc-1-1.qcow2", NULL);
    g_autofree char *ov2 = g_build_filename(overlays, "sp-study-1-abc-1-2.qcow2", NULL);
    SpJournalDomain *d;
    SpKsmSetting plan[] = { { SP_KSM_PAGES_TO_SCAN, 1000 }, { SP_KSM_SLEEP_MILLISECS, 10 },
                            { SP_KSM_RUN, 1 } };

    j = sp_journal_new(real, f->state, "study-1", f->uri, NULL, &error);
    assert_non_null(j);
    j->owner_pid = dead_pid();
    g_free(j->path);
    j->path = g_strdup_printf("%s/%d-1.json", f->state, (int)j->owner_pid);
    j->output_dir = g_build_filename(f->tmp, "out", NULL);
    j->overlay_dir = g_strdup(overlays);
    g_mkdir_with_parents(overlays, 0755);
    g_mkdir_with_parents(out, 0755);
    sp_test_write(overlays, "sp-study-1-abc-1-1.qcow2", "qcow2");
    f->children[0] = spawn_fake_qemu(UUID_LIVE);
    f->children[1] = spawn_fake_qemu(NULL);
    d = sp_journal_add_domain(j, "sp-study-1-abc-1-1", UUID_LIVE, ov1);
    d->defined = TRUE;
    d->qemu_pid = f->children[0];
    d = sp_journal_add_domain(j, "sp-study-1-abc-1-2", UUID_GONE, ov2);
    d->defined = TRUE;
    d->qemu_pid = f->children[1];
    if (ksm) {
        j->ksm_changed = TRUE;
        assert_true(sp_ksm_read(f->host, &j->ksm_before, &error));
        assert_true(sp_ksm_apply(f->host, plan, G_N_ELEMENTS(plan), &error));
    }
    assert_true(sp_journal_save(j, &error));
    /* The child needs a moment to exec before its cmdline shows -uuid. */
    for (int i = 0; i < 100; i++) {
        g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int)f->children[0]);
        g_autofree char *cmd = NULL;
        gsize len;
        if (g_file_get_contents(path, &cmd, &len, NULL) && memmem(cmd, len, UUID_LIVE, 36))
            break;
        g_usleep(10000);
    }
    return g_steal_pointer(&j);
}

static void
test_clean(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = killed_experiment(f, TRUE);
    g_autoptr(GError) error = NULL;
    g_autofree char *note = NULL;
    SpCleanupOptions opt = { NULL, FALSE };
    guint cleaned = 99, running = 99;

    assert_true(sp_cleanup_dir(f->host, f->state, &opt, collect, f, &cleaned, &running, &error));
    assert_null(error);
    assert_int_equal(cleaned, 1);
    assert_int_equal(running, 0);
    /* libvirt: the live domain destroyed and undefined, by UUID. */
    assert_non_null(strstr(f->log->str, "destroyed domain sp-study-1-abc-1-1\n"));
    assert_non_null(strstr(f->log->str, "undefined domain sp-study-1-abc-1-1\n"));
    assert_null(strstr(f->log->str, "domain sp-study-1-abc-1-2"));
    /* Its QEMU process stopped by PID; the unrelated one left alone. */
    assert_false(alive(f->children[0]));
    assert_true(alive(f->children[1]));
    assert_null(strstr(f->log->str, "of sp-study-1-abc-1-2"));
    /* Overlays and their directory; the output marked incomplete. */
    assert_false(g_file_test(j->overlay_dir, G_FILE_TEST_EXISTS));
    note = sp_test_read(j->output_dir, "INCOMPLETE");
    assert_non_null(strstr(note, "\"study-1\""));
    assert_non_null(strstr(note, "killed"));
    /* KSM: back to the journal's knobs, run last. */
    g_autofree char *pts = sp_test_read(f->sysfs, "kernel/mm/ksm/pages_to_scan");
    g_autofree char *sleep = sp_test_read(f->sysfs, "kernel/mm/ksm/sleep_millisecs");
    g_autofree char *run = sp_test_read(f->sysfs, "kernel/mm/ksm/run");
    assert_string_equal(pts, "100");
    assert_string_equal(sleep, "20");
    assert_string_equal(run, "0");
    assert_non_null(strstr(f->log->str, "restored the KSM knobs: pages_to_scan=100 "
                                        "sleep_millisecs=20 run=0"));
    /* The journal is gone; a second clean finds nothing. */
    assert_false(g_file_test(j->path, G_FILE_TEST_EXISTS));
    assert_true(sp_cleanup_dir(f->host, f->state, &opt, collect, f, &cleaned, &running, &error));
    assert_int_equal(cleaned, 0);
}

static void
test_dry_run(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = killed_experiment(f, TRUE);
    g_autoptr(GError) error = NULL;
    SpCleanupOptions opt = { NULL, TRUE };
    g_autofree char *pts = NULL;

    assert_true(sp_cleanup_journal(f->host, j, &opt, collect, f, &error));
    assert_non_null(strstr(f->log->str, "would destroy domain sp-study-1-abc-1-1"));
    assert_non_null(strstr(f->log->str, "would stop QEMU pid"));
    assert_non_null(strstr(f->log->str, "would unmerge (run=2) and restore the KSM knobs:"));
    assert_non_null(strstr(f->log->str, "would write"));
    assert_null(strstr(f->log->str, "\ndestroyed"));
    assert_true(alive(f->children[0]));
    assert_true(g_file_test(j->path, G_FILE_TEST_EXISTS));
    assert_true(g_file_test(j->overlay_dir, G_FILE_TEST_IS_DIR));
    pts = sp_test_read(f->sysfs, "kernel/mm/ksm/pages_to_scan");
    assert_string_equal(pts, "1000");
}

static void
test_libvirt_gone(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = killed_experiment(f, FALSE);
    g_autoptr(SpJournal) kept = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *sock = g_build_filename(f->tmp, "no-such-socket", NULL);
    g_autofree char *uri = g_strdup_printf("qemu+unix:///system?socket=%s", sock);
    SpCleanupOptions opt = { uri, FALSE };

    assert_false(sp_cleanup_journal(f->host, j, &opt, collect, f, &error));
    assert_true(g_error_matches(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_LEFT));
    /* It names what is left, where, and what to do. */
    assert_non_null(strstr(error->message, "domain sp-study-1-abc-1-1 is still defined"));
    assert_non_null(strstr(error->message, "domain sp-study-1-abc-1-2 is still defined"));
    assert_non_null(strstr(error->message, uri));
    assert_non_null(strstr(error->message, "start libvirtd"));
    assert_non_null(strstr(error->message, j->path));
    /* What could be done without libvirt was done: the process, by PID. */
    assert_false(alive(f->children[0]));
    assert_true(alive(f->children[1]));
    /* The journal is kept, with both domains still named. */
    kept = sp_journal_load(j->path, &error);
    assert_non_null(kept);
    assert_int_equal(kept->domains->len, 2);
    /* A dry run says what it could not undo. */
    SpCleanupOptions dry = { uri, TRUE };
    g_string_truncate(f->log, 0);
    assert_true(sp_cleanup_journal(f->host, kept, &dry, collect, f, &error));
    assert_non_null(strstr(f->log->str, "cannot be undone now: domain sp-study-1-abc-1-2 is still defined"));
}

static void
test_running_left_alone(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) dead = killed_experiment(f, TRUE);
    g_autoptr(SpJournal) live = NULL;
    g_autoptr(SpHost) real = sp_host_new();
    g_autoptr(GError) error = NULL;
    SpCleanupOptions opt = { NULL, FALSE };
    guint cleaned = 0, running = 0;
    g_autofree char *pts = NULL;

    /* This process is a running experiment. */
    live = sp_journal_new(real, f->state, "running", f->uri, NULL, &error);
    assert_non_null(live);
    sp_journal_add_domain(live, "sp-running-1", UUID_LIVE, NULL)->defined = TRUE;
    assert_true(sp_journal_save(live, &error));

    assert_true(sp_cleanup_dir(f->host, f->state, &opt, collect, f, &cleaned, &running, &error));
    assert_int_equal(cleaned, 1);
    assert_int_equal(running, 1);
    assert_true(g_file_test(live->path, G_FILE_TEST_EXISTS));
    assert_false(g_file_test(dead->path, G_FILE_TEST_EXISTS));
    /* The running experiment owns KSM now: the dead one's knobs stay. */
    assert_non_null(strstr(f->log->str, "KSM left as it is: another experiment is running"));
    pts = sp_test_read(f->sysfs, "kernel/mm/ksm/pages_to_scan");
    assert_string_equal(pts, "1000");
    /* And a running experiment's journal is refused when named alone. */
    assert_false(sp_cleanup_journal(f->host, live, &opt, collect, f, &error));
    assert_true(g_error_matches(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_RUNNING));
}

static void
test_other_boot(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = killed_experiment(f, TRUE);
    g_autoptr(GError) error = NULL;
    SpCleanupOptions opt = { NULL, FALSE };
    g_autofree char *pts = NULL;

    g_free(j->boot_id);
    j->boot_id = g_strdup("00000000-0000-0000-0000-000000000000");
    assert_true(sp_cleanup_journal(f->host, j, &opt, collect, f, &error));
    assert_non_null(strstr(f->log->str, "KSM left as it is: the host rebooted"));
    pts = sp_test_read(f->sysfs, "kernel/mm/ksm/pages_to_scan");
    assert_string_equal(pts, "1000");
    assert_non_null(strstr(f->log->str, "undefined domain sp-study-1-abc-1-1"));
}

/*
 * The journal's pid now belongs to a process of another user that carries
 * the domain's -uuid (anyone can start one): it is left alone.  Needs root
 * to start a process as another user.
 */
static void
test_foreign_process_spared(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = NULL;
    g_autoptr(GError) error = NULL;
    SpCleanupOptions opt = { NULL, FALSE };
    pid_t foreign;

    if (geteuid() != 0) {
        print_message("skipped: starting a process as another user needs root\n");
        skip();
    }
    j = killed_experiment(f, FALSE);
    foreign = fork();
    assert_true(foreign >= 0);
    if (foreign == 0) {
        if (setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0)
            execl("/bin/sh", "/bin/sh", "-c", "while :; do sleep 0.2; done", "qemu-system-x86_64",
                  "-uuid", UUID_LIVE, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int)foreign);
        g_autofree char *cmd = NULL;
        gsize len;
        if (g_file_get_contents(path, &cmd, &len, NULL) && memmem(cmd, len, UUID_LIVE, 36))
            break;
        g_usleep(10000);
    }
    g_array_index(j->domains, SpJournalDomain, 0).qemu_pid = foreign;

    sp_cleanup_journal(f->host, j, &opt, collect, f, &error);
    assert_true(alive(foreign));
    assert_null(strstr(f->log->str, "stopped QEMU pid"));
    kill(foreign, SIGKILL);
    waitpid(foreign, NULL, 0);
}

static void
test_bad_journal(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    SpCleanupOptions opt = { NULL, FALSE };

    g_mkdir_with_parents(f->state, 0755);
    sp_test_write(f->state, "1-1.json", "not json");
    assert_false(sp_cleanup_dir(f->host, f->state, &opt, collect, f, NULL, NULL, &error));
    assert_true(g_error_matches(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_JOURNAL));
    assert_non_null(strstr(error->message, "1-1.json"));
}

/* A bad journal (empty, truncated, with a wrapped pid) is skipped and
 * named; the good ones are still cleaned. */
static void
test_bad_journal_skipped(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = killed_experiment(f, FALSE);
    g_autoptr(GError) error = NULL;
    SpCleanupOptions opt = { NULL, FALSE };
    guint cleaned = 0, running = 0;

    sp_test_write(f->state, "1-1.json", "");
    sp_test_write(f->state, "2-2.json", "{ \"version\": 1, \"owner\": {");
    sp_test_write(f->state, "3-3.json", "{\"version\": 1, \"owner\": {\"pid\": 4294967297, "
                                        "\"start_ticks\": 1}, \"started_us\": 5, \"domains\": []}");
    assert_false(sp_cleanup_dir(f->host, f->state, &opt, collect, f, &cleaned, &running, &error));
    assert_true(g_error_matches(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_JOURNAL));
    assert_non_null(strstr(error->message, "1-1.json"));
    assert_non_null(strstr(error->message, "2-2.json"));
    assert_non_null(strstr(error->message, "3-3.json"));
    assert_non_null(strstr(error->message, "\"pid\""));
    /* The good journal was undone all the same. */
    assert_int_equal(cleaned, 1);
    assert_false(g_file_test(j->path, G_FILE_TEST_EXISTS));
    assert_non_null(strstr(f->log->str, "undefined domain sp-study-1-abc-1-1\n"));
    /* The bad ones are left for a human to look at. */
    g_autofree char *bad = g_build_filename(f->state, "2-2.json", NULL);
    assert_true(g_file_test(bad, G_FILE_TEST_EXISTS));
}

/* Only what the experiment made is removed: an overlay is unlinked only as
 * NAME.qcow2 in its own overlay directory, a regular file; a directory
 * swapped for a symlink, a foreign file, a path elsewhere are kept. */
static void
test_foreign_files_kept(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = killed_experiment(f, FALSE);
    g_autoptr(GError) error = NULL;
    SpCleanupOptions opt = { NULL, FALSE };
    g_autofree char *victim = g_build_filename(f->tmp, "victim", NULL);
    g_autofree char *victim_dir = g_build_filename(f->tmp, "elsewhere", NULL);
    g_autofree char *victim_ov = g_build_filename(victim_dir, "sp-study-1-abc-1-1.qcow2", NULL);
    g_autofree char *text = NULL;
    SpJournalDomain *d = &g_array_index(j->domains, SpJournalDomain, 1);

    /* 1. A journal (built in memory) naming a file outside the overlay
     * directory: the file stays, and the journal says what was kept. */
    sp_test_write(f->tmp, "victim", "precious");
    g_free(d->overlay);
    d->overlay = g_strdup(victim);
    assert_false(sp_cleanup_journal(f->host, j, &opt, collect, f, &error));
    assert_true(g_error_matches(error, SP_CLEANUP_ERROR, SP_CLEANUP_ERROR_LEFT));
    assert_non_null(strstr(error->message, victim));
    assert_true(g_file_test(victim, G_FILE_TEST_EXISTS));
    g_clear_error(&error);

    /* 2. The same on disk: the journal is refused as a whole. */
    g_autofree char *raw = g_strdup_printf(
        "{\"version\": 1, \"owner\": {\"pid\": %d, \"start_ticks\": 1}, \"started_us\": 5, "
        "\"overlay_dir\": \"%s/overlays\", \"domains\": [{\"name\": \"sp-x-1-1\", \"uuid\": \""
        UUID_GONE "\", \"overlay\": \"%s\", \"qemu_pid\": 0, \"defined\": false}]}",
        (int)dead_pid(), f->tmp, victim);
    sp_test_remove_tree(f->state);
    g_mkdir_with_parents(f->state, 0700);
    sp_test_write(f->state, "9-9.json", raw);
    assert_false(sp_cleanup_dir(f->host, f->state, &opt, collect, f, NULL, NULL, &error));
    assert_non_null(strstr(error->message, "9-9.json"));
    assert_non_null(strstr(error->message, "\"overlay\""));
    assert_true(g_file_test(victim, G_FILE_TEST_EXISTS));
    g_clear_error(&error);

    /* 3. The overlay directory swapped for a symlink to another directory
     * that holds a file of the same name: nothing there is touched. */
    g_clear_pointer(&j, sp_journal_free);
    reap_children(f);
    sp_test_remove_tree(f->state);
    j = killed_experiment(f, FALSE);
    g_mkdir_with_parents(victim_dir, 0755);
    sp_test_write(victim_dir, "sp-study-1-abc-1-1.qcow2", "not an overlay");
    sp_test_remove_tree(j->overlay_dir);
    assert_int_equal(symlink(victim_dir, j->overlay_dir), 0);
    g_string_truncate(f->log, 0);
    assert_false(sp_cleanup_journal(f->host, j, &opt, collect, f, &error));
    assert_true(g_file_test(victim_ov, G_FILE_TEST_EXISTS));
    assert_non_null(strstr(error->message, "symbolic link"));
    g_clear_error(&error);

    /* 4. A file in the real overlay directory that someone else owns, and
     * one that is a symlink: kept. */
    g_clear_pointer(&j, sp_journal_free);
    reap_children(f);
    sp_test_remove_tree(f->state);
    {
        g_autofree char *ovdir = g_build_filename(f->tmp, "overlays", NULL);
        assert_int_equal(g_unlink(ovdir), 0);
    }
    j = killed_experiment(f, FALSE);
    g_autofree char *ov1 = g_build_filename(j->overlay_dir, "sp-study-1-abc-1-1.qcow2", NULL);
    g_autofree char *ov2 = g_build_filename(j->overlay_dir, "sp-study-1-abc-1-2.qcow2", NULL);
    assert_int_equal(chown(ov1, 65534, 65534), 0);
    assert_int_equal(symlink(victim, ov2), 0);
    assert_false(sp_cleanup_journal(f->host, j, &opt, collect, f, &error));
    assert_true(g_file_test(ov1, G_FILE_TEST_EXISTS));
    assert_non_null(strstr(error->message, ov1));
    assert_non_null(strstr(error->message, ov2));
    text = sp_test_read(f->tmp, "victim");
    assert_string_equal(text, "precious");
}

/* The INCOMPLETE note goes only into an output directory the experiment
 * made: not through a symlink, not into a directory another user owns,
 * and never through a symlink planted at its name. */
static void
test_output_note_safe(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpJournal) j = killed_experiment(f, FALSE);
    g_autoptr(GError) error = NULL;
    SpCleanupOptions opt = { NULL, FALSE };
    g_autofree char *victim = g_build_filename(f->tmp, "victim", NULL);
    g_autofree char *note = g_build_filename(j->output_dir, "INCOMPLETE", NULL);
    g_autofree char *text = NULL;

    sp_test_write(f->tmp, "victim", "precious");
    assert_int_equal(symlink(victim, note), 0);
    assert_true(sp_cleanup_journal(f->host, j, &opt, collect, f, &error));
    text = sp_test_read(f->tmp, "victim");
    assert_string_equal(text, "precious");

    /* Owned by someone else: left alone, and said so. */
    g_clear_pointer(&j, sp_journal_free);
    reap_children(f);
    j = killed_experiment(f, FALSE);
    g_unlink(note);
    assert_int_equal(chown(j->output_dir, 65534, 65534), 0);
    g_string_truncate(f->log, 0);
    assert_true(sp_cleanup_journal(f->host, j, &opt, collect, f, &error));
    assert_false(g_file_test(note, G_FILE_TEST_EXISTS));
    assert_non_null(strstr(f->log->str, "not marked"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_libvirt_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_process_spared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_journal_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_note_safe, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
