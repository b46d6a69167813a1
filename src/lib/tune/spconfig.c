/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spconfig.c: samepaged's configuration file
 *
 * GKeyFile reads the values; a first pass of our own over the lines knows
 * where each group and key is, so that every error, from a stray line to a
 * value out of range, names FILE:LINE (GKeyFile's own messages carry no
 * line number).  Nothing is applied here: the daemon validates the KSM
 * knobs against the running kernel before writing any.
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-config"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "samepage/spconfig.h"
#include "samepage/splibvirt.h"
#include "samepage/sppolicy.h"

G_DEFINE_QUARK(sp-config-error-quark, sp_config_error)

/* Keys of each group; [ksm] takes the KSM knob names besides these. */
static const struct {
    const char *group;
    const char *const keys[4];
} known[] = {
    { "libvirt", { "uri" } },
    { "policy", { "merge" } },
    { "trust", { "allow_mixing", "default_group" } },
    { "daemon", { "socket" } },
    { "metrics", { "listen", "textfile" } },
    { "controller", { "mode", "max_ksmd_cpu", "stop_above_available" } },
    { "model", { "max_cpu" } },
    { "ksm", { "restore_at_exit" } },
};

SpConfig *
sp_config_new_default(void)
{
    SpConfig *cfg = g_new0(SpConfig, 1);

    cfg->libvirt_uri = g_strdup("qemu:///system");
    cfg->merge_default = TRUE;
    cfg->default_group = g_strdup("default");
    cfg->mode = SP_CONTROL_STATIC;
    cfg->max_ksmd_cpu = 25;
    cfg->model_max_cpu = 2;
    cfg->ksm_settings = g_array_new(FALSE, FALSE, sizeof(SpKsmSetting));
    cfg->ksm_lines = g_array_new(FALSE, FALSE, sizeof(guint));
    cfg->restore_at_exit = TRUE;
    return cfg;
}

void
sp_config_free(SpConfig *cfg)
{
    if (!cfg)
        return;
    g_free(cfg->path);
    g_free(cfg->libvirt_uri);
    g_free(cfg->default_group);
    g_free(cfg->socket_path);
    g_free(cfg->metrics_listen);
    g_free(cfg->metrics_textfile);
    g_array_unref(cfg->ksm_settings);
    g_array_unref(cfg->ksm_lines);
    g_free(cfg);
}

static gboolean
group_known(const char *group, int *index)
{
    for (guint i = 0; i < G_N_ELEMENTS(known); i++) {
        if (strcmp(known[i].group, group) == 0) {
            *index = (int)i;
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean
key_known(int gi, const char *key)
{
    SpKsmKey k;

    for (guint i = 0; i < G_N_ELEMENTS(known[gi].keys) && known[gi].keys[i]; i++) {
        if (strcmp(known[gi].keys[i], key) == 0)
            return TRUE;
    }
    return strcmp(known[gi].group, "ksm") == 0 && sp_ksm_key_from_name(key, &k);
}

/* The lines: where each "group\nkey" is, and the syntax and names checked.
 * Fills @lines ("group\nkey" -> line). */
static gboolean
scan_lines(const char *data, gsize len, const char *path, GHashTable *lines, GError **error)
{
    g_autofree char *text = g_strndup(data, len);
    g_auto(GStrv) v = g_strsplit(text, "\n", -1);
    g_autofree char *group = NULL;
    int gi = -1;

    if (memchr(data, '\0', len)) {
        g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_SYNTAX,
                    "%s: contains a NUL byte", path);
        return FALSE;
    }
    for (guint i = 0; v[i]; i++) {
        guint line = i + 1;
        g_autofree char *l = g_strstrip(g_strdup(v[i]));
        char *eq;

        if (!*l || l[0] == '#')
            continue;
        if (l[0] == '[') {
            size_t n = strlen(l);
            if (n < 3 || l[n - 1] != ']') {
                g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_SYNTAX,
                            "%s:%u: a group is [NAME] alone on its line", path, line);
                return FALSE;
            }
            g_free(group);
            group = g_strndup(l + 1, n - 2);
            if (!group_known(group, &gi)) {
                g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_UNKNOWN,
                            "%s:%u: unknown group [%s] (samepaged(8) lists them)", path,
                            line, group);
                return FALSE;
            }
            if (g_hash_table_contains(lines, group)) {
                g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_SYNTAX,
                            "%s:%u: group [%s] repeated (first on line %u)", path, line, group,
                            GPOINTER_TO_UINT(g_hash_table_lookup(lines, group)));
                return FALSE;
            }
            g_hash_table_insert(lines, g_strdup(group), GUINT_TO_POINTER(line));
            continue;
        }
        eq = strchr(l, '=');
        if (!eq || eq == l) {
            g_autofree char *shown = g_strescape(l, NULL);
            g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_SYNTAX,
                        "%s:%u: \"%.60s\" is not KEY = VALUE, [GROUP] or a # comment", path,
                        line, shown);
            return FALSE;
        }
        *eq = '\0';
        g_strchomp(l);
        if (!group) {
            g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_SYNTAX,
                        "%s:%u: key %s before any [group]", path, line, l);
            return FALSE;
        }
        if (!key_known(gi, l)) {
            g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_UNKNOWN,
                        "%s:%u: unknown key %s in [%s]", path, line, l, group);
            return FALSE;
        }
        {
            g_autofree char *id = g_strdup_printf("%s\n%s", group, l);
            if (g_hash_table_contains(lines, id)) {
                g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_SYNTAX,
                            "%s:%u: %s repeated in [%s] (first on line %u)", path, line, l,
                            group, GPOINTER_TO_UINT(g_hash_table_lookup(lines, id)));
                return FALSE;
            }
            g_hash_table_insert(lines, g_steal_pointer(&id), GUINT_TO_POINTER(line));
        }
    }
    return TRUE;
}

typedef struct {
    GKeyFile *kf;
    GHashTable *lines;
    const char *path;
} Reader;

static guint
line_of(const Reader *r, const char *group, const char *key)
{
    g_autofree char *id = g_strdup_printf("%s\n%s", group, key);
    return GPOINTER_TO_UINT(g_hash_table_lookup(r->lines, id));
}

/* The value as written (trimmed), or NULL when the key is absent. */
static char *
get(const Reader *r, const char *group, const char *key)
{
    char *v = g_key_file_get_value(r->kf, group, key, NULL);
    return v ? g_strstrip(v) : NULL;
}

static gboolean G_GNUC_PRINTF(5, 6)
bad(const Reader *r, const char *group, const char *key, GError **error, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *why = NULL;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_VALUE, "%s:%u: [%s] %s: %s", r->path,
                line_of(r, group, key), group, key, why);
    return FALSE;
}

static gboolean
get_bool(const Reader *r, const char *group, const char *key, gboolean *out, GError **error)
{
    g_autofree char *v = get(r, group, key);

    if (!v)
        return TRUE;
    if (!g_ascii_strcasecmp(v, "yes") || !g_ascii_strcasecmp(v, "true") || !strcmp(v, "1"))
        *out = TRUE;
    else if (!g_ascii_strcasecmp(v, "no") || !g_ascii_strcasecmp(v, "false") || !strcmp(v, "0"))
        *out = FALSE;
    else
        return bad(r, group, key, error, "\"%s\" is not yes or no", v);
    return TRUE;
}

static gboolean
get_percent(const Reader *r, const char *group, const char *key, double min, double *out,
            GError **error)
{
    g_autofree char *v = get(r, group, key);
    char *end = NULL;
    double d;

    if (!v)
        return TRUE;
    errno = 0;
    d = g_ascii_strtod(v, &end);
    if (end && *end == '%')
        end++;
    if (!*v || errno || !end || *end || !(d >= min && d <= 100))
        return bad(r, group, key, error, "\"%s\" is not a percentage in [%g, 100]", v, min);
    *out = d;
    return TRUE;
}

static gboolean
get_string(const Reader *r, const char *group, const char *key, gboolean absolute_path,
           char **out, GError **error)
{
    g_autofree char *v = get(r, group, key);

    if (!v)
        return TRUE;
    if (!*v)
        return bad(r, group, key, error, "empty value");
    if (absolute_path && v[0] != '/')
        return bad(r, group, key, error, "\"%s\" is not an absolute path", v);
    g_free(*out);
    *out = g_steal_pointer(&v);
    return TRUE;
}

gboolean
sp_config_parse_listen(const char *text, char **host, guint16 *port)
{
    const char *colon;
    g_autofree char *h = NULL;
    char *end = NULL;
    guint64 p;

    if (!text)
        return FALSE;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || close == text + 1)
            return FALSE;
        h = g_strndup(text + 1, close - text - 1);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || colon == text || memchr(text, ':', colon - text))
            return FALSE;
        h = g_strndup(text, colon - text);
    }
    if (!g_ascii_isdigit(colon[1]))
        return FALSE;
    p = g_ascii_strtoull(colon + 1, &end, 10);
    if (*end || p == 0 || p > 65535)
        return FALSE;
    if (host)
        *host = g_steal_pointer(&h);
    if (port)
        *port = (guint16)p;
    return TRUE;
}

/* samepaged marks and measures guests through this host's /proc and KSM:
 * a URI of another host is refused here, not found out guest by guest.  An
 * alias of libvirt.conf is not a URI, and is left to libvirt. */
static gboolean
check_libvirt_uri(const Reader *r, const char *uri, GError **error)
{
    g_autofree char *why = NULL;
    SpLibvirtPlace place;

    if (!sp_libvirt_uri_classify(uri, &place, &why, NULL) || place == SP_LIBVIRT_PLACE_LOCAL)
        return TRUE;
    return bad(r, "libvirt", "uri", error,
               "%s is remote (%s): samepaged works on the guests of this host (their /proc, "
               "KSM's sysfs); run it on that host", uri, why);
}

static gboolean
read_values(const Reader *r, SpConfig *cfg, GError **error)
{
    g_autofree char *merge = get(r, "policy", "merge");
    g_autofree char *mode = get(r, "controller", "mode");
    g_auto(GStrv) ksm_keys = NULL;

    if (!get_string(r, "libvirt", "uri", FALSE, &cfg->libvirt_uri, error) ||
        !check_libvirt_uri(r, cfg->libvirt_uri, error))
        return FALSE;
    if (merge) {
        if (!strcmp(merge, "yes"))
            cfg->merge_default = TRUE;
        else if (!strcmp(merge, "no"))
            cfg->merge_default = FALSE;
        else
            return bad(r, "policy", "merge", error,
                       "\"%s\" is not yes or no (required is for a guest's own metadata)",
                       merge);
    }
    if (!get_bool(r, "trust", "allow_mixing", &cfg->allow_mixing, error) ||
        !get_string(r, "trust", "default_group", FALSE, &cfg->default_group, error))
        return FALSE;
    if (!sp_policy_group_valid(cfg->default_group))
        return bad(r, "trust", "default_group", error,
                   "\"%s\" is not a group name (1 to 64 of A-Z a-z 0-9 _ . -)",
                   cfg->default_group);
    if (!get_string(r, "daemon", "socket", TRUE, &cfg->socket_path, error) ||
        !get_string(r, "metrics", "listen", FALSE, &cfg->metrics_listen, error) ||
        !get_string(r, "metrics", "textfile", TRUE, &cfg->metrics_textfile, error))
        return FALSE;
    if (cfg->metrics_listen && !sp_config_parse_listen(cfg->metrics_listen, NULL, NULL))
        return bad(r, "metrics", "listen", error, "\"%s\" is not HOST:PORT",
                   cfg->metrics_listen);
    if (mode && !sp_control_mode_from_name(mode, &cfg->mode))
        return bad(r, "controller", "mode", error,
                   "\"%s\" is not static, ksmtuned, kubevirt, kernel-advisor or samepage", mode);
    if (!get_percent(r, "controller", "max_ksmd_cpu", 0.1, &cfg->max_ksmd_cpu, error) ||
        !get_percent(r, "controller", "stop_above_available", 0, &cfg->stop_above_available,
                     error) ||
        !get_percent(r, "model", "max_cpu", 0.1, &cfg->model_max_cpu, error) ||
        !get_bool(r, "ksm", "restore_at_exit", &cfg->restore_at_exit, error))
        return FALSE;

    ksm_keys = g_key_file_get_keys(r->kf, "ksm", NULL, NULL);
    for (guint i = 0; ksm_keys && ksm_keys[i]; i++) {
        g_autofree char *v = NULL;
        g_autoptr(GError) local = NULL;
        SpKsmSetting s;
        guint line;

        if (!strcmp(ksm_keys[i], "restore_at_exit"))
            continue;
        if (!sp_ksm_key_from_name(ksm_keys[i], &s.key))
            return bad(r, "ksm", ksm_keys[i], error, "not a KSM knob");
        if (!sp_ksm_key_info(s.key)->writable)
            return bad(r, "ksm", ksm_keys[i], error, "a KSM figure, not a knob");
        v = get(r, "ksm", ksm_keys[i]);
        if (!sp_ksm_parse_value(s.key, v, &s.value, &local))
            return bad(r, "ksm", ksm_keys[i], error, "%s", local->message);
        if (s.key == SP_KSM_RUN && s.value == 2)
            return bad(r, "ksm", ksm_keys[i], error,
                       "run = 2 unmerges every page at each start; not a setting to keep");
        line = line_of(r, "ksm", ksm_keys[i]);
        g_array_append_val(cfg->ksm_settings, s);
        g_array_append_val(cfg->ksm_lines, line);
    }
    return TRUE;
}

SpConfig *
sp_config_load_data(const char *data, gsize len, const char *path, GError **error)
{
    g_autoptr(GHashTable) lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(SpConfig) cfg = sp_config_new_default();
    g_autoptr(GError) local = NULL;
    Reader r = { kf, lines, path };

    if (!scan_lines(data, len, path, lines, error))
        return NULL;
    if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &local)) {
        g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_SYNTAX, "%s: %s", path,
                    local->message);
        return NULL;
    }
    if (!read_values(&r, cfg, error))
        return NULL;
    cfg->path = g_strdup(path);
    return g_steal_pointer(&cfg);
}

SpConfig *
sp_config_load(const char *path, GError **error)
{
    g_autofree char *data = NULL;
    g_autoptr(GError) local = NULL;
    gsize len;

    if (!g_file_get_contents(path, &data, &len, &local)) {
        g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_IO, "%s", local->message);
        return NULL;
    }
    if (len > 1024 * 1024) {
        g_set_error(error, SP_CONFIG_ERROR, SP_CONFIG_ERROR_IO,
                    "%s: %zu bytes: not a configuration file (over 1 MiB)", path, len);
        return NULL;
    }
    return sp_config_load_data(data, len, path, error);
}
