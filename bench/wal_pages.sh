#!/bin/bash
# Which tables and indexes a broker's commits write, page by page.
#
#   bench/wal_pages.sh [synload args...]      e.g. bench/wal_pages.sh --workload w1
#
# Runs one synload batch; at its end (synload's --profile-cmd is stopped by
# SIGINT then) copies the broker's database and WAL, then prints, for the
# frames of the WAL since its last restart, how many pages each table or index
# took per commit. Every page a commit changes is written whole to the WAL
# (twice a pwrite64), so this says where the broker's WAL writes go.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SYN_BIN_DIR:-$here/../build/bin}
out=$(mktemp -d /tmp/syn-wal-XXXXXX)
trap 'rm -rf "$out"' EXIT
cat > "$out/grab.sh" <<GRAB
#!/bin/bash
# {pid}: the broker. On SIGINT, copy its database and WAL (as they are: the
# page map is all that is read from them).
pid=\$1
grab() {
    data=\$(tr '\\0' '\\n' < /proc/\$pid/cmdline | grep -A1 -- '^--data\$' | tail -1)
    cp "\$data/syn.db" "$out/syn.db"; cp "\$data/syn.db-wal" "$out/syn.db-wal"; exit 0
}
trap grab INT TERM
while :; do sleep 0.05; done
GRAB
chmod +x "$out/grab.sh"
"$bin/synload" --runs 1 "$@" --profile-cmd "exec $out/grab.sh {pid}" >/dev/null
python3 - "$out" <<'PY'
import collections, sqlite3, struct, sys
out = sys.argv[1]
wal = open(out + "/syn.db-wal", "rb").read()
page = struct.unpack(">I", wal[8:12])[0]
salt = wal[16:24]
frames, offset = [], 32
while offset + 24 + page <= len(wal) and wal[offset + 8:offset + 16] == salt:
    frames.append(struct.unpack(">II", wal[offset:offset + 8]))
    offset += 24 + page
commits = sum(1 for _, size in frames if size) or 1
names = dict(sqlite3.connect(out + "/syn.db").execute("SELECT pageno, name FROM dbstat"))
print(f"{len(frames)} frames of {page} bytes in {commits} commits: "
      f"{len(frames) / commits:.1f} pages per commit")
for name, n in collections.Counter(names.get(p, "?") for p, _ in frames).most_common():
    print(f"{n / commits:7.2f} per commit  {name}")
PY
