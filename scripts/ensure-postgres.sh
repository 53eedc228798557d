#!/bin/sh
# PostgreSQL server binaries for the store tests (a throw-away cluster per test session).
# Installs Debian's package when they are missing; the tests start and stop their own cluster.
set -e
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL server binaries are missing; run as root or: apt-get install postgresql" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
