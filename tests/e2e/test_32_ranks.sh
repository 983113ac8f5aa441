# The signature command's shape at 32 ranks on this small machine: `mpirun -np 32 --oversubscribe
# trainer configs/tiny.toml` runs to completion (setup agreement, 32-way all-reduce, evaluation
# split in 32 parts, one checkpoint by rank 0).
source "$(dirname "$0")/common.sh"
"${MPI[@]}" -np 32 "$TRAINER" configs/tiny.toml data.path="$DATA" run.out_dir="$WORK" \
  > "$WORK/out.txt" 2>&1 || { cat "$WORK/out.txt"; fail "32 ranks"; }
expect_in "$WORK/out.txt" "32 ranks (32 per node)"
expect_in "$WORK/out.txt" "gradient buckets 4 MB"  # dist.bucket_mb = 0 on one node
expect_in "$WORK/out.txt" "32 ranks x batch 8 = 256"
expect_in "$WORK/out.txt" "done: 8 steps"
expect_in "$WORK/out.txt" "on 512 test images"
"$TRAINER" checkpoint info "$WORK/tiny/ckpt-step0000000008.h5" | tee "$WORK/info.txt"
expect_in "$WORK/info.txt" "written by    32 ranks x batch 8"
