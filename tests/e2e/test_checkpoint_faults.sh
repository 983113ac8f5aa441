# A checkpoint that cannot be written: a full disk (a small tmpfs) stops training on every rank
# with exit 3 and a message naming the newest complete checkpoint, which stays intact and resumes
# once there is space; a folder that turns read-only mid-run with checkpoint.on_error = "continue"
# costs only the checkpoints that fell in that time. Needs mount (root); skips otherwise.
source "$(dirname "$0")/common.sh"
mnt="$WORK/mnt"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=1300k tmpfs "$mnt" 2> /dev/null; then
  echo "SKIP: cannot mount a tmpfs here (needs root)"; exit 0
fi
trap 'umount -R "$mnt" 2> /dev/null; rm -rf "$WORK"' EXIT
common=(data.train_limit=6400 data.eval_limit=300 train.batch_size=32 train.epochs=2
        train.log_every=5 run.out_dir="$mnt")

# 1. Disk full: one checkpoint (0.87 MB) fits, the second does not.
rc=0
small_run 2 full "${common[@]}" checkpoint.every_steps=10 checkpoint.keep_last=1 > "$WORK/full.txt" 2>&1 || rc=$?
[ $rc -eq 3 ] || { cat "$WORK/full.txt"; fail "disk full: exit $rc, expected 3"; }
expect_in "$WORK/full.txt" "checkpoint of step 20 failed"
expect_in "$WORK/full.txt" "a checkpoint could not be written"
expect_in "$WORK/full.txt" "The newest complete checkpoint is $mnt/full/ckpt-step0000000010.h5"
[ "$(cat "$mnt/full/latest")" = ckpt-step0000000010.h5 ] || fail "latest moved"
"$TRAINER" checkpoint info "$mnt/full/ckpt-step0000000010.h5" > /dev/null || fail "previous checkpoint damaged"
[ -z "$(ls "$mnt"/full/*.tmp 2> /dev/null)" ] || fail "half-written files left on the full disk"
mount -o remount,size=30m "$mnt"
small_run 2 full "${common[@]}" checkpoint.every_steps=10 checkpoint.keep_last=1 > "$WORK/full2.txt" 2>&1 \
  || { cat "$WORK/full2.txt"; fail "resume after freeing space"; }
expect_in "$WORK/full2.txt" "resumed from $mnt/full/ckpt-step0000000010.h5"

# 2. Read-only for a while, on_error = "continue": training completes, the gap is logged.
log="$WORK/ro.txt"
small_run 2 ro "${common[@]}" checkpoint.every_steps=5 checkpoint.on_error=continue \
  train.epochs=3 > "$log" 2>&1 &
sub=$!
t=0
until grep -q "ckpt-step0000000010.h5 written" "$log"; do
  sleep 0.05; t=$((t + 1)); [ $t -lt 2000 ] || { cat "$log"; fail "no checkpoint"; }
done
# A read-only bind mount over the run folder: new files fail with EROFS (root ignores modes),
# while the already open metrics.jsonl keeps writing through the original mount.
mount --bind "$mnt/ro" "$mnt/ro" && mount -o remount,bind,ro "$mnt/ro"
t=0
until grep -q "failed:" "$log"; do
  sleep 0.05; t=$((t + 1)); [ $t -lt 2000 ] || { umount "$mnt/ro"; cat "$log"; fail "no failure seen"; }
done
umount "$mnt/ro"
rc=0; wait $sub || rc=$?
[ $rc -eq 0 ] || { cat "$log"; fail "on_error=continue: exit $rc"; }
expect_in "$log" "continuing after a failed checkpoint"
expect_in "$log" "warning: some checkpoints could not be written"
"$TRAINER" checkpoint info "$mnt/ro/$(cat "$mnt/ro/latest")" > /dev/null || fail "final checkpoint"
expect_in "$mnt/ro/latest" "ckpt-step0000000300.h5"

# 3. The run's last checkpoint fails with on_error = "continue": it is written again before the run
# ends (the end of the run took it as done and never retried it) and, the disk still full, the run
# ends with exit 3 naming the newest complete checkpoint.
umount "$mnt"
mount -t tmpfs -o size=1300k tmpfs "$mnt"
rc=0
small_run 2 last "${common[@]}" train.max_steps=20 checkpoint.every_steps=10 checkpoint.keep_last=1 \
  checkpoint.on_error=continue > "$WORK/last.txt" 2>&1 || rc=$?
[ $rc -eq 3 ] || { cat "$WORK/last.txt"; fail "last checkpoint failing: exit $rc, expected 3"; }
expect_in "$WORK/last.txt" "the checkpoint of step 20 failed"
expect_in "$WORK/last.txt" "writing it again"
expect_in "$WORK/last.txt" "The newest complete checkpoint is $mnt/last/ckpt-step0000000010.h5"
echo "ok: a failed last checkpoint is written again before the run ends"
