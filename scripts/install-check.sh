# Sourced by scripts/pack-test.sh (x64) and scripts/test-arm64.sh (arm64 under qemu), from the
# repository root, with NAME set: progress lines, and an install of the packed tarball as a user
# without build tools gets it.

ROOT=$PWD
START=$SECONDS
step() { echo "== $NAME [$((SECONDS - START))s]: $*"; }
die() { echo "$NAME: FAILED: $*" >&2; exit 1; }

# restricted_bin BIN TOOL...: BIN gets links to the shell tools npm and node-gyp-build need (the
# caller puts its `node` and `npm` there first); fails when any TOOL (a compiler, cmake, make) is
# still reachable through BIN.
restricted_bin() {
  local bin=$1 t p
  shift
  mkdir -p "$bin"
  for t in sh bash env cat ls rm mkdir cp mv ln grep sed head tail dirname basename uname readlink true false; do
    p=$(command -v "$t" || true)
    [ -n "$p" ] && [ ! -e "$bin/$t" ] && ln -s "$p" "$bin/$t"
  done
  for t in "$@"; do
    if PATH="$bin" command -v "$t" >/dev/null 2>&1; then die "$t is on the restricted PATH"; fi
  done
}

# test_app DIR NAME: an empty application in DIR with scripts/pack-check.cjs, for `npm install
# --ignore-scripts <tarball>`; the caller cds into it.
test_app() {
  mkdir "$1"
  cp scripts/pack-check.cjs "$1/"
  echo "{ \"name\": \"$2\", \"version\": \"1.0.0\", \"private\": true }" >"$1/package.json"
}
