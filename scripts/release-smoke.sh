#!/usr/bin/env bash
# Builds the release binaries exactly as the Dockerfiles do (`swift build -c release
# --static-swift-stdlib --product ...`) and checks that they start and answer against the
# Pub/Sub emulator: pubsubctl creates the resources, both daemons answer /healthz and /readyz,
# one POST /reservations reaches the reporting daemon. Every process is stopped by PID.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

for product in ReservationsService ReportingService pubsubctl; do
    swift build -c release --static-swift-stdlib --product "$product"
done
bin="$(swift build -c release --show-bin-path)"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    [[ -n "${emu_pgid:-}" ]] && kill -TERM -- "-$emu_pgid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
emu_port="$(free_port)"
setsid gcloud beta emulators pubsub start --host-port="127.0.0.1:$emu_port" --project=smoke-project >"$work/emulator.log" 2>&1 &
emu_pgid=$!
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$emu_port/" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$emu_port/" >/dev/null || { cat "$work/emulator.log"; echo "smoke: emulator did not start" >&2; exit 1; }

export PUBSUB_EMULATOR_HOST="127.0.0.1:$emu_port" PROJECT_ID=smoke-project LOG_FORMAT=json PUBSUB_AUTO_CREATE=false
"$bin/pubsubctl" topics create reservation-created --if-missing
"$bin/pubsubctl" subscriptions create reservation-created-subscription --topic reservation-created --if-missing

res_port="$(free_port)"; rep_port="$(free_port)"
PORT="$res_port" "$bin/ReservationsService" >"$work/reservations.log" 2>&1 &
pids+=($!)
PORT="$rep_port" SUBSCRIPTION_ID=reservation-created-subscription "$bin/ReportingService" >"$work/reporting.log" 2>&1 &
pids+=($!)

wait_ok() {
    for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "smoke: $1 did not answer 200" >&2; cat "$work"/*.log >&2; return 1
}
for port in "$res_port" "$rep_port"; do
    wait_ok "http://127.0.0.1:$port/healthz"
    wait_ok "http://127.0.0.1:$port/readyz"
done

reply="$(curl -fsS -X POST "http://127.0.0.1:$res_port/reservations")"
echo "smoke: POST /reservations -> $reply"
id="$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["reservation_id"])')"
for _ in $(seq 1 100); do grep -q "$id" "$work/reporting.log" && break; sleep 0.1; done
grep -q "$id" "$work/reporting.log" || { echo "smoke: reservation $id never reached the reporting service" >&2; cat "$work"/*.log >&2; exit 1; }
curl -fsS "http://127.0.0.1:$res_port/metrics" | grep -q "^# TYPE" || { echo "smoke: /metrics is not Prometheus text" >&2; exit 1; }

# Graceful stop: both exit 0 on SIGTERM.
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do
    if ! wait "$pid"; then echo "smoke: process $pid did not exit 0 on SIGTERM" >&2; cat "$work"/*.log >&2; exit 1; fi
done
pids=()
echo "smoke: release binaries OK (static Swift stdlib: $(ldd "$bin/ReservationsService" | grep -c swift) Swift libraries linked dynamically)"
