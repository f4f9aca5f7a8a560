#!/usr/bin/env bash
# The whole job, end to end, on a fresh machine too: set-up, then `kwshw all`
# (train with QAT, export, generate Verilog, verify in cocotb, build bitstreams, summarize).
# Extra arguments go to `kwshw all` (see `kwshw all --help`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$KWSHW_ROOT"
if [ -z "${KWSHW_DATA:-}" ]; then
  echo "main: error: set KWSHW_DATA to a folder with speech_commands_v0.02_test/ (see README)" >&2
  exit 2
fi
exec kwshw all --data "$KWSHW_DATA" "$@"
