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
# of 32 amplifies rounding: LibTorch's own NCHW and channels-last runs differ by 3e-5 at step 2
# and by 1 % at step 4 (Winograd against LibTorch: 4e-7 at step 2).
for c in auto libtorch; do
  resnet_run "steps_$c" train.cpu_conv=$c train.max_steps=2 train.log_every=1 data.eval_limit=200 \
    train.batch_size=32 optim.lr=0.01 optim.weight_decay=0 schedule.warmup_epochs=0
done
expect_in "$WORK/steps_libtorch.txt" "3x3 convolutions: LibTorch)"
if ! grep -qF "3x3 convolutions: Winograd F(2x2, 3x3)" "$WORK/steps_auto.txt"; then
  skip "this process has no oneDNN sgemm (auto chose LibTorch's convolutions)"
fi
same_step_losses "$WORK/steps_auto/metrics.jsonl" "$WORK/steps_libtorch/metrics.jsonl" 2 2e-5 \
  "Winograd against LibTorch"
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
