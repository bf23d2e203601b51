#!/usr/bin/env bash
# `npm test`: everything, against the real tools. Installs what is missing (test/rig/install.sh,
# cached outside the checkout), then typecheck, lint, unit tests in Node and Chromium, integration
# tests against real registries, and end-to-end tests in Chromium. Every step runs even when an
# earlier one fails, so one run shows every problem; the exit code is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
  local name=$1
  shift
  echo
  echo "=== $name: $*"
  local t0=$SECONDS
  if "$@"; then
    echo "=== $name: ok ($((SECONDS - t0)) s)"
  else
    echo "=== $name: FAILED ($((SECONDS - t0)) s)"
    failed+=("$name")
  fi
}

mkdir -p test-results
rm -f test-results/vitest.json test-results/rig.json test-results/playwright.json

step "install real tools" bash test/rig/install.sh
if [[ " ${failed[*]} " == *" install real tools "* ]]; then
  echo "The real tools could not be installed; the tests need them." >&2
  exit 1
fi
step typecheck npm run --silent typecheck
step lint npm run --silent lint
step build npx vite build --logLevel warn
step "unit and integration (Node, Chromium)" npx vitest run --reporter=default --reporter=json --outputFile.json="$PWD/test-results/vitest.json"
step "test rig with the real tools" npx vitest run --config test/rig/vitest.config.ts --reporter=default --reporter=json --outputFile.json="$PWD/test-results/rig.json"
step "end-to-end (Chromium)" env PLAYWRIGHT_JSON_OUTPUT_FILE=test-results/playwright.json npx playwright test --reporter=list,json

node test/summary.mjs test-results/vitest.json test-results/rig.json test-results/playwright.json || failed+=("summary")
if ((${#failed[@]})); then
  echo "failed steps: ${failed[*]}"
  exit 1
fi
