#!/usr/bin/env bash
# The whole stack on this machine, without Docker: what `docker compose up` runs, as processes.
#
#   scripts/up.sh                 # build, start the emulator, create resources, run everything
#   SKIP_BUILD=1 scripts/up.sh    # reuse the last release build
#   SKIP_BUILD=1 BIN_DIR=.build/debug scripts/up.sh   # run other binaries
#
# 1. `swift build -c release` (unless SKIP_BUILD=1).
# 2. Pub/Sub: uses PUBSUB_EMULATOR_HOST if set; else real Google Cloud if
#    GOOGLE_APPLICATION_CREDENTIALS (or RESERVATIONS_CREDENTIALS / REPORTING_CREDENTIALS) is set,
#    in which case PROJECT_ID is required; else starts `gcloud beta emulators pubsub start` on
#    127.0.0.1:$EMU_PORT and waits until it answers.
# 3. Creates the topic and both subscriptions with `pubsubctl ... --if-missing` (on real Google
#    Cloud a failure there is only a warning: the runtime accounts may not create resources).
# 4. Starts ReservationsService on $PORT, $REPORTING_REPLICAS ReportingService replicas on the
#    shared subscription (ports $REPORTING_BASE_PORT...), and one insights ReportingService on
#    the second subscription (the next port). Each line of output is prefixed with the process
#    name, padded as Compose does: `reporting-service-2   | {...}`.
# 5. Ctrl-C (or SIGTERM, or any process exiting) stops everything: SIGTERM to each child by PID,
#    a grace period, then SIGKILL; the emulator (the gcloud wrapper and its java child) last.
#
# Environment (defaults): PROJECT_ID (gcp-pubsub-guide with the emulator), TOPIC_ID
# (reservation-created), SUBSCRIPTION_ID (reservation-created-subscription),
# INSIGHTS_SUBSCRIPTION_ID (reservation-created-subscription2), PORT (8080), EMU_PORT (8085),
# REPORTING_REPLICAS (3), REPORTING_BASE_PORT (PORT+1), LOG_FORMAT (json), LOG_LEVEL (info),
# STOP_TIMEOUT seconds (20), EMULATOR_TIMEOUT seconds (90), EMULATOR_LOGS (0: the emulator's
# output goes to a file; 1: prefixed on the console like the services').

# SC2317: shellcheck 0.9 takes the functions called only from the EXIT trap for unreachable code.
# shellcheck disable=SC2317
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

TOPIC_ID="${TOPIC_ID:-reservation-created}"
SUBSCRIPTION_ID="${SUBSCRIPTION_ID:-reservation-created-subscription}"
INSIGHTS_SUBSCRIPTION_ID="${INSIGHTS_SUBSCRIPTION_ID:-reservation-created-subscription2}"
PORT="${PORT:-8080}"
EMU_PORT="${EMU_PORT:-8085}"
REPORTING_REPLICAS="${REPORTING_REPLICAS:-3}"
REPORTING_BASE_PORT="${REPORTING_BASE_PORT:-$((PORT + 1))}"
LOG_FORMAT="${LOG_FORMAT:-json}"
LOG_LEVEL="${LOG_LEVEL:-info}"
STOP_TIMEOUT="${STOP_TIMEOUT:-20}"
EMULATOR_TIMEOUT="${EMULATOR_TIMEOUT:-90}"
export LOG_FORMAT LOG_LEVEL

say() { printf 'up.sh | %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- process bookkeeping ----------------------------------------------------------------------
pids=()          # services, in start order
names=()
emulator_pid=""  # the gcloud wrapper
width=20         # prefix width, set once all names are known

# Prefixes every line of stdin with the padded name, line-buffered like Compose's output.
prefix() {
    local padded
    printf -v padded '%-*s' "$width" "$1"
    sed -u "s/^/${padded} | /"
}

# All descendants of a PID, deepest first (gcloud -> sh -> java).
descendants() {
    local child
    for child in $(pgrep -P "$1" 2> /dev/null || true); do
        descendants "$child"
        echo "$child"
    done
}

alive() { kill -0 "$1" 2> /dev/null; }

# SIGTERM to the given PIDs, wait up to STOP_TIMEOUT seconds, then SIGKILL what is left.
stop_pids() {
    local pid deadline=$((SECONDS + STOP_TIMEOUT)) left
    for pid in "$@"; do
        if alive "$pid"; then
            kill -TERM "$pid" 2> /dev/null || true
        fi
    done
    while ((SECONDS < deadline)); do
        left=0
        for pid in "$@"; do
            alive "$pid" && left=1
        done
        ((left)) || break
        sleep 0.2
    done
    for pid in "$@"; do
        if alive "$pid"; then
            say "pid $pid did not stop within ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2> /dev/null || true
        fi
    done
    for pid in "$@"; do
        wait "$pid" 2> /dev/null || true
    done
}

cleanup() {
    local rc=$?
    trap - INT TERM EXIT
    if ((${#pids[@]})); then
        say "stopping ${names[*]}"
        stop_pids "${pids[@]}"
    fi
    if [[ -n "$emulator_pid" ]]; then
        # Collect the java child before the wrapper goes: once the wrapper is gone the child is
        # re-parented and can no longer be found from it.
        local emulator_tree=() pid
        for pid in $(descendants "$emulator_pid"); do
            # The log prefixer is a child too (forked before exec); it ends on EOF by itself.
            [[ "$(ps -o comm= -p "$pid" 2> /dev/null)" == sed ]] || emulator_tree+=("$pid")
        done
        say "stopping the emulator (pids $emulator_pid ${emulator_tree[*]})"
        stop_pids "$emulator_pid" "${emulator_tree[@]}"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts "$@" in the background as NAME, output prefixed. $! is the command itself (the prefixer
# runs in a process substitution), so the recorded PID is the one to signal.
start() {
    local name="$1"
    shift
    "$@" > >(prefix "$name") 2>&1 &
    pids+=("$!")
    names+=("$name")
}

# --- names and the prefix width -----------------------------------------------------------------
all_names=(pubsub pubsub-init reservations-service-1 insights-service-1)
for ((i = 1; i <= REPORTING_REPLICAS; i++)); do
    all_names+=("reporting-service-$i")
done
for n in "${all_names[@]}"; do
    ((${#n} > width)) && width=${#n}
done
width=$((width + 1))

# --- 1. build ---------------------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    say "swift build -c release"
    swift build -c release
fi
bin="${BIN_DIR:-$(swift build -c release --show-bin-path)}"
for exe in ReservationsService ReportingService pubsubctl; do
    [[ -x "$bin/$exe" ]] || die "$bin/$exe is missing: run without SKIP_BUILD=1"
done

# --- 2. Pub/Sub -------------------------------------------------------------------------------
reservations_key="${RESERVATIONS_CREDENTIALS:-${GOOGLE_APPLICATION_CREDENTIALS:-}}"
reporting_key="${REPORTING_CREDENTIALS:-${GOOGLE_APPLICATION_CREDENTIALS:-}}"
real_gcp=0
if [[ -n "${PUBSUB_EMULATOR_HOST:-}" ]]; then
    PROJECT_ID="${PROJECT_ID:-gcp-pubsub-guide}"
    say "using the emulator at $PUBSUB_EMULATOR_HOST"
elif [[ -n "$reservations_key" || -n "$reporting_key" ]]; then
    real_gcp=1
    [[ -n "${PROJECT_ID:-}" ]] || die "PROJECT_ID must be set to use real Google Cloud"
    for key in "$reservations_key" "$reporting_key"; do
        [[ -r "$key" ]] || die "credentials file '$key' is not readable"
    done
    say "using Google Cloud project $PROJECT_ID"
else
    PROJECT_ID="${PROJECT_ID:-gcp-pubsub-guide}"
    command -v gcloud > /dev/null || die "gcloud not found: install the Google Cloud CLI with its" \
        "pubsub-emulator component, or set PUBSUB_EMULATOR_HOST"
    if curl -fsS -o /dev/null "http://127.0.0.1:$EMU_PORT/" 2> /dev/null; then
        die "something already answers on 127.0.0.1:$EMU_PORT: set PUBSUB_EMULATOR_HOST=127.0.0.1:$EMU_PORT" \
            "to use it, or choose another EMU_PORT"
    fi
    say "starting the Pub/Sub emulator on 127.0.0.1:$EMU_PORT"
    # The emulator logs every request at INFO: its output goes to a file unless EMULATOR_LOGS=1.
    if [[ "${EMULATOR_LOGS:-0}" == 1 ]]; then
        gcloud beta emulators pubsub start --host-port="127.0.0.1:$EMU_PORT" --project="$PROJECT_ID" \
            > >(prefix pubsub) 2>&1 &
    else
        emulator_log="${TMPDIR:-/tmp}/pubsub-emulator-$EMU_PORT.log"
        say "emulator output: $emulator_log (EMULATOR_LOGS=1 shows it here)"
        gcloud beta emulators pubsub start --host-port="127.0.0.1:$EMU_PORT" --project="$PROJECT_ID" \
            > "$emulator_log" 2>&1 &
    fi
    emulator_pid=$!
    export PUBSUB_EMULATOR_HOST="127.0.0.1:$EMU_PORT"
    deadline=$((SECONDS + EMULATOR_TIMEOUT))
    until curl -fsS -o /dev/null "http://$PUBSUB_EMULATOR_HOST/" 2> /dev/null; do
        alive "$emulator_pid" || die "the emulator exited during start-up (see its output: ${emulator_log:-the pubsub lines above})"
        ((SECONDS < deadline)) || die "the emulator did not answer within ${EMULATOR_TIMEOUT}s"
        sleep 0.5
    done
    say "emulator ready at $PUBSUB_EMULATOR_HOST"
fi
export PROJECT_ID TOPIC_ID

# --- 3. topic and subscriptions ---------------------------------------------------------------
create_resources() {
    local ctl="$bin/pubsubctl"
    "$ctl" topics create "$TOPIC_ID" --project "$PROJECT_ID" --if-missing &&
        "$ctl" subscriptions create "$SUBSCRIPTION_ID" --topic "$TOPIC_ID" \
            --project "$PROJECT_ID" --if-missing &&
        "$ctl" subscriptions create "$INSIGHTS_SUBSCRIPTION_ID" --topic "$TOPIC_ID" \
            --project "$PROJECT_ID" --if-missing
}
if ((real_gcp)); then
    # With an account allowed to create them (roles/pubsub.editor); otherwise they must exist.
    if ! GOOGLE_APPLICATION_CREDENTIALS="$reservations_key" create_resources \
            > >(prefix pubsub-init) 2>&1; then
        say "warning: could not create the topic/subscriptions; assuming they exist" \
            "(see credentials/README.md)"
    fi
else
    create_resources > >(prefix pubsub-init) 2>&1 || die "creating the topic and subscriptions failed"
fi

# --- 4. services ------------------------------------------------------------------------------
key_env() { [[ -n "$1" ]] && echo "GOOGLE_APPLICATION_CREDENTIALS=$1" || echo "UNUSED_CREDENTIALS="; }

start reservations-service-1 env PORT="$PORT" "$(key_env "$reservations_key")" \
    "$bin/ReservationsService"
for ((i = 1; i <= REPORTING_REPLICAS; i++)); do
    start "reporting-service-$i" env PORT="$((REPORTING_BASE_PORT + i - 1))" \
        SUBSCRIPTION_ID="$SUBSCRIPTION_ID" "$(key_env "$reporting_key")" "$bin/ReportingService"
done
start insights-service-1 env PORT="$((REPORTING_BASE_PORT + REPORTING_REPLICAS))" \
    SUBSCRIPTION_ID="$INSIGHTS_SUBSCRIPTION_ID" "$(key_env "$reporting_key")" "$bin/ReportingService"

say "started ${names[*]}"
say "try: curl -X POST http://localhost:$PORT/reservations    (Ctrl-C stops everything)"

# --- 5. run until Ctrl-C or until a process exits ---------------------------------------------
status=0
wait -n "${pids[@]}" || status=$?
for idx in "${!pids[@]}"; do
    if ! alive "${pids[$idx]}"; then
        say "${names[$idx]} (pid ${pids[$idx]}) exited with status $status: stopping everything"
        break
    fi
done
exit "$status"
