# A run stopped mid-epoch and resumed with train.resume=auto ends with bitwise the same parameters
# and optimizer state as the uninterrupted run (2 ranks, augmentation on).
source "$(dirname "$0")/common.sh"
common=(model.name=tiny_cnn data.train_limit=1600 data.eval_limit=500 train.batch_size=16
        train.epochs=2 train.log_every=10 augment.crop_padding=2)
small_run 2 whole "${common[@]}" > "$WORK/whole.txt" 2>&1 || { cat "$WORK/whole.txt"; fail "whole"; }
small_run 2 split "${common[@]}" train.stop_at_step=33 > "$WORK/a.txt" 2>&1 || { cat "$WORK/a.txt"; fail "first part"; }
expect_in "$WORK/a.txt" "ckpt-step0000000033.h5"
expect_in "$WORK/a.txt" "stopped at step 33 of 100 (train.stop_at_step); train.resume=auto continues the run"
expect_in "$WORK/a.txt" "paused: 33 steps"
small_run 2 split "${common[@]}" train.resume=auto > "$WORK/b.txt" 2>&1 || { cat "$WORK/b.txt"; fail "resume"; }
expect_in "$WORK/b.txt" "resumed from"
expect_in "$WORK/b.txt" "at step 33 (epoch 0, step 33 of the epoch)"
# tiny_cnn: 4 model tensors + 4 momentum buffers, all bitwise equal.
compare "$WORK/whole/ckpt-step0000000100.h5" "$WORK/split/ckpt-step0000000100.h5" --min 8

# Another world size: 2 ranks x 16 stop at step 40 of a 50-step epoch (1,280 samples consumed);
# one rank x 16 re-plans the same epoch from sample 1,280 = its step 80, and finishes the run. The
# step count follows (step 80 of 2 x 100), so the schedule ends at step 200, where it would have
# at one rank throughout (it kept counting from 40 and ended at step 160, its lr short of the
# cosine's floor).
small_run 2 regrid "${common[@]}" train.stop_at_step=40 > "$WORK/r1.txt" 2>&1 || { cat "$WORK/r1.txt"; fail "regrid first part"; }
small_run 1 regrid "${common[@]}" train.resume=auto > "$WORK/r2.txt" 2>&1 || { cat "$WORK/r2.txt"; fail "regrid resume"; }
expect_in "$WORK/r2.txt" "global batch changed from 32 to 16: resuming epoch 0 at step 80 (step 80 of 200)"
expect_in "$WORK/r2.txt" "test top-1 accuracy"
[ -f "$WORK/regrid/ckpt-step0000000200.h5" ] || { ls "$WORK/regrid"; fail "the re-planned run did not end at step 200"; }

# Precision and EMA may change on resume. The step-33 checkpoint (float32, no EMA) with an fp16
# run's loss-scaler state added resumes in float32 (the scale is not used) with EMA on: the average
# starts from the checkpoint's weights, so one step later it lies between step 33's and step 34's
# weights (decay 35/44 at step 34: |ema - w33| = 0.205 |w34 - w33|), not near the initial ones.
/usr/bin/python3 - "$WORK/split/ckpt-step0000000033.h5" "$WORK/amp.h5" <<'PY'
import shutil, sys, zlib, h5py, numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    for name, value in (("scale", 65536.0), ("clean_steps", 0.0)):
        a = np.array([value], dtype=np.float64)
        f.create_dataset(f"optimizer/amp/{name}", data=a).attrs["crc32"] = np.int64(zlib.crc32(a.tobytes()))
PY
small_run 2 switched "${common[@]}" train.resume="$WORK/amp.h5" train.ema_decay=0.99 \
  train.stop_at_step=34 > "$WORK/s.txt" 2>&1 || { cat "$WORK/s.txt"; fail "resume in another precision, EMA on"; }
expect_in "$WORK/s.txt" "holds an fp16 loss scale; train.precision = \"fp32\" does not use it"
expect_in "$WORK/s.txt" "holds no EMA weights (train.ema_decay was off): the average starts now"
/usr/bin/python3 - "$WORK/split/ckpt-step0000000033.h5" "$WORK/switched/ckpt-step0000000034.h5" <<'PY'
import sys, h5py, numpy as np
w33, s = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert len(s["ema"]) > 0
for k in s["ema"]:
    ema, a, b = s["ema"][k][()], w33["model"][k][()], s["model"][k][()]
    step = np.abs(b - a).max()
    assert step > 0, k
    ratio = np.abs(ema - a).max() / step
    assert ratio < 0.5, f"{k}: |ema - w33| = {ratio:.3f} x |w34 - w33| (the average did not start at the checkpoint)"
print(f"EMA after the resume starts from the checkpoint's weights ({len(s['ema'])} tensors)")
PY
