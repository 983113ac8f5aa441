# Preemption: SIGUSR1 to one rank, then SIGUSR1 to mpirun (which forwards it), each stop the job at
# one agreed step with a checkpoint and exit code 75; two resumes finish the run, and the final
# parameters and optimizer state equal the uninterrupted run's bit for bit (BatchNorm running
# statistics, averaged at each checkpoint, are compared to 1e-5).
source "$(dirname "$0")/common.sh"
common=(data.train_limit=6400 data.eval_limit=500 train.batch_size=32 train.epochs=3
        train.log_every=5 augment.crop_padding=2)
small_run 2 whole "${common[@]}" > "$WORK/whole.txt" 2>&1 || { cat "$WORK/whole.txt"; fail "whole"; }

stop_run() {  # stop_run LOG WHO(rank|mpirun) [extra overrides]: start, signal after step 20, expect 75
  local log=$1 who=$2; shift 2
  small_run 2 split "${common[@]}" "$@" > "$log" 2>&1 &
  local sub=$! mpirun_pid="" ranks="" t=0
  until grep -q "step [0-9]*/300" "$log" 2>/dev/null && [ "$(grep -c 'step [0-9]*/300' "$log")" -ge 2 ]; do
    sleep 0.2; t=$((t + 1)); [ $t -lt 300 ] || { cat "$log"; fail "no progress"; }
  done
  mpirun_pid=$(pgrep -P "$sub" | head -1)
  ranks=$(pgrep -P "$mpirun_pid" -x trainer || true)
  [ -n "$ranks" ] || fail "no trainer processes under mpirun $mpirun_pid"
  if [ "$who" = rank ]; then kill -USR1 $(echo "$ranks" | tail -1); else kill -USR1 "$mpirun_pid"; fi
  local rc=0; wait "$sub" || rc=$?
  [ $rc -eq 75 ] || { cat "$log"; fail "exit $rc after SIGUSR1 to $who, expected 75"; }
  expect_in "$log" "stopped by signal 10"
}
stop_run "$WORK/a.txt" rank
step_a=$(grep -o 'stopped by signal 10 ([^)]*) at step [0-9]*' "$WORK/a.txt" | grep -o '[0-9]*$')
echo "first stop at step $step_a"
[ -f "$WORK/split/$(cat "$WORK/split/latest")" ] || fail "no checkpoint after the stop"
expect_in "$WORK/split/latest" "$(printf 'ckpt-step%010d.h5' "$step_a")"
stop_run "$WORK/b.txt" mpirun train.resume=auto
expect_in "$WORK/b.txt" "resumed from"
small_run 2 split "${common[@]}" train.resume=auto > "$WORK/c.txt" 2>&1 || { cat "$WORK/c.txt"; fail "final resume"; }
compare "$WORK/whole/ckpt-step0000000300.h5" "$WORK/split/ckpt-step0000000300.h5" \
  --loose running_ --loose-rel 1e-5 --min 20

# A stop signal during setup (the whole training split being read into memory): the ranks are not
# killed by it (exit 138 before: a job SLURM would not requeue) but stop with exit 75: at the next
# setup agreement with nothing to save, or, once training began, at a step with a checkpoint.
# Setup takes well under a second here, so either may happen; each is checked for what it must do.
small_run 2 early data.eval_limit=500 train.max_steps=50 train.log_every=5 > "$WORK/early.txt" 2>&1 &
sub=$! t=0
until grep -q "ranks (" "$WORK/early.txt" 2>/dev/null; do
  sleep 0.05; t=$((t + 1)); [ $t -lt 600 ] || { cat "$WORK/early.txt"; fail "no start-up line"; }
done
mpirun_pid=$(pgrep -P "$sub" | head -1)
kill -USR1 $(pgrep -P "$mpirun_pid" -x trainer | tail -1)
rc=0; wait "$sub" || rc=$?
[ $rc -eq 75 ] || { cat "$WORK/early.txt"; fail "exit $rc after SIGUSR1 during setup, expected 75"; }
if grep -q "during setup, before the first step" "$WORK/early.txt"; then
  echo "(the signal landed in setup this time)"
  grep -Eq "stopped by signal 10 \(rank [01]\) during setup" "$WORK/early.txt" || fail "no stop message naming the signal"
  ! grep -q "step [0-9]*/50 " "$WORK/early.txt" || fail "a step ran after setup stopped"
  ! ls "$WORK"/early/ckpt-step*.h5 > /dev/null 2>&1 || fail "a checkpoint written by a setup that stopped"
else
  echo "(the signal landed after setup this time)"
  expect_in "$WORK/early.txt" "stopped by signal 10"
  [ -f "$WORK/early/$(cat "$WORK/early/latest")" ] || fail "no checkpoint after a stop at the first step"
fi
small_run 2 early data.eval_limit=500 train.max_steps=50 train.resume=auto > "$WORK/early2.txt" 2>&1 ||
  { cat "$WORK/early2.txt"; fail "the requeued run after a stop during setup"; }
expect_in "$WORK/early2.txt" "done: 50 steps"
echo "ok: a stop signal during setup ends it with exit 75 (at setup's next agreement, or at the first step with a checkpoint); the requeue trains on"
