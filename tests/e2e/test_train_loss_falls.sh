# Two ranks train the quickstart model on 6,400 real images: the loss falls, evaluation on 2,000
# test images beats 75 %, the step-time split adds up, and the run folder holds the documented
# files, readable by h5py.
source "$(dirname "$0")/common.sh"
small_run 2 falls data.train_limit=6400 data.eval_limit=2000 train.epochs=2 train.log_every=10 \
  > "$WORK/out.txt" 2>&1 || { cat "$WORK/out.txt"; fail "training failed"; }
cat "$WORK/out.txt"
RUN="$WORK/falls"
for f in config.toml metrics.jsonl latest; do [ -f "$RUN/$f" ] || fail "missing $RUN/$f"; done
expect_in "$WORK/out.txt" "test top-1 accuracy"
/usr/bin/python3 - "$RUN" <<'PY'
import json, sys, h5py, glob
run = sys.argv[1]
rows = [json.loads(l) for l in open(run + "/metrics.jsonl")]
train = [r for r in rows if r["kind"] == "train"]
evals = [r for r in rows if r["kind"] == "eval"]
assert len(train) >= 8, len(train)
first = sum(r["loss"] for r in train[:2]) / 2
last = sum(r["loss"] for r in train[-2:]) / 2
assert last < 0.6 * first, (first, last)
assert len(evals) == 2 and evals[-1]["samples"] == 2000, evals
assert evals[-1]["top1"] > 0.75, evals[-1]
# The step-time split: every part measured, none more than the window, the parts within it.
for r in train:
    parts = [r[k] for k in ("data_wait_s", "forward_s", "backward_s", "comm_wait_s", "optimizer_s")]
    assert all(p >= 0 for p in parts), r
    assert min(r["forward_s"], r["backward_s"], r["optimizer_s"]) > 0, r
    assert sum(parts) <= r["window_s"] * 1.02, r
    assert r["forward_s"] + r["backward_s"] > 0.3 * r["window_s"], r  # a CPU run mostly computes
ckpt = run + "/" + open(run + "/latest").read().strip()
with h5py.File(ckpt, "r") as f:
    assert f["model/features.0.weight"].shape == (32, 1, 3, 3)
    assert f["model/classifier.weight"].shape == (10, 1152)
    assert "features.1.running_mean" in f["model"]
    assert f["optimizer/features.0.weight/momentum_buffer"].shape == (32, 1, 3, 3)
    t = f["trainer"].attrs
    assert t["format_version"] == 2 and t["world_size"] == 2 and t["step"] == 100, dict(t)
    assert t["epoch"] == 2 and t["step_in_epoch"] == 0 and t["samples_seen"] == 100 * 128
    assert t["model_name"] == "fmnist_cnn" and "[train]" in t["config"]
# Without label smoothing or mixup the loss minimised is the cross-entropy against the labels.
for r in train:
    assert abs(r["loss"] - r["loss_ce"]) <= 1e-5 * r["loss_ce"] and r["skipped_steps"] == 0, r
print("loss", first, "->", last, "eval top-1", evals[-1]["top1"])
PY

# With label smoothing, "loss" is the smoothed loss the steps minimised (loss_ce beside it), and
# the run's last steps, short of a full log window, are recorded too (steps 7 and 10 here).
small_run 2 smooth data.train_limit=1280 data.eval_limit=200 train.epochs=1 train.max_steps=10 \
  train.log_every=7 train.label_smoothing=0.1 > "$WORK/smooth.txt" 2>&1 ||
  { cat "$WORK/smooth.txt"; fail "smoothed run"; }
/usr/bin/python3 - "$WORK/smooth" <<'PY'
import csv, json, sys
run = sys.argv[1]
train = [r for r in map(json.loads, open(run + "/metrics.jsonl")) if r["kind"] == "train"]
assert [r["step"] for r in train] == [7, 10], [r["step"] for r in train]
for r in train:
    assert r["loss"] > r["loss_ce"] + 1e-3, r  # smoothing adds the cross-entropy to uniform
rows = [r for r in csv.DictReader(open(run + "/metrics.csv")) if r["kind"] == "train"]
assert [r["step"] for r in rows] == ["7", "10"] and float(rows[1]["loss_ce"]) == train[1]["loss_ce"], rows
print("smoothed loss recorded beside the plain one; the last 3 steps recorded")
PY
