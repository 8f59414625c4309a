#!/usr/bin/env bash
# Installs what Torpor needs to build and test on a fresh Debian machine: SQLite (the queue),
# libcurl and OpenSSL headers (the C libraries Torpor links), libxml2 (Foundation's
# XML parser), and moto for the integration tests. Run as root, or with sudo.
set -euo pipefail

packages=(libcurl4-openssl-dev libssl-dev libsqlite3-dev libxml2 pkg-config)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

# moto, pinned: the integration tests run its EC2 and IAM with authentication
# on, so it verifies Torpor's signatures. boto3/botocore come with it and are
# the reference signer in the tests.
python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.1'
