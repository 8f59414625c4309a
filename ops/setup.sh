#!/usr/bin/env bash
# Installs what Torpor needs to build and test on a fresh Debian machine: SQLite (the queue),
# libcurl and OpenSSL headers (the C libraries Torpor links), libxml2 (Foundation's
# XML parser), Chromium (the tests render the HTML resume report in it, headless), and moto
# for the integration tests. Run as root, or with sudo.
set -euo pipefail

# Installs the packages of its arguments that are missing; extra apt-get options
# come first, up to "--".
install_missing() {
  local options=() missing=() package
  while [ "$1" != "--" ]; do options+=("$1"); shift; done
  shift
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${options[@]}" "${missing[@]}"
  fi
}

install_missing -- libcurl4-openssl-dev libssl-dev libsqlite3-dev libxml2 pkg-config
# Headless only: none of the desktop packages it recommends, but a font for the page's text.
install_missing --no-install-recommends -- chromium fonts-dejavu-core

# moto, pinned: the integration tests run its EC2 and IAM with authentication
# on, so it verifies Torpor's signatures. boto3/botocore come with it and are
# the reference signer in the tests.
python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.1'
