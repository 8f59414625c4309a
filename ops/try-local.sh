#!/usr/bin/env bash
# Torpor end to end with no AWS account: the built-in fleet simulator
# (`torpor sim`, 300 instances, signatures checked, EC2's throttling) on
# 127.0.0.1 at 20x speed, then describe, stop --hibernate, and start of the
# dev web tier with the fleet engine. The simulator stops when this script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --product torpor >&2
torpor="$PWD/.build/debug/torpor"

coproc SIM { exec "$torpor" sim --port 0 --speed 20; }
sim_pid=$SIM_PID
trap 'kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true' EXIT
read -r ready <&"${SIM[0]}"
export AWS_ENDPOINT_URL_EC2="${ready#listening on }"
export AWS_ACCESS_KEY_ID=AKIDTORPORSIMULATOR
export AWS_SECRET_ACCESS_KEY=torpor-simulator-secret-key
export AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
echo "simulated EC2 at $AWS_ENDPOINT_URL_EC2"

count_in() {
  "$torpor" describe --tag Env=dev --tag Tier=web --state "$1" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'
}

# The simulator runs at 20x, so a first check of final states after 5 real
# seconds covers about 100 simulated ones.
set -x
"$torpor" describe --tag Env=dev --tag Tier=web
"$torpor" stop --tag Env=dev --tag Tier=web --hibernate --plan
"$torpor" stop --tag Env=dev --tag Tier=web --hibernate --yes --first-poll 5
"$torpor" start --tag Env=dev --tag Tier=web --yes --first-poll 5
set +x
echo "running again: $(count_in running) of 120"
