#!/usr/bin/env bash
# Fetch the pinned browser libraries from the npm registry and check their sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=static/vendor/vendor.lock
grep -v '^#' "$lock" | while read -r pkg file sha target; do
  [ -n "$pkg" ] || continue
  if [ -f "$target" ] && echo "$sha  $target" | sha256sum -c --status; then
    continue
  fi
  command -v npm >/dev/null || { echo "npm is needed once to fetch $pkg (apt-get install npm)" >&2; exit 1; }
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "$pkg" --silent >/dev/null && tar xzf ./*.tgz)
  echo "$sha  $tmp/$file" | sha256sum -c --status || { echo "checksum mismatch for $pkg $file" >&2; rm -rf "$tmp"; exit 1; }
  cp "$tmp/$file" "$target"
  rm -rf "$tmp"
  echo "fetched $pkg -> $target"
done
