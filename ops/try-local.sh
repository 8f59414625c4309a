#!/usr/bin/env bash
# Runs Torpor's batch commands end to end with no AWS account: a local EC2
# (moto, with IAM authentication on, so every request Torpor signs is
# checked) on 127.0.0.1, six instances tagged Env=dev, then describe,
# stop --hibernate, and start. The local EC2 stops when this script ends.
#
# Needs what ops/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --product torpor >&2
torpor=".build/debug/torpor"

coproc EC2 { exec python3 Tests/Support/moto_iam_server.py --lifetime 600 2>/dev/null; }
trap 'exec {EC2[1]}>&- 2>/dev/null || true; wait 2>/dev/null || true' EXIT
read -r ready <&"${EC2[0]}"
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$ready" "$1"; }

export AWS_ENDPOINT_URL_EC2="$(field endpoint)"
export AWS_ACCESS_KEY_ID="$(field accessKeyId)"
export AWS_SECRET_ACCESS_KEY="$(field secretAccessKey)"
export AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
echo "local EC2 at $AWS_ENDPOINT_URL_EC2 (IAM authentication on)"

python3 - <<'PY'
import os, boto3
ec2 = boto3.client("ec2")
for configured, count in ((True, 4), (False, 2)):
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count, InstanceType="m5.large",
                      HibernationOptions={"Configured": configured},
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Env", "Value": "dev"}]}])
PY

set -x
"$torpor" describe --tag Env=dev
"$torpor" stop --tag Env=dev --hibernate --yes
"$torpor" describe --tag Env=dev
"$torpor" start --tag Env=dev --yes
