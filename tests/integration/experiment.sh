#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `samepage experiment run` end to end, under a libvirtd this test starts
# itself (virtlogd and libvirtd in the foreground as children, stopped by
# PID; libvirtd on a private socket directory), or the system one if one
# already answers.
#
# 0. Bad input (an unknown key, a VM count of 0, more guest RAM than the
#    host has, a missing image): refused before anything is made.
# 1. A 2-guest experiment of about two minutes: the outputs exist and are
#    consistent (the model's prediction, made before KSM ran, within a few
#    percent of the kernel's converged figures; the census of the guests'
#    frames against their ksm_stat; the sysfs figures at least the guests'),
#    and teardown left no domain, overlay, QEMU process or KSM setting.
# 2. A guest that never becomes ready (boot_timeout=1): a clear error
#    naming the guest and the plan, the data marked incomplete, nothing left.
# 3. SIGINT while sampling: teardown, data kept and marked incomplete.
# 4. SIGKILL while sampling: the journal names the guest and the KSM
#    change; a second experiment is refused while the first runs;
#    `experiment clean --dry-run` changes nothing, `experiment clean`
#    removes the domain, the overlay and the QEMU process, restores the
#    knobs and marks the output INCOMPLETE.
# 5. libvirtd killed while sampling (when the test runs its own): a clear
#    error naming libvirtd, the QEMU process stopped by PID, the data kept
#    and marked incomplete, the definition left behind named; with libvirtd
#    back, `experiment clean` undefines it.
# Every part ends with no journal left in the state directory.
#
# Environment: SP_EXPERIMENT_DURATION (seconds of sampling in part 1,
# default 90).
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"
. "$SP_TOP_SRCDIR/tests/integration/guest-lib.sh"

DURATION=${SP_EXPERIMENT_DURATION:-90}
KNOBS="run pages_to_scan sleep_millisecs max_page_sharing merge_across_nodes use_zero_pages
       stable_node_chains_prune_millisecs smart_scan advisor_mode advisor_max_cpu
       advisor_min_pages_to_scan advisor_max_pages_to_scan advisor_target_scan_time"

sp_ksm_save
for tool in libvirtd virtlogd virsh jq socat; do
    command -v "$tool" >/dev/null || sp_skip "$tool is not installed (build-aux/setup installs it)"
done
"$SAMEPAGE" help experiment >/dev/null 2>&1 \
    || sp_skip "this samepage has no 'experiment' command registered yet"
sp_guest_image
# QEMU runs as libvirt-qemu: it must reach the overlays in our directory.
chmod 755 "$SP_TEST_TMP"
# The experiments' journals: ours only.
export SAMEPAGE_STATE_DIR=$SP_TEST_TMP/state
JOURNALS=$SAMEPAGE_STATE_DIR/experiments

knobs() {
    local k
    for k in $KNOBS; do
        [ -f "$SP_KSM_DIR/$k" ] && printf '%s=%s\n' "$k" "$(cat "$SP_KSM_DIR/$k")"
    done
}

# ---------------------------------------------------------------- libvirtd
if virsh -c qemu:///system version >/dev/null 2>&1; then
    URI=qemu:///system
    sp_log "using the running system libvirtd ($URI)"
else
    if ! socat -u OPEN:/dev/null UNIX-CONNECT:/run/libvirt/virtlogd-sock 2>/dev/null; then
        sp_spawn VIRTLOGD virtlogd
        for _ in $(seq 100); do
            socat -u OPEN:/dev/null UNIX-CONNECT:/run/libvirt/virtlogd-sock 2>/dev/null && break
            sleep 0.1
        done
        sp_log "started virtlogd (pid $VIRTLOGD)"
    fi
    mkdir -p "$SP_TEST_TMP/run"
    cat > "$SP_TEST_TMP/libvirtd.conf" <<EOF
unix_sock_dir = "$SP_TEST_TMP/run"
log_outputs = "3:file:$SP_TEST_TMP/libvirtd.log"
EOF
    URI="qemu:///system?socket=$SP_TEST_TMP/run/libvirt-sock"
    start_libvirtd() {
        sp_spawn LIBVIRTD libvirtd -f "$SP_TEST_TMP/libvirtd.conf" -p "$SP_TEST_TMP/libvirtd.pid"
        for _ in $(seq 200); do
            virsh -c "$URI" version >/dev/null 2>&1 && break
            kill -0 "$LIBVIRTD" 2>/dev/null || sp_fail "libvirtd exited at once: $(tail -n 5 "$SP_TEST_TMP/libvirtd.log" 2>/dev/null)"
            sleep 0.1
        done
        virsh -c "$URI" version >/dev/null 2>&1 || sp_fail "libvirtd (pid $LIBVIRTD) does not answer on $URI"
        sp_log "started libvirtd (pid $LIBVIRTD) on a private socket: $URI"
    }
    start_libvirtd
    OWN_LIBVIRTD=1
fi

# Whatever a failed part leaves (a runner that crashed, say), its journal in
# our state directory names it: undo it before libvirtd stops.
sp_at_exit "SAMEPAGE_STATE_DIR='$SAMEPAGE_STATE_DIR' '$SAMEPAGE' -c '$URI' experiment clean >/dev/null 2>&1"

# Only this test's domains (sp-it-*) count: others may come and go.
our_domains() { virsh -c "$URI" list --all --name | grep '^sp-it-' | sort; }
domains_before=$(our_domains)

# What must be gone after a run: domains, overlays, QEMU processes, knobs.
check_teardown() {
    local what=$1 out=$2 knobs_before=$3 uuid pid d
    local domains_after
    domains_after=$(our_domains)
    [ "$domains_after" = "$domains_before" ] \
        || sp_fail "$what: domains left behind: $(comm -13 <(echo "$domains_before") <(echo "$domains_after") | tr '\n' ' ')"
    if [ -d "$SP_TEST_TMP/overlays" ] && [ -n "$(ls -A "$SP_TEST_TMP/overlays")" ]; then
        sp_fail "$what: overlays left behind: $(ls "$SP_TEST_TMP/overlays")"
    fi
    for uuid in $(jq -r '.guests[].uuid' "$out"/run-*/run.json 2>/dev/null); do
        for d in /proc/[0-9]*; do
            if tr '\0' ' ' < "$d/cmdline" 2>/dev/null | grep -q -- "-uuid $uuid"; then
                pid=${d#/proc/}
                sp_fail "$what: QEMU pid $pid of guest $uuid still runs"
            fi
        done
    done
    [ "$(knobs)" = "$knobs_before" ] \
        || sp_fail "$what: KSM knobs not restored: $(diff <(echo "$knobs_before") <(knobs) | grep '^[<>]' | tr '\n' ' ')"
    [ -z "$(ls -A "$JOURNALS" 2>/dev/null)" ] \
        || sp_fail "$what: a journal is left in $JOURNALS: $(ls "$JOURNALS")"
    sp_log "$what: teardown left no domain, overlay, QEMU process, KSM setting or journal behind"
}

plan() { # NAME VM_COUNTS DURATION BOOT_TIMEOUT
    cat > "$SP_TEST_TMP/$1.ini" <<EOF
[plan]
name=it-$1
vm_counts=$2
[guest]
memory_mib=512
boot_timeout=$4
overlay_dir=$SP_TEST_TMP/overlays
[ksm]
pages_to_scan=1000
sleep_millisecs=20
use_zero_pages=0
max_page_sharing=256
[sampling]
interval=5
duration=$3
EOF
}

# ---------------------------------------------------------------- 0. bad input
# Refused before anything is made: exit 1, the message names the plan line
# or the missing file, no output directory, no journal, KSM untouched.
knobs_before=$(knobs)
bad() { # NAME EXPECTED-TEXT [samepage args...]
    local name=$1 want=$2 rc err
    shift 2
    "$SAMEPAGE" -c "$URI" experiment run "$SP_TEST_TMP/$name.ini" --output "$SP_TEST_TMP/out-$name" "$@" \
        > /dev/null 2> "$SP_TEST_TMP/$name.stderr"
    rc=$?
    err=$(grep 'samepage: error' "$SP_TEST_TMP/$name.stderr")
    [ $rc -eq 1 ] || sp_fail "$name: exit $rc, not 1 ($err)"
    [[ $err == *"$want"* ]] || sp_fail "$name: the error does not say '$want': $err"
    [ ! -e "$SP_TEST_TMP/out-$name" ] || sp_fail "$name: the refused experiment made its output directory"
    [ -z "$(ls -A "$JOURNALS" 2>/dev/null)" ] || sp_fail "$name: a journal was left"
    [ "$(knobs)" = "$knobs_before" ] || sp_fail "$name: KSM knobs changed"
    sp_log "bad input $name: $err"
}
printf '[plan]\nvm_counts=1\n[guest]\nmemroy_mib=512\n' > "$SP_TEST_TMP/typo.ini"
bad typo "typo.ini:4: [guest] memroy_mib: unknown key"
printf '[plan]\nvm_counts=2,0\n' > "$SP_TEST_TMP/zero.ini"
bad zero "zero.ini:2: [plan] vm_counts"
printf '[plan]\nvm_counts=1,3\n[guest]\nmemory_mib=1048576\n' > "$SP_TEST_TMP/huge.ini"
bad huge "huge.ini:4: [guest] memory_mib"
printf '[plan]\nvm_counts=1\n' > "$SP_TEST_TMP/noimage.ini"
bad noimage "the guest image is missing: no $SP_TEST_TMP/no-image/base.qcow2" --image-dir "$SP_TEST_TMP/no-image"

# ---------------------------------------------------------------- 1. a real run
plan two 2 "$DURATION" 300
OUT=$SP_TEST_TMP/out-two
knobs_before=$(knobs)
t0=$EPOCHREALTIME
"$SAMEPAGE" -c "$URI" experiment run "$SP_TEST_TMP/two.ini" --output "$OUT" --json \
    > "$SP_TEST_TMP/two.stdout" 2> "$SP_TEST_TMP/two.stderr"
rc=$?
[ $rc -eq 0 ] || { tail -n 20 "$SP_TEST_TMP/two.stderr" | sed 's/^/#   /'; sp_fail "the 2-guest experiment failed (exit $rc)"; }
sp_log "2-guest experiment: $(_sp_since "$t0") s"
# --json: the whole results document of a complete run, on stdout.
sp_json_valid "experiment run (2 guests)" "$(cat "$SP_TEST_TMP/two.stdout")"
jq -e '.command == "experiment run" and .complete == true' "$SP_TEST_TMP/two.stdout" >/dev/null \
    || sp_fail "experiment run --json: $(head -c 500 "$SP_TEST_TMP/two.stdout")"

for f in plan.ini results.json summary.csv report.md plots/plots.gp run-01-2vm/samples.csv \
         run-01-2vm/guests.csv run-01-2vm/run.json; do
    [ -s "$OUT/$f" ] || sp_fail "output $f is missing or empty"
done
if command -v gnuplot >/dev/null; then
    n=$(ls "$OUT"/plots/*.png 2>/dev/null | wc -l)
    [ "$n" -ge 15 ] || sp_fail "only $n plots in $OUT/plots"
    grep -q '!\[.*\](plots/.*\.png)' "$OUT/report.md" || sp_fail "report.md shows no plots"
fi
grep -q 'Status: complete' "$OUT/report.md" || sp_fail "report.md does not say complete"
grep -q '^## Conclusions' "$OUT/report.md" || sp_fail "report.md has no conclusions"
R=$OUT/results.json
jq -e '.complete == true and (.runs | length) == 1 and .runs[0].complete == true' "$R" >/dev/null \
    || sp_fail "results.json is not complete: $(jq -c '{complete, error}' "$R")"

# Samples: t=0 plus one per interval.
want=$((DURATION / 5 + 1))
n=$(($(wc -l < "$OUT/run-01-2vm/samples.csv") - 1))
[ "$n" -ge $((want - 2)) ] && [ "$n" -le "$want" ] || sp_fail "$n samples, expected about $want"
[ "$(($(wc -l < "$OUT/run-01-2vm/guests.csv") - 1))" -eq $((2 * n)) ] \
    || sp_fail "guests.csv does not have 2 rows per sample"

RUN=$OUT/run-01-2vm/run.json
steady() { jq -r ".steady.$1" "$RUN"; }
sp_log "steady: resident $(steady denominator_mib) MiB, saved $(steady saved_mib) MiB ($(steady reclaimed_pct)%), zero-filled $(steady saved_zero_mib), other $(steady saved_nonzero_mib); predicted at t=0 $(steady pred_t0_saved_mib) MiB; kernel vs model $(steady pred_error_pct)%; settled at $(steady converged_at) s"
jq -e '.steady.converged == true' "$RUN" >/dev/null \
    || sp_fail "the run did not settle in $DURATION s (saved went: $(jq -c '[.data[].saved_pages]' "$RUN"))"
jq -e '.steady.saved_mib > 20' "$RUN" >/dev/null || sp_fail "KSM saved almost nothing: $(steady saved_mib) MiB"
# The model, before KSM ran, against the kernel once converged: within 5%.
jq -e '(.steady.pred_error_pct | fabs) <= 5' "$RUN" >/dev/null \
    || sp_fail "the guests' pages_sharing is $(steady pred_error_pct)% from the model's"
jq -e '((.steady.saved_mib - .steady.pred_t0_saved_mib) / .steady.pred_t0_saved_mib | fabs) <= 0.05' "$RUN" >/dev/null \
    || sp_fail "saved $(steady saved_mib) MiB, but the model predicted $(steady pred_t0_saved_mib) MiB at t=0"
# ...and every prediction made once the run had settled, each against the
# kernel at its own sample (a scan of merged memory must not inflate it).
jq -e '.steady.pred_checked >= 1 and (.steady.pred_error_max_pct | fabs) <= 5' "$RUN" >/dev/null \
    || sp_fail "after settling, a prediction was $(steady pred_error_max_pct)% from the kernel ($(steady pred_checked) checked): $(jq -c '[.data[] | select(.prediction_fresh) | {t, kernel: .guest_pages_sharing, model: .prediction.pages_sharing}]' "$RUN")"
sp_log "after settling: $(steady pred_checked) predictions, the largest kernel-vs-model difference $(steady pred_error_max_pct)%, zero page from $(jq -r '.data[-1].prediction.zero_page_from' "$RUN")"
# The last sample: the census against ksm_stat and sysfs.
jq -e '.data[-1] as $s
       | ($s.census.ksm_pages) as $c | ($s.stat_ksm_merging_pages) as $m
       | ($c - $m | fabs) <= (0.03 * $c + 50)
       and ($s.sysfs.pages_shared + $s.sysfs.pages_sharing) >= ($s.guest_pages_shared + $s.guest_pages_sharing)
       and ([$s.guests[].census.ksm_pages] | add) == $c
       and $s.saved_pages == $s.saved_zero_pages + $s.saved_nonzero_pages' "$RUN" >/dev/null \
    || sp_fail "the last sample is inconsistent: $(jq -c '.data[-1] | {census, stat_ksm_merging_pages, guest_pages_shared, guest_pages_sharing, sysfs: {pages_shared: .sysfs.pages_shared, pages_sharing: .sysfs.pages_sharing}}' "$RUN")"
# The summary CSV holds the same steady state.
awk -F, 'NR == 2 { exit !($1 == 2 && $2 == 1) }' "$OUT/summary.csv" || sp_fail "summary.csv: $(sed -n 2p "$OUT/summary.csv")"
check_teardown "2-guest run" "$OUT" "$knobs_before"

# ---------------------------------------------------------------- 2. never ready
plan never 1 30 1
OUT=$SP_TEST_TMP/out-never
"$SAMEPAGE" -c "$URI" experiment run "$SP_TEST_TMP/never.ini" --output "$OUT" --json \
    > "$SP_TEST_TMP/never.stdout" 2> "$SP_TEST_TMP/never.stderr"
rc=$?
[ $rc -eq 1 ] || sp_fail "a guest that is never ready: exit $rc, not 1"
# --json: the failed experiment's results, with its error, on stdout.
sp_json_valid "experiment run (never ready)" "$(cat "$SP_TEST_TMP/never.stdout")"
jq -e '.complete == false and (.error | test("never became ready"))' "$SP_TEST_TMP/never.stdout" \
    >/dev/null || sp_fail "experiment run --json lacks the error: $(head -c 500 "$SP_TEST_TMP/never.stdout")"
err=$(grep 'samepage: error' "$SP_TEST_TMP/never.stderr")
sp_log "never ready: $(head -c 300 <<<"$err")"
[[ $err == *"guest sp-it-never-"*"never became ready"*"boot_timeout in $SP_TEST_TMP/never.ini"* ]] \
    || sp_fail "the error does not name the guest and the plan: $err"
jq -e '.complete == false and .runs[0].complete == false and (.error | test("never became ready"))' \
    "$OUT/results.json" >/dev/null || sp_fail "results.json is not marked incomplete"
grep -q 'INCOMPLETE' "$OUT/report.md" || sp_fail "report.md is not marked incomplete"
check_teardown "never-ready run" "$OUT" "$knobs_before"

# Start an experiment in the background and wait until it samples.
start_sampling() { # NAME
    "$SAMEPAGE" -c "$URI" experiment run "$SP_TEST_TMP/$1.ini" --output "$SP_TEST_TMP/out-$1" \
        > "$SP_TEST_TMP/$1.stdout" 2> "$SP_TEST_TMP/$1.stderr" &
    exp_pid=$!
    sp_at_exit "_sp_stop_pid $exp_pid"
    for _ in $(seq 600); do
        grep -q 'sampling t=' "$SP_TEST_TMP/$1.stderr" && break
        kill -0 $exp_pid 2>/dev/null || break
        sleep 0.5
    done
    grep -q 'sampling t=' "$SP_TEST_TMP/$1.stderr" \
        || sp_fail "$1: the experiment never got to sampling: $(tail -n 3 "$SP_TEST_TMP/$1.stderr")"
}

# ---------------------------------------------------------------- 3. SIGINT
plan sigint 1 300 300
OUT=$SP_TEST_TMP/out-sigint
start_sampling sigint
kill -INT $exp_pid
wait $exp_pid
rc=$?
[ $rc -eq 1 ] || sp_fail "after SIGINT: exit $rc, not 1"
grep -q 'interrupted' "$SP_TEST_TMP/sigint.stderr" || sp_fail "no 'interrupted' message"
jq -e '.complete == false and .runs[0].complete == false and (.runs[0].samples >= 2)' \
    "$OUT/results.json" >/dev/null || sp_fail "after SIGINT the data is not kept and marked incomplete"
sp_log "SIGINT: $(jq -r '.runs[0].samples' "$OUT/results.json") samples kept, marked incomplete"
check_teardown "interrupted run" "$OUT" "$knobs_before"

# Whether PID runs (a zombie waiting for its parent to reap it does not);
# waits up to 5 s for it to go.
running() {
    local st
    for _ in $(seq 50); do
        st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)
        [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ] && return 1
        sleep 0.1
    done
    return 0
}

# ---------------------------------------------------------------- 4. SIGKILL
plan killed 1 300 300
OUT=$SP_TEST_TMP/out-killed
start_sampling killed
journal=$(ls "$JOURNALS"/*.json 2>/dev/null)
[ "$(echo "$journal" | wc -w)" -eq 1 ] || sp_fail "a running experiment should keep one journal, found: $journal"
jq -e --arg pid "$exp_pid" '.owner.pid == ($pid | tonumber) and (.domains | length) == 1
       and .domains[0].defined and .domains[0].qemu_pid > 0 and (.ksm_before | has("pages_to_scan"))' \
    "$journal" >/dev/null || sp_fail "the journal does not name the guest and the KSM change: $(jq -c . "$journal")"
qemu_pid=$(jq -r '.domains[0].qemu_pid' "$journal")
name=$(jq -r '.domains[0].name' "$journal")
# A second experiment is refused while this one runs, before it makes anything.
"$SAMEPAGE" -c "$URI" experiment run "$SP_TEST_TMP/never.ini" --output "$SP_TEST_TMP/out-second" \
    > /dev/null 2> "$SP_TEST_TMP/second.stderr"
rc=$?
[ $rc -eq 1 ] && grep -q "another experiment is running (plan \"it-killed\", pid $exp_pid" "$SP_TEST_TMP/second.stderr" \
    || sp_fail "a second experiment was not refused (exit $rc): $(cat "$SP_TEST_TMP/second.stderr")"
[ ! -e "$SP_TEST_TMP/out-second" ] || sp_fail "the refused experiment made its output directory"
kill -KILL $exp_pid
wait $exp_pid 2>/dev/null
kill -0 "$qemu_pid" 2>/dev/null || sp_fail "QEMU pid $qemu_pid died with the runner: nothing to clean up"
[ "$(sp_ksm pages_to_scan)" = 1000 ] || sp_fail "the plan's pages_to_scan is not in force after the kill"
sp_log "SIGKILL: left domain $name (QEMU pid $qemu_pid), its overlay and KSM at the plan's knobs"

"$SAMEPAGE" -c "$URI" experiment clean --dry-run --json > "$SP_TEST_TMP/dry.stdout" 2> "$SP_TEST_TMP/dry.stderr" \
    || sp_fail "experiment clean --dry-run failed: $(cat "$SP_TEST_TMP/dry.stderr")"
sp_json_valid "experiment clean --dry-run" "$(cat "$SP_TEST_TMP/dry.stdout")"
jq -e --arg n "$name" '.dry_run and .cleaned == 1
       and any(.experiments[0].actions[]; test("would destroy domain " + $n))' \
    "$SP_TEST_TMP/dry.stdout" >/dev/null || sp_fail "experiment clean --json: $(cat "$SP_TEST_TMP/dry.stdout")"
grep -q "would destroy domain $name" "$SP_TEST_TMP/dry.stderr" \
    && grep -q 'would unmerge (run=2) and restore the KSM knobs' "$SP_TEST_TMP/dry.stderr" \
    || sp_fail "the dry run does not say what it would do: $(cat "$SP_TEST_TMP/dry.stderr")"
[ -e "$journal" ] && kill -0 "$qemu_pid" 2>/dev/null && [ "$(sp_ksm pages_to_scan)" = 1000 ] \
    || sp_fail "the dry run changed something"

"$SAMEPAGE" -c "$URI" experiment clean > "$SP_TEST_TMP/clean.stdout" 2> "$SP_TEST_TMP/clean.stderr"
rc=$?
sed 's/^/#   /' "$SP_TEST_TMP/clean.stderr" "$SP_TEST_TMP/clean.stdout"
[ $rc -eq 0 ] || sp_fail "experiment clean failed (exit $rc)"
grep -q "destroyed domain $name" "$SP_TEST_TMP/clean.stderr" \
    && grep -q "undefined domain $name" "$SP_TEST_TMP/clean.stderr" \
    || sp_fail "experiment clean did not destroy and undefine $name"
grep -q 'killed' "$OUT/INCOMPLETE" 2>/dev/null || sp_fail "the killed experiment's output is not marked INCOMPLETE"
running "$qemu_pid" && sp_fail "QEMU pid $qemu_pid still runs after experiment clean"
check_teardown "killed run, cleaned" "$OUT" "$knobs_before"

# ---------------------------------------------------------------- 5. libvirtd dies
if [ -z "${OWN_LIBVIRTD:-}" ]; then
    sp_log "part 5 not run: the system libvirtd is in use, and this test kills only a libvirtd it started"
else
    plan lost 1 300 300
    OUT=$SP_TEST_TMP/out-lost
    start_sampling lost
    journal=$(ls "$JOURNALS"/*.json)
    qemu_pid=$(jq -r '.domains[0].qemu_pid' "$journal")
    name=$(jq -r '.domains[0].name' "$journal")
    kill -KILL "$LIBVIRTD"
    wait "$exp_pid"
    rc=$?
    grep -v 'sampling t=' "$SP_TEST_TMP/lost.stderr" | tail -n 8 | sed 's/^/#   /'
    [ $rc -eq 1 ] || sp_fail "with libvirtd killed: exit $rc, not 1"
    grep -qF "libvirtd ($URI) stopped answering while sampling" "$SP_TEST_TMP/lost.stderr" \
        || sp_fail "the error does not say libvirtd stopped answering"
    grep -q "guest $name: still defined in libvirt" "$SP_TEST_TMP/lost.stderr" \
        && grep -q 'samepage experiment clean' "$SP_TEST_TMP/lost.stderr" \
        || sp_fail "the error does not name the definition left behind and the way out"
    running "$qemu_pid" && sp_fail "QEMU pid $qemu_pid still runs without libvirtd"
    jq -e '.complete == false and .runs[0].complete == false and (.runs[0].samples >= 2)' \
        "$OUT/results.json" >/dev/null || sp_fail "the data is not kept and marked incomplete"
    [ "$(knobs)" = "$knobs_before" ] || sp_fail "KSM not restored after libvirtd died"
    [ -n "$(ls -A "$JOURNALS")" ] || sp_fail "no journal kept for the definition left behind"
    start_libvirtd
    "$SAMEPAGE" -c "$URI" experiment clean > "$SP_TEST_TMP/clean2.stdout" 2> "$SP_TEST_TMP/clean2.stderr" \
        || sp_fail "experiment clean after the restart failed: $(cat "$SP_TEST_TMP/clean2.stderr")"
    sed 's/^/#   /' "$SP_TEST_TMP/clean2.stderr"
    grep -q "undefined domain $name" "$SP_TEST_TMP/clean2.stderr" \
        || sp_fail "experiment clean did not undefine $name: $(cat "$SP_TEST_TMP/clean2.stderr")"
    check_teardown "run that lost libvirtd, cleaned" "$OUT" "$knobs_before"
fi
