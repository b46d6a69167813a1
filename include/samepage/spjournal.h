/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spjournal.h: what a running experiment has created, kept on disk
 *
 * An experiment changes the host in ways that outlive its process: libvirt
 * domain definitions, qcow2 overlays, KSM knobs.  It tears them down itself
 * on success, failure and SIGINT/SIGTERM/SIGHUP, but not when it is killed
 * (SIGKILL, OOM, power loss of the shell).  So it keeps a journal: a JSON
 * file per experiment in the state directory, rewritten atomically the
 * moment something is created or removed, and deleted once teardown left
 * nothing.  A journal whose owner process is gone names exactly what to
 * undo (SpCleanup); one whose owner is alive means an experiment is
 * running, and KSM, one per kernel, cannot host a second.
 */
#pragma once

#include <sys/types.h>
#include <glib.h>

#include "samepage/sphost.h"
#include "samepage/spksm.h"

G_BEGIN_DECLS

#define SP_JOURNAL_ERROR (sp_journal_error_quark())
GQuark sp_journal_error_quark(void);

typedef enum {
    SP_JOURNAL_ERROR_IO,       /* the state directory or a file cannot be used */
    SP_JOURNAL_ERROR_PARSE,    /* a journal that is not what we write */
} SpJournalErrorCode;

/* The kernel's largest pid_max (PID_MAX_LIMIT on 64-bit): a journal's pids
 * are 1 .. this (0 for a QEMU pid not known yet). */
#define SP_JOURNAL_PID_MAX 4194304

typedef struct {
    char *name;
    char *uuid;
    char *overlay;                   /* the qcow2 overlay file, or NULL */
    pid_t qemu_pid;                  /* 0 until known */
    gboolean defined;                /* the definition exists in libvirt */
} SpJournalDomain;

typedef struct {
    char *path;                      /* the journal file */
    pid_t owner_pid;
    guint64 owner_start;             /* /proc/PID/stat starttime, clock ticks */
    char *boot_id;                   /* /proc/sys/kernel/random/boot_id */
    gint64 started;                  /* wall clock, us */
    char *plan;                      /* the plan's name */
    char *uri;                       /* libvirt */
    char *output_dir;
    char *overlay_dir;               /* made by the experiment: removed when empty */
    gboolean ksm_changed;            /* ksm_before is what to restore */
    SpKsmState ksm_before;
    GArray *domains;                 /* SpJournalDomain */
} SpJournal;

/* The owner is this process, on this boot. */
SpJournal *sp_journal_new(const SpHost *host, const char *dir, const char *plan,
                          const char *uri, const char *output_dir, GError **error);
void sp_journal_free(SpJournal *j);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpJournal, sp_journal_free)

SpJournalDomain *sp_journal_add_domain(SpJournal *j, const char *name, const char *uuid,
                                       const char *overlay);
SpJournalDomain *sp_journal_find_domain(SpJournal *j, const char *uuid);
void sp_journal_remove_domain(SpJournal *j, const char *uuid);

/* Rewrite the file: a new 0600 temporary file in the same directory
 * (O_EXCL, O_NOFOLLOW), fsync, rename. */
gboolean sp_journal_save(const SpJournal *j, GError **error);
/* Delete the file; a missing file is no error. */
gboolean sp_journal_delete(const SpJournal *j, GError **error);

char *sp_journal_to_string(const SpJournal *j);
SpJournal *sp_journal_parse(const char *text, const char *path, GError **error);
SpJournal *sp_journal_load(const char *path, GError **error);

/* Every journal in @dir (a missing directory has none), oldest first.
 * Files that do not parse are an error naming them. */
GPtrArray *sp_journal_list(const char *dir, GError **error);
/* The same, but a file that is not a good journal is skipped and
 * described in @bad (strings); NULL only if @dir cannot be read. */
GPtrArray *sp_journal_list_all(const char *dir, GPtrArray **bad, GError **error);

/* A domain name the runner makes ("sp-" and [a-z0-9-]). */
gboolean sp_journal_domain_name_ok(const char *name);
/* @overlay is exactly @overlay_dir/@name.qcow2, normalized absolute paths. */
gboolean sp_journal_overlay_ok(const char *overlay_dir, const char *name, const char *overlay);

typedef enum {
    SP_JOURNAL_OWNER_ALIVE,          /* the experiment runs */
    SP_JOURNAL_OWNER_GONE,           /* killed on this boot */
    SP_JOURNAL_OWNER_OTHER_BOOT,     /* from before a reboot */
} SpJournalOwner;

SpJournalOwner sp_journal_owner(const SpJournal *j, const SpHost *host);

/* Helpers over procfs, for the owner's identity. */
gboolean sp_journal_pid_start(const SpHost *host, pid_t pid, guint64 *start);
char *sp_journal_boot_id(const SpHost *host);

G_END_DECLS
