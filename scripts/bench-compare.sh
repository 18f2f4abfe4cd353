#!/usr/bin/env bash
# Runs our benchmark (pubsub-bench, release build) and the Python anchors of ../shared/bench in
# the same session, one after the other, so their figures can be compared as ratios.
#
#   scripts/bench-compare.sh                 # everything, results in $RESULTS (default /tmp/bench-compare)
#   PARTS="publish drain" scripts/bench-compare.sh
#
# Needs: the anchors' venv (/tmp/benchvenv, see ../shared/bench/README.md), wrk, the emulator.
# Each side starts its own emulator(s) on 127.0.0.1 and stops them by PID.
# shellcheck disable=SC1091  # the anchors' lib.sh lives outside this repository
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
anchors="${ANCHORS:-$root/../shared/bench}"
RESULTS="${RESULTS:-/tmp/bench-compare}"
PARTS="${PARTS:-publish drain e2e http}"
mkdir -p "$RESULTS"
cd "$root"

swift build -c release --product pubsub-bench --product ReservationsService >/dev/null
bin="$(swift build -c release --show-bin-path)"
ours="$RESULTS/ours.jsonl"
: >"$ours"

for part in $PARTS; do
    case "$part" in
    publish|drain|e2e)
        "$bin/pubsub-bench" "$part" --json | tee -a "$ours"
        ;;
    http)
        "$bin/pubsub-bench" http --json --reservations-binary "$bin/ReservationsService" \
            --wrk-script "$anchors/wrk_post.lua" --connections 64 | tee -a "$ours"
        "$bin/pubsub-bench" http --json --reservations-binary "$bin/ReservationsService" \
            --wrk-script "$anchors/wrk_post.lua" --connections 16 | tee -a "$ours"
        ;;
    esac
done

# The anchors, as their README runs them (REPS=1 to keep the session short).
export RESULTS REPS="${REPS:-1}"
for part in $PARTS; do
    case "$part" in
    publish) PARTS=pub bash "$anchors/bench_pyclient.sh" ;;
    drain)   PARTS=sub bash "$anchors/bench_pyclient.sh" ;;
    e2e)     (cd "$anchors" && source ./lib.sh && stop_emulator KILL; start_emulator >/dev/null \
                && VARIANTS="" bash ./bench_e2e.sh; stop_emulator KILL) ;;
    http)    (cd "$anchors" && source ./lib.sh && stop_emulator KILL; start_emulator >/dev/null \
                && VARIANTS="${HTTP_VARIANTS:-dev shared-gthread}" DUR=15 bash ./bench_http.sh; stop_emulator KILL) ;;
    esac
done
echo "results: $ours and $RESULTS/*.txt"
