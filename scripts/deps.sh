#!/bin/sh
# Installs the Debian packages syn builds and tests with; silent when all are present.
# clang-14 and libclang-rt-14-dev (libFuzzer and clang's sanitizer runtimes) build
# only the fuzz targets (`make fuzz`); everything else builds with gcc.
# libpq-dev: the broker's PostgreSQL store (issue 21); postgresql: the tests' private
# clusters (tests/support/pg_cluster.c runs initdb and pg_ctl, as nobody under root).
# python3-prometheus-client parses GET /metrics in tests/integration/test_metrics.c.
# zlib1g-dev: the CRC-32 of ZIP downloads; unzip (and python3's zipfile) read them
# back in the tests.
# chromium, nodejs and npm run the dashboard's browser tests (tests/browser: npm ci
# of the pinned playwright-core under the build tree; no browser is downloaded).
# Arguments name more packages to ensure (scripts/compose-test.sh's Docker tools).
set -e
pkgs="build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev libmicrohttpd-dev
libjansson-dev libsqlite3-dev libpq-dev postgresql libcmocka-dev libcurl4-openssl-dev libyaml-dev libgnutls28-dev zlib1g-dev sqlite3 curl git python3 bubblewrap unzip
python3-prometheus-client chromium
tmux clang-14 libclang-rt-14-dev $*"
# Installed when the distribution has it (the broker and gateway link it for
# speed); the build works without it.
optional="libmimalloc-dev"
installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}
available() {
  apt-cache policy "$1" 2>/dev/null | grep -q "Candidate: [0-9]"
}
missing=""
for p in $pkgs; do
  installed "$p" || missing="$missing $p"
done
# node and npm by command: a machine may have them from elsewhere (NodeSource's
# nodejs holds npm, and Debian's npm would conflict with it).
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
  $sudo apt-get update -qq
fi
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
for p in $optional; do
  installed "$p" || ! available "$p" || {
    echo "deps: installing $p (optional)"
    $sudo apt-get install -y -qq --no-install-recommends "$p" >/dev/null ||
      echo "deps: $p could not be installed; building without it"
  }
done
