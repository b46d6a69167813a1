#!/bin/bash
# Two guests under a real libvirtd (TCG): samepage list, regions, mark --off
# and mark verified in smaps and ksm_stat, a <nosharepages/> guest refused
# and diagnosed by doctor, estimate DOMAIN, and bad input.
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"
. "$SP_TOP_SRCDIR/tests/integration/guest-lib.sh"
. "$SP_TOP_SRCDIR/tests/integration/libvirt-lib.sh"

sp_ksm_save
sp_guest_image
sp_libvirtd_start
err=$SP_TEST_TMP/err

sp_libvirt_guest sp-g1
sp_libvirt_guest sp-g2 nosharepages
sp_libvirt_wait_agent sp-g1
sp_libvirt_wait_agent sp-g2

# list: both guests, with pids; g1 marked, g2 (nosharepages) not.
list=$("$SAMEPAGE" list --json) || sp_fail "samepage list failed"
sp_json_valid "list" "$list"
sp_log "samepage list: $(jq -c '.guests[] | {domain, pid, regions_marked}' <<<"$list" | tr '\n' ' ')"
"$SAMEPAGE" list | sed 's/^/# /'
pid1=$(jq -r '.guests[] | select(.domain == "sp-g1") | .pid' <<<"$list")
pid2=$(jq -r '.guests[] | select(.domain == "sp-g2") | .pid' <<<"$list")
[ -n "$pid1" ] && [ -d "/proc/$pid1" ] || sp_fail "list: no live pid for sp-g1"
grep -q -- "-uuid" "/proc/$pid1/cmdline" || sp_fail "pid $pid1 is not a libvirt QEMU"
[ "$(jq -r '.guests[] | select(.domain == "sp-g1") | .regions_marked' <<<"$list")" = 1 ] \
    || sp_fail "sp-g1 should have its RAM marked"
[ "$(jq -r '.guests[] | select(.domain == "sp-g2") | .regions_marked' <<<"$list")" = 0 ] \
    || sp_fail "sp-g2 has <nosharepages/>: nothing should be marked"

# QEMU's pid is libvirt's: its pid file (libvirt 9.0, qemu:///system) names
# it.  Without the pid file, a process of another user carrying the same
# -uuid is never taken, and two candidates of QEMU's users are refused, not
# guessed between.
pidfile=/run/libvirt/qemu/sp-g1.pid
[ -f "$pidfile" ] || sp_fail "libvirt wrote no $pidfile"
[ "$(cat "$pidfile")" = "$pid1" ] || sp_fail "samepage list says pid $pid1, $pidfile says $(cat "$pidfile")"
sp_log "$pidfile: $(cat "$pidfile") (owner $(stat -c %U "$pidfile")); QEMU runs as $(ps -o user= -p "$pid1")"
uuid1=$($SP_VIRSH domuuid sp-g1)
wait_cmdline() { for _ in $(seq 50); do grep -q -- "$2" "/proc/$1/cmdline" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
sp_spawn impostor setpriv --reuid=65534 --regid=65534 --clear-groups \
    bash -c 'while :; do sleep 0.2; done' qemu-system-x86_64 -uuid "$uuid1"
wait_cmdline "$impostor" "$uuid1" || sp_fail "the impostor did not start"
nopid=$SP_TEST_TMP/run-without-pid-files
mkdir -p "$nopid"
got=$(SAMEPAGE_RUNDIR=$nopid "$SAMEPAGE" list --json | jq -r '.guests[] | select(.domain == "sp-g1") | .pid')
[ "$got" = "$pid1" ] || sp_fail "another user's process (pid $impostor) with the -uuid: sp-g1 is pid '$got', want $pid1"
sp_spawn impostor2 bash -c 'while :; do sleep 0.2; done' qemu-system-x86_64 -uuid "$uuid1"
wait_cmdline "$impostor2" "$uuid1" || sp_fail "the second impostor did not start"
SAMEPAGE_RUNDIR=$nopid "$SAMEPAGE" regions sp-g1 >/dev/null 2>"$err" \
    && sp_fail "two root-owned candidates and no pid file: samepage guessed"
grep -q "refusing to guess" "$err" || sp_fail "unclear: $(cat "$err")"
sp_log "$(cat "$err")"
"$SAMEPAGE" regions sp-g1 >/dev/null 2>"$err" || sp_fail "with libvirt's pid file: $(cat "$err")"
_sp_stop_pid "$impostor"
_sp_stop_pid "$impostor2"
sp_log "QEMU of sp-g1 found by the pid file; impostors of uid 65534 and root not taken"

# regions: pc.ram on the 512 MiB VMA that gpa2hva names, with mg.
reg=$("$SAMEPAGE" regions sp-g1 --json) || sp_fail "samepage regions failed"
sp_json_valid "regions" "$reg"
"$SAMEPAGE" regions sp-g1 | sed 's/^/# /'
hva=$(jq -r '.regions[] | select(.id == "pc.ram") | .hva' <<<"$reg")
[ "$hva" != null ] || sp_fail "regions: pc.ram has no host address"
vma=$(grep -E "^${hva#0x}-" "/proc/$pid1/smaps") || sp_fail "no VMA starts at $hva in smaps"
start=$((16#${hva#0x})); end=$((16#$(cut -d' ' -f1 <<<"$vma" | cut -d- -f2)))
[ $((end - start)) -eq $((512 << 20)) ] || sp_fail "the pc.ram VMA is $((end - start)) bytes"

vmflags() {   # PID HVA: the VmFlags line of the VMA at HVA
    awk -v a="${2#0x}" '$1 ~ "^"a"-" {f=1} f && /^VmFlags:/ {print; exit}' "/proc/$1/smaps"
}
vmflags "$pid1" "$hva" | grep -qw mg || sp_fail "pc.ram of sp-g1 lacks mg before marking"

# mark --off, then mark: the kernel's view changes, shown in smaps.
out=$("$SAMEPAGE" mark sp-g1 --off) || sp_fail "mark --off failed: $out"
sp_log "$out"
vmflags "$pid1" "$hva" | grep -qw mg && sp_fail "mark --off: smaps still shows mg"
sp_log "smaps after mark --off: $(vmflags "$pid1" "$hva")"
out=$("$SAMEPAGE" mark sp-g1) || sp_fail "mark failed: $out"
sp_log "$out"
vmflags "$pid1" "$hva" | grep -qw mg || sp_fail "mark: smaps lacks mg"
out=$("$SAMEPAGE" mark sp-g1 --region pc.ram --json) || sp_fail "mark --json failed: $out"
sp_json_valid "mark" "$out"
jq -e '.domain == "sp-g1" and .regions[0].id == "pc.ram" and .regions[0].mergeable_before == true
       and .regions[0].mergeable == true' <<<"$out" >/dev/null || sp_fail "mark --json: $out"
sp_log "smaps after mark: $(vmflags "$pid1" "$hva")"

# The kernel merges what was marked: KSM on, ksm_stat of g1 grows, g2 stays 0.
sp_ksm_set run=2
sp_ksm_set pages_to_scan=5000 sleep_millisecs=20 run=1
for _ in $(seq 60); do
    m=$(awk '/^ksm_merging_pages/ {print $2}' "/proc/$pid1/ksm_stat")
    [ "${m:-0}" -gt 0 ] && break
    sleep 0.5
done
sp_log "ksm_stat sp-g1: $(tr '\n' ' ' < "/proc/$pid1/ksm_stat")"
sp_log "ksm_stat sp-g2: $(tr '\n' ' ' < "/proc/$pid2/ksm_stat")"
[ "${m:-0}" -gt 0 ] || sp_fail "KSM merged nothing of sp-g1 in 30 s"
[ "$(awk '/^ksm_merging_pages/ {print $2}' "/proc/$pid2/ksm_stat")" = 0 ] \
    || sp_fail "sp-g2 (<nosharepages/>) has merged pages"
sp_ksm_set run=2

# nosharepages: mark refused, doctor says why.
"$SAMEPAGE" mark sp-g2 >/dev/null 2>"$err" && sp_fail "mark of a <nosharepages/> domain was accepted"
grep -q "nosharepages" "$err" || sp_fail "unclear refusal: $(cat "$err")"
sp_log "$(cat "$err")"
doc=$("$SAMEPAGE" doctor sp-g2 --no-estimate --json); rc=$?
sp_json_valid "doctor" "$doc"
want=0; jq -e 'any(.findings[]; .severity == "error")' <<<"$doc" >/dev/null && want=3
[ "$rc" -eq "$want" ] || sp_fail "doctor sp-g2 exited $rc, not $want: $doc"
# A domain that does not run is an "unreadable" error, not the end.
doc_missing=$("$SAMEPAGE" doctor sp-g2 sp-no-such-domain --no-estimate --json); rc=$?
sp_json_valid "doctor (a missing domain)" "$doc_missing"
[ "$rc" -eq 3 ] || sp_fail "doctor with a missing domain exited $rc, not 3"
jq -e 'any(.findings[]; .code == "unreadable" and .subject == "sp-no-such-domain")
       and any(.findings[]; .subject == "sp-g2" and .code != "unreadable")' <<<"$doc_missing" >/dev/null \
    || sp_fail "doctor did not report the missing domain and go on: $doc_missing"
"$SAMEPAGE" doctor sp-g2 --no-estimate | sed 's/^/# /'
for code in nosharepages merge-off; do
    [ "$(jq -r --arg c "$code" '[.findings[] | select(.subject == "sp-g2" and .code == $c)] | length' <<<"$doc")" -ge 1 ] \
        || sp_fail "doctor sp-g2: no '$code' finding"
done

# estimate DOMAIN runs the model over the guest's RAM.
est=$("$SAMEPAGE" estimate sp-g1 --json --passes 2 --interval 0.5) || sp_fail "estimate sp-g1 failed"
sp_json_valid "estimate DOMAIN" "$est"
sp_log "estimate sp-g1: scanned $(jq '.processes[0].scanned_pages' <<<"$est") pages, pages_sharing $(jq .pages_sharing <<<"$est"), saved $(jq .saved.total_pages <<<"$est")"
[ "$(jq '.processes[0].scanned_pages' <<<"$est")" -gt 1000 ] || sp_fail "estimate scanned too little"
[[ "$(jq -r '.processes[0].label' <<<"$est")" == "sp-g1 (pid $pid1)" ]] \
    || sp_fail "estimate names the guest '$(jq -r '.processes[0].label' <<<"$est")', not 'sp-g1 (pid $pid1)'"

# Bad input: a clear error, non-zero exit.
"$SAMEPAGE" regions no-such-domain >/dev/null 2>"$err" && sp_fail "unknown domain accepted"
grep -q "no domain 'no-such-domain'" "$err" || sp_fail "unclear: $(cat "$err")"
$SP_VIRSH destroy sp-g2 >/dev/null
"$SAMEPAGE" regions sp-g2 >/dev/null 2>"$err" && sp_fail "a shut-off domain was accepted"
grep -q "is not running" "$err" || sp_fail "unclear: $(cat "$err")"
"$SAMEPAGE" -c "qemu+unix:///system?socket=/nonexistent.sock" list >/dev/null 2>"$err" \
    && sp_fail "a URI that refuses us was accepted"
grep -q "cannot connect" "$err" || sp_fail "unclear: $(cat "$err")"
sp_log "bad input refused: unknown domain, shut-off domain, unreachable URI"
