#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# samepaged under a real libvirtd with two TCG guests of different policy:
# a malformed config refused naming its line; the [ksm] knobs applied at
# start and restored at exit; sp-d1 (merge="no") unmarked and sp-d2
# (<nosharepages/> but merge="required") marked as they start, checked in
# smaps, with the delay from `virsh start` to the verified marking;
# samepage status --json; trust groups: sp-d1 moved to group beta waits,
# with the per-group and mixed predictions in status and the metrics;
# merging bytes per guest against ksm_stat while
# ksmd merges; a reload to a taken metrics port (the old listener stays);
# garbage and an oversized request on the socket;
# libvirtd killed and restarted (when the test started it): the daemon
# reconnects and applies the policy again; [controller] mode = ksmtuned
# counts the running guest's RAM as committed memory.
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"
. "$SP_TOP_SRCDIR/tests/integration/guest-lib.sh"
. "$SP_TOP_SRCDIR/tests/integration/libvirt-lib.sh"

SAMEPAGED=$SP_TOP_BUILDDIR/src/daemon/samepaged
[ -x "$SAMEPAGED" ] || sp_fail "$SAMEPAGED is not built"
PY=/usr/bin/python3
[ -x $PY ] || sp_skip "python3 is not installed"
$PY -c 'import prometheus_client' 2>/dev/null \
    || sp_skip "python3-prometheus-client is not installed (build-aux/setup installs it)"

sp_ksm_save
sp_guest_image
sp_libvirtd_start

sock=$SP_TEST_TMP/samepaged.sock
conf=$SP_TEST_TMP/samepaged.conf
log=$SP_TEST_TMP/samepaged.log
err=$SP_TEST_TMP/err

# 1. A malformed line: samepaged refuses to start, naming file and line.
printf '[policy]\nmerge = yes\n[ksm]\npages_to_scan 500\n' > "$conf"
"$SAMEPAGED" --config "$conf" >"$err" 2>&1 && sp_fail "samepaged started with a malformed config"
grep -q "$conf:4: " "$err" || sp_fail "the error does not name $conf:4: $(cat "$err")"
sp_log "malformed config refused: $(cat "$err")"
printf '[policy]\nmerge = sometimes\n' > "$conf"
"$SAMEPAGED" --config "$conf" >"$err" 2>&1 && sp_fail "samepaged started with merge = sometimes"
grep -q "$conf:2: \[policy\] merge" "$err" || sp_fail "unclear: $(cat "$err")"
sp_log "bad value refused: $(cat "$err")"

# The metrics port taken by another process: samepaged refuses to start,
# naming the address, and leaves the knob it would have applied untouched.
sp_spawn holder $PY -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1]); time.sleep(600)' "$SP_TEST_TMP/held-port"
for _ in $(seq 100); do [ -s "$SP_TEST_TMP/held-port" ] && break; sleep 0.1; done
held=$(cat "$SP_TEST_TMP/held-port") || sp_fail "the port holder did not start"
pts_held=$(sp_ksm pages_to_scan)
printf '[daemon]\nsocket = %s\n[metrics]\nlisten = 127.0.0.1:%s\n[ksm]\npages_to_scan = 321\n' \
    "$sock" "$held" > "$conf"
"$SAMEPAGED" --config "$conf" >"$err" 2>&1 && sp_fail "samepaged started on a taken metrics port"
grep -q "127.0.0.1:$held" "$err" || sp_fail "the error does not name 127.0.0.1:$held: $(cat "$err")"
[ "$(sp_ksm pages_to_scan)" = "$pts_held" ] \
    || sp_fail "pages_to_scan is $(sp_ksm pages_to_scan) after a refused start, was $pts_held"
[ -e "$sock" ] && sp_fail "a refused start left its socket $sock"
kill "$holder"
sp_log "metrics port taken: refused, knobs untouched: $(grep "127.0.0.1:$held" "$err" | head -1)"

# 2. The daemon, with a knob to apply at start (a value nobody uses).
pts_before=$(sp_ksm pages_to_scan)
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$SP_TEST_TMP/metrics"
cat > "$conf" <<CONF
[libvirt]
uri = qemu:///system
[policy]
merge = yes
[daemon]
socket = $sock
[metrics]
listen = 127.0.0.1:$port
textfile = $SP_TEST_TMP/metrics/samepage.prom
[ksm]
pages_to_scan = 321
restore_at_exit = yes
[model]
max_cpu = 25
CONF
sp_spawn sdpid bash -c 'exec "$1" --config "$2" --debug >"$3" 2>&1' _ "$SAMEPAGED" "$conf" "$log"
status() { "$SAMEPAGE" status --json --socket "$sock"; }
for _ in $(seq 100); do status >/dev/null 2>&1 && break; sleep 0.1; done
status >/dev/null 2>"$err" || { cat "$log"; sp_fail "samepaged does not answer: $(cat "$err")"; }
[ "$(sp_ksm pages_to_scan)" = 321 ] || sp_fail "[ksm] pages_to_scan = 321 not applied"
[ "$(stat -c %a "$sock")" = 600 ] || sp_fail "the socket is mode $(stat -c %a "$sock"), not 600"
sp_log "samepaged up (pid $sdpid): pages_to_scan $pts_before -> 321, socket mode 600"

# 3. Two guests with different metadata.
guest() {   # NAME METADATA [nosharepages]
    local extra="  <metadata>$2</metadata>"
    [ "${3:-}" = nosharepages ] && extra="$extra
  <memoryBacking><nosharepages/></memoryBacking>"
    sp_libvirt_define "$1" "$extra"
}
guest sp-d1 '<sp:policy xmlns:sp="urn:samepage:policy:1" merge="no" group="alpha"/>'
guest sp-d2 '<sp:policy xmlns:sp="urn:samepage:policy:1" merge="required" group="alpha"/>' nosharepages

gfield() { status | jq -r --arg d "$1" ".guests[] | select(.domain == \$d) | .$2"; }
mg_in_smaps() { sp_libvirt_mg_in_smaps "$1"; }
start_and_wait() {   # NAME WANT(true|false)
    local name=$1 want=$2 t0=$EPOCHREALTIME i
    $SP_VIRSH start "$name" >/dev/null || sp_fail "virsh start $name failed"
    for i in $(seq 600); do
        [ "$(gfield "$name" marked)" = "$want" ] && [ "$(gfield "$name" mergeable)" = "$want" ] \
            && [ "$(gfield "$name" mark_delay_s)" != null ] && break
        sleep 0.05
    done
    [ "$(gfield "$name" marked)" = "$want" ] || { tail -20 "$log"; sp_fail "$name: marked is not $want"; }
    sp_log "guest $name: marking $want verified by samepaged $(_sp_since "$t0") s after virsh start" \
           "(samepaged: $(gfield "$name" mark_delay_s) s from the started event)"
    sp_log "guest $name: reason: $(gfield "$name" reason)"
}
start_and_wait sp-d1 false
[ "$(mg_in_smaps sp-d1)" = no ] || sp_fail "sp-d1 (merge=no): smaps still shows mg"
start_and_wait sp-d2 true
[ "$(mg_in_smaps sp-d2)" = yes ] || sp_fail "sp-d2 (merge=required): smaps lacks mg"
gfield sp-d2 reason | grep -q "overrides <nosharepages/>" || sp_fail "sp-d2: reason does not say why"
sp_log "smaps: sp-d1 mg=$(mg_in_smaps sp-d1), sp-d2 mg=$(mg_in_smaps sp-d2)"
grep -E "guest sp-d[12]: (decision|unmarked|marked|.* job took)" "$log" | sed 's/^/# log: /'

# 4. samepage status --json, and the text form.
st=$(status) || sp_fail "samepage status --json failed"
sp_json_valid "status" "$st"
jq -e '.ok == true and .format == 1 and .controller.mode == "static"
       and .ksm.pages_to_scan == 321 and (.guests | length) == 2
       and .daemon.connected == true' <<<"$st" >/dev/null || sp_fail "status: $st"
"$SAMEPAGE" status --socket "$sock" | sed 's/^/# /'

# samepage list shows samepaged's view (the socket from $SAMEPAGE_SOCKET).
SAMEPAGE_SOCKET=$sock "$SAMEPAGE" list --json > "$SP_TEST_TMP/list.json" || sp_fail "samepage list failed"
sp_json_valid "list (with samepaged)" "$(cat "$SP_TEST_TMP/list.json")"
[ "$(jq -r '.guests[] | select(.domain == "sp-d2") | .samepaged.mergeable' "$SP_TEST_TMP/list.json")" = true ] \
    && [ "$(jq -r '.guests[] | select(.domain == "sp-d1") | .samepaged.reason' "$SP_TEST_TMP/list.json")" = "policy merge=no" ] \
    || sp_fail "samepage list --json lacks samepaged's view: $(cat "$SP_TEST_TMP/list.json")"
SAMEPAGE_SOCKET=$sock "$SAMEPAGE" list | sed 's/^/# /'

# 4b. Trust groups: sp-d1 now wants to merge, in group beta; sp-d2
# (merge=required) holds alpha, so beta waits.  The reload request makes
# samepaged read every running guest's policy again.
$SP_VIRSH metadata sp-d1 urn:samepage:policy:1 --key sp --live \
    --set '<policy merge="yes" group="beta"/>' >/dev/null || sp_fail "virsh metadata failed"
$PY - "$sock" <<'PY' || sp_fail "reload request failed"
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
s.sendall(b'{"request":"reload"}\n')
r = json.loads(s.makefile().readline())
assert r == {"ok": True}, r
PY
for _ in $(seq 200); do
    [ "$(gfield sp-d1 group)" = beta ] && [ "$(status | jq .daemon.jobs_pending)" = 0 ] && break
    sleep 0.05
done
[ "$(gfield sp-d1 group)" = beta ] || sp_fail "sp-d1's new policy was not read on reload"
[ "$(gfield sp-d1 mergeable)" = false ] && [ "$(gfield sp-d1 marked)" = false ] \
    || sp_fail "sp-d1 (group beta) made mergeable next to alpha's merge=required guest"
gfield sp-d1 reason | grep -q "trust group beta" || sp_fail "sp-d1: reason: $(gfield sp-d1 reason)"
[ "$(mg_in_smaps sp-d1)" = no ] || sp_fail "sp-d1: smaps shows mg"
sp_log "trust: $(status | jq -r .trust.reason)"
sp_log "guest sp-d1: $(gfield sp-d1 reason)"
# What the isolation costs, from the model: each group's saving (one guest
# each here: its own estimate) and all willing guests estimated together.
t0=$EPOCHREALTIME
for _ in $(seq 600); do
    status | jq -e '.trust.estimates_pending == 0 and .trust.mixed_estimated_together
        and (.trust.groups | length) == 2
        and all(.trust.groups[]; .predicted_saving_bytes != null)' >/dev/null && break
    sleep 0.2
done
tr=$(status | jq -c .trust)
jq -e '.mixed_estimated_together and .predicted_saving_mixed_bytes >= 0
    and .predicted_saving_bytes >= 0 and .isolation_cost_bytes == .predicted_saving_mixed_bytes - .predicted_saving_bytes
    and ([.groups[] | select(.mergeable)] | map(.group)) == ["alpha"]
    and ([.groups[].group] | sort) == ["alpha", "beta"]
    and all(.groups[]; .predicted_saving_bytes >= 0 and .estimated_together)' <<<"$tr" >/dev/null \
    || { grep "model" "$log" | tail; sp_fail "trust: no per-group and mixed predictions after $(_sp_since "$t0") s: $tr"; }
"$SAMEPAGE" status --socket "$sock" | grep '^trust:' | grep -q "if mixed; per group: alpha .* MiB, beta .* MiB" \
    || sp_fail "samepage status does not show both figures: $("$SAMEPAGE" status --socket "$sock" | grep '^trust:')"
sp_log "trust: per-group and mixed predictions after $(_sp_since "$t0") s:" \
       "$(jq -r '[.groups[] | "\(.group) \(.predicted_saving_bytes) B"] | join(", ")' <<<"$tr");" \
       "mixed $(jq .predicted_saving_mixed_bytes <<<"$tr") B, isolated $(jq .predicted_saving_bytes <<<"$tr") B," \
       "isolation costs $(jq .isolation_cost_bytes <<<"$tr") B"
"$SAMEPAGE" status --socket "$sock" | grep '^trust:' | sed 's/^/# /'
grep -E "(trust groups|guest sp-d[12]): (model|.*per group)" "$log" | sed 's/^/# log: /'

# 4c. --oneshot --dry-run next to the daemon: the same view, nothing changed.
"$SAMEPAGED" --config "$conf" --oneshot --dry-run >"$SP_TEST_TMP/oneshot.json" 2>"$err" \
    || sp_fail "samepaged --oneshot --dry-run failed: $(cat "$err")"
[ "$(jq -r '.[] | select(.domain == "sp-d2") | .mergeable' "$SP_TEST_TMP/oneshot.json")" = true ] \
    && [ "$(jq -r '.[] | select(.domain == "sp-d1") | .mergeable' "$SP_TEST_TMP/oneshot.json")" = false ] \
    || sp_fail "--oneshot: $(cat "$SP_TEST_TMP/oneshot.json")"
[ "$(sp_ksm pages_to_scan)" = 321 ] || sp_fail "--oneshot --dry-run changed pages_to_scan"
sp_log "--oneshot --dry-run: $(jq -c '[.[] | {domain, mergeable, marked}]' "$SP_TEST_TMP/oneshot.json")"

# 5. Metrics: scraped over HTTP and from the textfile, parsed with
# prometheus_client; marking per guest; merging bytes per guest against
# each QEMU's ksm_stat while ksmd merges; then (run=0 again: they do not
# move) the KSM figures exactly as sysfs has them.
scrape=$SP_TEST_TMP/scrape.json
scrape_now() {
    $PY -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
        "http://127.0.0.1:$port/metrics" > "$scrape.txt" || sp_fail "GET /metrics failed"
    $PY "$SP_TOP_SRCDIR/tests/unit/prom-parse.py" < "$scrape.txt" > "$scrape" \
        || sp_fail "GET /metrics did not parse"
}
metric() {   # NAME [DOMAIN]
    jq -r --arg n "$1" --arg d "${2:-}" '.families[].samples[] | select(.name == $n)
        | select($d == "" or .labels.domain == $d) | .value | floor' "$scrape"
}
merging_bytes() {   # PID: ksm_merging_pages x page size from /proc/PID/ksm_stat
    echo $(( $(awk '$1 == "ksm_merging_pages" {print $2}' "/proc/$1/ksm_stat") * $(getconf PAGESIZE) ))
}
# ksmd on, fast (the knobs go back as found at exit: sp_ksm_save), until
# sp-d2 (marked) has pages merged; sp-d1 (unmarked) keeps none.
q1=$(cat /run/libvirt/qemu/sp-d1.pid)
q2=$(cat /run/libvirt/qemu/sp-d2.pid)
scans0=$(sp_ksm full_scans)
sp_ksm_set sleep_millisecs=10 run=1
t0=$EPOCHREALTIME
for _ in $(seq 600); do
    [ "$(merging_bytes "$q2")" -ge $(( 1024 * $(getconf PAGESIZE) )) ] && break
    sleep 0.2
done
[ "$(merging_bytes "$q2")" -gt 0 ] || sp_fail "ksmd merged nothing of sp-d2 in 120 s"
sp_log "ksmd running (run=$(sp_ksm run), pages_to_scan $(sp_ksm pages_to_scan), sleep_millisecs" \
       "$(sp_ksm sleep_millisecs)): sp-d2 merging $(merging_bytes "$q2") bytes after $(_sp_since "$t0") s," \
       "$(( $(sp_ksm full_scans) - scans0 )) full scans"
# ksmd keeps merging while the test reads ksm_stat and samepaged reads it
# for the scrape: the scraped value must lie between the ksm_stat read
# just before the scrape and the one just after (the count moves as ksmd
# merges, or as a guest writes a merged page, one way over such a short
# window).  That bracket is the tolerance; it is retried a few times
# only for a window in which the count went both ways.
for d in sp-d1 sp-d2; do
    qpid=$(cat "/run/libvirt/qemu/$d.pid")
    for try in 1 2 3 4 5; do
        before=$(merging_bytes "$qpid")
        scrape_now
        after=$(merging_bytes "$qpid")
        got=$(metric samepage_guest_ksm_merging_bytes "$d")
        lo=$(( before < after ? before : after ))
        hi=$(( before > after ? before : after ))
        [ -n "$got" ] && [ "$got" -ge "$lo" ] && [ "$got" -le "$hi" ] && break
        sp_log "metrics: $d merging bytes $got outside [$lo, $hi] (try $try)"
    done
    [ -n "$got" ] && [ "$got" -ge "$lo" ] && [ "$got" -le "$hi" ] \
        || sp_fail "metrics: $d merging bytes '$got', ksm_stat of pid $qpid says $before before the scrape, $after after"
    sp_log "metrics: $d merging bytes $got, ksm_stat of pid $qpid $before before the scrape, $after after (try $try)"
done
# (sp-d1's guest RAM is unmarked; QEMU's own small RAM blocks, ROMs and
# the like, stay mergeable: a few pages of it may merge.)
[ "$(metric samepage_guest_ksm_merging_bytes sp-d2)" -gt 0 ] || sp_fail "the comparison was 0 = 0"
sp_ksm_set run=0
scrape_now
[ "$(metric samepage_guest_mergeable sp-d1)" = 0 ] || sp_fail "metrics: sp-d1 mergeable is $(metric samepage_guest_mergeable sp-d1)"
[ "$(metric samepage_guest_mergeable sp-d2)" = 1 ] || sp_fail "metrics: sp-d2 mergeable is $(metric samepage_guest_mergeable sp-d2)"
# What the isolation costs, as status has it.
tr=$(status | jq -c .trust)
[ "$(metric samepage_trust_mixed_predicted_saving_bytes)" = "$(jq .predicted_saving_mixed_bytes <<<"$tr")" ] \
    && [ "$(metric samepage_trust_isolated_predicted_saving_bytes)" = "$(jq .predicted_saving_bytes <<<"$tr")" ] \
    || sp_fail "metrics: trust savings differ from status: $tr"
for grp in alpha beta; do
    [ "$(jq -r --arg n samepage_trust_group_predicted_saving_bytes --arg g $grp '.families[].samples[]
          | select(.name == $n and .labels.group == $g) | .value | floor' "$scrape")" \
      = "$(jq --arg g $grp '.groups[] | select(.group == $g) | .predicted_saving_bytes' <<<"$tr")" ] \
        || sp_fail "metrics: group $grp's predicted saving differs from status: $tr"
done
uuid2=$($SP_VIRSH domuuid sp-d2)
jq -e --arg u "$uuid2" '[.families[].samples[] | select(.name == "samepage_guest_mergeable" and .labels.uuid == $u)] | length == 1' \
    "$scrape" >/dev/null || sp_fail "metrics: no samepage_guest_mergeable with uuid $uuid2"
[ "$(metric samepage_ksm_pages_sharing)" = "$(sp_ksm pages_sharing)" ] \
    || sp_fail "metrics: pages_sharing $(metric samepage_ksm_pages_sharing), sysfs $(sp_ksm pages_sharing)"
# ksmd stopped: merging bytes exactly as ksm_stat has them.
for d in sp-d1 sp-d2; do
    qpid=$(cat "/run/libvirt/qemu/$d.pid")
    want=$(merging_bytes "$qpid")
    got=$(metric samepage_guest_ksm_merging_bytes "$d")
    [ "$got" = "$want" ] || sp_fail "metrics: $d merging bytes '$got', ksm_stat of pid $qpid says $want (run=0)"
    sp_log "metrics: $d merging bytes $got = ksm_stat of pid $qpid (run=0)"
done
$PY "$SP_TOP_SRCDIR/tests/unit/prom-parse.py" < "$SP_TEST_TMP/metrics/samepage.prom" >/dev/null \
    || sp_fail "the textfile does not parse"
grep -q '^samepage_guest_mergeable{domain="sp-d2"' "$SP_TEST_TMP/metrics/samepage.prom" \
    || sp_fail "the textfile lacks sp-d2"
sp_log "metrics: $(jq '[.families[].samples[]] | length' "$scrape") samples; excerpt of GET /metrics:"
grep -E '^samepage_(guest_mergeable|guest_ksm_merging|guest_predicted|ksm_pages_sharing|ksm_pages_shared|guests_mergeable|trust_)' \
    "$scrape.txt" | sed 's/^/#   /'

# 5b. SIGHUP with [metrics] listen on a port another process holds: the
# daemon keeps running and serving on the old port, and says so; then a
# free port: it serves there, the old one is closed.
sp_spawn holder2 $PY -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1]); time.sleep(600)' "$SP_TEST_TMP/held-port2"
for _ in $(seq 100); do [ -s "$SP_TEST_TMP/held-port2" ] && break; sleep 0.1; done
held2=$(cat "$SP_TEST_TMP/held-port2") || sp_fail "the port holder did not start"
sed -i "s/^listen = .*/listen = 127.0.0.1:$held2/" "$conf"
kill -HUP "$sdpid"
for _ in $(seq 100); do grep -q "listen = 127.0.0.1:$held2: .*still serving on 127.0.0.1:$port" "$log" && break; sleep 0.1; done
grep "listen = 127.0.0.1:$held2: .*still serving on 127.0.0.1:$port" "$log" | sed 's/^/# log: /' | grep . \
    || { tail "$log"; sp_fail "no clear line for a reload to a taken metrics port"; }
kill -0 "$sdpid" || sp_fail "samepaged died on a reload to a taken metrics port"
scrape_now
[ "$(metric samepage_guest_mergeable sp-d2)" = 1 ] || sp_fail "the old metrics listener does not serve after the reload"
kill "$holder2"
port2=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s/^listen = .*/listen = 127.0.0.1:$port2/" "$conf"
kill -HUP "$sdpid"
for _ in $(seq 100); do grep -q "reload: metrics now on http://127.0.0.1:$port2/metrics" "$log" && break; sleep 0.1; done
grep -q "reload: metrics now on http://127.0.0.1:$port2/metrics" "$log" || sp_fail "no move to port $port2 on reload"
old_port=$port
port=$port2
scrape_now
[ "$(metric samepage_guest_mergeable sp-d2)" = 1 ] || sp_fail "the new metrics listener does not serve"
$PY -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)' "$old_port" 2>/dev/null \
    && sp_fail "port $old_port still accepts after the move"
sp_log "metrics: reload to taken port $held2 kept 127.0.0.1:$old_port; reload to free port: now 127.0.0.1:$port2, $old_port closed"

# 6. Garbage, an oversized request, an unknown one: error replies; the
# daemon keeps answering.
$PY - "$sock" <<'PY' || sp_fail "socket: bad input not answered as expected"
import json, socket, sys
def ask(data):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sys.argv[1])
    s.sendall(data)
    buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(65536)
        if not c:
            break
        buf += c
    s.close()
    return [json.loads(l) for l in buf.decode().splitlines()]
r = ask(b"\x00\xffgarbage{{{\n")
assert r[0]["ok"] is False, r
print("# garbage:", r[0]["error"])
r = ask(b"A" * 200000)
assert r[0]["ok"] is False and "65536" in r[0]["error"], r
print("# oversized:", r[0]["error"])
r = ask(b'{"request":"status"}\n{"request":"frobnicate"}\n[1,2]\n')
assert r[0]["ok"] is True and r[1]["ok"] is False and r[2]["ok"] is False, r
print("# pipelined: status ok, then:", r[1]["error"], "/", r[2]["error"])
PY
kill -0 "$sdpid" || sp_fail "samepaged died on bad input"
status >/dev/null || sp_fail "samepaged stopped answering after bad input"

# 7. libvirtd killed and restarted: reconnect, policy applied again.
if [ -n "${_sp_libvirtd:-}" ]; then
    t0=$EPOCHREALTIME
    kill -TERM "$_sp_libvirtd"
    wait "$_sp_libvirtd" 2>/dev/null
    for _ in $(seq 100); do grep -q "libvirt connection to .* closed" "$log" && break; sleep 0.1; done
    grep -q "libvirt connection to .* closed" "$log" || sp_fail "samepaged did not see libvirtd go"
    [ "$(status | jq -r .daemon.connected)" = false ] || sp_fail "status still says connected"
    sp_libvirtd_start
    # Exit actions run last-in first-out: the guests must go before this
    # libvirtd is stopped, so register their removal again after it.
    sp_at_exit "_sp_libvirt_remove sp-d1"
    sp_at_exit "_sp_libvirt_remove sp-d2"
    for _ in $(seq 300); do
        [ "$(status | jq -r .daemon.reconnects)" = 1 ] && [ "$(status | jq -r .daemon.jobs_pending)" = 0 ] && break
        sleep 0.1
    done
    [ "$(status | jq -r .daemon.reconnects)" = 1 ] || { tail -20 "$log"; sp_fail "no reconnection"; }
    grep -q "reconnected: applying the policy to 2 running guests" "$log" \
        || sp_fail "the policy was not applied again after the reconnection"
    [ "$(gfield sp-d1 marked)" = false ] && [ "$(gfield sp-d2 marked)" = true ] \
        || sp_fail "after the reconnection the guests are not as their policy says"
    sp_log "libvirtd restarted: samepaged reconnected and re-applied in $(_sp_since "$t0") s"
    grep -E "closed|reconnected" "$log" | sed 's/^/# log: /'
else
    sp_log "libvirtd restart skipped: this test uses a libvirtd it did not start"
fi

# 8. A guest that dies right after its start: a clear line, still running.
mark8=$(wc -l <"$log")
$SP_VIRSH destroy sp-d1 >/dev/null
$SP_VIRSH start sp-d1 >/dev/null && $SP_VIRSH destroy sp-d1 >/dev/null
sleep 2
kill -0 "$sdpid" || sp_fail "samepaged died when a guest stopped during its start"
tail -n +$((mark8 + 1)) "$log" | grep -E "sp-d1" | sed 's/^/# log: /'
status >/dev/null || sp_fail "samepaged stopped answering"
[ "$(status | jq '[.guests[] | select(.domain == "sp-d1")] | length')" = 0 ] \
    || sp_fail "sp-d1 is stopped but still listed"
# The same, deterministic: the hook's "started" for a guest that is gone
# by the time samepaged looks at it.
$PY - "$sock" <<'PY' || sp_fail "hook request failed"
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
s.sendall(b'{"request":"hook","domain":"sp-d1","uuid":"","operation":"started","phase":"begin"}\n')
r = json.loads(s.makefile().readline())
assert r == {"ok": True}, r
PY
for _ in $(seq 100); do grep -q "guest sp-d1: stopped before its policy could be applied" "$log" && break; sleep 0.1; done
grep "guest sp-d1: stopped before its policy could be applied" "$log" | sed 's/^/# log: /' | grep . \
    || sp_fail "no clear line for a guest gone before its marking"
kill -0 "$sdpid" && status >/dev/null || sp_fail "samepaged stopped after a guest vanished"
# One start reported twice (the hook, then the lifecycle event) for a
# guest already gone: one line, the second report a debug line.
hook_started() {   # NAME
    $PY - "$sock" "$1" <<'PY' || sp_fail "hook request failed"
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
req = {"request": "hook", "domain": sys.argv[2], "uuid": "", "operation": "started", "phase": "begin"}
s.sendall(json.dumps(req).encode() + b"\n")
r = json.loads(s.makefile().readline())
assert r == {"ok": True}, r
PY
}
hook_started sp-never-defined
for _ in $(seq 100); do grep -q "guest sp-never-defined: stopped before" "$log" && break; sleep 0.1; done
hook_started sp-never-defined
for _ in $(seq 100); do grep -q "guest sp-never-defined: stopped before .*(again" "$log" && break; sleep 0.1; done
grep "guest sp-never-defined: stopped before" "$log" | sed 's/^/# log: /'
[ "$(grep -c "samepaged-Message: .*guest sp-never-defined: stopped before" "$log")" = 1 ] \
    || sp_fail "a start reported twice for a gone guest is not logged once"
grep -q "guest sp-never-defined: stopped before .*(again" "$log" || sp_fail "the second report was not seen"

# 9. SIGTERM: clean exit, the knob it set restored.
sp_term_wait "$sdpid" "samepaged" "$log"
wait "$sdpid"
grep -q "samepaged: exit 0" "$log" || { tail "$log"; sp_fail "samepaged did not exit cleanly"; }
grep -q "AddressSanitizer\|runtime error" "$log" && { cat "$log"; sp_fail "sanitizer report"; }
[ "$(sp_ksm pages_to_scan)" = "$pts_before" ] || sp_fail "pages_to_scan not restored ($(sp_ksm pages_to_scan))"
[ -e "$sock" ] && sp_fail "the socket was left behind"
sp_log "SIGTERM: exit 0, pages_to_scan restored to $pts_before"

# 10. [controller] mode = ksmtuned with sp-d2 running: the law counts the
# guests' RAM as committed memory (once samepaged has inspected the guest;
# the law adjusts every 60 s), not the memory registered with KSM, and
# every knob is as found after SIGTERM.
mem_kib=$($SP_VIRSH dominfo sp-d2 | awk '/^Max memory:/ {print $3}')
[ -n "$mem_kib" ] || sp_fail "virsh dominfo sp-d2 gives no memory size"
knobs_before="$(sp_ksm run) $(sp_ksm pages_to_scan) $(sp_ksm sleep_millisecs)"
cat > "$conf" <<CONF
[libvirt]
uri = qemu:///system
[daemon]
socket = $sock
[controller]
mode = ksmtuned
CONF
mark10=$(wc -l <"$log")
t0=$EPOCHREALTIME
sp_spawn sdpid bash -c 'exec "$1" --config "$2" --debug >>"$3" 2>&1' _ "$SAMEPAGED" "$conf" "$log"
ctl() { status | jq -r ".controller.$1"; }
# Until a decision of the law itself (between two, it says when the next is
# due) counted the guest: the first may come before the guest's inspection.
for _ in $(seq 1200); do
    [ "$(ctl committed_from 2>/dev/null)" = guests ] &&
        ctl reason 2>/dev/null | grep -q "ksmtuned: committed" && break
    kill -0 "$sdpid" 2>/dev/null || { tail "$log"; sp_fail "samepaged (ksmtuned mode) exited"; }
    sleep 0.1
done
st=$(status) || sp_fail "samepage status --json failed (ksmtuned mode)"
sp_json_valid "status (ksmtuned mode)" "$st"
jq -e --argjson m "$mem_kib" '.controller.mode == "ksmtuned" and .controller.committed_from == "guests"
       and .controller.committed_kib == $m' <<<"$st" >/dev/null \
    || { tail -n +$((mark10 + 1)) "$log" | grep controller; sp_fail "ksmtuned mode: committed is not sp-d2's $mem_kib KiB after $(_sp_since "$t0") s: $(jq -c .controller <<<"$st")"; }
jq -r .controller.reason <<<"$st" | grep -q "committed $mem_kib KiB" \
    || sp_fail "ksmtuned mode: the law's reason does not count sp-d2's $mem_kib KiB: $(jq -r .controller.reason <<<"$st")"
sp_log "ksmtuned mode: committed $mem_kib KiB from the guests after $(_sp_since "$t0") s" \
       "(registered pages $(jq .controller.registered_pages <<<"$st")): $(jq -r .controller.reason <<<"$st")"
sp_term_wait "$sdpid" "samepaged (ksmtuned mode)" "$log"
wait "$sdpid"
tail -n +$((mark10 + 1)) "$log" | grep -q "samepaged: exit 0" \
    || { tail "$log"; sp_fail "samepaged (ksmtuned mode) did not exit cleanly"; }
knobs_after="$(sp_ksm run) $(sp_ksm pages_to_scan) $(sp_ksm sleep_millisecs)"
[ "$knobs_after" = "$knobs_before" ] \
    || sp_fail "ksmtuned mode: run pages_to_scan sleep_millisecs $knobs_after after exit, were $knobs_before"
grep -q "AddressSanitizer\|runtime error" "$log" && { cat "$log"; sp_fail "sanitizer report"; }
sp_log "ksmtuned mode: SIGTERM, knobs as found ($knobs_after)"
$SP_VIRSH destroy sp-d2 >/dev/null || sp_fail "virsh destroy sp-d2 failed"
echo "PASS: samepaged"
