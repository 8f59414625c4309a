"""Runs moto's EC2 and IAM on 127.0.0.1 with IAM authentication on, for
Torpor's integration tests.

The first three requests are allowed without credentials (moto's
INITIAL_NO_AUTH_ACTION_COUNT): this script spends them creating an IAM user
with an EC2 policy and an access key. Every later request must be signed
with that key, so moto checks our signatures.

Prints one JSON line: {"endpoint", "accessKeyId", "secretAccessKey"}.
Stops when its standard input closes (the test finished or died) or after
--lifetime seconds, whichever comes first.
"""
import json
import os
import sys
import threading

os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402


def main():
    lifetime = float(sys.argv[sys.argv.index("--lifetime") + 1]) if "--lifetime" in sys.argv else 300.0
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="torpor-test")
    iam.put_user_policy(
        UserName="torpor-test", PolicyName="ec2",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ec2:*"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName="torpor-test")["AccessKey"]

    print(json.dumps({"endpoint": endpoint, "accessKeyId": key["AccessKeyId"],
                      "secretAccessKey": key["SecretAccessKey"]}), flush=True)

    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(timeout=lifetime)
    server.stop()


if __name__ == "__main__":
    main()
