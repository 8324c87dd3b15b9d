#!/bin/sh
# make compose-test (issue 21): the compose stack, built and run as a user would,
# through Debian's docker.io and whichever Compose there is (`docker compose`, else
# `docker-compose` 1.29), with the scenario users rely on:
#   1. the image builds; keys, broker, gateway and 2 workers come up healthy;
#   2. the README's first workflow runs to the end;
#   3. the workers scale to 4;
#   4. 50 executions are submitted, the broker is killed (kill -9) with them in flight,
#      Docker restarts it, and all 50 complete;
#   5. the stack is taken down and up again: every execution is still there.
# The test's compose file is generated from the shipped one (scripts/compose_hostnet.py
# says what it changes): host networking and loopback ports of its own, so traffic
# stays on this machine, and names of its own, so a user's stack is never touched.
# Not part of `make test`: it takes minutes and needs a Docker engine.
# The base image debian:bookworm-slim is made with debootstrap when it is missing
# (this machine reaches Debian's mirror, not a container registry).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
syn="$root/${BUILD:-build}/bin/syn"
prefix=syn-compose-test
mirror=${SYN_DEBIAN_MIRROR:-http://deb.debian.org/debian}

step() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }
fail() { echo "compose-test: FAILED: $*" >&2; exit 1; }
started=$(date +%s)

# Debian's Docker tools, unless the machine has Docker's own (docker-ce and its plugin).
extra="debootstrap python3-yaml"
command -v docker >/dev/null 2>&1 || extra="$extra docker.io"
docker compose version >/dev/null 2>&1 || extra="$extra docker-compose"
sh scripts/deps.sh $extra
docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info): install docker.io and start dockerd"
if docker compose version >/dev/null 2>&1; then
    compose() { docker compose -p "$prefix" -f "$work/docker-compose.yml" "$@"; }
    echo "compose: docker compose ($(docker compose version --short))"
elif command -v docker-compose >/dev/null 2>&1; then
    compose() { docker-compose -p "$prefix" -f "$work/docker-compose.yml" "$@"; }
    echo "compose: $(docker-compose version --short 2>/dev/null || docker-compose --version)"
else
    fail "neither 'docker compose' nor 'docker-compose' is installed (apt-get install docker-compose)"
fi
[ -x "$syn" ] || fail "$syn is missing: make build first"

work=$(mktemp -d)
cleanup() {
    rc=$?
    if [ "$rc" -ne 0 ] && [ -f "$work/docker-compose.yml" ]; then
        echo "-- the stack's last log lines:"
        compose logs --tail 30 2>&1 || true
    fi
    [ -f "$work/docker-compose.yml" ] && compose down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT INT TERM

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    step "making the base image debian:bookworm-slim with debootstrap from $mirror"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
    rm -rf "$work/rootfs/var/lib/apt/lists"/* "$work/rootfs/var/cache/apt"/*.bin
    tar -C "$work/rootfs" -c . | docker import - debian:bookworm-slim >/dev/null
    rm -rf "$work/rootfs"
fi

# Loopback ports of the test's own: free now, below the ephemeral range (a port in
# it could be taken as the source port of an outgoing connection meanwhile).
ports=$(python3 - <<'EOF'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
found = []
while len(found) < 5:
    port = random.randrange(20000, low)
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        found.append(str(port))
    except OSError:
        pass
print(" ".join(found))
EOF
)
set -- $ports
http_port=$5
url="http://127.0.0.1:$http_port"
export SYN_API_URL="$url"
python3 scripts/compose_hostnet.py compose/docker-compose.yml "$root" "$prefix" "$@" 4000 \
    >"$work/docker-compose.yml"

# Polls "$@" (a command) about once a second until it succeeds, for at most $limit seconds.
wait_for() {
    limit=$1 what=$2
    shift 2
    deadline=$(($(date +%s) + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$deadline" ] && fail "$what: not within ${limit}s"
        sleep 1
    done
}
# Counts from the API: "workers" (connected), or executions of a status (the list's total).
count() { python3 - "$url" "$1" <<'EOF'
import json, sys, urllib.request
url, what = sys.argv[1], sys.argv[2]
if what == "workers":
    doc = json.load(urllib.request.urlopen(url + "/workers", timeout=10))
    print(sum(1 for w in doc["workers"] if w.get("connected")))
else:
    doc = json.load(urllib.request.urlopen(url + "/executions?status=" + what, timeout=10))
    print(doc["total"])
EOF
}
count_is() { [ "$(count "$1")" = "$2" ]; }
count_above() { [ "$(count "$1")" -gt "$2" ]; }

step "building the image (compose build)"
compose build keys

step "starting keys, broker, gateway and 2 workers"
compose up -d --scale worker=2
wait_for 120 "the gateway ready (syn health: /ready)" "$syn" health
wait_for 60 "2 workers connected" count_is workers 2
for service in broker gateway; do
    wait_for 90 "$service healthy (its compose health check)" sh -c \
        "docker inspect -f '{{.State.Health.Status}}' \$(docker ps -q -f label=com.docker.compose.project=$prefix -f label=com.docker.compose.service=$service) | grep -qx healthy"
done
"$syn" status

step "the README's first workflow"
"$syn" workflow list
"$syn" run research -t "How do Raft and Paxos differ?" --watch ||
    fail "the first workflow did not complete"

step "scaling to 4 workers"
compose up -d --no-recreate --scale worker=4
wait_for 60 "4 workers connected" count_is workers 4

step "50 executions, and the broker killed (kill -9) with them in flight"
# Through the API at once (a syn process per submit is slower than the phases).
python3 - "$url" <<'EOF' || fail "the 50 submits"
import json, sys, urllib.request
for i in range(50):
    body = json.dumps({"task": "question %d" % i}).encode()
    request = urllib.request.Request(sys.argv[1] + "/workflows/research/execute", data=body,
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()
EOF
wait_for 30 "executions running" count_above running 0
broker=$(docker ps -q -f "label=com.docker.compose.project=$prefix" -f label=com.docker.compose.service=broker)
init_pid=$(docker inspect -f '{{.State.Pid}}' "$broker")
broker_pid=$(pgrep -P "$init_pid" -x syn-broker) || fail "no syn-broker under the container's init ($init_pid)"
echo "killing syn-broker (host pid $broker_pid) with $(count running) executions running"
kill -9 "$broker_pid"
wait_for 60 "the broker restarted by Docker" sh -c \
    "[ \"\$(docker inspect -f '{{.RestartCount}}' $broker)\" -ge 1 ]"
wait_for 120 "all 51 executions completed" count_is completed 51
"$syn" status

step "down and up again: the data is kept"
compose down
compose up -d --scale worker=2
wait_for 120 "the gateway ready after the restart" "$syn" health
count_is completed 51 || fail "after down/up: $(count completed) completed, not 51"

step "passed: built, first workflow, scaled to 4, 50 kept through a broker kill, data kept"
