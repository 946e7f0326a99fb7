#!/usr/bin/env bash
# Fails when shipped code or configuration names a plain http:// URL: every outbound connection
# must be TLS. Loopback (localhost, 127.0.0.1, [::1]), RFC 2606 example names and tests are
# excepted.
set -euo pipefail
cd "$(dirname "$0")/../.."
files=$(git ls-files '*.rs' '*.toml' '*.yaml' '*.yml' '*.json' '*.html' \
  | grep -v -E '(^|/)tests?/|(^|/)benches/|^\.ci/|^infra/ci/' || true)
[ -n "$files" ] || exit 0
# A URL with a literal host; reserved example names (RFC 2606) are not real destinations.
hits=$(grep -n -o -E 'http://[A-Za-z0-9.:_-]+' $files \
  | grep -v -E 'http://(localhost|127\.0\.0\.1|\[::1\])([:/]|$)' \
  | grep -v -E 'http://([A-Za-z0-9-]+\.)*(example(\.com|\.org|\.net)?|invalid|test)(:|$)' || true)
if [ -n "$hits" ]; then
  echo "plain http:// URLs in shipped code (use https://):"
  echo "$hits"
  exit 1
fi
echo "no plain http:// URLs in $(echo "$files" | wc -l) shipped files"
