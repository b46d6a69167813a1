/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spksm.h: the kernel's KSM knobs and figures in sysfs
 *
 * Every file of /sys/kernel/mm/ksm is a key.  Knobs are writable, figures
 * are read-only.  A key the running kernel lacks is "unsupported": reading
 * reports it as such, writing it is refused before anything is written.
 */
#pragma once

#include <glib.h>

#include "samepage/sphost.h"
#include "samepage/spjson.h"

G_BEGIN_DECLS

#define SP_KSM_ERROR (sp_ksm_error_quark())
GQuark sp_ksm_error_quark(void);

typedef enum {
    SP_KSM_ERROR_NOT_BUILT,      /* no KSM directory: kernel without CONFIG_KSM */
    SP_KSM_ERROR_UNKNOWN_KEY,    /* not a KSM sysfs name */
    SP_KSM_ERROR_UNSUPPORTED,    /* a name this kernel lacks */
    SP_KSM_ERROR_READ_ONLY,      /* a figure, not a knob */
    SP_KSM_ERROR_INVALID_VALUE,  /* value does not parse or is out of range */
    SP_KSM_ERROR_CONFLICT,       /* combination refused (e.g. EBUSY rules) */
    SP_KSM_ERROR_IO,             /* read or write failed */
    SP_KSM_ERROR_MEMORY,         /* unmerging needs more than MemAvailable */
    SP_KSM_ERROR_NOT_RESTORED,   /* a restore left knobs (named) as they were */
} SpKsmErrorCode;

/* Keys in the order `samepage ksm` prints them: knobs, then figures. */
typedef enum {
    SP_KSM_RUN,
    SP_KSM_PAGES_TO_SCAN,
    SP_KSM_SLEEP_MILLISECS,
    SP_KSM_MAX_PAGE_SHARING,
    SP_KSM_MERGE_ACROSS_NODES,
    SP_KSM_USE_ZERO_PAGES,
    SP_KSM_STABLE_NODE_CHAINS_PRUNE_MILLISECS,
    SP_KSM_SMART_SCAN,
    SP_KSM_ADVISOR_MODE,
    SP_KSM_ADVISOR_MAX_CPU,
    SP_KSM_ADVISOR_MIN_PAGES_TO_SCAN,
    SP_KSM_ADVISOR_MAX_PAGES_TO_SCAN,
    SP_KSM_ADVISOR_TARGET_SCAN_TIME,
    SP_KSM_PAGES_SHARED,
    SP_KSM_PAGES_SHARING,
    SP_KSM_PAGES_UNSHARED,
    SP_KSM_PAGES_VOLATILE,
    SP_KSM_PAGES_SKIPPED,
    SP_KSM_PAGES_SCANNED,
    SP_KSM_FULL_SCANS,
    SP_KSM_STABLE_NODE_CHAINS,
    SP_KSM_STABLE_NODE_DUPS,
    SP_KSM_KSM_ZERO_PAGES,
    SP_KSM_GENERAL_PROFIT,
    SP_KSM_N_KEYS
} SpKsmKey;

typedef enum {
    SP_KSM_TYPE_UINT,    /* unsigned decimal within [min, max] */
    SP_KSM_TYPE_INT,     /* signed decimal (general_profit) */
    SP_KSM_TYPE_BOOL,    /* 0 or 1 (the kernel also takes y/n on write) */
    SP_KSM_TYPE_ENUM,    /* one of a list; sysfs shows "[cur] other" */
} SpKsmType;

typedef struct {
    const char *name;          /* sysfs file name */
    gboolean writable;         /* knob (TRUE) or figure (FALSE) */
    SpKsmType type;
    gint64 min;                /* range for UINT knobs */
    gint64 max;
    const char *const *choices;/* NULL-terminated, for ENUM */
    const char *help;          /* one line */
} SpKsmKeyInfo;

typedef struct {
    gboolean supported;        /* the file exists on this kernel */
    gint64 value;              /* number, 0/1, or index into choices */
} SpKsmEntry;

typedef struct {
    SpKsmEntry entry[SP_KSM_N_KEYS];
} SpKsmState;

typedef struct {
    SpKsmKey key;
    gint64 value;
} SpKsmSetting;

const SpKsmKeyInfo *sp_ksm_key_info(SpKsmKey key);
gboolean sp_ksm_key_from_name(const char *name, SpKsmKey *key);

gboolean sp_ksm_parse_value(SpKsmKey key, const char *text, gint64 *value, GError **error);
char *sp_ksm_format_value(SpKsmKey key, gint64 value);
gboolean sp_ksm_parse_setting(const char *text, SpKsmSetting *setting, GError **error);

gboolean sp_ksm_read(const SpHost *host, SpKsmState *state, GError **error);
/* A key's value: an enum's choice as a string, else a number. */
json_object *sp_ksm_value_to_json(SpKsmKey key, gint64 value);
/* Every key under its sysfs name: a number, an enum's choice, or null when
 * the kernel lacks it (`samepage ksm --json`). */
json_object *sp_ksm_state_to_json(const SpKsmState *state);
/* What a write changed: [{"key", "before", "after"}] for each setting, the
 * values as sp_ksm_value_to_json() gives them, before null when @before is
 * NULL (`samepage ksm set --json`). */
json_object *sp_ksm_changes_to_json(const SpKsmSetting *settings, gsize n_settings,
                                    const SpKsmState *before, const SpKsmState *after);
gboolean sp_ksm_validate(const SpKsmState *current, const SpKsmSetting *settings,
                         gsize n_settings, GError **error);
gboolean sp_ksm_apply(const SpHost *host, const SpKsmSetting *settings,
                      gsize n_settings, GError **error);

/* The unmerge rule: unmerging (run=2, or unmarking a process) turns @pages
 * merged pages back into copies, so MemAvailable must cover @pages x
 * @page_size + 10%.  The bytes wanted go to @need. */
gboolean sp_ksm_unmerge_check(gint64 pages, guint64 page_size, guint64 mem_available,
                              guint64 *need, GError **error);
/* The rule for run=2 on this host: @state's pages_sharing come back as
 * copies.  Their bytes (pages x the page size) and the host's MemAvailable
 * go to @bytes and @mem_available, whatever the answer. */
gboolean sp_ksm_unmerge_all_check(const SpHost *host, const SpKsmState *state, guint64 *bytes,
                                  guint64 *mem_available, GError **error);
/* Whether @settings write run=2 (unmerge every page on the host). */
gboolean sp_ksm_settings_unmerge(const SpKsmSetting *settings, gsize n_settings);
/* One write of a restore, in the order sp_ksm_restore() makes them. */
typedef struct {
    SpKsmKey key;
    gint64 value;
    const char *blocked;       /* NULL; or why the kernel refuses it now */
} SpKsmRestoreStep;

gboolean sp_ksm_snapshot(const SpHost *host, SpKsmState *snapshot, GError **error);
GArray *sp_ksm_restore_plan(const SpKsmState *snapshot, const SpKsmState *current);
gboolean sp_ksm_restore(const SpHost *host, const SpKsmState *snapshot, GArray **done,
                        GError **error);
/* run=2 (unmerge every page), then sp_ksm_restore(). */
gboolean sp_ksm_unmerge_and_restore(const SpHost *host, const SpKsmState *snapshot,
                                    GArray **done, GError **error);

G_END_DECLS
