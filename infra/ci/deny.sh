#!/usr/bin/env bash
# cargo-deny over the whole dependency graph: advisories, licences, bans and sources, as
# deny.toml sets them. Advisories come from the offline RustSec snapshot at
# ../shared/advisory-db when the workplace has one, and from cargo-deny's normal fetch of
# https://github.com/rustsec/advisory-db otherwise.
#   usage: bash infra/ci/deny.sh            (from the repository root; needs cargo-deny)
set -euo pipefail
cd "$(dirname "$0")/../.."
snapshot=${LKCI_ADVISORY_DB:-../shared/advisory-db}   # not LATCHKEY_*: the server refuses unknown ones
# cargo-deny reads the whole lock file, target-specific crates included: fetch them all first.
cargo fetch --locked
if [ ! -d "$snapshot/crates" ]; then
  echo "deny: no advisory snapshot at $snapshot; fetching the advisory database"
  exec cargo deny check advisories licenses bans sources
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# cargo-deny wants a git checkout in a folder named after the database URL's hash.
db="$work/db/advisory-db-3157b0e258782691"
mkdir -p "$db" && cp -R "$snapshot/." "$db/"
git -C "$db" init -q && git -C "$db" add -A >/dev/null
GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" \
  git -C "$db" -c user.name=snapshot -c user.email=snapshot@localhost commit -qm snapshot
# The project's settings, with advisories read from the snapshot.
sed "s#^\[advisories\]#[advisories]\ndb-path = \"$work/db\"\ndb-urls = [\"https://github.com/rustsec/advisory-db\"]#" deny.toml > "$work/deny.toml"
echo "deny: advisories from the offline snapshot at $snapshot"
cargo deny --offline --config "$work/deny.toml" check advisories licenses bans sources
