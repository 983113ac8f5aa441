# Damaged shards under mpirun -np 2: a clear error naming the file and dataset, a non-zero exit on
# every rank, no hang. shardify verify names the damaged shard too.
source "$(dirname "$0")/common.sh"
cp -r "$DATA" "$WORK/data"
run() {
  local rc=0
  timeout 120 "${MPI[@]}" -np 2 "$TRAINER" configs/quickstart.toml data.path="$WORK/data" \
    run.out_dir="$WORK" train.max_steps=5 "$@" > "$WORK/out.txt" 2>&1 || rc=$?
  [ $rc -ne 0 ] || { cat "$WORK/out.txt"; fail "exit 0 with a damaged shard"; }
  [ $rc -ne 124 ] || { cat "$WORK/out.txt"; fail "hang with a damaged shard"; }
  echo "exit $rc"
}
# 1. A truncated training shard.
shard="$WORK/data/train-00002-of-00004.h5"
cp "$shard" "$WORK/good.h5"
truncate -s 3000000 "$shard"
run
expect_in "$WORK/out.txt" "$shard"
rc=0; "$SHARDIFY" verify "$WORK/data" > "$WORK/verify.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "shardify verify exit $rc"
expect_in "$WORK/verify.txt" "$shard"
cp "$WORK/good.h5" "$shard"

# 2. A label beyond num_classes, written into a valid HDF5 file by h5py.
/usr/bin/python3 - "$shard" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["labels"][7] = 12
PY
run
expect_in "$WORK/out.txt" "dataset /labels in '$shard' holds label 12 outside [0, 10)"
cp "$WORK/good.h5" "$shard"

# 2b. An attribute written as an array (h5py writes a list as one): an error naming it, not a read
# past one value's memory.
/usr/bin/python3 - "$shard" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f.attrs["num_classes"] = [10, 10]
PY
run
expect_in "$WORK/out.txt" "attribute 'num_classes' of '$shard' holds 2 values, not one"
cp "$WORK/good.h5" "$shard"

# 3. A shard whose image shape differs from the index.
/usr/bin/python3 - "$shard" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    del f["images"]
    f["images"] = np.zeros((15000, 28, 27, 1), np.uint8)
PY
run
expect_in "$WORK/out.txt" "dataset /images in '$shard' has images 28x27x1, index.toml says 28x28x1"

# 4. data.on_corrupt = "skip": the same damaged shard (another shape) and a truncated one are left
# out on both ranks, logged with the samples lost; training runs on the other 30000 images.
truncate -s 3000000 "$WORK/data/train-00001-of-00004.h5"
rc=0
timeout 120 "${MPI[@]}" -np 2 "$TRAINER" configs/quickstart.toml data.path="$WORK/data" \
  run.out_dir="$WORK" run.name=skip train.max_steps=5 data.on_corrupt=skip > "$WORK/out.txt" 2>&1 || rc=$?
[ $rc -eq 0 ] || { cat "$WORK/out.txt"; fail "on_corrupt=skip: exit $rc"; }
expect_in "$WORK/out.txt" "2 shard(s) with 30000 samples left out"
expect_in "$WORK/out.txt" "30000 train / 10000 eval samples"
echo "ok: on_corrupt=skip"
