#!/usr/bin/env bash
# Installs everything whittle needs to build, test and benchmark on Debian 12.
# Idempotent: a second run finds everything present and does almost nothing.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libprotobuf-dev protobuf-compiler libonnx-dev
  libeigen3-dev libdnnl-dev libcli11-dev catch2 nlohmann-json3-dev
  ocl-icd-opencl-dev opencl-headers libjpeg-dev libpng-dev zlib1g-dev
)
PIP_PACKAGES=(numpy onnx onnxruntime)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! "$PY" -c "import numpy, onnx, onnxruntime" 2>/dev/null; then
  echo "setup: installing Python packages: ${PIP_PACKAGES[*]}"
  "$PY" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
fi
