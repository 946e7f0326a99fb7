#!/usr/bin/env bash
# Fails when shipped code or configuration names a plain http:// URL: every outbound connection
# must be TLS. Loopback (localhost, 127.0.0.0/8, [::1]), RFC 2606 example names, test folders
# and Rust `#[cfg(test)]` modules (by convention the last thing in a file) are excepted. URLs
# built from a variable host (`http://{host}`) count too. The two deliberate plain-http lines,
# in the development tools only, carry a `plain-http: <why>` marker: the load generator's base
# URL (loopback only, checked next to it) and latchkey-local printing the address it serves on
# (no TLS on a laptop; never outbound). The marker counts in infra/load and infra/local only.
set -euo pipefail
cd "$(dirname "$0")/../.."
files=$(git ls-files '*.rs' '*.toml' '*.yaml' '*.yml' '*.json' '*.html' \
  | grep -v -E '(^|/)tests?/|(^|/)benches/|^\.ci/|^infra/ci/' || true)
[ -n "$files" ] || exit 0
shipped() {
  for f in $files; do
    case "$f" in
      infra/load/*.rs|infra/local/*.rs) awk -v f="$f" '/^#\[cfg\(test\)\]/ { exit } /\/\/ plain-http: / { next } { print f ":" NR ":" $0 }' "$f" ;;
      *.rs) awk -v f="$f" '/^#\[cfg\(test\)\]/ { exit } { print f ":" NR ":" $0 }' "$f" ;;
      *) awk -v f="$f" '{ print f ":" NR ":" $0 }' "$f" ;;
    esac
  done
}
# A URL with a literal host; loopback and reserved example names are not outbound destinations.
hits=$(shipped | grep -o -E '^[^:]+:[0-9]+:|http://[A-Za-z0-9.:_{}-]+' \
  | awk '/^[^h].*:[0-9]+:$/ { where = $0; next } { print where $0 }' \
  | grep -v -i -E 'http://(localhost|127\.[0-9.]+|\[::1\])([:/]|$)' \
  | grep -v -i -E 'http://([A-Za-z0-9-]+\.)*(example(\.com|\.org|\.net)?|invalid|test)(:|$)' || true)
if [ -n "$hits" ]; then
  echo "plain http:// URLs in shipped code (use https://):"
  echo "$hits"
  exit 1
fi
echo "no plain http:// URLs in $(echo "$files" | wc -l) shipped files"
