# The command line: --help documents every subcommand; models lists the registry; checkpoint info
# verifies a checkpoint; eval reproduces the training run's final accuracy.
source "$(dirname "$0")/common.sh"
"$TRAINER" --help > "$WORK/help.txt"
for cmd in "trainer CONFIG.toml" "trainer eval" "trainer models" "trainer checkpoint info" "--config-reference"; do
  expect_in "$WORK/help.txt" "$cmd"
done
"$TRAINER" models > "$WORK/models.txt"
"$TRAINER" models fmnist_cnn --classes 10 --in-channels 1 --image-size 28 >> "$WORK/models.txt"
expect_in "$WORK/models.txt" "fmnist_cnn"
expect_in "$WORK/models.txt" "total 104426 parameters"
rc=0; "$TRAINER" > /dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "no arguments: exit $rc, expected 1"
small_run 2 cli data.train_limit=1280 data.eval_limit=1000 train.epochs=1 > "$WORK/train.txt" 2>&1 || { cat "$WORK/train.txt"; fail "train"; }
ckpt="$WORK/cli/$(cat "$WORK/cli/latest")"
"$TRAINER" checkpoint info "$ckpt" > "$WORK/info.txt"
cat "$WORK/info.txt"
expect_in "$WORK/info.txt" "verified"
expect_in "$WORK/info.txt" "step 10, epoch 1"
top1=$(grep -o 'test top-1 accuracy [0-9.]*%' "$WORK/train.txt" | grep -o '[0-9.]*%')
"${MPI[@]}" -np 2 "$TRAINER" eval configs/quickstart.toml --checkpoint "$ckpt" data.path="$DATA" \
  data.eval_limit=1000 run.out_dir="$WORK" run.name=evalrun > "$WORK/eval.txt" 2>&1 || { cat "$WORK/eval.txt"; fail "eval"; }
cat "$WORK/eval.txt"
expect_in "$WORK/eval.txt" "top-1 $top1"
# A damaged checkpoint is refused with its name.
cp "$ckpt" "$WORK/bad.h5"; truncate -s 5000 "$WORK/bad.h5"
rc=0; "$TRAINER" checkpoint info "$WORK/bad.h5" > "$WORK/bad.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "damaged checkpoint: exit $rc"
expect_in "$WORK/bad.txt" "$WORK/bad.h5"
