#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# samepage ksm against the real /sys/kernel/mm/ksm: every figure it prints
# is the file's contents, `ksm set` writes, and a refused request changes
# nothing.
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"

sp_ksm_save
command -v jq >/dev/null || sp_skip "jq is not installed (build-aux/setup installs it)"

json=$("$SAMEPAGE" ksm --json) || sp_fail "samepage ksm --json failed"
sp_json_valid "ksm" "$json"
n=0
for f in "$SP_KSM_DIR"/*; do
    k=$(basename "$f")
    want=$(cat "$f")
    case $k in
        advisor_mode) want=$(sed 's/.*\[\(.*\)\].*/\1/' "$f") ;;
        # ksmd may be running on this host: its counters can move between reads.
        pages_*|full_scans|general_profit|stable_node_*|ksm_zero_pages)
            [ "$(sp_ksm run)" = 0 ] || continue ;;
    esac
    got=$(jq -r --arg k "$k" '.ksm[$k]' <<<"$json")
    [ "$got" = "$want" ] || sp_fail "ksm --json: $k is '$got', sysfs has '$want'"
    n=$((n + 1))
done
sp_log "ksm --json matches sysfs on $n keys"
[ "$n" -ge 8 ] || sp_fail "only $n keys compared"
# Every key of the JSON is a sysfs file name, or null when the kernel lacks it.
for k in $(jq -r '.ksm | keys[]' <<<"$json"); do
    if [ -e "$SP_KSM_DIR/$k" ]; then
        [ "$(jq -r --arg k "$k" '.ksm[$k]' <<<"$json")" != null ] || sp_fail "$k exists but is null"
    else
        [ "$(jq -r --arg k "$k" '.ksm[$k]' <<<"$json")" = null ] || sp_fail "$k missing but not null"
    fi
done

old_pts=$(sp_ksm pages_to_scan)
old_sleep=$(sp_ksm sleep_millisecs)
new_pts=$((old_pts + 123))
out=$("$SAMEPAGE" ksm set pages_to_scan=$new_pts sleep_millisecs=37) \
    || sp_fail "ksm set failed: $out"
sp_log "$out"
[ "$(sp_ksm pages_to_scan)" = "$new_pts" ] || sp_fail "pages_to_scan was not written"
[ "$(sp_ksm sleep_millisecs)" = 37 ] || sp_fail "sleep_millisecs was not written"
grep -q "pages_to_scan: $old_pts -> $new_pts" <<<"$out" || sp_fail "ksm set did not report the change"

# Refused as a whole: nothing is written, exit code 2 (usage) or 1.
"$SAMEPAGE" ksm set pages_to_scan=999 run=7 2>"$SP_TEST_TMP/err"
rc=$?
[ $rc -eq 2 ] || sp_fail "ksm set run=7 exited $rc, want 2"
grep -q 'run: 7 is out of range' "$SP_TEST_TMP/err" || sp_fail "unclear error: $(cat "$SP_TEST_TMP/err")"
[ "$(sp_ksm pages_to_scan)" = "$new_pts" ] || sp_fail "a refused request changed pages_to_scan"

"$SAMEPAGE" ksm set pages_to_scan=999 pages_shared=5 2>"$SP_TEST_TMP/err" && sp_fail "a figure was accepted"
grep -q 'pages_shared is a read-only figure' "$SP_TEST_TMP/err" || sp_fail "unclear error: $(cat "$SP_TEST_TMP/err")"
[ "$(sp_ksm pages_to_scan)" = "$new_pts" ] || sp_fail "a refused request changed pages_to_scan"
sp_log "ksm set validated and refused bad requests whole; knobs restored at exit ($old_pts, $old_sleep)"

# A failed request is rolled back with the kernel's side effects in mind:
# writing advisor_mode resets pages_to_scan (mm/ksm.c advisor_mode_store).
# A tree of links to the real knobs, where sleep_millisecs is a read-only
# file instead, makes the write after advisor_mode fail on the real kernel.
if [ -f "$SP_KSM_DIR/advisor_mode" ]; then
    sp_ksm_set advisor_mode=none pages_to_scan=1234
    fake=$SP_TEST_TMP/sys/kernel/mm/ksm
    mkdir -p "$fake"
    for f in "$SP_KSM_DIR"/*; do ln -s "$f" "$fake/$(basename "$f")"; done
    ln -sf /proc/sys/kernel/random/poolsize "$fake/sleep_millisecs"
    SAMEPAGE_SYSFS=$SP_TEST_TMP/sys "$SAMEPAGE" ksm set advisor_mode=scan-time sleep_millisecs=5 \
        2>"$SP_TEST_TMP/err" && sp_fail "a write to a read-only file succeeded"
    sp_log "$(cat "$SP_TEST_TMP/err")"
    grep -q "restored advisor_mode=none pages_to_scan=1234" "$SP_TEST_TMP/err" \
        || sp_fail "the rollback does not say it restored pages_to_scan: $(cat "$SP_TEST_TMP/err")"
    grep -q '\[none\]' "$SP_KSM_DIR/advisor_mode" || sp_fail "advisor_mode was not rolled back"
    [ "$(sp_ksm pages_to_scan)" = 1234 ] \
        || sp_fail "pages_to_scan is $(sp_ksm pages_to_scan) after the rollback, want 1234"
    sp_log "advisor_mode written then a failed write: pages_to_scan back at 1234"
fi
