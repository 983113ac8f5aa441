# SLURM batch jobs on a real SLURM (cluster/local-slurm: munged + slurmctld + slurmd on localhost),
# submitted through cluster/train-cpu.sbatch with 2 tasks on a slice of Fashion-MNIST:
#   a) an uninterrupted job (srun --mpi=pmix) completes with exit code 0 and a final checkpoint;
#   b) a job preempted twice mid-training, first by `scontrol requeue` (SIGTERM), then by a job in
#      the higher-priority partition (SIGUSR1 to the batch shell, forwarded; the script requeues
#      the job itself), checkpoints each time (exit 75), resumes twice and finishes;
#   c) the same through ODYSSEY_LAUNCHER=mpirun, stopped by SIGUSR1 to the batch shell only (what
#      `#SBATCH --signal=B:USR1@N` does before the time limit): it requeues itself and resumes;
#   d) a job stopped soon after both its starts is requeued once, then not again (a requeue loop);
#   e) a scaling sweep inside an allocation (`salloc ... launch/scale --launcher srun`): each run is
#      an srun job step on whole nodes with the allocation's CPUs per task, and a row of scaling.csv.
# The final parameters and optimizer state of b) and c) equal a)'s bit for bit (BatchNorm running
# statistics, averaged at each checkpoint, to 1e-5). Skips (exit 77) where SLURM is not installed
# (launch/install-deps --test installs it) or not running as root (the local daemons need it).
source "$(dirname "$0")/common.sh"
if ! command -v slurmctld > /dev/null || ! command -v slurmd > /dev/null || ! command -v munged > /dev/null; then
  skip "SLURM is not installed (apt-get install slurmctld slurmd slurm-client munge)"
fi
[ "$(id -u)" -eq 0 ] || { skip "the local SLURM needs root"; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
t0=$SECONDS
cluster="$WORK/slurm"
# SLURM_TEST_KEEP=DIR keeps the job outputs and daemon logs there (debugging).
trap '[ -z "${SLURM_TEST_KEEP:-}" ] || { mkdir -p "$SLURM_TEST_KEEP"; cp -r "$WORK"/*.out "$cluster/log" "$SLURM_TEST_KEEP/" 2>/dev/null; }
      cluster/local-slurm stop "$cluster" > /dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
trap 'exit 143' TERM; trap 'exit 130' INT   # so that the EXIT trap cleans up
env_line=$(cluster/local-slurm start "$cluster") || fail "cluster/local-slurm start failed"
eval "$env_line"   # export SLURM_CONF=...
echo "local SLURM up in $((SECONDS - t0)) s"

common=(data.train_limit=3200 data.eval_limit=200 train.batch_size=32 train.epochs=4
        train.log_every=10 augment.crop_padding=2)   # 200 steps of 2 x 32 images
final=ckpt-step0000000200.h5

job_fail() {  # job_fail NAME MESSAGE: show the job's output and the controller's log, then fail
  echo "--- $WORK/$1.out:"; cat "$WORK/$1.out" 2>/dev/null || true
  echo "--- slurmctld.log (tail):"; tail -30 "$cluster/log/slurmctld.log" 2>/dev/null || true
  fail "$2"
}

submit() {  # submit NAME [sbatch options...] [-- overrides...]: the tiny job through train-cpu.sbatch
  local name=$1 opts=() more=(); shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -eq 0 ] || { shift; more=("$@"); }
  sbatch --parsable -J "ody-$name" -o "$WORK/$name.out" --ntasks-per-node=2 --cpus-per-task=1 \
    ${opts[@]+"${opts[@]}"} --export=ALL,ODYSSEY_TRAINER="$TRAINER" cluster/train-cpu.sbatch configs/quickstart.toml \
    data.path="$DATA" run.out_dir="$WORK" run.name="$name" "${common[@]}" ${more[@]+"${more[@]}"}
}

field() { scontrol show job -o "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -1 | cut -d= -f2 || true; }
ENDED="COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL OUT_OF_MEMORY BOOT_FAIL DEADLINE"
ended() { case " $ENDED " in *" $1 "*) return 0 ;; esac; return 1; }

wait_job() {  # wait_job ID NAME SECONDS: until the job has ended (requeues included)
  local t=0 state
  while :; do
    state=$(field "$1" JobState)
    ! ended "$state" || return 0
    t=$((t + 1)); [ $t -lt $(($3 * 5)) ] || job_fail "$2" "job $1 ($2) still $state after $3 s"
    sleep 0.2
  done
}

step_after() {  # step_after FILE MARK: the last training step logged after the last line holding MARK
  awk -v m="$2" 'index($0, m) { s = 0; seen = 1 }
    seen && match($0, / step [0-9]+\//) { v = substr($0, RSTART + 6, RLENGTH - 7) + 0; if (v > s) s = v }
    END { print s + 0 }' "$1" 2>/dev/null || echo 0
}

wait_step() {  # wait_step ID NAME MARK STEP: until the job logged STEP or later after MARK
  local t=0 state
  until [ "$(step_after "$WORK/$2.out" "$3")" -ge "$4" ]; do
    state=$(field "$1" JobState)
    ! ended "$state" || job_fail "$2" "job $1 ($2) ended $state before step $4 after '$3'"
    t=$((t + 1)); [ $t -lt 600 ] || job_fail "$2" "job $1 ($2) did not reach step $4 after '$3' in 120 s"
    sleep 0.2
  done
}

expect_job() {  # expect_job ID NAME RESTARTS: ended COMPLETED, exit 0:0, requeued RESTARTS times, final checkpoint
  [ "$(field "$1" JobState)" = COMPLETED ] || job_fail "$2" "job $1 ($2) ended $(field "$1" JobState)"
  [ "$(field "$1" ExitCode)" = 0:0 ] || job_fail "$2" "job $1 ($2) exit code $(field "$1" ExitCode)"
  [ "$(field "$1" Restarts)" = "$3" ] || job_fail "$2" "job $1 ($2) restarted $(field "$1" Restarts) times, expected $3"
  [ -f "$WORK/$2/$final" ] || job_fail "$2" "no final checkpoint $WORK/$2/$final"
  [ "$(count_in "$WORK/$2.out" "resumed from")" = "$3" ] || job_fail "$2" "expected $3 'resumed from' lines"
}

# a) and c) side by side (2 + 2 of the node's 4 CPUs): a) runs through, c) is stopped at step 20+.
whole=$(submit whole)
# (mpirun lingers 2 x odls_base_sigkill_timeout after ranks exit with 75; the checkpoint here is tiny)
mpi=$(ODYSSEY_LAUNCHER=mpirun OMPI_MCA_odls_base_sigkill_timeout=2 submit mpi)
wait_step "$mpi" mpi "(restart 0)" 20
scancel --batch --signal=USR1 "$mpi"   # what --signal=B:USR1@N sends before the time limit
wait_job "$whole" whole 120
expect_job "$whole" whole 0
echo "a) uninterrupted job: COMPLETED 0:0 after $((SECONDS - t0)) s"
wait_job "$mpi" mpi 120
expect_job "$mpi" mpi 1
expect_in "$WORK/mpi.out" "received SIGUSR1"
expect_in "$WORK/mpi.out" "stopped by signal 10"
expect_in "$WORK/mpi.out" "requeued job $mpi"
expect_in "$WORK/mpi.out" "(restart 1)"
echo "c) mpirun job, SIGUSR1 to the batch shell: checkpointed, requeued itself, resumed, COMPLETED after $((SECONDS - t0)) s"

# b) alone on the node, so that the high-priority job (all 4 CPUs) preempts it.
split=$(submit split)
wait_step "$split" split "(restart 0)" 20
scontrol requeue "$split"
first=$(step_after "$WORK/split.out" "(restart 0)")
wait_step "$split" split "(restart 1)" $((first + 30))
high=$(sbatch --parsable -p high -n 4 -J ody-high -o "$WORK/high.out" --wrap "echo high-priority job ran")
wait_job "$split" split 180
expect_job "$split" split 2
expect_in "$WORK/split.out" "DUE TO JOB REQUEUE"
expect_in "$WORK/split.out" "(restart 2)"
# The preemption's requeue: odyssey-job's own on SLURM 22.05, SLURM's on 24.11+ (a second one
# there would start the finished job once more).
grep -qE "requeued job $split|left to SLURM: the job is preempted at" "$WORK/split.out" ||
  job_fail split "expected odyssey-job's requeue or a preemption left to SLURM"
[ "$(count_in "$WORK/split.out" "stopped by signal")" = 2 ] || job_fail split "expected two stops"
wait_job "$high" high 30
expect_in "$WORK/high.out" "high-priority job ran"
grep -o 'stopped by signal [0-9]* ([^)]*) at step [0-9]*' "$WORK/split.out"
echo "b) srun job, scontrol requeue then preemption: resumed twice, COMPLETED after $((SECONDS - t0)) s"

# d) a job stopped soon after each launch (as a time limit under the --signal lead stops every
#    start at its first check): with ODYSSEY_MAX_SHORT_STARTS=2 it is requeued once, then ends with
#    75 and the reason instead of requeueing forever. Submitted with train.resume=none, which its
#    requeued start must not obey (it would refuse the folder its first start filled: exit 2).
short=$(ODYSSEY_MAX_SHORT_STARTS=2 submit short -- train.resume=none)
wait_step "$short" short "(restart 0)" 10
scancel --batch --signal=USR1 "$short"
wait_step "$short" short "(restart 1)" $(($(step_after "$WORK/short.out" "(restart 0)") + 10))
scancel --batch --signal=USR1 "$short"
wait_job "$short" short 60
for want in ExitCode=75:0 Restarts=1; do
  [ "$(field "$short" "${want%=*}")" = "${want#*=}" ] ||
    job_fail short "job $short (short): ${want%=*} $(field "$short" "${want%=*}"), expected ${want#*=}"
done
[ "$(count_in "$WORK/short.out" "requeued job $short")" = 1 ] || job_fail short "expected one requeue"
expect_in "$WORK/short.out" "not requeued: the last 2 starts each stopped within 600 s of their launch"
[ "$(count_in "$WORK/short.out" "resumed from $WORK/short/ckpt-step")" = 1 ] || job_fail short "expected one resume"
[ "$(cat "$WORK/short/.odyssey-job-short-starts")" = "$short 2" ] || job_fail short "short-start count file"
echo "d) job stopped twice soon after its launch: requeued once, then ended $(field "$short" JobState)" \
     "with 75 after $((SECONDS - t0)) s"

# e) launch/scale --launcher srun inside an allocation, as the README's cluster example (1 node).
salloc -N 1 --ntasks-per-node=2 --cpus-per-task=1 -J ody-scale launch/scale --launcher srun --ranks "1 2" \
  --mode strong --steps 10 --warmup 5 --log-every 5 --trainer "$TRAINER" --out "$WORK/scale" \
  configs/quickstart.toml "data.path=$DATA" train.threads=1 train.batch_size=32 > "$WORK/scale.out" 2>&1 ||
  job_fail scale "salloc ... launch/scale --launcher srun failed"
for n in 1 2; do
  expect_in "$WORK/scale.out" "srun --mpi=pmix -n $n -N 1 --cpus-per-task 1 $TRAINER"
done
/usr/bin/python3 - "$WORK/scale/scaling.csv" <<'PY' || job_fail scale "scaling.csv from the srun sweep"
import csv, sys
rows = {int(r["ranks"]): r for r in csv.DictReader(open(sys.argv[1]))}
assert sorted(rows) == [1, 2], rows.keys()
for n, r in rows.items():
    assert r["status"] == "ok" and int(r["steps"]) == 10 and float(r["images_per_s"]) > 0, r
    assert r["ranks_per_node"] == str(n) and r["threads_per_rank"] == "1", r
    assert r["backend"] == ("mpi" if n == 2 else "single"), r
PY
echo "e) launch/scale --launcher srun in an allocation: 1 and 2 ranks measured after $((SECONDS - t0)) s"

for name in split mpi; do
  compare "$WORK/whole/$final" "$WORK/$name/$final" --loose running_ --loose-rel 1e-5 --min 20 > "$WORK/cmp.txt" ||
    { cat "$WORK/cmp.txt"; fail "$name: final checkpoint differs from the uninterrupted job's"; }
  echo "$name: final checkpoint equals the uninterrupted job's ($(count_in "$WORK/cmp.txt" "bitwise equal") tensors bitwise)"
done
echo "slurm tests passed in $((SECONDS - t0)) s"
