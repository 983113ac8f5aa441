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

# same_step_losses A.jsonl B.jsonl STEPS REL_TOL WHAT: two runs' per-step training losses agree
# within REL_TOL (relative), there are STEPS of them, and the weights moved.
same_step_losses() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
a_path, b_path, steps, tol, what = sys.argv[1:6]
loss = lambda p: [r["loss"] for r in map(json.loads, open(p)) if r["kind"] == "train"]
a, b = loss(a_path), loss(b_path)
assert len(a) == len(b) == int(steps), (a, b)
for i, (x, y) in enumerate(zip(a, b)):
    assert abs(x - y) <= float(tol) * abs(y), f"step {i + 1}: {what} loss {x} vs {y}"
assert a[-1] != a[0], a  # the weights moved
print("per-step losses agree:", a)
PY
}

# count_in FILE TEXT: how many lines contain TEXT.
count_in() { grep -cF -- "$2" "$1" || true; }

# A small real-data run: the quickstart (or the config in SMALL_RUN_CONFIG) on the test copy of
# Fashion-MNIST, one thread per rank, its run folder under $WORK.
small_run() {  # [SMALL_RUN_CONFIG=CONFIG] small_run NP NAME [overrides...]
  local np=$1 name=$2; shift 2
  "${MPI[@]}" -np "$np" "$TRAINER" "${SMALL_RUN_CONFIG:-configs/quickstart.toml}" \
    data.path="$DATA" run.out_dir="$WORK" run.name="$name" train.threads=1 "$@"
}
