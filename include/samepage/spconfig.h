/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spconfig.h: samepaged's configuration file (GKeyFile), parsed and
 * validated whole
 *
 * Every group and key is known; an unknown one, a line that is neither a
 * group, a key = value nor a comment, a repeated key and a bad value are
 * errors naming FILE:LINE.  The defaults are those of samepaged(8).
 */
#pragma once

#include <glib.h>

#include "samepage/spcontrol.h"
#include "samepage/spksm.h"

G_BEGIN_DECLS

#define SP_CONFIG_ERROR (sp_config_error_quark())
GQuark sp_config_error_quark(void);

typedef enum {
    SP_CONFIG_ERROR_IO,         /* the file cannot be read */
    SP_CONFIG_ERROR_SYNTAX,     /* not a group, key = value or comment; repeated key */
    SP_CONFIG_ERROR_UNKNOWN,    /* unknown group or key */
    SP_CONFIG_ERROR_VALUE,      /* a value samepaged does not accept */
} SpConfigErrorCode;

typedef struct {
    char *path;                 /* the file read, or NULL for the defaults */
    /* [libvirt] */
    char *libvirt_uri;          /* uri: qemu:///system */
    /* [policy] */
    gboolean merge_default;     /* merge = yes|no: guests without metadata (yes) */
    /* [trust] */
    gboolean allow_mixing;      /* allow_mixing = no: guests of different groups at once */
    char *default_group;        /* default_group = default: the group of guests naming none */
    /* [daemon] */
    char *socket_path;          /* socket = PATH; NULL: RUNDIR/samepage/samepaged.sock */
    /* [metrics] */
    char *metrics_listen;       /* listen = HOST:PORT; NULL: no HTTP endpoint */
    char *metrics_textfile;     /* textfile = PATH; NULL: no textfile */
    /* [controller] */
    SpControlMode mode;         /* mode = static */
    double max_ksmd_cpu;        /* max_ksmd_cpu = 25 (% of one CPU) */
    double stop_above_available; /* stop_above_available = 0 (% of MemTotal; 0: never) */
    /* [model] */
    double model_max_cpu;       /* max_cpu = 2 (% of one CPU, averaged, for estimates) */
    /* [ksm] */
    GArray *ksm_settings;       /* SpKsmSetting: KNOB = VALUE, applied at start */
    GArray *ksm_lines;          /* guint: the line of each setting */
    gboolean restore_at_exit;   /* restore_at_exit = yes */
} SpConfig;

SpConfig *sp_config_new_default(void);
void sp_config_free(SpConfig *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpConfig, sp_config_free)

/**
 * sp_config_load_data:
 * @data: the file's text
 * @path: its name, for messages
 *
 * Returns: (transfer full): the configuration, defaults for what @data does
 * not set, or NULL with @error naming @path:LINE.
 */
SpConfig *sp_config_load_data(const char *data, gsize len, const char *path, GError **error);
SpConfig *sp_config_load(const char *path, GError **error);

/* Where a listen address HOST:PORT points; FALSE for anything else
 * (IPv6 as [ADDR]:PORT). */
gboolean sp_config_parse_listen(const char *text, char **host, guint16 *port);

G_END_DECLS
