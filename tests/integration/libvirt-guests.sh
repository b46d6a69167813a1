#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Two guests under a real libvirtd (TCG): samepage list, regions, mark --off
# and mark verified in smaps and ksm_stat, a <nosharepages/> guest refused
# and diagnosed by doctor, estimate DOMAIN (rows named by domain), estimate
# --all and doctor going on past a domain without QEMU, -r, remote URIs,
# and bad input.
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
# The raw table: a line per guest, the columns asked for; names alone (what
# the bash completion asks, through the same -c URI) match virsh's.
raw=$("$SAMEPAGE" -c qemu:///system list --raw -n -o domain,PID | sort) || sp_fail "list --raw failed"
[ "$raw" = "$(printf 'sp-g1 %s\nsp-g2 %s' "$pid1" "$pid2")" ] || sp_fail "list --raw -n -o domain,PID: $raw"
[ "$("$SAMEPAGE" -c qemu:///system list --raw -n -o DOMAIN | sort)" = "$($SP_VIRSH list --name | sed '/^$/d' | sort)" ] \
    || sp_fail "list -o DOMAIN does not give virsh's names"
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

# The text rows name the domain too, not "pid N (qemu-system-x86)".
"$SAMEPAGE" estimate sp-g1 --passes 1 >"$SP_TEST_TMP/est.txt" || sp_fail "estimate sp-g1 (text) failed"
grep -q "^ *$pid1 \+sp-g1 (pid $pid1)" "$SP_TEST_TMP/est.txt" \
    || sp_fail "estimate's row does not name sp-g1: $(grep -A3 '^PID' "$SP_TEST_TMP/est.txt")"

# Asking QEMU through libvirt's monitor passthrough taints the domain
# (samepage(1), QEMU MONITOR AND TAINTED DOMAINS says so).
# The log is appended to at every start: only this start's part counts.
qlog=/var/log/libvirt/qemu/sp-g1.log
taint=$(awk '/starting up libvirt/ {part = ""} {part = part $0 "\n"} END {printf "%s", part}' "$qlog" \
        | grep -m1 "tainted: custom-monitor")
[ -n "$taint" ] || sp_fail "$qlog does not record the custom-monitor taint samepage(1) describes"
sp_log "$taint"

# A domain without a QEMU process does not stop estimate --all or doctor:
# it is reported with the reason and the others go on.  sp-g3 is defined
# but not running; for sp-g2 the QEMU vanishes while libvirt still says
# "running" (what a QEMU that just died looks like): samepage is shown a
# /proc without it (links to the real /proc for everything else).
sp_libvirt_define sp-g3
fakeproc=$SP_TEST_TMP/proc-without-g2
mkdir -p "$fakeproc"
for e in /proc/*; do
    [ "${e#/proc/}" = "$pid2" ] || ln -s "$e" "$fakeproc/${e#/proc/}"
done
"$SAMEPAGE" estimate sp-g3 >/dev/null 2>"$err" && sp_fail "estimate of a shut-off domain succeeded"
grep -q "domain 'sp-g3' is not running" "$err" || sp_fail "unclear: $(cat "$err")"
out=$(SAMEPAGE_PROCFS=$fakeproc "$SAMEPAGE" estimate --all --json --passes 1 2>"$err"); rc=$?
sp_log "estimate --all without sp-g2's QEMU: exit $rc; $(tr '\n' ' ' <"$err")"
[ "$rc" -eq 1 ] || sp_fail "estimate --all with a domain left out exited $rc, not 1"
grep -q "domain 'sp-g2'.*no QEMU process" "$err" || sp_fail "estimate --all did not say why sp-g2 was left out: $(cat "$err")"
grep -q "1 running domain could not be read" "$err" || sp_fail "estimate --all did not count the domain left out: $(cat "$err")"
[ "$(jq -r '[.processes[].label] | join(",")' <<<"$out")" = "sp-g1 (pid $pid1)" ] \
    || sp_fail "estimate --all did not go on with sp-g1: $(jq -c '[.processes[].label]' <<<"$out")"
doc=$(SAMEPAGE_PROCFS=$fakeproc "$SAMEPAGE" doctor sp-g3 --no-estimate --json); rc=$?
sp_json_valid "doctor sp-g3 --json" "$doc"
[ "$rc" -eq 3 ] || sp_fail "doctor sp-g3 exited $rc, not 3"
jq -e 'any(.findings[]; .subject == "sp-g3" and .code == "unreadable" and (.evidence | test("not running")))' \
    <<<"$doc" >/dev/null || sp_fail "doctor did not report sp-g3 as not running: $doc"
doc=$(SAMEPAGE_PROCFS=$fakeproc "$SAMEPAGE" doctor --no-estimate --json); rc=$?
[ "$rc" -eq 3 ] || sp_fail "doctor without sp-g2's QEMU exited $rc, not 3"
jq -e 'any(.findings[]; .subject == "sp-g2" and .code == "unreadable" and (.evidence | test("no QEMU process")))
       and any(.findings[]; .subject == "sp-g1")' <<<"$doc" >/dev/null \
    || sp_fail "doctor did not report sp-g2 and go on with sp-g1: $doc"
sp_log "estimate --all and doctor report a domain without QEMU (sp-g2 hidden, sp-g3 shut off) and go on"

# -r: a read-only connection.  Looking at KSM works; mark is refused before
# anything is asked; a guest's RAM placement needs monitor passthrough,
# which libvirt refuses read-only: the error says so and names --qmp.
"$SAMEPAGE" -r ksm >/dev/null || sp_fail "-r ksm failed"
"$SAMEPAGE" -r mark sp-g1 >/dev/null 2>"$err" && sp_fail "-r mark was accepted"
grep -q -- "-r/--readonly was given" "$err" || sp_fail "unclear: $(cat "$err")"
"$SAMEPAGE" -r regions sp-g1 >/dev/null 2>"$err" && sp_fail "-r regions reached the monitor"
grep -q "read-only connection.*--qmp" "$err" || sp_fail "unclear: $(cat "$err")"
sp_log "-r regions: $(cat "$err")"
# The URI libvirt connects to without -c is named (not a hard-coded one).
LIBVIRT_DEFAULT_URI=qemu:///system "$SAMEPAGE" estimate --all --passes 1 >/dev/null 2>&1 \
    || sp_fail "estimate --all over LIBVIRT_DEFAULT_URI=qemu:///system failed"

# A URI of another host, for real: libvirt's ext transport pipes the
# protocol through a command, here to this host's libvirtd socket.  The URI
# is remote by its transport, so samepage must act through libvirt or
# refuse, and the results are checked against this host's sysfs.
if command -v socat >/dev/null; then
    pipe=$SP_TEST_TMP/libvirt-pipe
    sock=/run/libvirt/libvirt-sock
    [ -S "$sock" ] || sock=/run/libvirt/virtqemud-sock
    printf '#!/bin/sh\nexec socat - UNIX-CONNECT:%s\n' "$sock" >"$pipe"
    chmod 755 "$pipe"
    ext="qemu+ext:///system?command=$pipe"
    out=$("$SAMEPAGE" -c "$ext" ksm 2>&1) || sp_fail "ksm over $ext failed"
    sp_log "ksm over the ext transport: $(head -1 <<<"$out")"
    grep -q "through libvirt" <<<"$out" || sp_fail "ksm over $ext does not say it went through libvirt: $out"
    js=$("$SAMEPAGE" -c "$ext" ksm --json) || sp_fail "ksm --json over $ext failed"
    sp_json_valid "ksm --json over $ext" "$js"
    [ "$(jq .ksm.pages_to_scan <<<"$js")" = "$(cat /sys/kernel/mm/ksm/pages_to_scan)" ] \
        || sp_fail "pages_to_scan through libvirt $(jq .ksm.pages_to_scan <<<"$js"), sysfs $(cat /sys/kernel/mm/ksm/pages_to_scan)"
    [ "$(jq .ksm.run <<<"$js")" = null ] || sp_fail "run is not passed by libvirt, yet ksm --json shows $(jq .ksm.run <<<"$js")"
    was=$(cat /sys/kernel/mm/ksm/pages_to_scan)
    out=$("$SAMEPAGE" -c "$ext" ksm set pages_to_scan=4321) || sp_fail "ksm set over $ext failed"
    [ "$(cat /sys/kernel/mm/ksm/pages_to_scan)" = 4321 ] || sp_fail "ksm set through libvirt did not reach sysfs"
    grep -q "^pages_to_scan: $was -> 4321 (through libvirt on " <<<"$out" || sp_fail "ksm set over $ext said: $out"
    js=$("$SAMEPAGE" -c "$ext" ksm set --json pages_to_scan=4322) || sp_fail "ksm set --json over $ext failed"
    sp_json_valid "ksm set --json over $ext" "$js"
    [ "$(jq '.changes[0].before, .changes[0].after' <<<"$js" | tr '\n' ' ')" = "4321 4322 " ] \
        || sp_fail "ksm set --json over $ext: $js"
    sp_ksm_set pages_to_scan=100
    "$SAMEPAGE" -c "$ext" ksm set run=1 >/dev/null 2>"$err" && sp_fail "run=1 over $ext was accepted"
    grep -q "libvirt only passes" "$err" || sp_fail "unclear: $(cat "$err")"
    "$SAMEPAGE" -r -c "$ext" ksm set pages_to_scan=200 >/dev/null 2>"$err"; rc=$?
    [ "$rc" -eq 2 ] || sp_fail "-r ksm set over $ext exited $rc"
    lst=$("$SAMEPAGE" -r -c "$ext" list --json) || sp_fail "-r list over $ext failed"
    sp_json_valid "-r list --json over $ext" "$lst"
    [ "$(jq -r '[.guests[].domain] | sort | join(",")' <<<"$lst")" = "sp-g1,sp-g2" ] \
        || sp_fail "list over $ext: $lst"
    "$SAMEPAGE" -c "$ext" regions sp-g1 >/dev/null 2>"$err"; rc=$?
    [ "$rc" -eq 2 ] && grep -q "is remote (transport ext, not a UNIX socket)" "$err" \
        || sp_fail "regions over $ext: exit $rc: $(cat "$err")"
    sp_log "over the ext transport: ksm, ksm set and list through libvirt; regions refused: $(cat "$err")"
else
    sp_log "socat is missing: the ext-transport checks are left out"
fi

# Bad input: a clear error, non-zero exit.
"$SAMEPAGE" regions no-such-domain >/dev/null 2>"$err" && sp_fail "unknown domain accepted"
grep -q "no domain 'no-such-domain'" "$err" || sp_fail "unclear: $(cat "$err")"
$SP_VIRSH destroy sp-g2 >/dev/null
"$SAMEPAGE" regions sp-g2 >/dev/null 2>"$err" && sp_fail "a shut-off domain was accepted"
grep -q "is not running" "$err" || sp_fail "unclear: $(cat "$err")"
"$SAMEPAGE" -c "qemu+unix:///system?socket=/nonexistent.sock" list >/dev/null 2>"$err" \
    && sp_fail "a URI that refuses us was accepted"
grep -q "cannot connect" "$err" || sp_fail "unclear: $(cat "$err")"
# Another host: the commands of this host refuse it before connecting
# (exit 2); list tries it through libvirt and says it cannot connect.
"$SAMEPAGE" -c qemu+ssh://nohost.invalid/system estimate --all >/dev/null 2>"$err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "is remote (host nohost.invalid over ssh)" "$err" \
    || sp_fail "estimate --all over a remote URI: exit $rc: $(cat "$err")"
"$SAMEPAGE" -c qemu+ssh://nohost.invalid/system list >"$SP_TEST_TMP/out" 2>"$err"; rc=$?
[ "$rc" -eq 1 ] && [ ! -s "$SP_TEST_TMP/out" ] && grep -q "cannot connect to qemu+ssh://nohost.invalid" "$err" \
    || sp_fail "list over a remote URI: exit $rc: $(cat "$err")"
sp_log "bad input refused: unknown domain, shut-off domain, unreachable URI"
