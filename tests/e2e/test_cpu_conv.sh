# 3x3 convolutions by Winograd's F(2x2, 3x3) (train.cpu_conv: ResNet's, the quickstart CNN's) on
# real data under mpirun -np 2: "auto" picks Winograd where oneDNN computes the matrix products
# (the start-up line says which), its training losses step by step equal those of LibTorch's
# direct convolution to float rounding (same weights, same batches, SGD), a short run of resnet18
# learns Fashion-MNIST with it, and an unknown value is one error naming the key.
source "$(dirname "$0")/common.sh"
conv_run() {  # conv_run NAME [overrides...]: the quickstart's model unless one is given
  local name=$1; shift
  small_run 2 "$name" augment.hflip=false checkpoint.every_epochs=0 "$@" \
    > "$WORK/$name.txt" 2>&1 || { cat "$WORK/$name.txt"; fail "$name failed"; }
}
resnet_run() { local name=$1; shift; conv_run "$name" model.name=resnet18 "$@"; }
# Same start, same batches: the first two steps' losses with either convolution ("auto" first:
# where it chooses LibTorch's there is nothing to compare). Two steps test the forward pass and
# one update through every gradient; later steps are not compared, because ResNet-18 on batches
# of 32 amplifies rounding: LibTorch's own NCHW and channels-last runs differ at step 2 by 3e-5 to
# 1e-4 relative, as the batches fall (and by 1 % at step 4). So step 1 (the forward) agrees to
# 2e-5, and step 2 lies no further from LibTorch's channels-last run than 2e-5 plus twice
# LibTorch's own NCHW-to-channels-last gap (measured on 2026-12-02's batches: Winograd 1.0e-4 from
# channels-last and 2e-7 from NCHW; LibTorch's gap 1.0e-4).
for c in auto libtorch; do
  resnet_run "steps_$c" train.cpu_conv=$c train.max_steps=2 train.log_every=1 data.eval_limit=200 \
    train.batch_size=32 optim.lr=0.01 optim.weight_decay=0 schedule.warmup_epochs=0
done
resnet_run steps_nchw train.cpu_conv=libtorch train.channels_last=false train.max_steps=2 train.log_every=1 \
  data.eval_limit=200 train.batch_size=32 optim.lr=0.01 optim.weight_decay=0 schedule.warmup_epochs=0
expect_in "$WORK/steps_libtorch.txt" "3x3 convolutions: LibTorch)"
if ! grep -qF "3x3 convolutions: Winograd F(2x2, 3x3)" "$WORK/steps_auto.txt"; then
  skip "this process has no oneDNN sgemm (auto chose LibTorch's convolutions)"
fi
/usr/bin/python3 - "$WORK"/steps_{auto,libtorch,nchw}/metrics.jsonl <<'PY' || fail "Winograd against LibTorch"
import json, sys
w, cl, nchw = ([r["loss"] for r in map(json.loads, open(p)) if r["kind"] == "train"] for p in sys.argv[1:4])
assert len(w) == len(cl) == len(nchw) == 2, (w, cl, nchw)
assert abs(w[0] - cl[0]) <= 2e-5 * cl[0], f"step 1: Winograd {w[0]} vs LibTorch {cl[0]}"
gap = abs(cl[1] - nchw[1]) / cl[1]
assert abs(w[1] - cl[1]) <= (2e-5 + 2 * gap) * cl[1], f"step 2: Winograd {w[1]} vs LibTorch {cl[1]} (NCHW {nchw[1]})"
assert w[1] != w[0], w
print(f"Winograd against LibTorch: step 1 {w[0]} vs {cl[0]}; step 2 {w[1]} vs {cl[1]} (LibTorch NCHW {nchw[1]})")
PY
# The quickstart CNN (Winograd in its 32->64 and 64->128 layers): without residual connections it
# amplifies rounding less: six steps agree (within 1e-6 relative measured).
for c in auto libtorch; do
  conv_run "quick_$c" train.cpu_conv=$c train.max_steps=6 train.log_every=1 data.eval_limit=200
done
same_step_losses "$WORK/quick_auto/metrics.jsonl" "$WORK/quick_libtorch/metrics.jsonl" 6 1e-5 \
  "quickstart CNN, Winograd against LibTorch"
# It learns: one epoch of 6,400 images at 28 px, 100 steps of 2 x 32, 2,000 test images (73 %
# measured; chance is 10 %).
resnet_run learns data.train_limit=6400 data.eval_limit=2000 train.epochs=1 train.batch_size=32 \
  train.log_every=50 schedule.warmup_epochs=0.1
final_top1_above "$WORK/learns/metrics.jsonl" 2000 0.62 "resnet18, one epoch of 6,400 images"
expect_error "'train.cpu_conv' = \"fft\" is not one of" configs/quickstart.toml data.path="$DATA" \
  train.cpu_conv=fft
echo "ok"
