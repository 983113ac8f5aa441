# The signature command's shape at 32 ranks on this small machine: `mpirun -np 32 --oversubscribe
# trainer configs/tiny.toml` runs to completion (setup agreement, 32-way all-reduce, evaluation
# split in 32 parts, one checkpoint by rank 0), and its 8 steps end with the parameters of one
# rank with the whole batch of 256 (tiny_cnn has no BatchNorm; flips off, as their draws are
# per rank's batch; relative error <= 5e-4: 32 float32 partial sums a step, 8 steps of momentum,
# measured 2.5e-6 to 7.7e-5 per tensor, where one rank's gradients lost or counted twice would be
# ~3e-2).
source "$(dirname "$0")/common.sh"
"${MPI[@]}" -np 32 "$TRAINER" configs/tiny.toml data.path="$DATA" run.out_dir="$WORK" augment.hflip=false \
  > "$WORK/out.txt" 2>&1 || { cat "$WORK/out.txt"; fail "32 ranks"; }
expect_in "$WORK/out.txt" "32 ranks (32 per node)"
expect_in "$WORK/out.txt" "gradient buckets 4 MB"  # dist.bucket_mb = 0 on one node
expect_in "$WORK/out.txt" "32 ranks x batch 8 = 256"
expect_in "$WORK/out.txt" "done: 8 steps"
expect_in "$WORK/out.txt" "on 512 test images"
"$TRAINER" checkpoint info "$WORK/tiny/ckpt-step0000000008.h5" | tee "$WORK/info.txt"
expect_in "$WORK/info.txt" "written by    32 ranks x batch 8"
"$TRAINER" configs/tiny.toml data.path="$DATA" run.out_dir="$WORK" run.name=one augment.hflip=false \
  train.batch_size=256 > "$WORK/one.txt" 2>&1 || { cat "$WORK/one.txt"; fail "1 rank x 256"; }
expect_in "$WORK/one.txt" "1 ranks (1 per node)"
compare "$WORK/tiny/ckpt-step0000000008.h5" "$WORK/one/ckpt-step0000000008.h5" --group model --rel 5e-4 --min 4
