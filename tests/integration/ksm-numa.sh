#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The safe merge_across_nodes switch on the real KSM (one NUMA node here):
# a dry run changes nothing; the switch unmerges, waits for pages_shared=0,
# writes the knob and restores run; a direct write while pages are shared is
# refused whole; switching to the value it has does nothing; SIGINT during
# the wait restores run and every knob.
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"

sp_ksm_save
[ -f "$SP_KSM_DIR/merge_across_nodes" ] || sp_skip "no merge_across_nodes (kernel without NUMA)"
DUPMEM=$SP_TEST_BINDIR/dupmem
err=$SP_TEST_TMP/err

for i in 1 2; do
    sp_spawn p "$DUPMEM" --pages 8192 --cross 4000 --zero 500 --instance $i --seed 5 --mergeable \
        --nohuge --ready-file "$SP_TEST_TMP/ready-$i"
done
for i in 1 2; do
    for _ in $(seq 100); do [ -s "$SP_TEST_TMP/ready-$i" ] && break; sleep 0.1; done
done
sp_ksm_set run=2 merge_across_nodes=1
sp_ksm_set pages_to_scan=5000 sleep_millisecs=20 run=1
for _ in $(seq 100); do [ "$(sp_ksm pages_shared)" -ge 4000 ] && break; sleep 0.2; done
[ "$(sp_ksm pages_shared)" -ge 4000 ] || sp_fail "KSM did not merge the workload"
sp_log "merged: pages_shared=$(sp_ksm pages_shared) pages_sharing=$(sp_ksm pages_sharing)"

# The kernel's EBUSY rule, refused before anything is written.
"$SAMEPAGE" ksm set pages_to_scan=4000 merge_across_nodes=0 2>"$err" && sp_fail "accepted while shared"
grep -q "merge_across_nodes=0: the kernel refuses it while pages are shared" "$err" \
    || sp_fail "unclear: $(cat "$err")"
[ "$(sp_ksm pages_to_scan)" = 5000 ] || sp_fail "a refused request changed pages_to_scan"

out=$("$SAMEPAGE" ksm numa --merge-across-nodes 0 --dry-run) || sp_fail "dry run failed"
sp_log "$out"
grep -q "% kept" <<<"$out" || sp_fail "dry run did not predict the sharing kept"
[ "$(sp_ksm merge_across_nodes)" = 1 ] && [ "$(sp_ksm run)" = 1 ] || sp_fail "the dry run changed KSM"
out=$("$SAMEPAGE" ksm numa --merge-across-nodes 0 --dry-run --json) || sp_fail "dry run --json failed"
sp_json_valid "ksm numa --dry-run" "$out"
jq -e '.dry_run and .after == null and .before.merge_across_nodes == 1 and .model.processes >= 1' \
    <<<"$out" >/dev/null || sp_fail "ksm numa --dry-run --json: $out"

out=$("$SAMEPAGE" ksm numa --merge-across-nodes 0 2>&1) || sp_fail "switch failed: $out"
sp_log "$out"
[ "$(sp_ksm merge_across_nodes)" = 0 ] || sp_fail "merge_across_nodes is not 0"
[ "$(sp_ksm run)" = 1 ] || sp_fail "run was not restored to 1"
grep -q "before: merge_across_nodes=1" <<<"$out" && grep -q "after: merge_across_nodes=0 run=1" <<<"$out" \
    || sp_fail "before/after not reported"
# Progress rewritten in place ("\r") is for a terminal, not for a log.
[[ $out != *$'\r'* ]] || sp_fail "ksm numa wrote progress lines into a log: $(tr '\r' '|' <<<"$out")"

# One node: the same sharing comes back with per-node trees.
for _ in $(seq 100); do [ "$(sp_ksm pages_shared)" -ge 4000 ] && break; sleep 0.2; done
sp_log "merged again with merge_across_nodes=0: pages_shared=$(sp_ksm pages_shared)"

out=$("$SAMEPAGE" ksm numa --merge-across-nodes 0) || sp_fail "no-op switch failed"
grep -q "nothing to do" <<<"$out" || sp_fail "switching to the current value did something: $out"
out=$("$SAMEPAGE" ksm numa --merge-across-nodes 0 --json) || sp_fail "no-op switch --json failed"
sp_json_valid "ksm numa (nothing to do)" "$out"
jq -e '.nothing_to_do and .after == null' <<<"$out" >/dev/null || sp_fail "ksm numa --json: $out"

"$SAMEPAGE" ksm numa --merge-across-nodes 2 2>"$err"
[ $? -eq 2 ] || sp_fail "--merge-across-nodes 2 not refused as usage"
out=$("$SAMEPAGE" ksm numa --merge-across-nodes 1 2>&1) || sp_fail "switch back failed: $out"
[ "$(sp_ksm merge_across_nodes)" = 1 ] || sp_fail "merge_across_nodes is not back to 1"
sp_log "switched back: $(grep after: <<<"$out")"

# A signal while it waits for pages_shared=0.  The real unmerge is done
# before the run=2 write returns, so the wait is made to last: a tree of
# links to the real knobs where pages_shared is a plain file saying 500.
# Every write goes to the real kernel.  SIGINT (Ctrl-C; a background job of
# a script inherits it ignored, the handler takes it anyway) and SIGTERM.
sp_ksm_set pages_to_scan=4321 smart_scan=0
for _ in $(seq 100); do [ "$(sp_ksm pages_shared)" -ge 4000 ] && break; sleep 0.2; done
knobs() {
    grep . "$SP_KSM_DIR"/{run,pages_to_scan,sleep_millisecs,max_page_sharing,merge_across_nodes} \
        "$SP_KSM_DIR"/{use_zero_pages,smart_scan,stable_node_chains_prune_millisecs} \
        "$SP_KSM_DIR"/advisor_* 2>/dev/null
}
fake=$SP_TEST_TMP/sys/kernel/mm/ksm
mkdir -p "$fake"
for f in "$SP_KSM_DIR"/*; do ln -s "$f" "$fake/$(basename "$f")"; done
rm "$fake/pages_shared"
echo 500 > "$fake/pages_shared"
for sig in INT TERM; do
    before=$(knobs)
    SAMEPAGE_SYSFS=$SP_TEST_TMP/sys "$SAMEPAGE" ksm numa --merge-across-nodes 0 --timeout 60 \
        >"$SP_TEST_TMP/out" 2>"$err" &
    numa=$!
    for _ in $(seq 100); do [ "$(sp_ksm run)" = 2 ] && break; sleep 0.1; done
    [ "$(sp_ksm run)" = 2 ] || { kill -KILL $numa; sp_fail "ksm numa did not write run=2"; }
    sleep 1
    kill -$sig $numa
    wait $numa
    rc=$?
    sp_log "SIG$sig: $(tr '\r' '\n' <"$err" | grep -v '^ *unmerging' | grep .)"
    [ $rc -eq 1 ] || sp_fail "ksm numa exited $rc after SIG$sig, want 1 (run is now $(sp_ksm run))"
    grep -q "interrupted by SIG$sig" "$err" || sp_fail "the message does not name SIG$sig: $(cat "$err")"
    after=$(knobs)
    [ "$before" = "$after" ] \
        || sp_fail "KSM differs after SIG$sig: $(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')"
    sp_log "SIG$sig during the wait: run=$(sp_ksm run), merge_across_nodes=$(sp_ksm merge_across_nodes), pages_to_scan=$(sp_ksm pages_to_scan), every knob as before"
done
