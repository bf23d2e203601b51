#!/usr/bin/env bash
# Builds the REAL Sigstore services the rig runs on loopback (test/rig/sigstore-services.ts), pinned:
#   - the timestamp authority  github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server@v2.1.3
#   - Rekor v2 (tiles, posix)  github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix@v2.3.0
#   - Fulcio                   github.com/sigstore/fulcio@v1.8.8
#   - Trillian (for Rekor v1)  github.com/google/trillian/cmd/{trillian_log_server,trillian_log_signer,createtree}@v1.7.3,
#                              with its MySQL schema (storage/mysql/schema/storage.sql) copied beside them
#   - Rekor v1                 github.com/sigstore/rekor/cmd/rekor-server@v1.5.4
# each with `GOBIN=<its own dir> GOTOOLCHAIN=local CGO_ENABLED=0 go install` into
# ${COSIGN_WEB_CACHE:-$HOME/.cache/cosign-web}/go/<name>-<version>/ (outside the checkout), with the
# module and build caches there too (GOMODCACHE, GOCACHE), so nothing lands in ~/go. Idempotent: a
# second run only checks that the binaries are there and report the pinned module version (~0.1 s).
# Needs Go >= 1.26 (Fulcio's go.mod; the others need 1.25) and the Go module proxy. Called by install.sh.
# https://github.com/sigstore/timestamp-authority  https://github.com/sigstore/rekor-tiles
set -euo pipefail

CACHE="${COSIGN_WEB_CACHE:-$HOME/.cache/cosign-web}"
GODIR="$CACHE/go"
# folder name|module package|version|binary (several binaries may share a folder)
SERVICES=(
  "timestamp-authority|github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server|v2.1.3|timestamp-server"
  "rekor-tiles|github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix|v2.3.0|posix"
  "fulcio|github.com/sigstore/fulcio|v1.8.8|fulcio"
  "trillian|github.com/google/trillian/cmd/trillian_log_server|v1.7.3|trillian_log_server"
  "trillian|github.com/google/trillian/cmd/trillian_log_signer|v1.7.3|trillian_log_signer"
  "trillian|github.com/google/trillian/cmd/createtree|v1.7.3|createtree"
  "rekor|github.com/sigstore/rekor/cmd/rekor-server|v1.5.4|rekor-server"
)
die() { echo "install-sigstore-services.sh: ERROR: $*" >&2; exit 1; }
say() { echo "install-sigstore-services.sh: $*" >&2; }

command -v go >/dev/null || die "no go on PATH (Go >= 1.26 is needed)"

# check BIN PKG VERSION: the binary exists and `go version -m` names the pinned package and version.
check() {
  local bin=$1 pkg=$2 version=$3 info
  [ -x "$bin" ] || return 1
  info=$(go version -m "$bin" 2>/dev/null) || return 1
  grep -qE "^[[:space:]]+path[[:space:]]+${pkg//./\\.}\$" <<<"$info" || return 1
  grep -qE "^[[:space:]]+mod[[:space:]]+[^[:space:]]+[[:space:]]+${version//./\\.}[[:space:]]" <<<"$info" || return 1
}

summary=()
for s in "${SERVICES[@]}"; do
  IFS='|' read -r name pkg version binary <<<"$s"
  dir="$GODIR/$name-$version"
  bin="$dir/$binary"
  if ! check "$bin" "$pkg" "$version"; then
    say "building $pkg@$version into $dir (a first build takes minutes)"
    rm -f "$bin"; mkdir -p "$dir"
    start=$(date +%s)
    GOBIN="$dir" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
      GOMODCACHE="$GODIR/mod" GOCACHE="$GODIR/build" \
      go install "$pkg@$version" || die "go install $pkg@$version failed"
    check "$bin" "$pkg" "$version" || die "$bin does not report $pkg $version"
    say "built $name $version in $(( $(date +%s) - start )) s"
  fi
  summary+=("$name $version ($bin)")
done
# Trillian's MySQL schema, from the module the build downloaded (module files are read-only).
schema="$GODIR/trillian-v1.7.3/storage.sql"
if [ ! -s "$schema" ]; then
  src="$GODIR/mod/github.com/google/trillian@v1.7.3/storage/mysql/schema/storage.sql"
  [ -s "$src" ] || die "$src is missing after building Trillian"
  cp "$src" "$schema" && chmod 0644 "$schema"
fi

IFS=';'; echo "sigstore services: ${summary[*]}"
