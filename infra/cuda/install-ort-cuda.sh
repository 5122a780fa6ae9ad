#!/usr/bin/env bash
# onnxruntime-node's CUDA execution provider from the package registries (docs/deployment.md,
# "CUDA execution provider"). The npm package ships only the cpu and webgpu providers; its own
# install script would fetch the CUDA one from NuGet, which locked-down builds cannot reach.
# PyPI has the same release's provider libraries (onnxruntime-gpu) and NVIDIA's CUDA libraries as
# wheels, so this script:
#   1. refuses unless node_modules/onnxruntime-node is the version pinned in requirements.txt,
#   2. downloads the pinned, hash-checked wheels (requirements.txt) into a wheelhouse,
#   3. unpacks the CUDA 13 and cuDNN 9 libraries into PREFIX/nvidia/{cu13,cudnn}/lib and the two
#      provider libraries into PREFIX/onnxruntime/,
#   4. copies libonnxruntime_providers_{cuda,shared}.so next to the Node binding
#      (node_modules/onnxruntime-node/bin/napi-v6/linux/x64/: ORT looks for them beside
#      libonnxruntime.so.1),
#   5. writes PREFIX/env.sh, which puts the library folders on LD_LIBRARY_PATH (the provider
#      library has no RUNPATH, so its NEEDED CUDA libraries are found only through
#      LD_LIBRARY_PATH, the ld.so cache or the system folders), and prints that setting.
# Idempotent: a second run with the same pins only re-copies the provider libraries if they differ.
# The NVIDIA driver (libcuda.so.1, driver >= 580 for CUDA 13) is not installed here: it comes from
# the host, or from the NVIDIA container runtime in a container.
#
# Usage: infra/cuda/install-ort-cuda.sh [--prefix DIR] [--project DIR] [--wheels DIR] [--offline]
#   --prefix   where the libraries go (default /opt/onnxruntime-cuda)
#   --project  the folder holding node_modules/onnxruntime-node (default: this repository)
#   --wheels   keep the downloaded wheels here (default: a temporary folder, removed afterwards)
#   --offline  install from --wheels alone (pip --no-index), e.g. on a machine without PyPI
# Needs python3 with pip (any version: the wheels are unpacked, not installed into Python).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
reqs="$here/requirements.txt"
prefix=/opt/onnxruntime-cuda
project="$(cd "$here/../.." && pwd)"
wheels=""
offline=0
fail() { echo "install-ort-cuda: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --project) project="$2"; shift 2 ;;
    --wheels) wheels="$2"; shift 2 ;;
    --offline) offline=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument $1 (see --help)" ;;
  esac
done
[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || fail "onnxruntime-node's CUDA provider exists for Linux x86-64 only"
command -v python3 >/dev/null || fail "python3 (with pip) is needed"
[ "$offline" -eq 0 ] || [ -n "$wheels" ] || fail "--offline needs --wheels DIR holding the wheels"

# 1. The provider libraries must come from the same ORT release as the Node binding.
pkg="$project/node_modules/onnxruntime-node/package.json"
[ -f "$pkg" ] || fail "$pkg not found: run npm ci first (or pass --project)"
node_version="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$pkg")"
pinned="$(sed -n 's/^onnxruntime-gpu==\([^ ]*\).*/\1/p' "$reqs")"
[ "$node_version" = "$pinned" ] || fail "onnxruntime-node is $node_version but $reqs pins onnxruntime-gpu==$pinned: \
the provider libraries only work with the same release. Update requirements.txt (onnxruntime-gpu, its CUDA wheels and their hashes) with onnxruntime-node."
binding="$(dirname "$pkg")/bin/napi-v6/linux/x64"
[ -f "$binding/libonnxruntime.so.1" ] || fail "$binding/libonnxruntime.so.1 not found: is onnxruntime-node complete?"

mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
stamp="$prefix/.requirements.sha256"
want="$(sha256sum "$reqs" | cut -d' ' -f1)"
providers="libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so"

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # 2. Download. The tags are fixed (CPython 3.11, manylinux x86-64) whatever python3 runs this,
  # so the hashes in requirements.txt always name the same files.
  tmp=""
  if [ -z "$wheels" ]; then tmp="$(mktemp -d "$prefix/.wheels.XXXXXX")"; wheels="$tmp"; fi
  mkdir -p "$wheels"
  index=()
  [ "$offline" -eq 1 ] && index=(--no-index --find-links "$wheels")
  echo "install-ort-cuda: wheels (onnxruntime-gpu==$pinned and the CUDA 13 libraries, about 1.3 GB) into $wheels" >&2
  python3 -m pip download --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes \
    --implementation cp --python-version 3.11 --abi cp311 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
    "${index[@]}" -d "$wheels" -r "$reqs" >&2 || fail "pip download failed (see above)"

  # 3. Unpack only the shared libraries (a wheel is a zip file; nothing is installed into Python).
  rm -rf "$prefix/nvidia" "$prefix/onnxruntime"
  python3 - "$prefix" "$reqs" "$wheels" <<'EOF' || fail "unpacking the wheels failed"
import pathlib, re, shutil, sys, zipfile
prefix, reqs, wheels = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", open(reqs).read(), re.M)
for name, version in pins:
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}-"
    found = sorted(w for w in wheels.glob("*.whl") if w.name.lower().startswith(stem.lower()))
    if not found:
        sys.exit(f"no wheel for {name}=={version} in {wheels}")
    with zipfile.ZipFile(found[0]) as z:
        for member in z.namelist():
            if name == "onnxruntime-gpu":
                m = re.fullmatch(r"onnxruntime/capi/(libonnxruntime_providers_(cuda|shared)\.so)", member)
                dest = prefix / "onnxruntime" / m[1] if m else None
            else:
                dest = prefix / member if re.fullmatch(r"nvidia/[^/]+/lib/[^/]+\.so[.0-9]*", member) else None
            if dest:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                dest.chmod(0o755)
    print(f"  {found[0].name}", file=sys.stderr)
EOF
  for f in $providers; do [ -f "$prefix/onnxruntime/$f" ] || fail "$f missing from the onnxruntime-gpu wheel"; done
  [ -n "$tmp" ] && rm -rf "$tmp"
  echo "$want" > "$stamp"
else
  echo "install-ort-cuda: $prefix already holds these pins" >&2
fi

# 4. Next to the Node binding (only when different, so a rerun changes nothing).
for f in $providers; do
  if ! cmp -s "$prefix/onnxruntime/$f" "$binding/$f"; then
    cp "$prefix/onnxruntime/$f" "$binding/$f.tmp" && mv "$binding/$f.tmp" "$binding/$f"
    echo "install-ort-cuda: $binding/$f" >&2
  fi
done

# 5. The loader's search path for the provider's CUDA libraries.
libs="$(find "$prefix/nvidia" -mindepth 2 -maxdepth 2 -type d -name lib | sort | paste -sd: -)"
cat > "$prefix/env.sh" <<EOF
# Written by infra/cuda/install-ort-cuda.sh: source it before starting node.
export LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
echo "install-ort-cuda: done. Before starting node: source $prefix/env.sh, or set" >&2
echo "LD_LIBRARY_PATH=$libs"
