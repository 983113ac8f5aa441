# A run stopped mid-epoch and resumed with train.resume=auto ends with bitwise the same parameters
# and optimizer state as the uninterrupted run (2 ranks, augmentation on).
source "$(dirname "$0")/common.sh"
common=(model.name=tiny_cnn data.train_limit=1600 data.eval_limit=500 train.batch_size=16
        train.epochs=2 train.log_every=10 augment.crop_padding=2)
small_run 2 whole "${common[@]}" > "$WORK/whole.txt" 2>&1 || { cat "$WORK/whole.txt"; fail "whole"; }
small_run 2 split "${common[@]}" train.stop_at_step=33 > "$WORK/a.txt" 2>&1 || { cat "$WORK/a.txt"; fail "first part"; }
expect_in "$WORK/a.txt" "ckpt-step0000000033.h5"
small_run 2 split "${common[@]}" train.resume=auto > "$WORK/b.txt" 2>&1 || { cat "$WORK/b.txt"; fail "resume"; }
expect_in "$WORK/b.txt" "resumed from"
expect_in "$WORK/b.txt" "at step 33 (epoch 0, step 33 of the epoch)"
# tiny_cnn: 4 model tensors + 4 momentum buffers, all bitwise equal.
compare "$WORK/whole/ckpt-step0000000100.h5" "$WORK/split/ckpt-step0000000100.h5" --min 8

# Another world size: 2 ranks x 16 stop at step 40 of a 50-step epoch (1,280 samples consumed);
# one rank x 16 re-plans the same epoch from sample 1,280 = its step 80, and finishes the run.
small_run 2 regrid "${common[@]}" train.stop_at_step=40 > "$WORK/r1.txt" 2>&1 || { cat "$WORK/r1.txt"; fail "regrid first part"; }
small_run 1 regrid "${common[@]}" train.resume=auto > "$WORK/r2.txt" 2>&1 || { cat "$WORK/r2.txt"; fail "regrid resume"; }
expect_in "$WORK/r2.txt" "global batch changed from 32 to 16: resuming epoch 0 at step 80"
expect_in "$WORK/r2.txt" "test top-1 accuracy"
