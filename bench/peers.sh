#!/bin/sh
# make bench-peers PEERS_DIR=DIR: runs the Celery and BullMQ versions of the same
# workloads (DIR, which may be read-only) from a writable copy, and collects their
# JSON into bench/results/peers/ so bench/report.py prints ratios from the
# same session. Takes about 5 minutes.
#   Usage: sh bench/peers.sh PEERS_SRC COPY_DIR RESULTS_DIR
#   PEERS="celery bullmq"  which peers to run; REPS=1 makes a quick run.
set -eu

SRC=$1
COPY=$2
RES=$3
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=${PEERS:-celery bullmq}

say() { printf '[bench-peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ -f "$SRC/bench.py" ] || { echo "bench-peers: no peers at $SRC" >&2; exit 1; }

# Debian packages per the peers' README, installed only when missing.
need=""
for pkg in redis-server python3-celery python3-redis python3-gevent nodejs npm; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need="$need $pkg"
done
# node may come from elsewhere than Debian's nodejs package.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    need=$(echo "$need" | sed 's/ nodejs//; s/ npm//')
fi
if [ -n "$(echo "$need" | tr -d ' ')" ]; then
    say "installing:$need"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi

# A fresh writable copy (the source may be read-only), then the pinned npm packages.
rm -rf "$COPY"
mkdir -p "$(dirname "$COPY")"
cp -r "$SRC" "$COPY"
chmod -R u+w "$COPY"
rm -rf "$COPY/results"
if echo " $PEERS " | grep -q " bullmq "; then
    say "npm ci in $COPY/bullmq"
    (cd "$COPY/bullmq" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

mkdir -p "$RES/peers"
for peer in $PEERS; do
    say "$peer: /usr/bin/python3 bench.py $peer (a few minutes)"
    (cd "$COPY" && /usr/bin/python3 bench.py "$peer")
    cp "$COPY/results/$peer.json" "$RES/peers/$peer.json"
done
(cd "$COPY" && /usr/bin/python3 report.py >/dev/null 2>&1 && cp RESULTS.md "$RES/peers/RESULTS.md") || true

if ls "$RES"/syn-*.jsonl >/dev/null 2>&1; then
    /usr/bin/python3 "$HERE/report.py" "$RES" >/dev/null
    (cd "$RES" && gnuplot "$HERE/plots.gp")
    say "report updated: $RES/report.md"
else
    say "peers done; run make bench for our side and the ratios"
fi
