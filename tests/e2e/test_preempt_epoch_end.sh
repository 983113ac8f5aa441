# Preemption right after an epoch's last step: with one step per epoch every stop lands there. The
# stop checkpoint holds the next epoch's start; the resumed run evaluates the epoch the stop
# preceded before training on, so metrics.jsonl holds one evaluation per epoch, as an
# uninterrupted run's does (the evaluation was lost before).
source "$(dirname "$0")/common.sh"
common=(data.train_limit=64 data.eval_limit=64 train.batch_size=32 train.epochs=150 train.log_every=1)
small_run 2 edge "${common[@]}" > "$WORK/a.txt" 2>&1 &
sub=$! t=0
until [ "$(grep -c '"kind": *"eval"' "$WORK/edge/metrics.jsonl" 2>/dev/null)" -ge 3 ]; do
  sleep 0.1; t=$((t + 1)); [ $t -lt 600 ] || { cat "$WORK/a.txt"; fail "no evaluations"; }
done
kill -USR1 "$(pgrep -P "$sub" | head -1)"  # mpirun forwards it to the ranks
rc=0; wait "$sub" || rc=$?
[ $rc -eq 75 ] || { cat "$WORK/a.txt"; fail "exit $rc after SIGUSR1, expected 75"; }
step=$(grep -o 'stopped by signal 10 ([^)]*) at step [0-9]*' "$WORK/a.txt" | grep -o '[0-9]*$')
[ -n "$step" ] && [ "$step" -lt 150 ] || { cat "$WORK/a.txt"; fail "no stop before the end (step '$step')"; }
echo "stopped at step $step"
small_run 2 edge "${common[@]}" > "$WORK/b.txt" 2>&1 || { cat "$WORK/b.txt"; fail "resume"; }
expect_in "$WORK/b.txt" "evaluating epoch $step, whose end the stop at step $step preceded"
/usr/bin/python3 - "$WORK/edge/metrics.jsonl" <<'PY'
import json, sys
steps = [r["step"] for r in map(json.loads, open(sys.argv[1])) if r.get("kind") == "eval"]
assert sorted(steps) == list(range(1, 151)), f"evaluations after steps {sorted(steps)}"
print("one evaluation per epoch:", len(steps))
PY
