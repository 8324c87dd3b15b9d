#!/bin/sh
# make bench-peers: the Celery and BullMQ versions of W1/W2/W3 (bench/peers/, the
# project's own drivers) run from a copy in a build dir, and their JSON goes to
# bench/results/peers/ so that bench/report.py prints ratios from the same session.
# A full run takes about 5 minutes on a quiet 2-core machine.
#   Usage: sh bench/peers.sh STAGE_DIR RESULTS_DIR
#   PEERS="celery bullmq"  which peers to run; REPS=1 makes a quick run, SKIP_W2=1 leaves W2 out.
#   PEERS_STAGE_ONLY=1     install and stage, run nothing (bench/w1.sh runs the driver itself).
set -eu

STAGE=$1
RES=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=${PEERS:-celery bullmq}

say() { printf '[bench-peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for peer in $PEERS; do
    case $peer in
        celery | bullmq) ;;
        *) echo "bench-peers: unknown peer '$peer' (celery, bullmq)" >&2; exit 2 ;;
    esac
done

# Debian's packages, installed only when missing: redis-server for both peers,
# Celery 5.2 with its redis client and the gevent pool W2 uses. Node and npm come
# from the machine (Debian's nodejs and npm when there is none).
need=""
for pkg in redis-server python3-celery python3-redis python3-gevent; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need="$need $pkg"
done
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
    say "installing:$need"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi

# A fresh copy, so that Python's caches and node_modules never land in the source
# tree; then BullMQ and ioredis at the versions package-lock.json pins (checked
# against its integrity hashes; no install scripts run).
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp -r "$HERE/peers/driver.py" "$HERE/peers/celery" "$HERE/peers/bullmq" "$STAGE/"
rm -rf "$STAGE/bullmq/node_modules" "$STAGE/celery/__pycache__"
if echo " $PEERS " | grep -q " bullmq "; then
    say "npm ci in $STAGE/bullmq"
    (cd "$STAGE/bullmq" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi

[ -n "${PEERS_STAGE_ONLY:-}" ] && exit 0
mkdir -p "$RES/peers"
for peer in $PEERS; do
    say "$peer: W1/W3 then W2 (a few minutes)"
    /usr/bin/python3 "$STAGE/driver.py" "$peer" "$RES/peers/$peer.json.part"
    mv "$RES/peers/$peer.json.part" "$RES/peers/$peer.json"
done

if ls "$RES"/syn-*.jsonl >/dev/null 2>&1; then
    /usr/bin/python3 "$HERE/report.py" "$RES" >/dev/null
    (cd "$RES" && gnuplot "$HERE/plots.gp")
    say "report updated: $RES/report.md"
else
    say "peers done; run make bench for our side and the ratios"
fi
