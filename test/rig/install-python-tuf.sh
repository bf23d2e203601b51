#!/usr/bin/env bash
# Installs python-tuf (PyPI `tuf`, pinned below with its dependencies) for Debian's /usr/bin/python3
# into the rig's cache folder, ${COSIGN_WEB_CACHE:-$HOME/.cache/cosign-web}/python-tuf-<version>,
# with `pip install --target` (nothing goes into the system's site-packages). test/rig/tuf-repo.py
# runs with PYTHONPATH set to that folder and builds the real TUF repositories the shared/tuf/
# tests read. Idempotent: a second run only checks (about 0.1 s). Called by install.sh and, when the
# folder is missing, by test/rig/python-tuf.ts.
# https://pypi.org/project/tuf/  https://theupdateframework.readthedocs.io/
set -euo pipefail

CACHE="${COSIGN_WEB_CACHE:-$HOME/.cache/cosign-web}"
PYTHON=/usr/bin/python3
TUF_VERSION=7.0.1
# Every package pinned, so the repository is always written by the same code.
PINS=(tuf==7.0.1 securesystemslib==1.6.0 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 urllib3==2.8.0)
DIR="$CACHE/python-tuf-$TUF_VERSION"
STAMP="$DIR/.installed"
die() { echo "install-python-tuf.sh: ERROR: $*" >&2; exit 1; }

check() {
  "$PYTHON" -c '
import sys
sys.path.insert(0, sys.argv[2])
import tuf, securesystemslib, cryptography
from securesystemslib.signer import CryptoSigner
CryptoSigner.generate_ed25519()
assert tuf.__version__ == sys.argv[1], tuf.__version__
print("python-tuf", tuf.__version__, "securesystemslib", securesystemslib.__version__, "cryptography", cryptography.__version__)
' "$TUF_VERSION" "$DIR" 2>&1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${PINS[*]}" ] && summary=$(check); then
  echo "$summary ($DIR)"
  exit 0
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip (Debian package python3-pip)"
rm -rf "$DIR.tmp"
mkdir -p "$CACHE"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-input --no-warn-script-location \
  --root-user-action=ignore --only-binary=:all: --target "$DIR.tmp" "${PINS[@]}" \
  || die "pip install ${PINS[*]} failed"
rm -rf "$DIR"
mv "$DIR.tmp" "$DIR"
summary=$(check) || die "python-tuf does not import from $DIR: $summary"
echo "${PINS[*]}" >"$STAMP"
echo "$summary ($DIR)"
