# Training recipes on real data (issue 7), two ranks, the quickstart CNN on 6,400 Fashion-MNIST
# images: every optimizer learns; EMA + bf16 autocast + clipping + the step schedule train, save
# /ema, evaluate and export the averaged weights, and resume bitwise; model.freeze keeps frozen
# tensors bitwise fixed; the metrics files and the report exist and hold the detailed metrics;
# evaluation metrics at 2 ranks equal those at 1 rank; bad combinations fail naming the key.
source "$(dirname "$0")/common.sh"
base=(data.train_limit=6400 data.eval_limit=2000 train.epochs=1 train.log_every=10)

# 1. Every optimizer learns (test top-1 above 60 % after one epoch of 6,400 images).
declare -A opt_args=(
  [sgd]="optim.lr=0.2"
  [adamw]="optim.lr=0.002 optim.weight_decay=0.05"
  [rmsprop]="optim.lr=0.004 optim.eps=0.001 optim.weight_decay=1e-5"
  [lamb]="optim.lr=0.01 optim.weight_decay=0.01"
  [lars]="optim.lr=2.0 optim.trust_coef=0.02 optim.weight_decay=5e-4"
)
for opt in sgd adamw rmsprop lamb lars; do
  # shellcheck disable=SC2086
  small_run 2 "opt_$opt" "${base[@]}" optim.name=$opt ${opt_args[$opt]} > "$WORK/$opt.txt" 2>&1 ||
    { cat "$WORK/$opt.txt"; fail "training with optim.name=$opt"; }
  top1=$(grep -ao 'test top-1 accuracy [0-9.]*' "$WORK/$opt.txt" | grep -o '[0-9.]*$')
  echo "optim.name=$opt: test top-1 $top1 %"
  python3 -c "import sys; sys.exit(0 if $top1 > 60 else 1)" || { cat "$WORK/$opt.txt"; fail "$opt: top-1 $top1 % <= 60 %"; }
done

# 2. EMA, bf16, clipping and the step schedule; stopped at step 20 and resumed = uninterrupted.
recipe=("${base[@]}" train.ema_decay=0.99 train.precision=bf16 optim.clip_grad_norm=1.0
        schedule.name=step schedule.decay_epochs=0.5 schedule.decay_rate=0.5
        checkpoint.every_steps=20 checkpoint.keep_every=20 metrics.peak_tflops=1.0)
small_run 2 ema "${recipe[@]}" > "$WORK/ema.txt" 2>&1 || { cat "$WORK/ema.txt"; fail "EMA/bf16/clip run"; }
expect_in "$WORK/ema.txt" "(EMA weights)"
/usr/bin/python3 - "$WORK/ema/metrics.jsonl" <<'PY' || fail "grad_norm in the train records"
import json, math, sys
norms = [r["grad_norm"] for r in map(json.loads, open(sys.argv[1])) if r["kind"] == "train"]
assert norms and all(math.isfinite(g) and g > 0 for g in norms), norms
assert max(norms) > 1.0, f"grad_norm is the norm before clipping (limit 1.0): {norms}"
print(f"grad_norm reported in {len(norms)} train records, {min(norms):.3g}-{max(norms):.3g}")
PY
small_run 2 ema2 "${recipe[@]}" train.stop_at_step=20 > "$WORK/ema2a.txt" 2>&1 || { cat "$WORK/ema2a.txt"; fail "EMA run stopped at 20"; }
small_run 2 ema2 "${recipe[@]}" > "$WORK/ema2b.txt" 2>&1 || { cat "$WORK/ema2b.txt"; fail "EMA run resumed"; }
expect_in "$WORK/ema2b.txt" "resumed from"
last=$(cat "$WORK/ema/latest")
[[ "$(cat "$WORK/ema2/latest")" == "$last" ]] || fail "the resumed run ended at another step"
compare "$WORK/ema/$last" "$WORK/ema2/$last" > /dev/null || fail "resumed EMA run differs (model, optimizer or /ema)"
"$TRAINER" checkpoint export "$WORK/ema/$last" --out "$WORK/ema_w.h5" > "$WORK/export.txt"
expect_in "$WORK/export.txt" "EMA weights"
"$TRAINER" checkpoint export "$WORK/ema/$last" --out "$WORK/raw_w.h5" --no-ema > /dev/null
/usr/bin/python3 - "$WORK/ema/$last" "$WORK/ema_w.h5" "$WORK/raw_w.h5" <<'PY'
import sys, h5py, numpy as np
ck, ema_w, raw_w = (h5py.File(p, "r") for p in sys.argv[1:])
assert set(ck["ema"].keys()) <= set(ck["model"].keys()) and len(ck["ema"]) > 0
assert any(not np.array_equal(ck["ema"][k][()], ck["model"][k][()]) for k in ck["ema"]), "EMA equals the live weights"
for k in ck["ema"]:
    assert np.array_equal(ema_w["model"][k][()], ck["ema"][k][()]), k
    assert np.array_equal(raw_w["model"][k][()], ck["model"][k][()]), k
# BatchNorm statistics are averaged with the weights (timm's ModelEma); counters are not.
assert any(k.endswith("running_var") for k in ck["ema"]), list(ck["ema"])
for k in ck["model"]:  # what /ema lacks comes from the live model in both exports
    if k not in ck["ema"]:
        assert k.endswith("num_batches_tracked"), k
        assert np.array_equal(ema_w["model"][k][()], ck["model"][k][()]), k
print(f"/ema holds {len(ck['ema'])} averaged tensors; export takes them, --no-ema the live ones")
PY
# Evaluation and inference take the EMA weights, as the run's own evaluations did: trainer eval
# (a config without EMA, in the run's bf16) reproduces its final top-1, and --no-ema uses the live
# weights; predict of the checkpoint equals predict of the EMA export, with --no-ema that of the
# live export (bitwise); an exported file names its model, so predict needs no --model.
run_top1=$(grep -ao 'test top-1 accuracy [0-9.]*' "$WORK/ema.txt" | tail -1 | grep -o '[0-9.]*$')
for w in ema raw; do
  flag=(); [ $w = ema ] || flag=(--no-ema)
  "$TRAINER" eval configs/quickstart.toml --checkpoint "$WORK/ema/$last" "${flag[@]}" data.path="$DATA" \
    "${base[@]}" train.precision=bf16 > "$WORK/eval_$w.txt" 2>&1 || { cat "$WORK/eval_$w.txt"; fail "eval ($w)"; }
  "$TRAINER" predict --checkpoint "$WORK/ema/$last" "${flag[@]}" --data "$DATA" --out "$WORK/pc_$w.h5" > "$WORK/pc_$w.txt" 2>&1 ||
    { cat "$WORK/pc_$w.txt"; fail "predict of the checkpoint ($w)"; }
  "$TRAINER" predict --checkpoint "$WORK/${w}_w.h5" --data "$DATA" --out "$WORK/pw_$w.h5" > "$WORK/pw_$w.txt" 2>&1 ||
    { cat "$WORK/pw_$w.txt"; fail "predict of the exported weights ($w)"; }
  /usr/bin/python3 -c "import sys, h5py, numpy as np; sys.exit(0 if np.array_equal(*(h5py.File(f, 'r')['logits'][()] for f in sys.argv[1:])) else 1)" \
    "$WORK/pc_$w.h5" "$WORK/pw_$w.h5" || fail "predict: checkpoint ($w) and its export differ"
done
expect_in "$WORK/eval_ema.txt" "its EMA weights"
expect_in "$WORK/eval_ema.txt" "top-1 $run_top1%"
expect_in "$WORK/eval_raw.txt" "live weights: --no-ema"
expect_in "$WORK/pc_ema.txt" "(EMA weights)"
/usr/bin/python3 -c "import sys, h5py, numpy as np; sys.exit(1 if np.array_equal(*(h5py.File(f, 'r')['logits'][()] for f in sys.argv[1:])) else 0)" \
  "$WORK/pc_ema.h5" "$WORK/pc_raw.h5" || fail "predict --no-ema gave the EMA weights' logits"
# A checkpoint from before the EMA averaged statistics (its /ema holds parameters only) resumes:
# the statistics' average starts at its live statistics. Such builds wrote no group manifests.
cp "$WORK/ema/$last" "$WORK/old_ema.h5"
/usr/bin/python3 - "$WORK/old_ema.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    for k in [k for k in f["ema"] if "running_" in k]:
        del f["ema"][k]
    for g in ("model", "optimizer", "ema"):
        for a in ("dataset_count", "names_crc32"):
            del f[g].attrs[a]
    del f["trainer"].attrs["groups"]
PY
small_run 2 old_ema "${recipe[@]}" train.resume="$WORK/old_ema.h5" > "$WORK/old_ema.txt" 2>&1 ||
  { cat "$WORK/old_ema.txt"; fail "resume from a checkpoint whose /ema holds parameters only"; }
expect_in "$WORK/old_ema.txt" "holds EMA parameters only"

# 3. model.freeze: frozen tensors stay bitwise at their initial values, the others train.
small_run 2 frozen "${base[@]}" 'model.freeze=["features.0.*", "features.1.*"]' train.max_steps=20 \
  checkpoint.every_steps=10 checkpoint.keep_last=0 > "$WORK/frozen.txt" 2>&1 || { cat "$WORK/frozen.txt"; fail "frozen run"; }
expect_in "$WORK/frozen.txt" "3 of 11 parameter tensors frozen; backward executes 73.9 % of the whole model's products"
/usr/bin/python3 - "$WORK/frozen/ckpt-step0000000010.h5" "$WORK/frozen/ckpt-step0000000020.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
frozen = ["features.0.weight", "features.1.weight", "features.1.bias",
          "features.1.running_mean", "features.1.running_var"]  # frozen BatchNorm: statistics too
for k in frozen:
    assert np.array_equal(a["model"][k][()], b["model"][k][()]), f"frozen {k} changed"
    assert k not in a["optimizer"], f"frozen {k} has optimizer state"
for k in ["features.4.weight", "features.5.running_mean", "classifier.weight"]:
    assert not np.array_equal(a["model"][k][()], b["model"][k][()]), f"{k} did not train"
print(f"{len(frozen)} frozen tensors unchanged between steps 10 and 20")
PY

# 4. Metrics files and the report; evaluation at 2 ranks equals 1 rank (reducible counts).
run=$WORK/ema
head -1 "$run/metrics.csv" | grep -q '^kind,step,epoch' || fail "metrics.csv header"
grep -q '^eval,' "$run/metrics.csv" || fail "no eval row in metrics.csv"
expect_in "$run/metrics.jsonl" '"per_class_ap":['
expect_in "$run/metrics.jsonl" '"miou":'
expect_in "$run/metrics.jsonl" '"tflops_per_rank":'
expect_in "$run/metrics.jsonl" '"mfu":'
expect_in "$run/report.html" "MFU"
expect_in "$run/report.html" "PR curves"
expect_in "$run/report.html" "Confusion matrix"
rm "$run/report.html"
"$TRAINER" report "$run" > /dev/null && [[ -s "$run/report.html" ]] || fail "trainer report"
/usr/bin/python3 - "$run/eval-latest.h5" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
cm = f["eval/confusion"][()]
assert cm.sum() == 2000, cm.sum()
h = f["eval/score_histogram"][()]
assert h.shape[0] == 10 and h.shape[1] == 2 and h[:, 1, :].sum() == 2000 and h.sum() == 2000 * 10
print("eval-latest.h5: confusion and score histograms count every image")
PY
ck="$run/$(cat "$run/latest")"
for np_ in 1 2; do
  "${MPI[@]}" -np $np_ "$TRAINER" eval configs/quickstart.toml --checkpoint "$ck" data.path="$DATA" \
    run.out_dir="$WORK" run.name="eval$np_" train.threads=1 data.eval_limit=2000 train.ema_decay=0.99 \
    > "$WORK/eval$np_.txt" 2>&1 || { cat "$WORK/eval$np_.txt"; fail "trainer eval at $np_ ranks"; }
done
m1=$(grep -ao 'top-1 .*ECE [0-9.]*' "$WORK/eval1.txt"); m2=$(grep -ao 'top-1 .*ECE [0-9.]*' "$WORK/eval2.txt")
echo "1 rank: $m1"; echo "2 ranks: $m2"
[[ -n "$m1" && "$m1" == "$m2" ]] || fail "evaluation metrics differ between 1 and 2 ranks"
grep -q "<- worst" "$WORK/eval1.txt" || fail "trainer eval does not mark the worst class"

# 5. Bad combinations: one clear error naming the key, exit 2 on every rank, printed once.
declare -A bad_error=(
  ["train.precision=fp16"]='train.precision = "fp16" needs a CUDA device (CPU autocast supports bfloat16 only)'
  ['model.freeze=["nothing.*"]']='model.freeze pattern "nothing.*" matches no parameter')
for bad in "${!bad_error[@]}"; do
  set +e
  small_run 2 bad "${base[@]}" "$bad" > "$WORK/bad.txt" 2>&1; rc=$?
  set -e
  [[ $rc == 2 ]] || { cat "$WORK/bad.txt"; fail "$bad: exit $rc, expected 2"; }
  [ "$(count_in "$WORK/bad.txt" "error: configs/quickstart.toml with its command-line overrides: ${bad_error[$bad]}")" = 1 ] ||
    { cat "$WORK/bad.txt"; fail "$bad: not one error naming the key"; }
done
echo "recipes: ok"
