/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spcontroller.c: the scan-rate controller's loop
 *
 * Theory of operation
 *
 * An SpController lives on one GMainContext (the thread-default one of
 * whoever starts it, normally samepaged's main loop).  start() takes a
 * snapshot of every KSM knob (what is restored at stop()) and schedules a
 * tick at once.  A tick gathers the host's state (sp_control_gather():
 * sysfs and procfs reads, among them the smaps of every process with a
 * mergeable VMA, which takes milliseconds per guest) in a worker thread,
 * so the context never waits on it; back on the context, it adds what only
 * the owner knows (the model's last prediction and the registered pages it
 * covered, the last guest start, the guests' committed memory), asks
 * SpControl for a decision, applies it (sp_control_apply(): all or
 * nothing, only what changed, never stopping a ksmd it did not start),
 * keeps the decision for status and metrics, tells the owner, and
 * schedules the next tick decision.next_s seconds later (1 s .. 300 s).
 * stop() puts back the knobs it wrote, as found at start, unless someone
 * else changed them since (theirs, then).
 * A tick that fails (KSM unreadable, a write refused) keeps the error for
 * status and tries again 15 s later.  A new prediction or a guest start
 * brings the next tick forward to now; one that comes while a gather is
 * under way is served by that gather's decision, which reads the
 * prediction when it is made.  The gatherer (it remembers ksmd's pid) is
 * the worker's while it runs: a controller stopped or freed meanwhile
 * cancels the gather, whose end then touches nothing but its own, and the
 * gatherer holds its own reference to the SpHost, which the owner may free
 * as soon as the controller is gone (samepaged does, on its way out).
 * sp_controller_tick() does the whole tick at once, in the caller's
 * thread (samepaged --oneshot, tests).
 */
#include "config.h"
#define G_LOG_DOMAIN "samepage-controller"

#include <string.h>

#include <gio/gio.h>

#include "samepage/spcontroller.h"
#include "samepage/spscan.h"
#include "spcontrollerpriv.h"

#define SP_CONTROLLER_RETRY_S 15.0
#define SP_CONTROLLER_MIN_S 1.0
#define SP_CONTROLLER_MAX_S 300.0

struct _SpController {
    const SpHost *host;
    SpControlConfig cfg;
    SpControl *ctl;
    SpControlGatherer *gatherer;   /* NULL while a gather has it */
    GCancellable *gather_cancel;   /* a gather is under way */
    GMainContext *context;
    GSource *timer;
    gboolean running;
    gboolean have_found;
    SpKsmState found;              /* the knobs when the controller started */
    gboolean own_run;              /* it turned ksmd on */
    gboolean dry_run;
    gboolean wrote[SP_KSM_N_KEYS]; /* knobs it wrote, and the last value of each */
    gint64 written[SP_KSM_N_KEYS];

    gboolean have_decision;
    SpControlSnapshot snap;
    SpControlDecision decision;
    SpControlWrites writes;
    char *error;
    guint64 n_decisions;
    guint64 n_errors;
    double peak_cpu_pct;

    gboolean have_prediction;
    guint64 predicted_sharing;
    guint64 prediction_registered;
    double prediction_t;
    double last_guest_start_t;
    guint64 committed_kib;         /* 0: the registered memory */
    gboolean snap_committed_given; /* snap.committed_kib is committed_kib */

    SpControllerNotify notify;
    gpointer notify_data;
    SpControllerClock clock;
    gpointer clock_data;
};

static double
sp_controller_monotonic(gpointer data)
{
    (void)data;
    return (double)g_get_monotonic_time() / G_USEC_PER_SEC;
}

static double
sp_controller_now(const SpController *c)
{
    return c->clock(c->clock_data);
}

/**
 * sp_controller_new:
 * @host: (transfer none): must outlive the controller
 * @cfg: the mode and its settings (sp_control_config_init(), then
 *   `[controller] mode` and `max_ksmd_cpu`)
 */
SpController *
sp_controller_new(const SpHost *host, const SpControlConfig *cfg)
{
    SpController *c = g_new0(SpController, 1);

    c->host = host;
    c->cfg = *cfg;
    c->ctl = sp_control_new(cfg);
    c->gatherer = sp_control_gatherer_new(host);
    c->last_guest_start_t = -1;
    c->peak_cpu_pct = -1;
    c->clock = sp_controller_monotonic;
    return c;
}

/* A gather under way is cancelled: its end frees its gatherer and leaves
 * the controller alone; the controller takes a new gatherer. */
static void
sp_controller_abandon_gather(SpController *c)
{
    if (!c->gather_cancel)
        return;
    g_cancellable_cancel(c->gather_cancel);
    g_clear_object(&c->gather_cancel);
    c->gatherer = sp_control_gatherer_new(c->host);
}

/**
 * sp_controller_free:
 *
 * A controller still running is stopped first (knobs restored); a failed
 * restore is logged, as nobody is left to hand the error to.
 */
void
sp_controller_free(SpController *c)
{
    g_autoptr(GError) error = NULL;

    if (!c)
        return;
    if (c->running && !sp_controller_stop(c, &error))
        g_warning("%s", error->message);
    sp_controller_abandon_gather(c);
    sp_control_free(c->ctl);
    sp_control_gatherer_free(c->gatherer);
    if (c->context)
        g_main_context_unref(c->context);
    g_free(c->error);
    g_free(c);
}

void
sp_controller_set_clock(SpController *c, SpControllerClock clock, gpointer user_data)
{
    c->clock = clock ? clock : sp_controller_monotonic;
    c->clock_data = user_data;
}

/**
 * sp_controller_set_notify:
 * @func: (nullable): called after every tick, in the controller's context
 */
void
sp_controller_set_notify(SpController *c, SpControllerNotify func, gpointer user_data)
{
    c->notify = func;
    c->notify_data = user_data;
}

/**
 * sp_controller_set_dry_run:
 *
 * Decide, but write nothing (samepaged --dry-run): the decisions and the
 * writes they would make are kept as usual.
 */
void
sp_controller_set_dry_run(SpController *c, gboolean dry_run)
{
    c->dry_run = dry_run;
}

static gboolean sp_controller_on_timer(gpointer data);

static void
sp_controller_schedule(SpController *c, double seconds)
{
    if (!c->running)
        return;
    if (c->timer) {
        g_source_destroy(c->timer);
        g_source_unref(c->timer);
    }
    c->timer = g_timeout_source_new((guint)(CLAMP(seconds, 0.0, SP_CONTROLLER_MAX_S) * 1000.0));
    g_source_set_callback(c->timer, sp_controller_on_timer, c, NULL);
    g_source_set_name(c->timer, "samepage scan-rate controller");
    g_source_attach(c->timer, c->context);
}

static gboolean
sp_controller_take_found(SpController *c, GError **error)
{
    g_autoptr(GError) local = NULL;

    if (c->have_found)
        return TRUE;
    if (!sp_ksm_snapshot(c->host, &c->found, &local)) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_GATHER, "%s",
                    local->message);
        return FALSE;
    }
    c->have_found = TRUE;
    return TRUE;
}

/**
 * sp_controller_start:
 * @context: (nullable): where the ticks run; NULL: the thread-default
 *   context of the caller
 *
 * Remembers every KSM knob as found (restored by sp_controller_stop()) and
 * schedules the first tick at once.  Fails when KSM cannot be read.
 */
gboolean
sp_controller_start(SpController *c, GMainContext *context, GError **error)
{
    if (c->running) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_STATE,
                    "the controller is running already");
        return FALSE;
    }
    if (!sp_controller_take_found(c, error))
        return FALSE;
    if (c->context)
        g_main_context_unref(c->context);
    c->context = context ? g_main_context_ref(context) : g_main_context_ref_thread_default();
    c->running = TRUE;
    g_debug("controller started in %s mode", sp_control_mode_name(c->cfg.mode));
    sp_controller_schedule(c, 0);
    return TRUE;
}

static void
sp_controller_set_error(SpController *c, const GError *error)
{
    g_free(c->error);
    c->error = error ? g_strdup(error->message) : NULL;
    if (error)
        c->n_errors++;
}

static gboolean sp_controller_conclude(SpController *c, const SpControlSnapshot *gathered,
                                      const GError *gather_error, GError **error);

/**
 * sp_controller_tick:
 *
 * One gather -> decide -> apply now, whether started or not (samepaged
 * --oneshot); a started controller's next tick follows the decision.  The
 * error (also kept for sp_controller_get_error()) says what failed; a
 * decision made but not applied is kept all the same.  While a gather of
 * the started controller's own is under way it does nothing and says so
 * (SP_CONTROLLER_ERROR_STATE).
 */
gboolean
sp_controller_tick(SpController *c, GError **error)
{
    g_autoptr(GError) local = NULL;
    SpControlSnapshot snap;
    gboolean gathered;

    if (c->gather_cancel) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_STATE,
                    "a tick is under way");
        return FALSE;
    }
    gathered = sp_controller_take_found(c, &local) &&
               sp_control_gather(c->gatherer, sp_controller_now(c), &snap, NULL, &local);
    return sp_controller_conclude(c, gathered ? &snap : NULL, local, error);
}

/* The rest of a tick, on the controller's context: the snapshot gathered
 * (NULL: @gather_error says why there is none) -> decide -> apply. */
static gboolean
sp_controller_conclude(SpController *c, const SpControlSnapshot *gathered,
                       const GError *gather_error, GError **error)
{
    g_autoptr(GError) local = NULL;
    SpControlSnapshot snap;
    SpControlDecision d;
    SpControlWrites w = { 0 };
    gboolean ok = TRUE;

    if (!gathered) {
        sp_controller_set_error(c, gather_error);
        sp_controller_schedule(c, SP_CONTROLLER_RETRY_S);
        if (c->notify)
            c->notify(c, c->notify_data);
        if (error)
            *error = g_error_copy(gather_error);
        return FALSE;
    }
    snap = *gathered;
    if (c->committed_kib)
        snap.committed_kib = c->committed_kib;
    snap.have_prediction = c->have_prediction;
    snap.predicted_sharing = c->predicted_sharing;
    snap.prediction_registered_pages = c->prediction_registered;
    snap.prediction_t = c->prediction_t;
    snap.last_guest_start_t = c->last_guest_start_t;

    sp_control_decide(c->ctl, &snap, &d);
    if (c->dry_run) {
        SpKsmState now;
        gboolean own = c->own_run;
        ok = sp_ksm_read(c->host, &now, &local) &&
             sp_control_writes(&now, &d, own, &w, &local);
    } else {
        ok = sp_control_apply(c->host, &d, &c->own_run, &w, &local);
        for (gsize i = 0; ok && i < w.n_settings; i++) {
            c->wrote[w.settings[i].key] = TRUE;
            c->written[w.settings[i].key] = w.settings[i].value;
        }
    }
    c->snap = snap;
    c->snap_committed_given = c->committed_kib != 0;
    c->decision = d;
    c->writes = w;
    c->have_decision = TRUE;
    c->n_decisions++;
    if (d.ksmd_cpu_pct > c->peak_cpu_pct)
        c->peak_cpu_pct = d.ksmd_cpu_pct;
    sp_controller_set_error(c, ok ? NULL : local);
    g_debug("%s/%s: %s%s", sp_control_mode_name(c->cfg.mode), sp_control_phase_name(d.phase),
            d.reason, w.kept_on ? " (KSM left on: the controller did not turn it on)" : "");
    sp_controller_schedule(c, ok ? CLAMP(d.next_s, SP_CONTROLLER_MIN_S, SP_CONTROLLER_MAX_S)
                                 : SP_CONTROLLER_RETRY_S);
    if (c->notify)
        c->notify(c, c->notify_data);
    if (!ok)
        g_propagate_error(error, g_steal_pointer(&local));
    return ok;
}

typedef struct {
    SpControlGatherer *gatherer;
    double t;
    SpControlSnapshot snap;
} SpControllerGather;

static void
sp_controller_gather_free(SpControllerGather *job)
{
    sp_control_gatherer_free(job->gatherer);
    g_free(job);
}

static void
sp_controller_gather_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
    SpControllerGather *job = data;
    GError *error = NULL;

    (void)source;
    (void)cancel;
    if (sp_control_gather(job->gatherer, job->t, &job->snap, NULL, &error))
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
}

static void
sp_controller_gathered(GObject *source, GAsyncResult *result, gpointer data)
{
    GTask *task = G_TASK(result);
    SpControllerGather *job = g_task_get_task_data(task);
    g_autoptr(GError) gather_error = NULL;
    g_autoptr(GError) error = NULL;
    SpController *c = data;
    gboolean ok;

    (void)source;
    /* stopped or freed meanwhile: @c may be gone, the job is the task's */
    if (g_cancellable_is_cancelled(g_task_get_cancellable(task)))
        return;
    ok = g_task_propagate_boolean(task, &gather_error);
    c->gatherer = g_steal_pointer(&job->gatherer);
    g_clear_object(&c->gather_cancel);
    if (!sp_controller_conclude(c, ok ? &job->snap : NULL, gather_error, &error))
        g_debug("controller: %s", error->message);
}

static gboolean
sp_controller_on_timer(gpointer data)
{
    SpController *c = data;
    g_autoptr(GError) error = NULL;
    SpControllerGather *job;
    GTask *task;

    /* the tick schedules the next one; this source is done */
    g_source_unref(c->timer);
    c->timer = NULL;
    if (c->gather_cancel)
        return G_SOURCE_REMOVE;
    if (!sp_controller_take_found(c, &error)) {
        g_autoptr(GError) again = NULL;
        if (!sp_controller_conclude(c, NULL, error, &again))
            g_debug("controller: %s", again->message);
        return G_SOURCE_REMOVE;
    }
    job = g_new0(SpControllerGather, 1);
    job->gatherer = g_steal_pointer(&c->gatherer);
    job->t = sp_controller_now(c);
    c->gather_cancel = g_cancellable_new();
    /* the task returns to the context the timer fired in */
    g_main_context_push_thread_default(c->context);
    task = g_task_new(NULL, c->gather_cancel, sp_controller_gathered, c);
    g_main_context_pop_thread_default(c->context);
    g_task_set_source_tag(task, sp_controller_on_timer);
    g_task_set_name(task, "samepage scan-rate controller: gather");
    g_task_set_task_data(task, job, (GDestroyNotify)sp_controller_gather_free);
    g_task_run_in_thread(task, sp_controller_gather_thread);
    g_object_unref(task);
    return G_SOURCE_REMOVE;
}

/* Whether @key is still as the controller left it: written by it, and not
 * changed by anyone since.  pages_to_scan also counts as its own when the
 * advisor_mode it wrote is still there (the kernel set pages_to_scan). */
static gboolean
sp_controller_owns(const SpController *c, const SpKsmState *now, SpKsmKey key)
{
    if (c->wrote[key] && now->entry[key].value == c->written[key])
        return TRUE;
    return key == SP_KSM_PAGES_TO_SCAN && sp_controller_owns(c, now, SP_KSM_ADVISOR_MODE);
}

/**
 * sp_controller_stop:
 *
 * No more ticks; the knobs the controller wrote go back to what start()
 * found (sp_ksm_restore()), those someone else changed since stay theirs.
 * ksmd the controller turned on is stopped again (run=0: the merged pages
 * stay merged); found running, it keeps running.  The error names the
 * knobs that could not be restored.
 */
gboolean
sp_controller_stop(SpController *c, GError **error)
{
    g_autoptr(GError) local = NULL;
    SpKsmState now, want;

    if (c->timer) {
        g_source_destroy(c->timer);
        g_source_unref(c->timer);
        c->timer = NULL;
    }
    sp_controller_abandon_gather(c);
    c->running = FALSE;
    if (!c->have_found || c->dry_run)
        return TRUE;
    if (!sp_ksm_read(c->host, &now, &local)) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_RESTORE,
                    "cannot restore the KSM knobs found at start: %s", local->message);
        return FALSE;
    }
    want = c->found;
    for (guint k = 0; k < SP_KSM_N_KEYS; k++) {
        if (sp_ksm_key_info(k)->writable && !sp_controller_owns(c, &now, k))
            want.entry[k] = now.entry[k];
    }
    if (!sp_ksm_restore(c->host, &want, NULL, &local)) {
        g_set_error(error, SP_CONTROLLER_ERROR, SP_CONTROLLER_ERROR_RESTORE,
                    "cannot restore the KSM knobs found at start: %s", local->message);
        return FALSE;
    }
    /* a later start() finds the knobs afresh */
    c->own_run = FALSE;
    c->have_found = FALSE;
    memset(c->wrote, 0, sizeof(c->wrote));
    return TRUE;
}

/**
 * sp_controller_kick:
 *
 * Decide again now (soon: at the context's next iteration).
 */
void
sp_controller_kick(SpController *c)
{
    sp_controller_schedule(c, 0);
}

/**
 * sp_controller_set_prediction:
 * @predicted_sharing: the model's pages_sharing once KSM converges
 * @registered_pages: the pages present in mergeable VMAs that the estimate
 *   covered (the decision treats the prediction as stale when today's
 *   registered pages differ by more than 5%)
 *
 * The prediction is dated now; the next tick comes at once.
 */
void
sp_controller_set_prediction(SpController *c, guint64 predicted_sharing,
                             guint64 registered_pages)
{
    c->have_prediction = TRUE;
    c->predicted_sharing = predicted_sharing;
    c->prediction_registered = registered_pages;
    c->prediction_t = sp_controller_now(c);
    sp_controller_kick(c);
}

void
sp_controller_clear_prediction(SpController *c)
{
    c->have_prediction = FALSE;
    sp_controller_kick(c);
}

/**
 * sp_controller_guest_started:
 *
 * A guest started now: its memory is new sharing to find, and the
 * prediction made before does not cover it.
 */
void
sp_controller_guest_started(SpController *c)
{
    c->last_guest_start_t = sp_controller_now(c);
    sp_controller_kick(c);
}

/**
 * sp_controller_set_committed:
 * @committed_kib: the guests' memory (ksmtuned's "committed"); 0: use the
 *   memory registered with KSM
 */
void
sp_controller_set_committed(SpController *c, guint64 committed_kib)
{
    c->committed_kib = committed_kib;
}

gboolean
sp_controller_is_running(const SpController *c)
{
    return c->running;
}

SpControlMode
sp_controller_get_mode(const SpController *c)
{
    return c->cfg.mode;
}

const SpControlConfig *
sp_controller_get_config(const SpController *c)
{
    return &c->cfg;
}

/* Returns: (nullable): the last decision, NULL before the first. */
const SpControlDecision *
sp_controller_get_decision(const SpController *c)
{
    return c->have_decision ? &c->decision : NULL;
}

/* Returns: (nullable): the snapshot of the last decision. */
const SpControlSnapshot *
sp_controller_get_snapshot(const SpController *c)
{
    return c->have_decision ? &c->snap : NULL;
}

/* Returns: (nullable): the writes of the last decision (made, or in a dry
 * run, that would have been made). */
const SpControlWrites *
sp_controller_get_writes(const SpController *c)
{
    return c->have_decision ? &c->writes : NULL;
}

/* Returns: (nullable): the KSM state found at start. */
const SpKsmState *
sp_controller_get_found(const SpController *c)
{
    return c->have_found ? &c->found : NULL;
}

/* Returns: (nullable): why the last tick failed; NULL when it did not. */
const char *
sp_controller_get_error(const SpController *c)
{
    return c->error;
}

guint64
sp_controller_get_n_decisions(const SpController *c)
{
    return c->n_decisions;
}

guint64
sp_controller_get_n_errors(const SpController *c)
{
    return c->n_errors;
}

/* The highest ksmd CPU (% of one CPU, over the decision's minute) seen; < 0
 * while unknown. */
double
sp_controller_get_peak_cpu_pct(const SpController *c)
{
    return c->peak_cpu_pct;
}

/**
 * sp_controller_to_json:
 *
 * For `samepage status --json`'s "controller": the mode, the budget, the
 * last decision (phase, reason, ksmd CPU %, the knobs in effect after it),
 * the prediction it steered by and the last error.  Keys are present with
 * null values before the first decision.
 */
json_object *
sp_controller_to_json(const SpController *c)
{
    json_object *o = json_object_new_object();
    const SpControlDecision *d = sp_controller_get_decision(c);
    const SpControlSnapshot *s = sp_controller_get_snapshot(c);

    json_object_object_add(o, "mode", json_object_new_string(sp_control_mode_name(c->cfg.mode)));
    json_object_object_add(o, "max_ksmd_cpu", json_object_new_double(c->cfg.max_ksmd_cpu_pct));
    json_object_object_add(o, "running", json_object_new_boolean(c->running));
    json_object_object_add(o, "dry_run", json_object_new_boolean(c->dry_run));
    json_object_object_add(o, "phase", d ? json_object_new_string(sp_control_phase_name(d->phase))
                                         : NULL);
    json_object_object_add(o, "reason", d ? json_object_new_string(d->reason) : NULL);
    json_object_object_add(o, "ksmd_cpu_pct", d && d->ksmd_cpu_pct >= 0
                           ? json_object_new_double(d->ksmd_cpu_pct) : NULL);
    if (d) {
        json_object *k = json_object_new_object();
        gboolean on = d->run == 1 || (s->run && c->writes.kept_on);

        json_object_object_add(k, "run", json_object_new_int(on ? 1 : 0));
        json_object_object_add(k, "pages_to_scan", json_object_new_int64(
                                   d->pages_to_scan ? d->pages_to_scan : s->pages_to_scan));
        json_object_object_add(k, "sleep_millisecs", json_object_new_int64(
                                   d->sleep_ms ? d->sleep_ms : s->sleep_ms));
        json_object_object_add(k, "smart_scan", s->has_smart_scan
                               ? json_object_new_int(d->smart_scan >= 0 ? d->smart_scan
                                                                        : s->smart_scan)
                               : NULL);
        json_object_object_add(o, "knobs", k);
        json_object_object_add(o, "next_s", json_object_new_double(d->next_s));
        json_object_object_add(o, "pages_sharing", json_object_new_int64((gint64)s->pages_sharing));
        json_object_object_add(o, "registered_pages",
                               json_object_new_int64((gint64)s->registered_pages));
        /* what ksmtuned's law counts as committed, and where it came from */
        json_object_object_add(o, "committed_kib", json_object_new_int64((gint64)s->committed_kib));
        json_object_object_add(o, "committed_from",
                               json_object_new_string(c->snap_committed_given ? "guests"
                                                                      : "registered"));
    } else {
        json_object_object_add(o, "knobs", NULL);
    }
    if (c->have_prediction) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "pages_sharing",
                               json_object_new_int64((gint64)c->predicted_sharing));
        json_object_object_add(p, "registered_pages",
                               json_object_new_int64((gint64)c->prediction_registered));
        json_object_object_add(p, "age_s",
                               json_object_new_double(sp_controller_now(c) - c->prediction_t));
        json_object_object_add(o, "prediction", p);
    } else {
        json_object_object_add(o, "prediction", NULL);
    }
    json_object_object_add(o, "decisions", json_object_new_int64((gint64)c->n_decisions));
    json_object_object_add(o, "errors", json_object_new_int64((gint64)c->n_errors));
    json_object_object_add(o, "error", c->error ? json_object_new_string(c->error) : NULL);
    return o;
}
