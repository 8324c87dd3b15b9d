#!/bin/sh
# Installs the Debian packages syn builds and tests with; silent when all are present.
set -e
pkgs="build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev libmicrohttpd-dev
libjansson-dev libsqlite3-dev libcmocka-dev libcurl4-openssl-dev libyaml-dev sqlite3 curl git python3"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
