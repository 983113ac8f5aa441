# shardify on the real Fashion-MNIST files: the output matches the IDX files byte for byte (read
# back with h5py); missing files, wrong magic numbers and truncated .gz files are clear errors.
source "$(dirname "$0")/common.sh"
SRC=/usr/share/datasets/fashion-mnist
/usr/bin/python3 - "$DATA" "$SRC" <<'PY'
import sys, gzip, h5py, numpy as np, tomllib
data, src = sys.argv[1], sys.argv[2]
idx = tomllib.load(open(data + "/index.toml", "rb"))
train = [s for s in idx["shard"] if s["split"] == "train"]
assert len(train) >= 4 and sum(s["samples"] for s in train) == 60000
raw = np.frombuffer(gzip.open(src + "/train-images-idx3-ubyte.gz").read(), np.uint8, offset=16).reshape(-1, 28, 28)
lab = np.frombuffer(gzip.open(src + "/train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
imgs = np.concatenate([h5py.File(data + "/" + s["file"])["images"][()] for s in train])
labs = np.concatenate([h5py.File(data + "/" + s["file"])["labels"][()] for s in train])
assert (imgs[..., 0] == raw).all() and (labs == lab).all()
f = h5py.File(data + "/" + train[0]["file"])
assert f.attrs["format"] == "odyssey-shard" and f.attrs["num_classes"] == 10
assert list(f.attrs["class_names"])[0] == "T-shirt/top" and f["labels"].dtype == np.int64
assert abs(idx["mean"][0] - raw.mean() / 255) < 1e-9
print("shards match the IDX files; mean", idx["mean"][0], "std", idx["std"][0])
PY
shardify_fails() {  # shardify_fails EXPECTED_TEXT SRC_DIR
  local rc=0
  "$SHARDIFY" idx "$2" "$WORK/out" > "$WORK/out.txt" 2>&1 || rc=$?
  [ $rc -eq 2 ] || { cat "$WORK/out.txt"; fail "exit $rc, expected 2"; }
  expect_in "$WORK/out.txt" "$1"
  echo "ok: $1"
}
shardify_fails "IDX file '$WORK/empty/train-images-idx3-ubyte.gz' does not exist" "$WORK/empty"
mkdir -p "$WORK/swapped" "$WORK/cut"
cp $SRC/*.gz "$WORK/swapped/"
cp $SRC/train-labels-idx1-ubyte.gz "$WORK/swapped/train-images-idx3-ubyte.gz"
shardify_fails "'$WORK/swapped/train-images-idx3-ubyte.gz' has magic number 0x801, expected 0x803" "$WORK/swapped"
cp $SRC/*.gz "$WORK/cut/"
head -c 1000000 $SRC/train-images-idx3-ubyte.gz > "$WORK/cut/train-images-idx3-ubyte.gz"
shardify_fails "'$WORK/cut/train-images-idx3-ubyte.gz' ends early" "$WORK/cut"
# A value outside the option's listed choices is a bad command line: exit 1.
for args in "idx $SRC $WORK/o --name kmnist" "folder $WORK/empty $WORK/o --resize squash"; do
  rc=0; "$SHARDIFY" $args > "$WORK/out.txt" 2>&1 || rc=$?
  [ $rc -eq 1 ] || { cat "$WORK/out.txt"; fail "shardify $args: exit $rc, expected 1"; }
done
expect_in "$WORK/out.txt" "squash"
echo "ok: choices outside --name and --resize are usage errors"
