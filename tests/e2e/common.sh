# Shared by the end-to-end tests: paths, a real mpirun, helpers. Sourced, not run.
set -euo pipefail
: "${BUILD_DIR:?}" "${SOURCE_DIR:?}" "${TEST_DATA:?}" "${MPIRUN:=mpirun}"
TRAINER="$BUILD_DIR/trainer"
SHARDIFY="$BUILD_DIR/shardify"
DATA="$TEST_DATA/fashion-mnist"
MPI=("$MPIRUN" --oversubscribe --allow-run-as-root --bind-to none)
WORK=$(mktemp -d /tmp/odyssey-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$SOURCE_DIR"

fail() { echo "FAIL: $*" >&2; exit 1; }

# compare A.h5 B.h5 [options]: tensors of two checkpoints, read with h5py (compare_checkpoints.py).
compare() { /usr/bin/python3 "$SOURCE_DIR/tests/e2e/compare_checkpoints.py" "$@"; }

# expect_in FILE TEXT: the file contains TEXT.
expect_in() { grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "expected '$2' in $1"; }; }

# count_in FILE TEXT: how many lines contain TEXT.
count_in() { grep -cF -- "$2" "$1" || true; }

# A small real-data config: the quickstart on a slice of Fashion-MNIST.
small_run() {  # small_run NP NAME [overrides...]
  local np=$1 name=$2; shift 2
  "${MPI[@]}" -np "$np" "$TRAINER" configs/quickstart.toml data.path="$DATA" run.out_dir="$WORK" \
    run.name="$name" train.threads=1 "$@"
}
