#!/bin/sh
# Makes ready what the dashboard's browser tests need, as scripts/deps.sh does for
# the C libraries: Debian's chromium, node and npm (installed when missing, which
# needs root or sudo), and playwright-core at the version package-lock.json pins,
# installed with `npm ci` into DIR (under the build tree, never committed). No
# browser is downloaded: the tests drive /usr/bin/chromium.
# Usage: setup.sh DIR   (prints nothing when everything is there already)
set -e
dir="$1"
here="$(cd "$(dirname "$0")" && pwd)"
[ -n "$dir" ] || { echo "usage: setup.sh DIR" >&2; exit 2; }
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "browser tests: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
mkdir -p "$dir"
# npm ci again only when the lock file changed.
if ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" ||
   [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  echo "browser tests: npm ci (playwright-core) in $dir" >&2
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund >&2)
fi
