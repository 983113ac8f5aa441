# A diverging run (lr 1000 per 256 images): with train.on_nonfinite = "stop" every rank stops at the first
# non-finite loss with exit code 3 and a checkpoint of the last good (finite) state; with "skip"
# the run completes and reports the skipped updates.
source "$(dirname "$0")/common.sh"
common=(model.name=tiny_cnn data.train_limit=1280 data.eval_limit=500 train.batch_size=32 train.epochs=1 optim.lr=1000
        train.log_every=5)
rc=0; small_run 2 nan "${common[@]}" train.on_nonfinite=stop > "$WORK/stop.txt" 2>&1 || rc=$?
[ $rc -eq 3 ] || { cat "$WORK/stop.txt"; fail "exit $rc, expected 3"; }
expect_in "$WORK/stop.txt" "non-finite loss, gradient or BatchNorm statistic at step"
/usr/bin/python3 - "$WORK/nan" <<'PY'
import sys, h5py, numpy as np
run = sys.argv[1]
f = h5py.File(run + "/" + open(run + "/latest").read().strip(), "r")
for k in f["model"]:
    assert np.isfinite(f["model"][k][()]).all(), k
print("last good state at step", f["trainer"].attrs["step"], "is finite")
PY
# ... and it is the last good state: the failing step N's update is skipped, so the checkpoint
# (labelled N, one skipped step) holds exactly the weights after step N-1, those of the same run
# stopped at N-1 (train.stop_at_step keeps the schedule).
n=$(grep -o 'BatchNorm statistic at step [0-9]*' "$WORK/stop.txt" | head -1 | grep -o '[0-9]*$')
[ -n "$n" ] && [ "$n" -gt 1 ] || { cat "$WORK/stop.txt"; fail "no failing step in the log"; }
expect_in "$WORK/nan/latest" "$(printf 'ckpt-step%010d.h5' "$n")"
small_run 2 good "${common[@]}" train.stop_at_step=$((n - 1)) > "$WORK/good.txt" 2>&1 ||
  { cat "$WORK/good.txt"; fail "the run stopped at step $((n - 1))"; }
compare "$WORK/nan/$(printf 'ckpt-step%010d.h5' "$n")" "$WORK/good/$(printf 'ckpt-step%010d.h5' $((n - 1)))" \
  --group model --min 4
# A BatchNorm model: at lr 1000 a variance overflows float32 while the loss is still finite (then
# the gradients): the step is skipped before its statistics stay in the model, so the stop
# checkpoint's running means and variances are finite too.
rc=0; small_run 2 nanbn "${common[@]}" model.name=fmnist_cnn train.on_nonfinite=stop > "$WORK/stopbn.txt" 2>&1 || rc=$?
[ $rc -eq 3 ] || { cat "$WORK/stopbn.txt"; fail "BatchNorm model: exit $rc, expected 3"; }
/usr/bin/python3 - "$WORK/nanbn" <<'PY'
import sys, h5py, numpy as np
run = sys.argv[1]
f = h5py.File(run + "/" + open(run + "/latest").read().strip(), "r")
bad = [k for k in f["model"] if not np.isfinite(f["model"][k][()]).all()]
assert not bad, bad
print("BatchNorm model: last good state at step", f["trainer"].attrs["step"], "is finite, statistics included")
PY
small_run 2 skip "${common[@]}" train.on_nonfinite=skip > "$WORK/skip.txt" 2>&1 || { cat "$WORK/skip.txt"; fail "skip mode"; }
expect_in "$WORK/skip.txt" "update skipped on every rank"
expect_in "$WORK/skip.txt" "done: 20 steps"
