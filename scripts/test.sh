#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: set-up, lint, then pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k golden`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$KWSHW_ROOT"
echo "test: KWSHW_DATA=${KWSHW_DATA:-<unset: tests on real speech will be skipped>}"
ruff check kwshw boards sim tests bench
# CI (CI=true) leaves out the tests marked slow: full place-and-route of the reference designs
# and long simulations of the reference network, which repeat at full size what the default
# tests check on small designs. Everywhere else, and with any -m of the caller, all run.
marks=()
if [ "${CI:-}" = "true" ] && [[ " $* " != *" -m "* ]]; then
  marks=(-m "not slow")
  echo "test: CI: leaving out the tests marked slow (run them with: bash scripts/test.sh -m slow)"
fi
set +e
# The slowest tests are listed at the end: what to look at when the suite grows past its budget.
python -m pytest -ra --durations=20 "${marks[@]}" "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "test: error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
