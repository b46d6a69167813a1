#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One real guest (vm-images/build-image, bare QEMU, TCG unless SP_ACCEL=kvm):
# it boots to SAMEPAGE-GUEST-READY, its agent answers, QMP shows the RAM
# backend pc.ram as mergeable, HMP gpa2hva 0 points at the start of a
# 512 MiB VMA marked mergeable (mg), and `samepage estimate` on the QEMU
# process scans it and predicts sharing.  KSM's knobs are not touched.
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"
. "$SP_TOP_SRCDIR/tests/integration/guest-lib.sh"

MIB=512

sp_guest_image

# The libvirt template renders to a valid domain (a cheap check; libvirt
# itself is exercised elsewhere).
if command -v virt-xml-validate >/dev/null; then
    sp_guest_domain_xml sp-guest-boot "$SP_TEST_TMP/disk.qcow2" "$SP_TEST_TMP/serial.log" \
        > "$SP_TEST_TMP/domain.xml"
    virt-xml-validate "$SP_TEST_TMP/domain.xml" domain > "$SP_TEST_TMP/validate.log" 2>&1 \
        || sp_fail "vm-images/domain.xml.in does not validate: $(cat "$SP_TEST_TMP/validate.log")"
    if grep -q '@[A-Z_]*@' "$SP_TEST_TMP/domain.xml"; then
        sp_fail "a placeholder is left in the domain XML"
    fi
    sp_log "vm-images/domain.xml.in renders to a valid libvirt domain"
fi

sp_guest_start g1 --memory $MIB
pid=$(sp_guest_pid g1)
[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$(command -v qemu-system-x86_64)")" ] \
    || sp_fail "pid $pid is not QEMU ($(readlink "/proc/$pid/exe"))"
sp_guest_wait_ready g1
sp_guest_wait_agent g1

# QMP: the RAM backend is pc.ram, mergeable, of the configured size.
memdev=$(sp_qmp g1 '{"execute":"query-memdev"}') || sp_fail "query-memdev failed: $memdev"
jq -e --argjson size $((MIB * 1048576)) \
    '[.return[] | select(.id == "pc.ram" and .merge == true and .size == $size)] | length == 1' \
    <<<"$memdev" > /dev/null || sp_fail "query-memdev has no mergeable pc.ram of $MIB MiB: $memdev"

# HMP gpa2hva 0: "Host virtual address for 0x0 (pc.ram) is 0x7f..."
answer=$(sp_hmp g1 'gpa2hva 0') || sp_fail "gpa2hva 0 failed"
[[ $answer =~ \(pc\.ram\)\ is\ 0x([0-9a-fA-F]+) ]] || sp_fail "unexpected gpa2hva answer: $answer"
hva=$((16#${BASH_REMATCH[1]}))
sp_log "gpa2hva 0: $(printf '0x%x' $hva)"

# That address starts a VMA of exactly the RAM size, flagged mergeable.
vma="" flags=""
while IFS= read -r line; do
    if [[ $line =~ ^([0-9a-f]+)-([0-9a-f]+)\  ]]; then
        if [ -n "$vma" ]; then break; fi
        if (( 16#${BASH_REMATCH[1]} == hva )); then
            vma=$line
            size=$(( 16#${BASH_REMATCH[2]} - 16#${BASH_REMATCH[1]} ))
        fi
    elif [ -n "$vma" ] && [[ $line == VmFlags:* ]]; then
        read -r -a words <<<"${line#VmFlags:}"
        flags="${words[*]}"
    elif [ -n "$vma" ] && [[ $line =~ ^(Rss|AnonHugePages):\ +([0-9]+)\ kB ]]; then
        printf -v "vma_${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
    fi
done < "/proc/$pid/smaps"
[ -n "$vma" ] || sp_fail "no VMA of QEMU $pid starts at $(printf '0x%x' $hva)"
[ "$size" -eq $((MIB * 1048576)) ] || sp_fail "the VMA at $(printf '0x%x' $hva) is $size bytes, not $MIB MiB"
[[ " $flags " == *" mg "* ]] || sp_fail "the guest RAM VMA is not mergeable (VmFlags: $flags)"
sp_log "guest RAM VMA: ${vma%% *}, $((size / 1048576)) MiB, Rss ${vma_Rss:-?} kB (THP ${vma_AnonHugePages:-?} kB), VmFlags: $flags"

# samepage estimate on the QEMU process (read-only).
t0=$EPOCHREALTIME
est=$("$SAMEPAGE" estimate --pid "$pid" --json --passes 2 --interval 1) \
    || sp_fail "samepage estimate --pid $pid failed: $est"
est_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
sp_json_valid "estimate --pid" "$est"
jq -e '.processes | length == 1' <<<"$est" > /dev/null || sp_fail "estimate did not report one process"
scanned=$(jq '.processes[0].scanned_pages' <<<"$est")
sharing=$(jq '.pages_sharing' <<<"$est")
sp_log "estimate ($est_s s): $(jq -r '.processes[0] | "present \(.present_pages), scanned \(.scanned_pages), volatile \(.volatile_pages) pages"' <<<"$est")"
sp_log "estimate: $(jq -r '"pages_shared \(.pages_shared), pages_sharing \(.pages_sharing), pages_unshared \(.pages_unshared), ksm_zero_pages \(.ksm_zero_pages), general_profit \(.general_profit / 1048576 * 10 | floor / 10) MiB"' <<<"$est")"
sp_log "estimate: saved $(jq -r '.saved | "\(.total_pages) pages = \(.total_bytes / 1048576 * 10 | floor / 10) MiB (zero-filled \(.zero_filled_pages), other \(.other_pages))"' <<<"$est") of $((scanned / 256)) MiB scanned"
[ "$scanned" -gt 10000 ] || sp_fail "estimate scanned only $scanned pages of the guest"
[ "$sharing" -gt 0 ] || sp_fail "estimate predicts no sharing (pages_sharing $sharing)"
jq -e '.partial == false' <<<"$est" > /dev/null || sp_fail "the estimate is partial"

# The same guest through samepage's own QMP client (no libvirt): regions,
# mark --off and mark, each verified in smaps by the kernel's VmFlags.
qmpsock=$(sp_guest_path g1 qmp)
reg=$("$SAMEPAGE" regions --qmp "$qmpsock" --json) || sp_fail "regions --qmp failed: $reg"
sp_json_valid "regions --qmp" "$reg"
[ "$(jq -r .pid <<<"$reg")" = "$pid" ] || sp_fail "regions --qmp found pid $(jq -r .pid <<<"$reg"), not $pid"
rhva=$(jq -r '.regions[] | select(.id == "pc.ram") | .hva' <<<"$reg")
[ $((16#${rhva#0x})) -eq "$hva" ] || sp_fail "regions --qmp places pc.ram at $rhva, gpa2hva said $(printf 0x%x "$hva")"
flags_at() { awk -v a="$(printf %x "$1")" '$1 ~ "^"a"-" {f=1} f && /^VmFlags:/ {print; exit}' "/proc/$pid/smaps"; }
out=$("$SAMEPAGE" mark --qmp "$qmpsock" --off) || sp_fail "mark --qmp --off failed: $out"
sp_log "$out"
flags_at "$hva" | grep -qw mg && sp_fail "mark --off: the VMA still has mg"
out=$("$SAMEPAGE" mark --qmp "$qmpsock") || sp_fail "mark --qmp failed: $out"
sp_log "$out"
flags_at "$hva" | grep -qw mg || sp_fail "mark: the VMA lacks mg"
# Marking again changes nothing, and says so in JSON: mergeable before and after.
out=$("$SAMEPAGE" mark --qmp "$qmpsock" --json) || sp_fail "mark --qmp --json failed: $out"
sp_json_valid "mark --qmp" "$out"
jq -e '.merge == true and any(.regions[]; .id == "pc.ram" and .mergeable_before == true
       and .mergeable == true)' <<<"$out" >/dev/null || sp_fail "mark --json: $out"
doc=$("$SAMEPAGE" doctor --qmp "$qmpsock" --no-estimate --json); rc=$?
sp_json_valid "doctor --qmp" "$doc"
# Exit status 3 exactly when a finding is an error (samepage(1)).
want=0; jq -e 'any(.findings[]; .severity == "error")' <<<"$doc" >/dev/null && want=3
[ "$rc" -eq "$want" ] || sp_fail "doctor --qmp exited $rc, not $want: $doc"
sp_log "doctor: $(jq -c '[.findings[] | .code]' <<<"$doc")"

sp_guest_quit g1
