#!/bin/sh
# make compose-test (issue 21): the compose stack, built and run as a user would,
# through Debian's docker.io and whichever Compose there is (`docker compose`, else
# `docker-compose` 1.29), through the two scenarios users rely on (both by default;
# `sh scripts/compose-test.sh ha` runs one):
# sqlite, the default stack:
#   1. the image builds; keys, broker, gateway and 2 workers come up healthy;
#   2. the README's first workflow runs to the end;
#   3. the workers scale to 4;
#   4. 50 executions are submitted, the broker is killed (kill -9) with them in flight,
#      Docker restarts it, and all 50 complete;
#   5. the stack is taken down and up again: every execution is still there.
# ha, the `ha` profile with compose/ha.env:
#   1. PostgreSQL, two brokers (one active, one standby), gateway and 2 workers come up;
#      /health names the active broker, each broker's own /health says its role;
#   2. the README's first workflow runs to the end;
#   3. 30 executions are submitted, the active broker's container is killed (docker
#      kill: SIGKILL) with them in flight, the standby takes over (the time is printed),
#      and all complete exactly once (PostgreSQL's event log: one PhaseCompleted per
#      phase, one ExecutionCompleted per execution); /health names the new active one;
#   4. the killed broker started again comes back as the standby;
#   5. the stack is taken down and up again: every execution is still there.
# The test's compose file (and its copy of compose/ha.env) is generated from the
# shipped one (scripts/compose_hostnet.py says what it changes): host networking and
# loopback ports of its own, so traffic stays on this machine, and names of its own,
# so a user's stack is never touched.
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
    compose_cmd="docker compose"
    echo "compose: docker compose ($(docker compose version --short))"
elif command -v docker-compose >/dev/null 2>&1; then
    compose_cmd=docker-compose
    echo "compose: $(docker-compose version --short 2>/dev/null || docker-compose --version)"
else
    fail "neither 'docker compose' nor 'docker-compose' is installed (apt-get install docker-compose)"
fi
[ -x "$syn" ] || fail "$syn is missing: make build first"

scenarios=${*:-sqlite ha}
for scenario in $scenarios; do
    case $scenario in sqlite|ha) ;; *) fail "unknown scenario $scenario (sqlite, ha)" ;; esac
done

# The scenario's Compose: the ha one adds its env file and profile, as a user does.
compose_args=""
compose() { $compose_cmd -p "$prefix" -f "$work/docker-compose.yml" $compose_args "$@"; }
# Everything of the test's project, whichever scenario made it.
compose_down() { $compose_cmd -p "$prefix" -f "$work/docker-compose.yml" --profile ha down "$@"; }

work=$(mktemp -d)
cleanup() {
    rc=$?
    if [ "$rc" -ne 0 ] && [ -f "$work/docker-compose.yml" ]; then
        echo "-- the stack's last log lines:"
        compose logs --tail 30 2>&1 || true
    fi
    [ -f "$work/docker-compose.yml" ] && compose_down -v --remove-orphans >/dev/null 2>&1 || true
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

# The test's compose file, env file (compose/ha.env) and loopback ports (scripts/compose_hostnet.py).
python3 scripts/compose_hostnet.py compose/docker-compose.yml "$root" "$prefix" 4000 "$work" \
    compose/ha.env
. "$work/ports"
url="http://127.0.0.1:$port_gateway_8137"
export SYN_API_URL="$url"

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
# The API as the test reads it (python3 "$work/api.py" WHAT ...):
#   workers             the connected workers
#   STATUS              the executions of that status (the list's total)
#   submit N            N executions of research at once (a syn process per submit is
#                       slower than the phases)
#   active              the clients endpoint of the active broker, by the gateway's /health
#   health              the gateway's /health
#   role URL            a broker's own /health at URL: active or standby
#   now                 the time (epoch seconds)
#   takeover ENDPOINT T polls the gateway's /health every 0.1 s until a broker other than
#                       ENDPOINT is active; prints how long after T (the kill) it took the
#                       lease (its "since") and the gateway named it
cat >"$work/api.py" <<'EOF'
import json, sys, time, urllib.request
url, what, args = sys.argv[1], sys.argv[2], sys.argv[3:]
def get(path, base=url):
    return json.load(urllib.request.urlopen(base + path, timeout=10))
def active():
    try:
        return (get("/health").get("active_broker") or {}).get("clients", "-")
    except OSError:  # the gateway answers 503 while it has no broker
        return "-"
if what == "workers":
    print(sum(1 for w in get("/workers")["workers"] if w.get("connected")))
elif what == "submit":
    for i in range(int(args[0])):
        body = json.dumps({"task": "question %d" % i}).encode()
        request = urllib.request.Request(url + "/workflows/research/execute", data=body,
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).read()
elif what == "active":
    print(active())
elif what == "health":
    print(json.dumps(get("/health")))
elif what == "role":
    print(get("/health", args[0])["role"])
elif what == "now":
    print("%.3f" % time.time())
elif what == "takeover":
    killed = float(args[1])
    while active() in (args[0], "-"):
        if time.time() - killed > 60:
            sys.exit("no other broker active within 60 s")
        time.sleep(0.1)
    named = time.time() - killed
    since = get("/health")["active_broker"]["since"] / 1e6 - killed
    print("lease taken %.1fs, named by /health %.1fs after the kill" % (since, named))
else:
    print(get("/executions?status=" + what)["total"])
EOF
count() { python3 "$work/api.py" "$url" "$@"; }
count_is() { [ "$(count "$1")" = "$2" ]; }
count_above() { [ "$(count "$1")" -gt "$2" ]; }
# compose build, its output kept in $work/build.log and shown when it fails.
build() {
    compose build "$@" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; fail "compose build $*"; }
    echo "built: $(grep -h '^Successfully tagged\|naming to' "$work/build.log" | tr '\n' ' ')"
}
# The container of a service (its only one).
container() { docker ps -q -f "label=com.docker.compose.project=$prefix" -f "label=com.docker.compose.service=$1"; }
healthy() { docker inspect -f '{{.State.Health.Status}}' "$(container "$1")" | grep -qx "$2"; }

scenario_sqlite() {
step "sqlite: building the image (compose build)"
build keys

step "sqlite: starting keys, broker, gateway and 2 workers"
compose up -d --scale worker=2
wait_for 120 "the gateway ready (syn health: /ready)" "$syn" health
wait_for 60 "2 workers connected" count_is workers 2
for service in broker gateway; do
    wait_for 90 "$service healthy (its compose health check)" healthy "$service" healthy
done
"$syn" status

step "sqlite: the README's first workflow"
"$syn" workflow list
"$syn" run research -t "How do Raft and Paxos differ?" --watch ||
    fail "the first workflow did not complete"

step "sqlite: scaling to 4 workers"
compose up -d --no-recreate --scale worker=4
wait_for 60 "4 workers connected" count_is workers 4

step "sqlite: 50 executions, and the broker killed (kill -9) with them in flight"
count submit 50 || fail "the 50 submits"
wait_for 30 "executions running" count_above running 0
broker=$(container broker)
init_pid=$(docker inspect -f '{{.State.Pid}}' "$broker")
broker_pid=$(pgrep -P "$init_pid" -x syn-broker) || fail "no syn-broker under the container's init ($init_pid)"
echo "killing syn-broker (host pid $broker_pid) with $(count running) executions running"
kill -9 "$broker_pid"
wait_for 60 "the broker restarted by Docker" sh -c \
    "[ \"\$(docker inspect -f '{{.RestartCount}}' $broker)\" -ge 1 ]"
wait_for 120 "all 51 executions completed" count_is completed 51
"$syn" status

step "sqlite: down and up again: the data is kept"
compose down
compose up -d --scale worker=2
wait_for 120 "the gateway ready after the restart" "$syn" health
count_is completed 51 || fail "after down/up: $(count completed) completed, not 51"
compose_down -v
echo "sqlite: passed: built, first workflow, scaled to 4, 50 kept through a broker kill, data kept"
}

# The service whose clients endpoint the gateway's /health names as the active broker.
active_service() {
    case $(count active) in
        "tcp://127.0.0.1:$port_broker_5555") echo broker ;;
        "tcp://127.0.0.1:$port_broker_standby_5555") echo broker-standby ;;
        *) echo none ;;
    esac
}
active_is() { [ "$(active_service)" = "$1" ]; }
some_active() { ! active_is none; }
role_of() {
    case $1 in
        broker) count role "http://127.0.0.1:$port_broker_9137" ;;
        broker-standby) count role "http://127.0.0.1:$port_broker_standby_9137" ;;
    esac
}
role_is() { [ "$(role_of "$1")" = "$2" ]; }
# psql in the postgres container, on the brokers' database: one value.
sql() { compose exec -T postgres psql -qtAX -d syn -c "$1"; }

scenario_ha() {
compose_args="--env-file $work/ha.env --profile ha"
runs=30
step "ha: building the images (compose build: syn, and PostgreSQL's)"
build keys postgres

step "ha: starting PostgreSQL, two brokers, gateway and 2 workers (--profile ha)"
compose up -d --scale worker=2
wait_for 120 "PostgreSQL healthy (pg_isready)" healthy postgres healthy
wait_for 120 "the gateway ready (syn health: /ready)" "$syn" health
wait_for 60 "2 workers connected" count_is workers 2
wait_for 30 "/health naming an active broker" some_active
active=$(active_service)
case $active in broker) standby=broker-standby ;; *) standby=broker ;; esac
role_is "$active" active || fail "$active: its own /health says $(role_of "$active"), not active"
role_is "$standby" standby || fail "$standby: its own /health says $(role_of "$standby"), not standby"
echo "active: $active, standby: $standby; the gateway's /health:"
count health
"$syn" status

step "ha: the README's first workflow"
"$syn" workflow list
"$syn" run research -t "How do Raft and Paxos differ?" --watch ||
    fail "the first workflow did not complete"
wait_for 90 "$active healthy (its /ready)" healthy "$active" healthy
wait_for 90 "$standby unhealthy (its /ready is 503)" healthy "$standby" unhealthy
compose ps

step "ha: $runs executions, and the active broker ($active) killed (docker kill) with them in flight"
count submit "$runs" || fail "the $runs submits"
wait_for 30 "executions running" count_above running 0
endpoint=$(count active)
echo "docker kill $active with $(count running) executions running"
killed=$(count now)
docker kill "$(container "$active")" >/dev/null
took=$(count takeover "$endpoint" "$killed") || fail "no takeover"
active_is "$standby" || fail "after the kill /health names $(active_service), not $standby"
echo "takeover by $standby: $took; the gateway's /health:"
count health
total=$((runs + 1))
wait_for 180 "all $total executions completed" count_is completed "$total"
"$syn" status
completed=$(sql "SELECT count(*) FROM events WHERE type='ExecutionCompleted'")
phases=$(sql "SELECT count(*) FROM events WHERE type='PhaseCompleted'")
twice=$(sql "SELECT count(*) FROM (SELECT execution_id, data::json->>'phase_id' FROM events
             WHERE type IN ('PhaseCompleted', 'ExecutionCompleted') GROUP BY 1, 2
             HAVING count(*) <> 1) d")
again=$(sql "SELECT count(*) FROM attempts WHERE attempt > 1")
echo "event log: $completed executions completed, $phases phases completed, $twice recorded twice" \
     "(second attempts: $again, dispatches the killed broker committed but never sent)"
[ "$completed" = "$total" ] && [ "$twice" = 0 ] || fail "not exactly once"

step "ha: the killed broker started again: it is the standby"
compose start "$active"
wait_for 60 "$active running as the standby" role_is "$active" standby
active_is "$standby" || fail "after the restart /health names $(active_service), not $standby"
echo "$active: $(role_of "$active"), $standby: $(role_of "$standby")"

step "ha: down and up again: the data is kept in PostgreSQL"
compose down
compose up -d --scale worker=2
wait_for 120 "the gateway ready after the restart" "$syn" health
count_is completed "$total" || fail "after down/up: $(count completed) completed, not $total"
echo "after down/up: $(count completed) completed; active: $(active_service)"
compose_down -v
compose_args=""
echo "ha: passed: PostgreSQL and two brokers, first workflow, $runs kept exactly once" \
     "through the active broker's kill (takeover: $took), data kept"
}

for scenario in $scenarios; do
    "scenario_$scenario"
done
step "passed: $scenarios"
