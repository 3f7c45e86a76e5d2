#!/usr/bin/env bash
# Installs everything whittle needs to build, test and benchmark on Debian 12: Debian packages
# with apt-get, Python packages (requirements.txt, pinned) into the project virtualenv .venv,
# which the tests and benchmarks use instead of the machine's own Python packages.
# Idempotent and quiet: a second run finds everything present and prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libprotobuf-dev protobuf-compiler libonnx-dev
  libeigen3-dev libdnnl-dev libcli11-dev catch2 nlohmann-json3-dev
  ocl-icd-opencl-dev opencl-headers libjpeg-dev libpng-dev zlib1g-dev chromium python3-venv
  libtiff-dev libwebp-dev libopenjp2-7-dev
)

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

# The project virtualenv, without the system site-packages: a package missing from
# requirements.txt fails here, on the machine where it was introduced.
BASE_PY=${PYTHON:-python3}
VENV=.venv
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  echo "setup: creating the virtualenv $VENV ($("$BASE_PY" --version 2>&1))"
  "$BASE_PY" -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing requirements.txt into $VENV"
  "$PY" -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$STAMP"
fi

# The ONNX backend tests (the runtime's conformance suite: node, and the small models of
# pytorch-converted, pytorch-operator and simple) ship in the onnx wheel up to 1.16; newer
# wheels leave them out. Unpack them once into .cache/onnx-node-tests.
NODE_TESTS_DIR=".cache/onnx-node-tests"
if [ ! -d "$NODE_TESTS_DIR/node" ] || [ ! -d "$NODE_TESTS_DIR/pytorch-converted" ] \
  || [ ! -d "$NODE_TESTS_DIR/pytorch-operator" ] || [ ! -d "$NODE_TESTS_DIR/simple" ]; then
  echo "setup: unpacking the ONNX backend tests (onnx 1.16.2 wheel)"
  tmp=$(mktemp -d)
  "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$tmp" onnx==1.16.2
  mkdir -p "$NODE_TESTS_DIR.partial"
  "$PY" - "$tmp" "$NODE_TESTS_DIR.partial" <<'PYEOF'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "onnx-*.whl"))[0]
prefix = "onnx/backend/test/data/"
suites = ("node/", "pytorch-converted/", "pytorch-operator/", "simple/")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest.startswith(suites) and not name.endswith("/"):
            dest = os.path.join(sys.argv[2], rest)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(name) as src, open(dest, "wb") as out:
                out.write(src.read())
PYEOF
  rm -rf "$tmp" "$NODE_TESTS_DIR"
  mv "$NODE_TESTS_DIR.partial" "$NODE_TESTS_DIR"
fi
