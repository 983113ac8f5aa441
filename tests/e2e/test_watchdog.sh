# Watchdog: one rank of three stopped with SIGSTOP mid-training (a worker, then rank 0). Every rank is gone within
# dist.timeout_s plus a few seconds (not a silent hang), exit code 3, and the message names the
# stopped rank and the collective it missed.
source "$(dirname "$0")/common.sh"
timeout_s=4

stall_rank() {  # stall_rank RANK: SIGSTOP that rank of a 3-rank run; check the end and the verdict
  local victim_rank=$1 log="$WORK/stall$1.txt" sub mpirun_pid victim="" t=0 rc=0
  small_run 3 "stall$victim_rank" data.train_limit=12000 data.eval_limit=300 train.batch_size=16 \
    train.epochs=20 train.log_every=5 dist.timeout_s=$timeout_s > "$log" 2>&1 &
  sub=$!
  until [ "$(count_in "$log" 'step ')" -ge 2 ]; do
    sleep 0.2; t=$((t + 1)); [ $t -lt 600 ] || { cat "$log"; fail "no progress"; }
  done
  mpirun_pid=$(pgrep -P "$sub" | head -1)
  for p in $(pgrep -P "$mpirun_pid" -x trainer); do
    tr '\0' '\n' < /proc/$p/environ | grep -qx "OMPI_COMM_WORLD_RANK=$victim_rank" && victim=$p
  done
  [ -n "$victim" ] || fail "rank $victim_rank not found under mpirun $mpirun_pid"
  kill -STOP "$victim"
  local stopped; stopped=$(date +%s.%N)
  wait "$sub" || rc=$?
  kill -KILL "$victim" 2>/dev/null || true
  local took; took=$(python3 -c "print(f'{$(date +%s.%N) - $stopped:.1f}')")
  echo "rank $victim_rank stopped: the job ended $took s later (exit $rc)"
  [ $rc -eq 3 ] || { cat "$log"; fail "exit $rc with a stopped rank, expected 3"; }
  python3 -c "import sys; sys.exit(0 if $took <= $timeout_s + 10 else 1)" || { cat "$log"; fail "took $took s"; }
  grep -a "watchdog" "$log"
  expect_in "$log" "watchdog: collective #"
  grep -aqE "rank $victim_rank \([^)]*\): (silent for|alive but never arrived|the coordinator has not answered)" "$log" \
    || { cat "$log"; fail "rank $victim_rank not named"; }
  sleep 0.5
  ! pgrep -f "run.name=stall$victim_rank " > /dev/null || fail "processes left behind"
}

stall_rank 2   # a worker
stall_rank 0   # the coordinator itself
