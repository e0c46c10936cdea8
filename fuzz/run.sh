#!/usr/bin/env bash
# fuzz/run.sh - runs libFuzzer targets on copies of their seed corpora.
#
#   fuzz/run.sh smoke BIN NAME WORKDIR     one target for $FUZZ_SMOKE_TIME s
#                                           (default 5); fails on any finding
#   fuzz/run.sh campaign BUILD_DIR SECONDS [NAME...]
#                                           every target of BUILD_DIR/fuzz (or
#                                           those named) in turn, then a table
#                                           of the results
#
# Each run starts from a fresh copy of fuzz/corpus/NAME in WORKDIR (what the
# fuzzer adds stays there, never in the repository) with the target's
# dictionary, and writes crash, leak and timeout inputs to WORKDIR as
# NAME-crash-..., to be minimized and saved under fuzz/regressions/NAME
# once the bug is fixed. The table reports, per target, the executions and
# the coverage of libFuzzer's final statistics (cov: edges, ft: features).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# The dictionary (or dictionaries, joined) that fits each target's input.
dict_for() {
  case $1 in
    sse) echo "$here/sse.dict" ;;
    openai | anthropic | ollama) echo "$here/json.dict $here/sse.dict" ;;
    ndjson | json_args | http | agentfile | loader) echo "$here/json.dict" ;;
    *) echo "" ;;
  esac
}

# run BIN NAME WORKDIR SECONDS: runs one target; leaves WORKDIR/NAME.log and
# prints "NAME SECONDS EXECS COV FT FINDING" (SECONDS: how long it ran, less
# than asked when it found something; FINDING: "none" or the input's path).
run_one() {
  local bin=$1 name=$2 work=$3 secs=$4
  local corpus=$work/$name.corpus log=$work/$name.log dict="" dicts
  rm -rf "$corpus" && mkdir -p "$corpus"
  cp "$here/corpus/$name"/* "$corpus"/ 2>/dev/null
  dicts=$(dict_for "$name")
  if [ -n "$dicts" ]; then
    dict=$work/$name.dict
    # shellcheck disable=SC2086
    cat $dicts >"$dict"
  fi
  rm -f "$work/$name"-crash-* "$work/$name"-leak-* "$work/$name"-timeout-* "$work/$name"-oom-*
  local start=$SECONDS
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/$name-" ${dict:+-dict="$dict"} "$corpus" >"$log" 2>&1
  local rc=$? took=$((SECONDS - start))
  local stats execs cov ft finding
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  stats=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$stats")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$stats")
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$stats")
  finding=$(ls "$work/$name"-crash-* "$work/$name"-leak-* "$work/$name"-timeout-* \
    "$work/$name"-oom-* 2>/dev/null | head -1)
  [ -n "$finding" ] || { [ $rc -eq 0 ] && finding=none || finding="exit-status-$rc"; }
  echo "$name $took ${execs:-?} ${cov:-?} ${ft:-?} $finding"
}

case ${1:-} in
  smoke)
    [ $# -eq 4 ] || { echo "usage: $0 smoke BIN NAME WORKDIR" >&2; exit 2; }
    name=$3 work=$4
    mkdir -p "$work"
    line=$(run_one "$2" "$name" "$work" "${FUZZ_SMOKE_TIME:-5}")
    echo "$line"
    case $line in
      *" none") ;;
      *) tail -40 "$work/$name.log"; exit 1 ;;
    esac
    ;;
  campaign)
    [ $# -ge 3 ] || { echo "usage: $0 campaign BUILD_DIR SECONDS [NAME...]" >&2; exit 2; }
    build=$2 secs=$3 work=$2/fuzz/campaign
    shift 3
    mkdir -p "$work"
    results=()
    for bin in "$build"/fuzz/fuzz_*; do
      case $bin in *_replay) continue ;; esac
      [ -x "$bin" ] || continue
      name=${bin##*/fuzz_}
      if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
      echo "fuzzing $name for $secs s ..." >&2
      results+=("$(run_one "$bin" "$name" "$work" "$secs")")
    done
    printf '\n%-12s %8s %12s %7s %7s  %s\n' target seconds executions cov ft finding
    found=0
    for r in "${results[@]}"; do
      set -- $r
      printf '%-12s %8s %12s %7s %7s  %s\n' "$1" "$2" "$3" "$4" "$5" "$6"
      [ "$6" = none ] || found=1
    done
    echo
    echo "logs and corpora: $work"
    exit $found
    ;;
  *)
    echo "usage: $0 smoke BIN NAME WORKDIR | campaign BUILD_DIR SECONDS" >&2
    exit 2
    ;;
esac
