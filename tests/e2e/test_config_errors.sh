# Bad configs under mpirun -np 2: one clear message naming the key (and line), printed once,
# a non-zero exit, and no hang (each run is bounded by `timeout`).
source "$(dirname "$0")/common.sh"
check() {  # check EXPECTED_TEXT [trainer args...]
  local want=$1; shift
  local rc=0
  timeout 60 "${MPI[@]}" -np 2 "$TRAINER" "$@" > "$WORK/out.txt" 2>&1 || rc=$?
  [ $rc -ne 0 ] || { cat "$WORK/out.txt"; fail "exit code 0 for: $*"; }
  [ $rc -ne 124 ] || fail "timed out (hang) for: $*"
  expect_in "$WORK/out.txt" "$want"
  local n; n=$(count_in "$WORK/out.txt" "$want")
  [ "$n" = 1 ] || { cat "$WORK/out.txt"; fail "message printed $n times, expected once"; }
  echo "ok (exit $rc): $want"
}
printf '[train]\nepochs = 2\nbatchsize = 8\n' > "$WORK/typo.toml"
check "$WORK/typo.toml:3: unknown key 'train.batchsize'" "$WORK/typo.toml"
expect_in "$WORK/out.txt" "did you mean 'train.batch_size'?"
printf '[optim]\nlr = "fast"\n' > "$WORK/type.toml"
check "$WORK/type.toml:2: key 'optim.lr' must be a number" "$WORK/type.toml"
check "'train.batch_size' = -3 is out of range" configs/quickstart.toml train.batch_size=-3
check "'optim.name' = \"adam\" is not one of" configs/quickstart.toml optim.name=adam
check "cannot read config file 'nope.toml'" nope.toml
check "dataset index '/nonexistent/index.toml' does not exist" configs/quickstart.toml data.path=/nonexistent
check "unknown model 'resnet9000' (key model.name)" configs/quickstart.toml data.path="$DATA" model.name=resnet9000
check "no shards for split 'validation'" configs/quickstart.toml data.path="$DATA" data.eval_split=validation
# Failures that only rank 0 sees (it alone writes the run folder) end every rank too.
check "cannot create run folder '/proc/odyssey/x'" configs/quickstart.toml data.path="$DATA" run.out_dir=/proc/odyssey run.name=x
# Devices: a GPU asked for where none can run (this LibTorch without CUDA, or no GPU visible), and
# NCCL for a CPU model.
if ! ls /dev/nvidia[0-9]* > /dev/null 2>&1; then
  check 'train.device = "cuda" but' configs/quickstart.toml data.path="$DATA" train.device=cuda
fi
check 'dist.backend = "nccl" needs train.device = "cuda"' configs/quickstart.toml data.path="$DATA" train.device=cpu dist.backend=nccl

# Every shipped config parses and validates (every key known, typed and in range): the first
# error is then the missing dataset, not the config.
for cfg in configs/*.toml; do
  rc=0
  timeout 60 "$TRAINER" "$cfg" data.path=/nonexistent > "$WORK/out.txt" 2>&1 || rc=$?
  [ $rc -eq 2 ] || { cat "$WORK/out.txt"; fail "$cfg: exit $rc, expected 2"; }
  expect_in "$WORK/out.txt" "dataset index '/nonexistent/index.toml' does not exist"
  echo "ok: $cfg parses"
done
