#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# KSM on a workload whose duplication is known exactly (dupmem): the real
# kernel converges to the figures docs/ksm-model.md A.5 predicts.  Three
# cases: use_zero_pages=0 and =1 with MADV_NOHUGEPAGE, and use_zero_pages=0
# with the area in THPs (MADV_HUGEPAGE; skipped when THP is unavailable).
# If `samepage estimate` exists, its prediction, made before KSM starts, is
# compared with the kernel's figures too (compare_with_model).
#
# Workload, per process (2 processes, same --seed, different --instance):
#   CROSS pages equal across the processes, GROUPS groups of GROUP_SIZE equal
#   pages private to each process, ZERO zero-filled pages, VOLATILE pages
#   rewritten all the time, the rest unique; MADV_MERGEABLE.
#
# Environment: SP_CONVERGE_TIMEOUT (seconds per case, default 120),
# SP_CONVERGE_STABLE_SCANS (default 10, see run_case).
. "$SP_TOP_SRCDIR/tests/integration/lib.sh"

sp_ksm_save
command -v jq >/dev/null || sp_skip "jq is not installed (build-aux/setup installs it)"
DUPMEM=$SP_TEST_BINDIR/dupmem
[ -x "$DUPMEM" ] || sp_fail "$DUPMEM is not built"

NPROC=2
PAGES=25600
CROSS=10000
GROUPS_N=1000
GROUP_SIZE=4
ZERO=2000
VOLATILE=1000
SEED=42
MAX_PAGE_SHARING=256
PAGES_TO_SCAN=5000
SLEEP_MS=20
TIMEOUT=${SP_CONVERGE_TIMEOUT:-120}
STABLE_SCANS=${SP_CONVERGE_STABLE_SCANS:-10}
PAGE_SIZE=$(getconf PAGESIZE)
# sizeof(struct ksm_rmap_item): 64 bytes on 64-bit kernels, 32 on 32-bit.
if [ "$(getconf LONG_BIT)" = 64 ]; then RMAP_SIZE=64; else RMAP_SIZE=32; fi

for k in run pages_to_scan sleep_millisecs max_page_sharing use_zero_pages full_scans \
         pages_shared pages_sharing pages_unshared pages_volatile stable_node_chains \
         stable_node_dups ksm_zero_pages general_profit; do
    [ -f "$SP_KSM_DIR/$k" ] || sp_skip "$SP_KSM_DIR/$k is missing (kernel older than 6.6?)"
done
[ -r /proc/self/ksm_stat ] || sp_skip "/proc/PID/ksm_stat is missing (kernel older than 6.6?)"

# ---------------------------------------------------------------- helpers

# ksm_registered [PID...]: print the pids, other than those given, whose
# memory KSM scans or has scanned: a VMA with VM_MERGEABLE ("mg" in
# VmFlags), the prctl flag, or rmap_items.
ksm_registered() {
    local d pid items
    local -A skip=()
    for pid in "$@"; do skip[$pid]=1; done
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ -n "${skip[$pid]:-}" ] && continue
        [ "$pid" = $$ ] || [ "$pid" = "$BASHPID" ] && continue
        if grep -qE '^VmFlags:.* mg( |$)' "$d/smaps" 2>/dev/null ||
           grep -q '^ksm_merge_any: yes' "$d/ksm_stat" 2>/dev/null; then
            echo "$pid"
            continue
        fi
        items=$(awk '$1 == "ksm_rmap_items" { print $2 }' "$d/ksm_stat" 2>/dev/null)
        [ "${items:-0}" -gt 0 ] && echo "$pid"
    done
    return 0
}

describe_pids() {
    local pid
    for pid in "$@"; do
        printf '%s(%s) ' "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null || echo gone)"
    done
}

# thp_of PID: how much of the process's anonymous memory is in THPs.
thp_of() {
    awk '$1 == "AnonHugePages:" { print "AnonHugePages=" $2 "kB" }' "/proc/$1/smaps_rollup"
}

# wait_for DESC SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
    local desc=$1 limit=$2; shift 2
    local end=$(( $(date +%s) + limit ))
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || sp_fail "$desc: not reached within $limit s"
        sleep 0.1
    done
}

# dupmem_ready PID FILE: true once dupmem wrote its ready file; fails the
# test at once if dupmem died (its error is in the log above).
dupmem_ready() {
    [ -s "$2" ] && return 0
    kill -0 "$1" 2>/dev/null || sp_fail "dupmem $1 exited before it was ready"
    return 1
}

ksm_unmerged() {
    [ "$(sp_ksm pages_shared)" = 0 ] && [ "$(sp_ksm pages_sharing)" = 0 ] &&
        [ "$(sp_ksm ksm_zero_pages)" = 0 ]
}

# same_pages N M: "shared sharing" for N equal pages with max_page_sharing M
# (the formula of the kernel's ksm_tests.c, A.5): dups fill up to M
# mappings; a single page left over cannot merge.
same_pages() {
    local n=$1 m=$2 s
    if [ "$n" -lt 2 ]; then echo "0 0"; return; fi
    if [ $(( n % m )) -le 1 ]; then s=$(( n / m )); echo "$s $(( s * (m - 1) ))"
    else s=$(( n / m + 1 )); echo "$s $(( n - s ))"; fi
}

# ksm_stat_get PID KEY: one value of /proc/PID/ksm_stat ("key value" or
# "key: value").
ksm_stat_get() {
    awk -v k="$2" '{ sub(/:$/, "", $1) } $1 == k { print $2 }' "/proc/$1/ksm_stat"
}

# now_us: the wall clock in microseconds.
now_us() { local t=$EPOCHREALTIME; echo $(( ${t/[.,]/} )); }

# secs US: microseconds as seconds with 2 decimals.
secs() { printf '%d.%02d' $(( $1 / 1000000 )) $(( $1 % 1000000 / 10000 )); }

# expect NAME KERNEL PREDICTED [SOURCE]: compare one of the kernel's figures
# with a prediction from SOURCE ("A.5", the default, or "model"); every
# mismatch is logged and recorded, and the test fails at the end.
expect() {
    local src=${4:-A.5}
    if [ "$2" = "$3" ]; then
        sp_log "ok ($src): $1 = $2"
    else
        sp_log "MISMATCH ($src): $1: the kernel has $2, $src predicts $3"
        if [ "$src" = model ]; then
            model_mismatches+=("$case: $1: kernel $2, model $3")
        else
            mismatches+=("$case: $1: kernel $2, $src $3")
        fi
    fi
}

# cannot_judge WHY...: end the test as SKIP (77) because of the environment,
# unless an earlier case already found a mismatch: then FAIL with both.
cannot_judge() {
    if [ ${#mismatches[@]} -gt 0 ] || [ ${#model_mismatches[@]} -gt 0 ]; then
        sp_fail "$*; and before that: $(printf '%s; ' "${mismatches[@]}" "${model_mismatches[@]}")"
    fi
    sp_skip "$@"
}

# ---------------------------------------------------------------- the model
# compare_with_model estimate|check CASE USE_ZERO_PAGES PID...
#
# The place where samepage's own model meets the kernel.  "estimate" runs
# before KSM is started and stores samepage's prediction; "check" runs after
# convergence and compares it with the kernel's figures (sysfs and
# ksm_stat, read into fig[] and the files under $SP_TEST_TMP).  Until
# `samepage estimate` exists it only says that the comparison is skipped.
compare_with_model() {
    local phase=$1 case=$2 uzp=$3; shift 3
    local json=$SP_TEST_TMP/model-$case.json pid args=() k want got
    if ! "$SAMEPAGE" help estimate >/dev/null 2>&1; then
        [ "$phase" = estimate ] &&
            sp_log "model: 'samepage help estimate' failed: model comparison skipped"
        return 0
    fi
    case $phase in
    estimate)
        for pid in "$@"; do args+=(--pid "$pid"); done
        "$SAMEPAGE" estimate "${args[@]}" --json --max-page-sharing "$MAX_PAGE_SHARING" \
            --use-zero-pages "$uzp" >"$json" 2>"$SP_TEST_TMP/model-$case.err" ||
            sp_fail "samepage estimate failed: $(cat "$SP_TEST_TMP/model-$case.err")"
        sp_json_valid "estimate ($case)" "$(cat "$json")"
        sp_log "model: estimate stored ($(jq -c '{pages_shared, pages_sharing,
            stable_node_dups, ksm_zero_pages, general_profit}' "$json"))"
        ;;
    recheck)
        # After convergence: a fresh estimate of the merged memory must give
        # the kernel's figures again (zero-page mappings told apart through
        # kpageflags, whatever a read fault maps on this kernel).  Zero pages
        # KSM mapped to the zero page (use_zero_pages=1) are zero-page
        # mappings by then, so ksm_zero_pages is not compared.
        for pid in "$@"; do args+=(--pid "$pid"); done
        json=$SP_TEST_TMP/model-$case-after.json
        "$SAMEPAGE" estimate "${args[@]}" --json --max-page-sharing "$MAX_PAGE_SHARING" \
            --use-zero-pages "$uzp" >"$json" 2>"$SP_TEST_TMP/model-$case-after.err" ||
            sp_fail "samepage estimate (after KSM) failed: $(cat "$SP_TEST_TMP/model-$case-after.err")"
        sp_json_valid "estimate after KSM ($case)" "$(cat "$json")"
        sp_log "model after KSM: $(jq -c '{pages_shared, pages_sharing, stable_node_dups,
            unmerged_pages, zero_page_from: .scan.zero_page_from,
            percent_of_present: .saved.percent_of_present}' "$json")"
        [ "$(jq -r .scan.zero_page_from "$json")" = kpageflags ] ||
            expect "zero page told by" "$(jq -r .scan.zero_page_from "$json")" kpageflags model
        for k in pages_shared pages_sharing stable_node_chains stable_node_dups; do
            want=$(jq -r --arg k "$k" '.[$k]' "$json")
            expect "$k (estimate after KSM)" "${fig[$k]}" "$want" model
        done
        for pid in "$@"; do
            want=$(jq -r --argjson p "$pid" \
                '[.processes[] | select(.pid == $p)][0].ksm_merging_pages' "$json")
            got=$(awk '$1 == "ksm_merging_pages" { print $2 }' "$SP_TEST_TMP/stat-$case-$pid")
            expect "pid $pid ksm_merging_pages (estimate after KSM)" "$got" "$want" model
        done
        # Every share is of memory that contains it.
        awk -v p="$(jq -r .saved.percent_of_present "$json")" \
            'BEGIN { exit !(p >= 0 && p <= 100) }' ||
            expect "saved % of present memory (after KSM)" \
                "$(jq -r .saved.percent_of_present "$json")" "0..100" model
        ;;
    check)
        [ -s "$json" ] || sp_fail "model: no estimate was stored for $case"
        for k in pages_shared pages_sharing stable_node_chains stable_node_dups \
                 ksm_zero_pages general_profit; do
            want=$(jq -r --arg k "$k" '.[$k]' "$json")
            expect "$k" "${fig[$k]}" "$want" model
        done
        want=$(jq -r 'if .pages_unshared == null or .pages_volatile == null then null
                      else .pages_unshared + .pages_volatile end' "$json")
        expect "pages_unshared+pages_volatile" \
            "$(( fig[pages_unshared] + fig[pages_volatile] ))" "$want" model
        for pid in "$@"; do
            for k in ksm_merging_pages ksm_process_profit; do
                want=$(jq -r --argjson p "$pid" --arg k "$k" \
                    '[.processes[] | select(.pid == $p)][0][$k]' "$json")
                got=$(awk -v k="$k" '$1 == k { print $2 }' "$SP_TEST_TMP/stat-$case-$pid")
                expect "pid $pid $k" "$got" "$want" model
            done
        done
        ;;
    esac
}

# ---------------------------------------------------------------- one case

declare -A fig
mismatches=()
model_mismatches=()
purge_at_exit=''
others=()

# kernel_at_least MAJOR MINOR
kernel_at_least() {
    local r major minor
    r=$(uname -r)
    major=${r%%.*}; r=${r#*.}; minor=${r%%[!0-9]*}
    [ "$major" -gt "$1" ] || { [ "$major" -eq "$1" ] && [ "${minor:-0}" -ge "$2" ]; }
}

# run_case NAME USE_ZERO_PAGES THP
#
# THP=0 maps the area with MADV_NOHUGEPAGE; THP=1 with MADV_HUGEPAGE, and
# the case is skipped unless every page starts in a THP.  What becomes of
# the zero-filled pages ("zero fate", used by check_figures):
#   ksm       use_zero_pages=0: they merge into KSM pages like any content;
#   ksmzero   use_zero_pages=1: KSM maps them to the zero page (dirty PTE,
#             counted in ksm_zero_pages), and their rmap_items go away;
#   thpsplit  in THPs: KSM splits a THP when it merges one of its pages, or
#             when two equal pages of the same THP meet in the unstable tree.
#             Since 6.12 (b1f202060afe "mm: remap unused subpages to shared
#             zeropage when splitting isolated thp") every split of an
#             anonymous THP maps its zero-filled subpages to the shared zero
#             page: they are no longer anonymous pages, KSM drops their
#             rmap_items and does not count them anywhere.  Before 6.12 the
#             figures are only reported.
#
# Convergence: at least 3 full scans, and the merge figures (shared,
# sharing, chains, dups, ksm_zero_pages, rmap_items per process) unchanged
# over STABLE_SCANS full scans.  With smart_scan an item that failed to
# merge is visited only once in up to 9 scans (A.7), so 2 scans are not
# enough: in the THP case pages keep changing for some 30 scans.
# pages_unshared and pages_volatile keep moving regardless (A.5).
run_case() {
    local case=$1 uzp=$2 thp=$3
    local pids=() pid spawned='' i t0 t1 t_last=0 fs fs0 fs_since=-1 last='' now tuple
    local madv=--nohuge fate=ksm check=1
    local -a progress=()
    [ "$uzp" = 1 ] && fate=ksmzero
    if [ "$thp" = 1 ]; then
        if ! grep -qE '\[(always|madvise)\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
            sp_log "---- case $case skipped: THP is not available" \
                "($(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo no THP))"
            return 0
        fi
        madv=--huge
        fate=thpsplit
        kernel_at_least 6 12 || check=0
    fi
    sp_log "---- case $case: use_zero_pages=$uzp, dupmem $madv"

    # Exit handlers run last-registered first: dupmem is stopped, then this
    # unmerges and frees the rmap_items and stable nodes left by the exited
    # processes (with run=0 ksmd never frees them, pages_shared stays up and
    # a later write of max_page_sharing fails with EBUSY), then sp_ksm_save
    # restores the knobs.
    if [ -z "$purge_at_exit" ]; then
        purge_at_exit=1
        sp_at_exit "echo 2 > $SP_KSM_DIR/run"
    fi

    # Reset: unmerge everything, then set the knobs that need pages_shared=0.
    sp_ksm_set run=2
    wait_for "pages_shared, pages_sharing and ksm_zero_pages back to 0 after run=2" 30 ksm_unmerged
    [ "$(sp_ksm max_page_sharing)" = "$MAX_PAGE_SHARING" ] ||
        sp_ksm_set max_page_sharing="$MAX_PAGE_SHARING"
    if [ -f "$SP_KSM_DIR/merge_across_nodes" ] && [ "$(sp_ksm merge_across_nodes)" != 1 ]; then
        sp_ksm_set merge_across_nodes=1
    fi
    if [ -f "$SP_KSM_DIR/advisor_mode" ]; then sp_ksm_set advisor_mode=none; fi
    sp_ksm_set use_zero_pages="$uzp" pages_to_scan="$PAGES_TO_SCAN" sleep_millisecs="$SLEEP_MS"

    for i in $(seq "$NPROC"); do
        rm -f "$SP_TEST_TMP/ready-$i"
        # (not "pid": sp_spawn has a local of that name)
        sp_spawn spawned "$DUPMEM" --pages "$PAGES" --cross "$CROSS" --groups "$GROUPS_N" \
            --group-size "$GROUP_SIZE" --zero "$ZERO" --volatile "$VOLATILE" \
            --instance "$i" --seed "$SEED" --mergeable "$madv" \
            --ready-file "$SP_TEST_TMP/ready-$i" >"$SP_TEST_TMP/dupmem-$case-$i.out"
        pids+=("$spawned")
    done
    for i in $(seq "$NPROC"); do
        wait_for "dupmem ${pids[i-1]} ready" 60 dupmem_ready "${pids[i-1]}" "$SP_TEST_TMP/ready-$i"
        [ "$(cat "$SP_TEST_TMP/ready-$i")" = "${pids[i-1]}" ] ||
            sp_fail "ready file of dupmem $i holds $(cat "$SP_TEST_TMP/ready-$i"), not ${pids[i-1]}"
        sp_log "$(cat "$SP_TEST_TMP/dupmem-$case-$i.out") $(thp_of "${pids[i-1]}")"
        if [ "$thp" = 1 ] && [ "$(thp_of "${pids[i-1]}")" != "AnonHugePages=$(( PAGES * PAGE_SIZE / 1024 ))kB" ]; then
            sp_log "case $case skipped: dupmem ${pids[i-1]} is not all in THPs" \
                "($(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null))"
            for pid in "${pids[@]}"; do _sp_stop_pid "$pid"; done
            return 0
        fi
    done

    # Any other mm registered with KSM would add its pages to every figure.
    mapfile -t others < <(ksm_registered "${pids[@]}")
    [ ${#others[@]} -eq 0 ] ||
        cannot_judge "other processes are registered with KSM: $(describe_pids "${others[@]}")"

    compare_with_model estimate "$case" "$uzp" "${pids[@]}"

    fs0=$(sp_ksm full_scans)
    t0=$(now_us)
    sp_ksm_set run=1
    while :; do
        now=$(now_us)
        fs=$(<"$SP_KSM_DIR/full_scans")
        tuple="$(<"$SP_KSM_DIR/pages_shared") $(<"$SP_KSM_DIR/pages_sharing")"
        tuple+=" $(<"$SP_KSM_DIR/stable_node_chains") $(<"$SP_KSM_DIR/stable_node_dups")"
        tuple+=" $(<"$SP_KSM_DIR/ksm_zero_pages")"
        for pid in "${pids[@]}"; do tuple+=" $(ksm_stat_get "$pid" ksm_rmap_items)"; done
        if [ "$tuple" != "$last" ]; then
            last=$tuple
            fs_since=$fs
            t_last=$((now - t0))
            progress+=("$(secs "$t_last")s scan $((fs - fs0 + 1)): $tuple")
        fi
        if [ $((fs - fs0)) -ge 3 ] && [ $((fs - fs_since)) -ge "$STABLE_SCANS" ]; then break; fi
        if [ $((now - t0)) -gt $((TIMEOUT * 1000000)) ]; then
            printf '# progress: %s\n' "${progress[@]}"
            sp_fail "case $case: KSM did not converge within $TIMEOUT s" \
                "(full_scans advanced by $((fs - fs0)); last change during scan $((fs_since - fs0 + 1)))"
        fi
        sleep 0.1
    done
    t1=$(now_us)
    # Freeze the figures: run=0 stops ksmd between batches and keeps merges.
    sp_ksm_set run=0
    sp_log "progress (time since run=1, the full scan under way, then shared sharing" \
        "chains dups ksm_zero_pages rmap_items per pid):"
    printf '#   %s\n' "${progress[@]}"
    sp_log "converged: final figures $(secs "$t_last") s after run=1 (during scan" \
        "$((fs_since - fs0 + 1))), unchanged through scan $((fs - fs0)), checked at" \
        "$(secs $((t1 - t0))) s; pages_to_scan=$PAGES_TO_SCAN sleep_millisecs=$SLEEP_MS" \
        "smart_scan=$(sp_ksm smart_scan 2>/dev/null || echo n/a)"

    for pid in "${pids[@]}"; do sp_log "after KSM: pid $pid $(thp_of "$pid")"; done

    # Every figure, as the kernel has it.
    local f k v line=''
    fig=()
    for f in "$SP_KSM_DIR"/*; do
        k=${f##*/}
        v=$(<"$f")
        if [ "$k" = advisor_mode ]; then v=${v#*[}; v=${v%%]*}; fi
        fig[$k]=$v
    done
    for k in $(printf '%s\n' "${!fig[@]}" | sort); do
        line+=" $k=${fig[$k]}"
        if [ ${#line} -gt 100 ]; then echo "# kernel:$line"; line=''; fi
    done
    [ -z "$line" ] || echo "# kernel:$line"
    local rmap_sum=0 merging_sum=0 zero_sum=0
    for pid in "${pids[@]}"; do
        awk '{ sub(/:$/, "", $1); print $1, $2 }' "/proc/$pid/ksm_stat" \
            >"$SP_TEST_TMP/stat-$case-$pid"
        echo "# kernel: pid=$pid $(awk '{ printf "%s%s=%s", (NR > 1 ? " " : ""), $1, $2 }' \
            "$SP_TEST_TMP/stat-$case-$pid")"
        rmap_sum=$(( rmap_sum + $(ksm_stat_get "$pid" ksm_rmap_items) ))
        merging_sum=$(( merging_sum + $(ksm_stat_get "$pid" ksm_merging_pages) ))
        zero_sum=$(( zero_sum + $(ksm_stat_get "$pid" ksm_zero_pages) ))
    done

    # With ksmd stopped, the global figures must be dupmem's alone: every
    # stable rmap_item counts once in pages_shared or pages_sharing and in
    # its mm's ksm_merging_pages, every rmap_item once in shared + sharing +
    # unshared + volatile.  Anything else means another mm took part (a
    # process that registered with KSM and perhaps exited during the run);
    # its pages may share KSM pages with dupmem's, so they cannot be
    # subtracted: the case cannot be judged.
    mapfile -t others < <(ksm_registered "${pids[@]}")
    if [ "$merging_sum" -ne $(( fig[pages_shared] + fig[pages_sharing] )) ] ||
       [ "$zero_sum" -ne "${fig[ksm_zero_pages]}" ] ||
       [ "$rmap_sum" -ne $(( fig[pages_shared] + fig[pages_sharing] + fig[pages_unshared] +
                             fig[pages_volatile] )) ] ||
       [ ${#others[@]} -ne 0 ]; then
        cannot_judge "case $case: another process took part in KSM during the test" \
            "(dupmem: merging $merging_sum, zero $zero_sum, rmap_items $rmap_sum; kernel:" \
            "shared+sharing $(( fig[pages_shared] + fig[pages_sharing] ))," \
            "ksm_zero_pages ${fig[ksm_zero_pages]}, shared+sharing+unshared+volatile" \
            "$(( fig[pages_shared] + fig[pages_sharing] + fig[pages_unshared] + fig[pages_volatile] ));" \
            "registered now: $(describe_pids "${others[@]}"))"
    fi

    if [ "$check" = 1 ]; then
        check_figures "$case" "$fate" "$rmap_sum" "${pids[@]}"
    else
        sp_log "case $case: figures reported only (kernel $(uname -r) is older than 6.12)"
    fi
    compare_with_model check "$case" "$uzp" "${pids[@]}"
    compare_with_model recheck "$case" "$uzp" "${pids[@]}"

    for pid in "${pids[@]}"; do _sp_stop_pid "$pid"; done
}

# check_figures CASE ZERO-FATE RMAP_SUM PID...: the A.5 predictions.
check_figures() {
    local case=$1 fate=$2 rmap_sum=$3; shift 3
    local shared=0 sharing=0 chains=0 dups=0 s n zero_pages per_rmap per_merging pid k v
    local unique=$(( PAGES - CROSS - GROUPS_N * GROUP_SIZE - ZERO - VOLATILE ))

    # cross: CROSS contents with NPROC pages each.
    read -r s n < <(same_pages "$NPROC" "$MAX_PAGE_SHARING")
    shared=$(( shared + CROSS * s )); sharing=$(( sharing + CROSS * n ))
    [ "$s" -gt 1 ] && { chains=$(( chains + CROSS )); dups=$(( dups + CROSS * s )); }
    # groups: NPROC * GROUPS_N contents with GROUP_SIZE pages each.
    read -r s n < <(same_pages "$GROUP_SIZE" "$MAX_PAGE_SHARING")
    shared=$(( shared + NPROC * GROUPS_N * s )); sharing=$(( sharing + NPROC * GROUPS_N * n ))
    [ "$s" -gt 1 ] && { chains=$(( chains + NPROC * GROUPS_N )); dups=$(( dups + NPROC * GROUPS_N * s )); }
    # zero: one content with NPROC * ZERO pages, or the zero page itself.
    if [ "$fate" != ksm ]; then
        zero_pages=0
        [ "$fate" = ksmzero ] && zero_pages=$ZERO
        per_rmap=$(( PAGES - ZERO ))
        per_merging=$(( CROSS + GROUPS_N * GROUP_SIZE ))
    else
        read -r s n < <(same_pages $(( NPROC * ZERO )) "$MAX_PAGE_SHARING")
        shared=$(( shared + s )); sharing=$(( sharing + n ))
        [ "$s" -gt 1 ] && { chains=$(( chains + 1 )); dups=$(( dups + s )); }
        zero_pages=0
        per_rmap=$PAGES
        per_merging=$(( CROSS + GROUPS_N * GROUP_SIZE + ZERO ))
        # A page left over would make one process's count differ.
        [ $(( (NPROC * ZERO) % MAX_PAGE_SHARING )) -ne 1 ] ||
            sp_fail "workload leaves one zero page unmerged: adjust ZERO"
    fi
    sp_log "A.5 prediction ($fate): shared=$shared sharing=$sharing chains=$chains dups=$dups" \
        "ksm_zero_pages=$(( NPROC * zero_pages )) rmap_items=$(( NPROC * per_rmap ))" \
        "(unique pages per process: $unique)"

    expect pages_shared "${fig[pages_shared]}" "$shared"
    expect pages_sharing "${fig[pages_sharing]}" "$sharing"
    expect stable_node_chains "${fig[stable_node_chains]}" "$chains"
    expect stable_node_dups "${fig[stable_node_dups]}" "$dups"
    expect ksm_zero_pages "${fig[ksm_zero_pages]}" $(( NPROC * zero_pages ))
    expect "sum of ksm_rmap_items" "$rmap_sum" $(( NPROC * per_rmap ))
    expect "pages_unshared+pages_volatile" $(( fig[pages_unshared] + fig[pages_volatile] )) \
        $(( NPROC * per_rmap - shared - sharing ))
    # general_profit with the kernel's own rmap_items count (from ksm_stat).
    expect general_profit "${fig[general_profit]}" \
        $(( (fig[pages_sharing] + fig[ksm_zero_pages]) * PAGE_SIZE - rmap_sum * RMAP_SIZE ))
    expect "general_profit (predicted)" "${fig[general_profit]}" \
        $(( (sharing + NPROC * zero_pages) * PAGE_SIZE - NPROC * per_rmap * RMAP_SIZE ))
    for pid in "$@"; do
        local -A st=()
        while read -r k v; do st[$k]=$v; done <"$SP_TEST_TMP/stat-$case-$pid"
        expect "pid $pid ksm_rmap_items" "${st[ksm_rmap_items]}" "$per_rmap"
        expect "pid $pid ksm_zero_pages" "${st[ksm_zero_pages]}" "$zero_pages"
        expect "pid $pid ksm_merging_pages" "${st[ksm_merging_pages]}" "$per_merging"
        expect "pid $pid ksm_process_profit" "${st[ksm_process_profit]}" \
            $(( (per_merging + zero_pages) * PAGE_SIZE - per_rmap * RMAP_SIZE ))
    done
}

# ---------------------------------------------------------------- main

mapfile -t others < <(ksm_registered)
[ ${#others[@]} -eq 0 ] ||
    sp_skip "other processes are registered with KSM: $(describe_pids "${others[@]}")"

run_case zero0 0 0
run_case zero1 1 0
run_case thp 0 1

[ ${#mismatches[@]} -eq 0 ] ||
    sp_fail "${#mismatches[@]} figure(s) differ from A.5: $(printf '%s; ' "${mismatches[@]}")"
[ ${#model_mismatches[@]} -eq 0 ] ||
    sp_fail "every figure matches A.5, but samepage estimate disagrees with the kernel on" \
        "${#model_mismatches[@]}: $(printf '%s; ' "${model_mismatches[@]}")"
sp_log "every figure matches"
