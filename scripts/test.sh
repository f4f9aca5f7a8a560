#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: set-up, lint, then pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k golden`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$KWSHW_ROOT"
echo "test: KWSHW_DATA=${KWSHW_DATA:-<unset: tests on real speech will be skipped>}"
ruff check kwshw boards sim tests bench
set +e
python -m pytest -ra "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "test: error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
