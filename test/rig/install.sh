#!/usr/bin/env bash
# Installs the project's test rig: the REAL cosign 2.5 (Debian trixie), cosign 3.1, crane and oras (Debian sid) and
# skopeo 1.18 (trixie, run through trixie's own dynamic loader), plus the Debian bookworm packages
# the rig needs (distribution registry, htpasswd, chromium, softhsm2, opensc, python3-nacl, gcc, redis-server, nginx),
# and the real Sigstore timestamp authority and Rekor v2, built with Go (install-sigstore-services.sh).
#
# Everything fetched from other Debian suites goes into a cache folder OUTSIDE the checkout,
# ${COSIGN_WEB_CACHE:-$HOME/.cache/cosign-web}, through a private apt state (the system's apt
# sources, lists and dpkg database are never touched for them). Idempotent: a second run only checks.
# Versions are not pinned here; they are verified after install and the script fails loudly if
# Debian moved them (cosign2 must be 2.5.*, cosign3 3.1.*, skopeo 1.18.*).
#
# Usage: bash test/rig/install.sh        (as root, or with sudo available for apt-get)
set -euo pipefail

CACHE="${COSIGN_WEB_CACHE:-$HOME/.cache/cosign-web}"
MIRROR="${COSIGN_WEB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# gcc: the PKCS#11 tests build a small pass-through module (test/rig/pin-lock-module.c).
# python3-pip: install-python-tuf.sh installs python-tuf with it into the cache.
# redis-server and nginx: the relay's tag locks in Redis, two relays behind nginx (test/integration/relays-redis*).
# mariadb-server: the database under Trillian, under the real Rekor v1 (test/rig/rekor-v1.ts).
SYSTEM_PACKAGES=(chromium docker-registry apache2-utils openssl python3-nacl python3-pip softhsm2 opensc ca-certificates gcc redis-server nginx mariadb-server)
TRIXIE_PACKAGES=(cosign skopeo libc6 libgpgme11t64 libsqlite3-0 libassuan9 libgpg-error0)
# crane and oras: two more real registry clients, to test the embedded registry (server/registry/).
SID_PACKAGES=(cosign crane oras)
# Bump when the layout of the cache changes, so old caches are rebuilt.
LAYOUT=1

export DEBIAN_FRONTEND=noninteractive
die() { echo "install.sh: ERROR: $*" >&2; exit 1; }
say() { echo "install.sh: $*" >&2; }

SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install system packages"
  SUDO=(sudo -E)
fi

# ---------------------------------------------------------------------------------------------
# 1. System packages (bookworm) through the system's apt, only when one is missing.
# ---------------------------------------------------------------------------------------------
missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
apt_install() {
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "$@"
}
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  # apt keeps the server's Last-Modified as the lists' mtime, so their age says little: update
  # first only when there are no lists at all, otherwise try the install and, if the lists were
  # stale (unknown package, 404 on a .deb), update once and try again.
  if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
    say "no apt lists: apt-get update"
    "${SUDO[@]}" apt-get update -q || say "apt-get update reported errors (continuing; install will tell)"
    apt_install "${missing[@]}" || die "apt-get install ${missing[*]} failed"
  elif ! apt_install "${missing[@]}"; then
    say "install failed with the current lists: apt-get update and retry"
    "${SUDO[@]}" apt-get update -q || say "apt-get update reported errors (continuing; install will tell)"
    apt_install "${missing[@]}" || die "apt-get install ${missing[*]} failed"
  fi
fi
for cmd in /usr/bin/docker-registry htpasswd openssl chromium softhsm2-util pkcs11-tool /usr/bin/gcc /usr/bin/redis-server /usr/sbin/nginx /usr/sbin/mariadbd /usr/bin/mariadb-install-db; do
  command -v "$cmd" >/dev/null || die "$cmd not found after installing system packages"
done
/usr/bin/python3 -c 'import nacl.secret' 2>/dev/null || die "python3-nacl not importable by /usr/bin/python3"
# python-tuf (pinned, pip --target into the cache) for the TUF repositories of the shared/tuf/ tests.
tuf_summary=$(bash "$(dirname "${BASH_SOURCE[0]}")/install-python-tuf.sh") || die "python-tuf could not be installed"
say "$tuf_summary"
# The real timestamp authority and Rekor v2 (pinned, built with go install into the cache).
services_summary=$(bash "$(dirname "${BASH_SOURCE[0]}")/install-sigstore-services.sh") || die "the Sigstore services could not be built"
say "$services_summary"

# ---------------------------------------------------------------------------------------------
# 2. trixie / sid packages through a private apt state in the cache, unpacked with dpkg-deb -x.
# ---------------------------------------------------------------------------------------------
APT="$CACHE/apt"
TRIXIE_ROOT="$CACHE/trixie"
SID_ROOT="$CACHE/sid"
BIN="$CACHE/bin"
ETC="$CACHE/etc/containers"
TRIXIE_LIB="$TRIXIE_ROOT/usr/lib/x86_64-linux-gnu"
STAMP="$CACHE/.installed"
STAMP_WANT="layout=$LAYOUT trixie=${TRIXIE_PACKAGES[*]} sid=${SID_PACKAGES[*]} mirror=$MIRROR"

apt_opts() {
  printf '%s\n' \
    -o "Dir::Etc::sourcelist=$APT/sources.list" \
    -o "Dir::Etc::sourceparts=-" \
    -o "Dir::State::Lists=$APT/lists" \
    -o "Dir::Cache=$APT/cache" \
    -o "Dir::State::status=$APT/status" \
    -o "APT::Sandbox::User=root" \
    -o "Acquire::Languages=none"
}

private_update() {
  mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
  [ -f "$APT/status" ] || : >"$APT/status"
  [ -r "$KEYRING" ] || die "$KEYRING missing (package debian-archive-keyring)"
  # Debian signs sid and trixie with the automatic archive keys (trixie's and bookworm's), which
  # bookworm's debian-archive-keyring.gpg already holds.
  cat >"$APT/sources.list" <<EOF
deb [signed-by=$KEYRING] $MIRROR trixie main
deb [signed-by=$KEYRING] $MIRROR sid main
EOF
  mapfile -t opts < <(apt_opts)
  say "private apt-get update (trixie, sid) in $APT"
  apt-get "${opts[@]}" update -q >"$APT/update.log" 2>&1 || { cat "$APT/update.log" >&2; die "private apt-get update failed"; }
  # apt-get update may still exit 0 when a list could not be fetched: check that both arrived.
  for s in trixie sid; do
    ls "$APT/lists/"*"_dists_${s}_main_binary-amd64_Packages"* >/dev/null 2>&1 \
      || { cat "$APT/update.log" >&2; die "no $s package list after apt-get update"; }
  done
}

# download SUITE DEST PKG...: fetch the .debs of PKG/SUITE into DEST (a clean folder).
download() {
  local suite=$1 dest=$2; shift 2
  local specs=() p
  for p in "$@"; do specs+=("$p/$suite"); done
  rm -rf "$dest"; mkdir -p "$dest"
  mapfile -t opts < <(apt_opts)
  (cd "$dest" && apt-get "${opts[@]}" download -q "${specs[@]}") >"$APT/download-$suite.log" 2>&1
}

unpack() {
  local debs=$1 root=$2 f
  rm -rf "$root"; mkdir -p "$root"
  for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$root"; done
  : >"$root/PACKAGES"
  for f in "$debs"/*.deb; do
    echo "$(dpkg-deb -f "$f" Package) $(dpkg-deb -f "$f" Version)" >>"$root/PACKAGES"
  done
}

pkg_version() { awk -v p="$2" '$1 == p { print $2 }' "$1/PACKAGES" 2>/dev/null; }

write_wrappers() {
  mkdir -p "$BIN" "$ETC/registries.d"
  cat >"$BIN/cosign2" <<EOF
#!/bin/sh
# cosign 2.5 from Debian trixie ($(pkg_version "$TRIXIE_ROOT" cosign)), made by test/rig/install.sh
exec "$TRIXIE_ROOT/usr/bin/cosign" "\$@"
EOF
  cat >"$BIN/cosign3" <<EOF
#!/bin/sh
# cosign 3.1 from Debian sid ($(pkg_version "$SID_ROOT" cosign)), made by test/rig/install.sh
exec "$SID_ROOT/usr/bin/cosign" "\$@"
EOF
  # skopeo needs trixie's glibc: run it through trixie's own loader. Its default policy and
  # registries.d come from the cache, never /etc/containers; a later --policy / --registries.d
  # given by the caller wins (pflag keeps the last value).
  cat >"$BIN/skopeo" <<EOF
#!/bin/sh
# skopeo 1.18 from Debian trixie ($(pkg_version "$TRIXIE_ROOT" skopeo)), made by test/rig/install.sh
: "\${CONTAINERS_REGISTRIES_CONF:=$ETC/registries.conf}"
export CONTAINERS_REGISTRIES_CONF
exec "$TRIXIE_LIB/ld-linux-x86-64.so.2" --library-path "$TRIXIE_LIB" "$TRIXIE_ROOT/usr/bin/skopeo" \\
  --policy "$ETC/policy.json" --registries.d "$ETC/registries.d" "\$@"
EOF
  chmod 755 "$BIN/cosign2" "$BIN/cosign3" "$BIN/skopeo"
  # Accept-anything default policy: tests that check signatures pass their own --policy.
  cat >"$ETC/policy.json" <<'EOF'
{ "default": [{ "type": "insecureAcceptAnything" }] }
EOF
  # Make skopeo read and write cosign-style sigstore signatures (sha256-….sig tags).
  cat >"$ETC/registries.d/default.yaml" <<'EOF'
default-docker:
  use-sigstore-attachments: true
EOF
  # No search registries, no mirrors: only fully qualified references are used.
  cat >"$ETC/registries.conf" <<'EOF'
unqualified-search-registries = []
EOF
}

verify_versions() {
  local c2 c3 sk v2 v3
  [ -x "$TRIXIE_ROOT/usr/bin/cosign" ] || die "trixie cosign missing in $TRIXIE_ROOT"
  [ -x "$SID_ROOT/usr/bin/cosign" ] || die "sid cosign missing in $SID_ROOT"
  [ -x "$TRIXIE_ROOT/usr/bin/skopeo" ] || die "trixie skopeo missing in $TRIXIE_ROOT"
  # Every shared library skopeo needs must resolve inside the trixie tree.
  local ldd_out
  ldd_out=$("$TRIXIE_LIB/ld-linux-x86-64.so.2" --list --library-path "$TRIXIE_LIB" "$TRIXIE_ROOT/usr/bin/skopeo" 2>&1) \
    || die "trixie loader cannot load skopeo: $ldd_out"
  if grep -q 'not found' <<<"$ldd_out"; then die "skopeo libraries missing: $(grep 'not found' <<<"$ldd_out" | tr -s ' \t\n' ' ')"; fi
  # Debian builds cosign without -ldflags version stamping: `cosign version` says "devel". The
  # version therefore comes from the .deb it was unpacked from, and the binary must run.
  v2=$(pkg_version "$TRIXIE_ROOT" cosign); v3=$(pkg_version "$SID_ROOT" cosign)
  "$BIN/cosign2" version >/dev/null 2>&1 || die "cosign2 does not run"
  "$BIN/cosign3" version >/dev/null 2>&1 || die "cosign3 does not run"
  c2=$(grep -a -o -m1 'github\.com/sigstore/cosign/[a-z0-9/]*cmd/cosign' "$TRIXIE_ROOT/usr/bin/cosign" | head -n1 || true)
  c3=$(grep -a -o -m1 'github\.com/sigstore/cosign/[a-z0-9/]*cmd/cosign' "$SID_ROOT/usr/bin/cosign" | head -n1 || true)
  sk=$("$BIN/skopeo" --version 2>&1) || die "skopeo does not run: $sk"
  case "$v2" in 2.5.*) ;; *) die "cosign2 must be 2.5.*, Debian trixie has '$v2'";; esac
  case "$v3" in 3.1.*) ;; *) die "cosign3 must be 3.1.*, Debian sid has '$v3'";; esac
  case "$c2" in github.com/sigstore/cosign/cmd/cosign) ;; *) die "trixie cosign binary is not cosign v2 (module '$c2')";; esac
  case "$c3" in github.com/sigstore/cosign/v3/cmd/cosign) ;; *) die "sid cosign binary is not cosign v3 (module '$c3')";; esac
  case "$sk" in "skopeo version 1.18."*) ;; *) die "skopeo must be 1.18.*, got '$sk'";; esac
  "$SID_ROOT/usr/bin/crane" version >/dev/null 2>&1 || die "sid crane does not run"
  "$SID_ROOT/usr/bin/oras" version >/dev/null 2>&1 || die "sid oras does not run"
  echo "cosign2 $v2 | cosign3 $v3 | crane $(pkg_version "$SID_ROOT" crane) | oras $(pkg_version "$SID_ROOT" oras) | skopeo ${sk#skopeo version } (trixie $(pkg_version "$TRIXIE_ROOT" skopeo), libc $(pkg_version "$TRIXIE_ROOT" libc6)) | registry $(dpkg-query -W -f='${Version}' docker-registry) | chromium $(dpkg-query -W -f='${Version}' chromium) | cache $CACHE"
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_WANT" ]; then
  if summary=$(verify_versions); then
    echo "rig ready: $summary"
    exit 0
  fi
  say "the cached rig failed its checks: installing it again"
fi

mkdir -p "$CACHE"
rm -f "$STAMP"
if [ ! -d "$APT/lists" ] || ! ls "$APT/lists/"*_Packages* >/dev/null 2>&1; then
  private_update
fi
# A stale private list may name .debs that the mirror has since replaced: refresh once and retry.
if ! download trixie "$APT/debs-trixie" "${TRIXIE_PACKAGES[@]}"; then
  private_update
  download trixie "$APT/debs-trixie" "${TRIXIE_PACKAGES[@]}" || { cat "$APT/download-trixie.log" >&2; die "apt-get download from trixie failed"; }
fi
if ! download sid "$APT/debs-sid" "${SID_PACKAGES[@]}"; then
  private_update
  download sid "$APT/debs-sid" "${SID_PACKAGES[@]}" || { cat "$APT/download-sid.log" >&2; die "apt-get download from sid failed"; }
fi
unpack "$APT/debs-trixie" "$TRIXIE_ROOT"
unpack "$APT/debs-sid" "$SID_ROOT"
write_wrappers
summary=$(verify_versions) || die "the installed tools failed their checks (see above)"
echo "$STAMP_WANT" >"$STAMP"
echo "rig ready: $summary"
