# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the integration tests.  Provides:
#   sp_skip WHY / sp_fail WHY      end the test (77 = SKIP, 1 = FAIL)
#   sp_check DESC CMD...           run CMD, fail with DESC if it fails
#   sp_at_exit CMD                 run CMD when the test ends (LIFO)
#   sp_spawn VAR CMD...            start CMD in the background; it is
#                                  stopped by PID (TERM, then KILL) and
#                                  waited for at exit
#   sp_ksm_save                    restore every KSM knob at exit
#   sp_ksm VAR / sp_ksm_set K=V..  read / write /sys/kernel/mm/ksm
#   sp_json_valid WHAT JSON        fail unless JSON (a samepage --json
#                                  document) follows data/samepage.schema.json
set -u

SP_KSM_DIR=/sys/kernel/mm/ksm
_sp_exit_cmds=()

sp_skip() { echo "SKIP: $*"; exit 77; }
sp_fail() { echo "FAIL: $*"; exit 1; }
sp_log()  { echo "# $*"; }

sp_check() {
    local desc=$1; shift
    if ! "$@"; then sp_fail "$desc"; fi
}

_sp_run_exit() {
    local rc=$? i
    trap - EXIT INT TERM
    for (( i=${#_sp_exit_cmds[@]}-1; i>=0; i-- )); do
        eval "${_sp_exit_cmds[i]}" || echo "# cleanup failed: ${_sp_exit_cmds[i]}"
    done
    exit $rc
}
trap _sp_run_exit EXIT
trap 'exit 130' INT TERM

sp_at_exit() { _sp_exit_cmds+=("$*"); }

_sp_stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# sp_term_wait PID WHAT [LOG]: SIGTERM PID and wait up to 10 s for it to
# exit; if it does not, print the end of LOG and every thread's stack (gdb,
# when installed), then fail naming WHAT.
sp_term_wait() {
    local pid=$1 what=$2 log=${3:-} i
    kill -TERM "$pid"
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    [ -n "$log" ] && tail -n 30 "$log" | sed 's/^/# log: /'
    if command -v gdb >/dev/null; then
        gdb -p "$pid" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(Thread|#)' \
            | sed 's/^/# stack: /'
    fi
    sp_fail "$what did not exit on SIGTERM"
}

sp_spawn() {
    local _sp_var=$1; shift
    "$@" &
    local _sp_pid=$!
    sp_at_exit "_sp_stop_pid $_sp_pid"
    printf -v "$_sp_var" '%s' "$_sp_pid"
}

sp_ksm() { cat "$SP_KSM_DIR/$1"; }

sp_ksm_set() {
    local kv
    for kv in "$@"; do
        echo "${kv#*=}" > "$SP_KSM_DIR/${kv%%=*}" || sp_fail "cannot write $kv to $SP_KSM_DIR"
    done
}

# Save every writable knob now; at exit put them back.  If a knob that needs
# pages_shared == 0 differs, unmerge first (run=2), then restore run last.
sp_ksm_save() {
    [ -d "$SP_KSM_DIR" ] || sp_skip "this kernel has no KSM ($SP_KSM_DIR)"
    local k
    _sp_ksm_saved=()
    for k in pages_to_scan sleep_millisecs max_page_sharing merge_across_nodes \
             use_zero_pages stable_node_chains_prune_millisecs smart_scan \
             advisor_max_cpu advisor_min_pages_to_scan advisor_max_pages_to_scan \
             advisor_target_scan_time run; do
        [ -f "$SP_KSM_DIR/$k" ] && _sp_ksm_saved+=("$k=$(cat "$SP_KSM_DIR/$k")")
    done
    _sp_ksm_saved_mode=$(sed 's/.*\[\(.*\)\].*/\1/' "$SP_KSM_DIR/advisor_mode" 2>/dev/null || true)
    sp_at_exit _sp_ksm_restore
}

_sp_ksm_restore() {
    local kv k v
    for kv in "${_sp_ksm_saved[@]}"; do
        k=${kv%%=*}; v=${kv#*=}
        case $k in max_page_sharing|merge_across_nodes)
            if [ "$(cat "$SP_KSM_DIR/$k")" != "$v" ]; then echo 2 > "$SP_KSM_DIR/run"; fi ;;
        esac
    done
    [ -n "${_sp_ksm_saved_mode:-}" ] && echo none > "$SP_KSM_DIR/advisor_mode"
    for kv in "${_sp_ksm_saved[@]}"; do
        k=${kv%%=*}; v=${kv#*=}
        [ "$k" = run ] && continue
        [ "$(cat "$SP_KSM_DIR/$k")" = "$v" ] || echo "$v" > "$SP_KSM_DIR/$k" \
            || echo "# could not restore $k=$v"
    done
    [ -n "${_sp_ksm_saved_mode:-}" ] && echo "$_sp_ksm_saved_mode" > "$SP_KSM_DIR/advisor_mode"
    for kv in "${_sp_ksm_saved[@]}"; do
        [ "${kv%%=*}" = run ] && echo "${kv#*=}" > "$SP_KSM_DIR/run"
    done
}

# Validates a --json document against the schema (tests/cli/json-schema.py
# --validate); without python3-jsonschema, says so once and checks nothing.
sp_json_valid() {
    local what=$1 json=$2 why
    if ! python3 -c 'import jsonschema' 2>/dev/null; then
        [ -n "${_sp_json_unchecked:-}" ] ||
            sp_log "python3-jsonschema is not installed: --json documents are not validated"
        _sp_json_unchecked=1
        return 0
    fi
    why=$(python3 "$SP_TOP_SRCDIR/tests/cli/json-schema.py" --validate - <<<"$json" 2>&1) ||
        sp_fail "$what: the JSON does not follow data/samepage.schema.json: $why"
}
