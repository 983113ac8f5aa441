# A slow link: node2's cable rate-limited to 20 Mbit/s both ways (tc tbf; this kernel has no netem)
# on 2 network-namespace nodes x 1 rank (fmnist_cnn, 0.42 MB of gradients per step): training
# completes with bitwise the result of the unthrottled run, and the share of the step time the
# training thread waited for collectives (comm_wait_s / window_s in metrics.jsonl) grows.
source "$(dirname "$0")/common.sh"
source "$SOURCE_DIR/cluster/netns/e2e.sh"
netns_or_skip tbf
t_all=$(now)
cluster_up 2
args=(data.train_limit=12000 data.eval_limit=100 train.batch_size=32 train.max_steps=24 train.log_every=6)
run() {  # run NAME
  local t; t=$(now)
  ctrain "$1" -np 2 --host node1:1,node2:1 -- "${args[@]}" > "$WORK/$1.txt" 2>&1 || { cat "$WORK/$1.txt"; fail "$1"; }
  echo "$1: $(since "$t") s, communication wait $(train_share "$WORK/$1" comm_wait_s) of the step time"
}
run fast
"$CLUSTER" rate "$CL" node2 20mbit
run slow
"$CLUSTER" rate "$CL" node2 off
fast=$(train_share "$WORK/fast" comm_wait_s); slow=$(train_share "$WORK/slow" comm_wait_s)
python3 -c "import sys; sys.exit(0 if $slow >= $fast + 0.15 and $slow >= 0.5 else 1)" \
  || fail "communication share $fast unthrottled -> $slow at 20 Mbit/s: expected a clear rise"
compare "$WORK/slow/ckpt-step0000000024.h5" "$WORK/fast/ckpt-step0000000024.h5" --min 8 > "$WORK/cmp.txt" \
  || { cat "$WORK/cmp.txt"; fail "the throttled run differs from the unthrottled one"; }
echo "communication share $fast -> $slow; final checkpoints bitwise equal; test_netfault_slow: $(since "$t_all") s"
