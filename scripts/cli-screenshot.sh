#!/bin/sh
# Makes docs/img/cli-watch.png, the README's picture of `syn run` watching an
# execution: a local stack (mock agents) on free loopback ports, the demo workflow
# run in a real terminal (tmux, 100x16), its final screen captured with its colours
# and rendered to PNG through Pango markup (ImageMagick). Needs tmux, python3 and
# ImageMagick with Pango (Debian: tmux python3 imagemagick fonts-dejavu-core).
#
#   sh scripts/cli-screenshot.sh [BUILD_DIR] [OUT.png]
set -eu
build="${1:-build}"
out="${2:-docs/img/cli-watch.png}"
bin="$(cd "$build/bin" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d /tmp/syn-screenshot-XXXXXX)"
socket="syn-screenshot-$$"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port="$(free_port)"
base_port=$(( 20000 + $$ % 20000 ))
export SYN_API_URL="http://127.0.0.1:$http_port"
"$bin/syn" up --http "127.0.0.1:$http_port" --base-port "$base_port" --data "$dir/var" \
    --workflows "" --workers 2 --log-level warn >"$dir/up.log" 2>&1 &
up=$!
cleanup() {
    tmux -L "$socket" kill-server 2>/dev/null || true
    kill "$up" 2>/dev/null || true
    wait "$up" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
i=0
until "$bin/syn" status >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 100 ] || { cat "$dir/up.log"; exit 1; }
    sleep 0.1
done
cat >"$dir/release.yaml" <<'YAML'
id: release-notes
name: Release notes
type: research
phases:
  - {id: collect, name: Collect the changes, order: 1, prompt_template: "#mock sleep 700\n#mock tokens 4200 950\nCollect $ARGUMENTS"}
  - {id: group, name: Group by theme, order: 2, prompt_template: "#mock sleep 900\n#mock tokens 6100 1400\nGroup"}
  - {id: draft, name: Draft the notes, order: 3, prompt_template: "#mock sleep 1200\n#mock tokens 8800 3100\nDraft"}
  - {id: review, name: Review the draft, order: 4, prompt_template: "#mock sleep 600\n#mock tokens 3900 700\nReview"}
YAML
"$bin/syn" workflow create -f "$dir/release.yaml" >/dev/null
tmux -L "$socket" -f /dev/null new-session -d -x 100 -y 16 \
    "env SYN_API_URL=$SYN_API_URL LANG=C.UTF-8 TERM=xterm-256color $bin/syn run release-notes -t v0.2.0; echo; echo \"exit code \$?\"; sleep 600"
i=0
until tmux -L "$socket" capture-pane -p | grep -q "exit code"; do
    i=$((i + 1)); [ "$i" -lt 300 ] || { tmux -L "$socket" capture-pane -p; exit 1; }
    sleep 0.1
done
tmux -L "$socket" capture-pane -e -p | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$dir/screen.ansi"
{ printf '$ syn run release-notes -t v0.2.0\n'; cat "$dir/screen.ansi"; } |
    python3 "$here/ansi2pango.py" | sed 's/%/%%/g' >"$dir/screen.pango" # ImageMagick reads % as an escape
mkdir -p "$(dirname "$out")"
convert -background '#1e1e2e' -font 'DejaVu Sans Mono' -pointsize 15 -density 96 \
    "pango:$(cat "$dir/screen.pango")" -bordercolor '#1e1e2e' -border 18 "$out"
echo "wrote $out"
