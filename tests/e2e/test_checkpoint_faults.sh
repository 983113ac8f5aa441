# A checkpoint that cannot be written: a full disk (a small tmpfs) stops training on every rank
# with exit 3 and a message naming the newest complete checkpoint, which stays intact and resumes
# once there is space; a folder that turns read-only mid-run with checkpoint.on_error = "continue"
# costs only the checkpoints that fell in that time; a stop signal whose checkpoint fails exits 75
# (requeue) only when this start saved a checkpoint, else 3. Needs mount (root); skips otherwise.
source "$(dirname "$0")/common.sh"
mnt="$WORK/mnt"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=1300k tmpfs "$mnt" 2> /dev/null; then
  skip "cannot mount a tmpfs here (needs root)"
fi
trap 'umount -R "$mnt" 2> /dev/null; rm -rf "$WORK"' EXIT
common=(data.train_limit=6400 data.eval_limit=300 train.batch_size=32 train.epochs=2
        train.log_every=5 run.out_dir="$mnt")

# 1. Disk full: one checkpoint (0.87 MB) fits, the second does not.
rc=0
small_run 2 full "${common[@]}" checkpoint.every_steps=10 checkpoint.keep_last=1 > "$WORK/full.txt" 2>&1 || rc=$?
[ $rc -eq 3 ] || { cat "$WORK/full.txt"; fail "disk full: exit $rc, expected 3"; }
expect_in "$WORK/full.txt" "checkpoint of step 20 failed"
expect_in "$WORK/full.txt" "No space left on device"  # the OS's reason, from HDF5's error stack
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

# 4. A stop signal whose checkpoint fails. With an earlier checkpoint of this start (step 10) the
# job stops with 75, to be requeued from it; with nothing saved since the start (resumed, and the
# disk too full for another checkpoint), 75 would requeue into the same loss forever: exit 3.
signal_run() {  # signal_run NAME LOG [overrides]: SIGUSR1 to mpirun once step 25 is logged; echoes rc
  local name=$1 log=$2; shift 2
  small_run 2 "$name" "${common[@]}" checkpoint.on_error=continue "$@" > "$log" 2>&1 &
  local sub=$! t=0
  until grep -q "step 25/" "$log" 2> /dev/null; do
    sleep 0.05; t=$((t + 1)); [ $t -lt 2000 ] || { cat "$log" >&2; fail "no progress"; }
  done
  kill -USR1 "$(pgrep -P "$sub" | head -1)"
  local rc=0; wait "$sub" || rc=$?
  echo $rc
}
umount "$mnt"
mount -t tmpfs -o size=1300k tmpfs "$mnt"
rc=$(signal_run saved "$WORK/saved.txt" checkpoint.every_steps=10 checkpoint.keep_last=1)
[ "$rc" -eq 75 ] || { cat "$WORK/saved.txt"; fail "stop checkpoint failing after a saved one: exit $rc, expected 75"; }
expect_in "$WORK/saved.txt" "the stop checkpoint could not be written"
expect_in "$WORK/saved.txt" "; its checkpoint could not be written"  # not "resume with ..." first
expect_in "$WORK/saved.txt" "a requeue resumes from $mnt/saved/ckpt-step0000000010.h5"
# A requeued start resumed from step 10, the disk then too full for another checkpoint: it saves
# nothing, so its stop is exit 3 naming step 10's checkpoint (it was 75: a requeue loop).
rm -f "$mnt"/saved/*.h5  # room for step 10's checkpoint of run "none" and not one more
small_run 2 none "${common[@]}" train.max_steps=10 checkpoint.every_steps=10 > "$WORK/none0.txt" 2>&1 ||
  { cat "$WORK/none0.txt"; fail "first start of the resumed run"; }
rc=$(signal_run none "$WORK/none.txt" train.resume=auto)
[ "$rc" -eq 3 ] || { cat "$WORK/none.txt"; fail "stop checkpoint failing with nothing saved: exit $rc, expected 3"; }
expect_in "$WORK/none.txt" "resumed from $mnt/none/ckpt-step0000000010.h5"
expect_in "$WORK/none.txt" "a checkpoint could not be written"
expect_in "$WORK/none.txt" "The newest complete checkpoint is $mnt/none/ckpt-step0000000010.h5"
echo "ok: a failed stop checkpoint requeues (75) only after this start saved one"
