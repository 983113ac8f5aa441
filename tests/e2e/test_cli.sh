# The command line: --help documents every subcommand; models lists the registry; checkpoint info
# verifies a checkpoint; eval reproduces the training run's final accuracy.
source "$(dirname "$0")/common.sh"
"$TRAINER" --help > "$WORK/help.txt"
for cmd in "trainer CONFIG.toml" "trainer eval" "trainer models" "trainer fewshot" "trainer checkpoint info" "--config-reference"; do
  expect_in "$WORK/help.txt" "$cmd"
done
# README's configuration reference is the code's: every key's row of --config-reference, as is.
"$TRAINER" --config-reference > "$WORK/reference.txt"
rows=0
while IFS= read -r row; do
  case "$row" in
    '| `'*) grep -qxF -- "$row" "$SOURCE_DIR/README.md" || fail "README's configuration reference differs: $row"
            rows=$((rows + 1)) ;;
  esac
done < "$WORK/reference.txt"
[ "$rows" -ge 90 ] || fail "only $rows keys in trainer --config-reference"
# ... and no README row names a key the code no longer has (a renamed or removed key's stale row).
keys() { grep -E '^\| `[a-z_]+\.[a-z_0-9]+` \|' "$1" | sed -E 's/^\| `([^`]*)`.*/\1/' | grep -v '\.toml$' | sort; }
stale=$(comm -13 <(keys "$WORK/reference.txt") <(keys "$SOURCE_DIR/README.md"))
[ -z "$stale" ] || fail "README's configuration reference has rows for keys the code lacks: $stale"
echo "README's configuration reference matches the code's ($rows keys)"
# The listing measures every model (vit_h14 included) on the meta device: seconds, not minutes.
start=$(date +%s)
"$TRAINER" models > "$WORK/models.txt"
seconds=$(( $(date +%s) - start ))
cat "$WORK/models.txt"
[ "$seconds" -le 15 ] || fail "trainer models took $seconds s"
expect_in "$WORK/models.txt" "GMACs"
grep -Eq '^efficientnet_b0 +5288548 +0\.38[5-7] +224 ' "$WORK/models.txt" || fail "efficientnet_b0 row"
grep -Eq '^vit_b16 +86567656 +17\.5[5-7][0-9] +224 ' "$WORK/models.txt" || fail "vit_b16 row"
grep -Eq '^vit_h14 +632045800 +167\.[0-9]+ +224 ' "$WORK/models.txt" || fail "vit_h14 row"
"$TRAINER" models fmnist_cnn --classes 10 --in-channels 1 --image-size 28 >> "$WORK/models.txt"
expect_in "$WORK/models.txt" "fmnist_cnn"
expect_in "$WORK/models.txt" "total 104426 parameters"
# fmnist_cnn by hand: convs 28x28x32x(1x9) + 14x14x64x(32x9) + 7x7x128x(64x9), head 1152x10.
expect_in "$WORK/models.txt" "forward MACs per image at 28x28: $(( 28*28*32*9 + 14*14*64*32*9 + 7*7*128*64*9 + 1152*10 ))"
rc=0; "$TRAINER" > /dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "no arguments: exit $rc, expected 1"
small_run 2 cli data.train_limit=1280 data.eval_limit=1000 train.epochs=1 > "$WORK/train.txt" 2>&1 || { cat "$WORK/train.txt"; fail "train"; }
ckpt="$WORK/cli/$(cat "$WORK/cli/latest")"
# The run's config.toml keeps dist.bucket_mb = 0 (chosen by topology at each start), not the 4 MB
# this one-node run used, and whole floats in plain digits.
grep -qx 'bucket_mb = 0.0' "$WORK/cli/config.toml" || { cat "$WORK/cli/config.toml"; fail "config.toml: bucket_mb"; }
grep -qx 'timeout_s = 300.0' "$WORK/cli/config.toml" || fail "config.toml: timeout_s"
# Running the same run again resumes the finished run (train.resume = "auto" by default) and
# reports its accuracy; "none" on a folder with checkpoints is refused.
small_run 2 cli data.train_limit=1280 data.eval_limit=1000 train.epochs=1 > "$WORK/again.txt" 2>&1 || { cat "$WORK/again.txt"; fail "rerun"; }
expect_in "$WORK/again.txt" "resumed from $ckpt at step 10"
accuracy=$(grep -o 'test top-1 accuracy [0-9.]*%' "$WORK/train.txt")
[ -n "$accuracy" ] || { cat "$WORK/train.txt"; fail "no test accuracy in the first run's output"; }
expect_in "$WORK/again.txt" "$accuracy"
rc=0; small_run 2 cli data.train_limit=1280 train.resume=none > "$WORK/none.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/none.txt"; fail "resume=none on a used folder: exit $rc"; }
expect_in "$WORK/none.txt" "run folder '$WORK/cli' already holds checkpoints"
# A folder whose checkpoints all fail to load is refused, not trained again from step 0 over them.
mkdir -p "$WORK/dead"; cp "$ckpt" "$WORK/dead/"; truncate -s 5000 "$WORK/dead/$(basename "$ckpt")"
rc=0; small_run 2 dead data.train_limit=1280 > "$WORK/dead.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/dead.txt"; fail "no loadable checkpoint: exit $rc"; }
expect_in "$WORK/dead.txt" "run folder '$WORK/dead' holds 1 checkpoint(s) and none loads"
[ "$(ls "$WORK/dead")" = "$(basename "$ckpt")" ] || { ls "$WORK/dead"; fail "the refused run wrote into its folder"; }
"$TRAINER" checkpoint info "$ckpt" > "$WORK/info.txt"
cat "$WORK/info.txt"
expect_in "$WORK/info.txt" "verified"
expect_in "$WORK/info.txt" "step 10, epoch 1"
# A run folder or its `latest` pointer names its newest checkpoint wherever a checkpoint is asked for.
for named in "$WORK/cli" "$WORK/cli/latest"; do
  "$TRAINER" checkpoint info "$named" > "$WORK/info2.txt" 2>&1 || { cat "$WORK/info2.txt"; fail "checkpoint info $named"; }
  expect_in "$WORK/info2.txt" "checkpoint    $ckpt (verified"
done
top1=$(grep -o 'test top-1 accuracy [0-9.]*%' "$WORK/train.txt" | grep -o '[0-9.]*%')
"${MPI[@]}" -np 2 "$TRAINER" eval configs/quickstart.toml --checkpoint "$ckpt" data.path="$DATA" \
  data.eval_limit=1000 run.out_dir="$WORK" run.name=evalrun --json "$WORK/eval.json" > "$WORK/eval.txt" 2>&1 ||
  { cat "$WORK/eval.txt"; fail "eval"; }
cat "$WORK/eval.txt"
expect_in "$WORK/eval.txt" "top-1 $top1"
# --json: the same numbers as one JSON object, written by rank 0 (2 ranks evaluated).
/usr/bin/python3 - "$WORK/eval.json" "$top1" "$ckpt" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
assert e["images"] == 1000 and e["split"] == "test" and e["checkpoint"] == e["checkpoint_file"] == sys.argv[3], e
assert f"{100 * e['top1']:.2f}%" == sys.argv[2], (e["top1"], sys.argv[2])
assert e["top5"] >= e["top1"] and 0 <= e["ece"] <= 1, e
classes = e["per_class"]
assert len(classes) == 10 and classes[0]["class"] == "T-shirt/top", classes[0]
assert sum(c["support"] for c in classes) == 1000
assert e["worst_class"] == min(classes, key=lambda c: c["recall"])["class"], e["worst_class"]
print("eval --json:", {k: e[k] for k in ("images", "top1", "worst_class")})
PY
# A --json that would overwrite a run folder's own file, or whose folder does not exist, is
# refused before the evaluation.
rc=0; "$TRAINER" eval configs/quickstart.toml --checkpoint "$ckpt" data.path="$DATA" --json "$WORK/cli/latest" \
  > "$WORK/evalj.txt" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$WORK/evalj.txt"; fail "eval --json onto latest: exit $rc"; }
expect_in "$WORK/evalj.txt" "trainer eval: --json '$WORK/cli/latest' is one of a run folder's own files"
rc=0; "$TRAINER" eval configs/quickstart.toml --checkpoint "$ckpt" data.path="$DATA" --json "$WORK/no/e.json" \
  > "$WORK/evalj.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/evalj.txt"; fail "eval --json into a missing folder: exit $rc"; }
expect_in "$WORK/evalj.txt" "trainer eval --json '$WORK/no/e.json': folder '$WORK/no' does not exist"
[ "$(grep -c 'on 1000 images\|on 10000 images' "$WORK/evalj.txt")" = 0 ] || fail "evaluated before refusing --json"
"$TRAINER" eval configs/quickstart.toml --checkpoint "$WORK/cli" data.path="$DATA" data.eval_limit=1000 > "$WORK/evald.txt" 2>&1 ||
  { cat "$WORK/evald.txt"; fail "eval of a run folder"; }
expect_in "$WORK/evald.txt" "top-1 $top1"
# Evaluation loads the weights only: a config naming another optimizer evaluates the same.
"$TRAINER" eval configs/quickstart.toml --checkpoint "$ckpt" data.path="$DATA" data.eval_limit=1000 \
  run.out_dir="$WORK" run.name=evalrun2 optim.name=adamw > "$WORK/eval2.txt" 2>&1 || { cat "$WORK/eval2.txt"; fail "eval, another optimizer"; }
expect_in "$WORK/eval2.txt" "top-1 $top1"
# Evaluation writes nothing and reads no train split: pointed at the run's own folder (as at a
# live run, mid-write) with a train split that does not exist, it leaves config.toml, the
# metrics and an unfinished checkpoint write as they were, and makes no folder for other names.
touch "$WORK/cli/ckpt-step0000000099.h5.tmp"
listing() { (cd "$WORK/cli" && ls -l --time-style=+%s.%N && md5sum config.toml metrics.jsonl); }
before=$(listing)
"$TRAINER" eval configs/quickstart.toml --checkpoint "$ckpt" data.path="$DATA" data.eval_limit=1000 \
  run.out_dir="$WORK" run.name=cli data.train_split=nosuch > "$WORK/eval3.txt" 2>&1 || { cat "$WORK/eval3.txt"; fail "eval on the run's folder"; }
expect_in "$WORK/eval3.txt" "top-1 $top1"
[ "$(listing)" = "$before" ] || { listing; fail "eval changed the run folder"; }
[ ! -e "$WORK/evalrun" ] && [ ! -e "$WORK/evalrun2" ] || fail "eval made a run folder"
rm "$WORK/cli/ckpt-step0000000099.h5.tmp"
rc=0; "$TRAINER" eval configs/quickstart.toml --checkpoint "$WORK/nope.h5" data.path="$DATA" > "$WORK/eval4.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/eval4.txt"; fail "eval of a missing checkpoint: exit $rc"; }
expect_in "$WORK/eval4.txt" "trainer eval --checkpoint: '$WORK/nope.h5' does not exist"
# Keys set that other keys leave without effect get a note (not an error: overrides ablate).
rc=0; "$TRAINER" eval configs/quickstart.toml --checkpoint "$WORK/nope.h5" data.path="$DATA" augment.randaugment_m=5 \
  data.shuffle_window=4 > "$WORK/eval5.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/eval5.txt"; fail "eval with inert keys: exit $rc"; }
expect_in "$WORK/eval5.txt" "augment.randaugment_m (augment.randaugment_n = 0) has no effect"
expect_in "$WORK/eval5.txt" 'data.shuffle_window (data.shuffle = "global") has no effect'
# A damaged checkpoint is refused with its name.
cp "$ckpt" "$WORK/bad.h5"; truncate -s 5000 "$WORK/bad.h5"
rc=0; "$TRAINER" checkpoint info "$WORK/bad.h5" > "$WORK/bad.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "damaged checkpoint: exit $rc"
expect_in "$WORK/bad.txt" "$WORK/bad.h5"

# predict: logits for the test split and for one shard; their argmax reproduces the evaluation.
"$TRAINER" predict --checkpoint "$ckpt" --data "$DATA" --out "$WORK/pred.h5" > "$WORK/pred.txt" 2>&1 || { cat "$WORK/pred.txt"; fail "predict"; }
"$TRAINER" predict --checkpoint "$ckpt" --data "$DATA/test-00000-of-00001.h5" --out "$WORK/pred1.h5" > /dev/null
/usr/bin/python3 - "$WORK" "$WORK/eval.txt" "$DATA" <<'PY'
import sys, re, h5py, numpy as np
work, eval_log, data = sys.argv[1:4]
p = h5py.File(work + "/pred.h5", "r")
logits, labels = p["logits"][()], p["labels"][()]
assert logits.shape == (10000, 10) and logits.dtype == np.float32, logits.shape
truth = h5py.File(data + "/test-00000-of-00001.h5", "r")["labels"][()]
assert (labels == truth).all()
top1 = re.search(r"top-1 ([0-9.]+)%", open(eval_log).read()).group(1)
mine = 100 * (logits[:1000].argmax(1) == labels[:1000]).mean()
assert f"{mine:.2f}" == top1, (mine, top1)
assert np.array_equal(h5py.File(work + "/pred1.h5", "r")["logits"][()], logits)
print("predict reproduces eval top-1", top1)
PY
rc=0; "$TRAINER" predict --checkpoint "$ckpt" --data "$DATA" > /dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "predict without --out: exit $rc, expected 1 (bad command line)"
# Under mpirun with 2 ranks each would read the split and write one --out file: refused.
rc=0; "${MPI[@]}" -np 2 "$TRAINER" predict --checkpoint "$ckpt" --data "$DATA" --out "$WORK/two.h5" \
  > "$WORK/two.txt" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$WORK/two.txt"; fail "predict under mpirun -np 2: exit $rc, expected 1"; }
expect_in "$WORK/two.txt" "trainer predict runs as one process, not 2 ranks"
[ ! -e "$WORK/two.h5" ] || fail "predict under mpirun -np 2 wrote its output"
# --out naming the checkpoint itself (predict, export): refused, the checkpoint untouched.
cp "$ckpt" "$WORK/self.h5"
sum=$(md5sum < "$WORK/self.h5")
for cmd in "predict --checkpoint $WORK/self.h5 --data $DATA --out $WORK/self.h5" \
           "checkpoint export $WORK/self.h5 --out $WORK/self.h5"; do
  rc=0; "$TRAINER" $cmd > "$WORK/self.txt" 2>&1 || rc=$?
  [ $rc -eq 1 ] || { cat "$WORK/self.txt"; fail "trainer $cmd: exit $rc, expected 1"; }
  expect_in "$WORK/self.txt" "--out '$WORK/self.h5' is the checkpoint"
done
[ "$(md5sum < "$WORK/self.h5")" = "$sum" ] || fail "the checkpoint changed"
# Settings that train something else than they seem to ask: warned (10 steps per epoch).
small_run 1 odd data.train_limit=640 data.eval_limit=100 train.epochs=1 train.max_steps=20 \
  schedule.warmup_epochs=2 data.eval_split=train > "$WORK/odd.txt" 2>&1 || { cat "$WORK/odd.txt"; fail "odd"; }
expect_in "$WORK/odd.txt" "train.max_steps = 20 but train.epochs = 1 x 10 steps per epoch end the run at step 10"
expect_in "$WORK/odd.txt" "schedule.warmup_epochs = 2 is 20 steps, the whole run (10 steps)"
expect_in "$WORK/odd.txt" "data.train_split and data.eval_split are both 'train'"
# A bad command line exits 1 (on every rank), bad input 2.
for args in "configs/quickstart.toml --foo" "eval configs/quickstart.toml" "models fmnist_cnn --bogus" \
            "models fmnist_cnn --image-size" "checkpoint foo x" "report"; do
  rc=0; "${MPI[@]}" -np 2 "$TRAINER" $args > "$WORK/usage.txt" 2>&1 || rc=$?
  [ $rc -eq 1 ] || { cat "$WORK/usage.txt"; fail "trainer $args: exit $rc, expected 1"; }
done
# A run at another input size (augment.image_size, eval_crop): its exported weights file carries
# the model name and that input, so predict of the file (no --model) equals predict of the
# checkpoint bitwise (it ran at the stored 28 px, silently, and needed --model).
small_run 1 sized data.train_limit=256 data.eval_limit=200 train.epochs=1 augment.image_size=36 \
  augment.eval_crop=0.875 > "$WORK/sized.txt" 2>&1 || { cat "$WORK/sized.txt"; fail "train at 36 px"; }
sized="$WORK/sized/$(cat "$WORK/sized/latest")"
"$TRAINER" checkpoint export "$sized" --out "$WORK/sized_w.h5" > "$WORK/sized_export.txt"
expect_in "$WORK/sized_export.txt" "input 36 px, eval crop 0.875"
"$TRAINER" predict --checkpoint "$sized" --data "$DATA" --out "$WORK/ps1.h5" > /dev/null
"$TRAINER" predict --checkpoint "$WORK/sized_w.h5" --data "$DATA" --out "$WORK/ps2.h5" > "$WORK/ps2.txt" 2>&1 ||
  { cat "$WORK/ps2.txt"; fail "predict of an exported weights file without --model"; }
/usr/bin/python3 -c "import sys, h5py, numpy as np; sys.exit(0 if np.array_equal(*(h5py.File(f, 'r')['logits'][()] for f in sys.argv[1:])) else 1)" \
  "$WORK/ps1.h5" "$WORK/ps2.h5" || fail "predict: the 36 px checkpoint and its export differ"
# eval takes that input from the checkpoint too (it built the config's 28 px model and could not
# load it; a CNN that pools globally evaluated at 28 px silently): its top-1 is predict's.
"$TRAINER" eval configs/quickstart.toml --checkpoint "$sized" data.path="$DATA" data.eval_limit=1000 \
  > "$WORK/sized_eval.txt" 2>&1 || { cat "$WORK/sized_eval.txt"; fail "eval of the 36 px checkpoint"; }
expect_in "$WORK/sized_eval.txt" "augment.image_size = 36 from $sized's run (the config says 0"
expect_in "$WORK/sized_eval.txt" "augment.eval_crop = 0.875 from $sized's run (the config says 1"
/usr/bin/python3 - "$WORK/ps1.h5" "$WORK/sized_eval.txt" <<'PY'
import sys, re, h5py
p = h5py.File(sys.argv[1], "r")
top1 = re.search(r"top-1 ([0-9.]+)%", open(sys.argv[2]).read()).group(1)
mine = 100 * (p["logits"][:1000].argmax(1) == p["labels"][:1000]).mean()
assert f"{mine:.2f}" == top1, (mine, top1)
print("eval of the 36 px checkpoint reproduces its predict:", top1)
PY
# The command line still chooses another size (a test at another resolution): said, and taken:
# fmnist_cnn's classifier takes a fixed feature count, so at 28 px the 36 px weights do not fit,
# and the error says the model was built for 28 px (1152 inputs, 2048 at 36).
rc=0; "$TRAINER" eval configs/quickstart.toml --checkpoint "$sized" data.path="$DATA" augment.image_size=28 \
  data.eval_limit=100 > "$WORK/sized_eval2.txt" 2>&1 || rc=$?
expect_in "$WORK/sized_eval2.txt" "evaluating at augment.image_size = 28 (the command line); its run used 36"
[ $rc -eq 2 ] || { cat "$WORK/sized_eval2.txt"; fail "eval of 36 px weights at 28 px: exit $rc, expected 2"; }
expect_in "$WORK/sized_eval2.txt" "has shape [10, 2048], the model expects [10, 1152]"
# --out naming a run folder's own files (its latest pointer, a checkpoint, the metrics): refused,
# before predict's pass over the split; an --out in a missing folder likewise.
for out in "$WORK/sized/latest" "$WORK/sized/eval-latest.h5" "$WORK/sized/metrics.csv"; do
  for cmd in "predict --checkpoint $sized --data $DATA --out $out" "checkpoint export $sized --out $out"; do
    rc=0; "$TRAINER" $cmd > "$WORK/own.txt" 2>&1 || rc=$?
    [ $rc -eq 1 ] || { cat "$WORK/own.txt"; fail "trainer $cmd: exit $rc, expected 1"; }
    expect_in "$WORK/own.txt" "--out '$out' is one of a run folder's own files"
  done
done
[ "$(cat "$WORK/sized/latest")" = "$(basename "$sized")" ] || fail "the latest pointer changed"
rc=0; "$TRAINER" predict --checkpoint "$sized" --data "$DATA" --out "$WORK/no/such/p.h5" > "$WORK/own.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/own.txt"; fail "predict --out in a missing folder: exit $rc, expected 2"; }
expect_in "$WORK/own.txt" "trainer predict --out '$WORK/no/such/p.h5': folder '$WORK/no/such' does not exist"
# A latest pointer whose text is not a checkpoint's name: named as such.
mkdir -p "$WORK/ptr" && printf 'garbage\n' > "$WORK/ptr/latest"
rc=0; "$TRAINER" checkpoint info "$WORK/ptr" > "$WORK/ptr.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/ptr.txt"; fail "checkpoint info of a bad pointer: exit $rc"; }
expect_in "$WORK/ptr.txt" "'$WORK/ptr/latest' does not name a checkpoint"
# report runs as one process (two ranks renamed one report.html.tmp, one failing with exit 3).
rc=0; "${MPI[@]}" -np 2 "$TRAINER" report "$WORK/sized" > "$WORK/rep2.txt" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$WORK/rep2.txt"; fail "report under mpirun -np 2: exit $rc, expected 1"; }
expect_in "$WORK/rep2.txt" "trainer report runs as one process, not 2 ranks"

# --device: auto (the default) is the CPU without a GPU, the same logits as --device cpu; cuda
# where none can run is one clear error (exit 2); an unknown device likewise.
"$TRAINER" predict --checkpoint "$ckpt" --data "$DATA" --out "$WORK/pred_cpu.h5" --device cpu > "$WORK/pcpu.txt" 2>&1 ||
  { cat "$WORK/pcpu.txt"; fail "predict --device cpu"; }
expect_in "$WORK/pcpu.txt" "(test, cpu)"
/usr/bin/python3 -c "import sys, h5py, numpy as np; sys.exit(0 if np.array_equal(*(h5py.File(f, 'r')['logits'][()] for f in sys.argv[1:])) else 1)" \
  "$WORK/pred.h5" "$WORK/pred_cpu.h5" || fail "predict --device cpu differs from the default"
if ! nvidia-smi -L > /dev/null 2>&1; then
  rc=0; "$TRAINER" predict --checkpoint "$ckpt" --data "$DATA" --out "$WORK/pc.h5" --device cuda > "$WORK/pcuda.txt" 2>&1 || rc=$?
  [ $rc -eq 2 ] || { cat "$WORK/pcuda.txt"; fail "predict --device cuda without a GPU: exit $rc"; }
  expect_in "$WORK/pcuda.txt" "--device cuda: "
  [ ! -e "$WORK/pc.h5" ] || fail "predict --device cuda without a GPU wrote its output"
fi
rc=0; "$TRAINER" predict --checkpoint "$ckpt" --data "$DATA" --out "$WORK/pt.h5" --device tpu > "$WORK/ptpu.txt" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$WORK/ptpu.txt"; fail "predict --device tpu: exit $rc, expected 1"; }
expect_in "$WORK/ptpu.txt" "--device tpu is not auto, cpu or cuda"

# The progress bar (metrics.progress = "auto"): drawn for a process started by hand on a terminal
# (script gives it one; MPI_Init then sets PMIX_RANK, which hid the bar), not for one launched by
# mpirun on the same terminal (every rank's output is a pseudo-terminal there, logs included).
bar_args="configs/quickstart.toml data.path=$DATA run.out_dir=$WORK train.epochs=1 data.train_limit=640 data.eval_limit=100 train.threads=1"
nolauncher=(env -u SLURM_JOB_ID -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_RANK)  # the suite may run under one
"${nolauncher[@]}" script -qec "$TRAINER $bar_args run.name=bar" /dev/null > "$WORK/bar.txt" 2>&1 || { cat "$WORK/bar.txt"; fail "run on a terminal"; }
grep -q 'epoch 1/1 \[#' "$WORK/bar.txt" || { cat "$WORK/bar.txt"; fail "no progress bar on a terminal"; }
"${nolauncher[@]}" script -qec "${MPI[*]} -np 1 $TRAINER $bar_args run.name=bar2" /dev/null > "$WORK/bar2.txt" 2>&1 || { cat "$WORK/bar2.txt"; fail "mpirun on a terminal"; }
expect_in "$WORK/bar2.txt" "test top-1 accuracy"
! grep -q 'epoch 1/1 \[#' "$WORK/bar2.txt" || fail "a progress bar under mpirun"
rc=0; "$TRAINER" predict --checkpoint "$ckpt" --data "$DATA" --out "$WORK/pv.h5" --split val > "$WORK/pval.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/pval.txt"; fail "predict --split val: exit $rc"; }
expect_in "$WORK/pval.txt" "has no split 'val' (its index.toml lists 'train', 'test')"
# The bench binaries print their usage for --help (bench_checkpoint ran and wrote 250 MB) and
# refuse an unknown option.
bindir=$(dirname "$TRAINER"); mkdir -p "$WORK/benchcwd"
for b in bench_checkpoint bench_allreduce bench_step bench_loader allreduce_sweep; do
  (cd "$WORK/benchcwd" && "$bindir/$b" --help > "$WORK/bhelp.txt" 2>&1) || { cat "$WORK/bhelp.txt"; fail "$b --help failed"; }
  expect_in "$WORK/bhelp.txt" "usage:"
done
[ -z "$(ls -A "$WORK/benchcwd")" ] || fail "a bench --help wrote files: $(ls "$WORK/benchcwd")"
for bad in "--bogus 1" "--repeat 0" "--repeat"; do
  rc=0; (cd "$WORK/benchcwd" && "$bindir/bench_checkpoint" $bad > "$WORK/bbad.txt" 2>&1) || rc=$?
  [ $rc -eq 1 ] && [ -z "$(ls -A "$WORK/benchcwd")" ] || { cat "$WORK/bbad.txt"; fail "bench_checkpoint $bad: exit $rc"; }
done
expect_in "$WORK/bbad.txt" "bench_checkpoint: unknown option or one without its value: '--repeat'"
expect_in "$WORK/bbad.txt" "hint: options: --dir --models --repeat"
rc=0; "${MPI[@]}" -np 2 "$bindir/bench_allreduce" --bucket-mb 2 --repeat x > "$WORK/bbad.txt" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$WORK/bbad.txt"; fail "bench_allreduce --repeat x: exit $rc"; }
expect_in "$WORK/bbad.txt" "option --repeat needs a positive integer, got 'x'"
[ "$(grep -c 'needs a positive integer' "$WORK/bbad.txt")" = 1 ] || { cat "$WORK/bbad.txt"; fail "bench_allreduce: the usage error is not printed once (rank 0)"; }
# --help anywhere on trainer's command line prints the usage (eval, predict ...).
for args in "eval --help" "predict --help" "configs/quickstart.toml -h"; do
  "$TRAINER" $args > "$WORK/thelp.txt" 2>&1 || { cat "$WORK/thelp.txt"; fail "trainer $args failed"; }
  expect_in "$WORK/thelp.txt" "trainer eval CONFIG.toml --checkpoint PATH"
done
echo PASS
