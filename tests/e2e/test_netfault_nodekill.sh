# A whole node killed mid-training (SIGKILL to every process in it: both ranks and Open MPI's
# daemon), on 3 network-namespace nodes x 2 ranks (tiny_cnn, dist.timeout_s = 5, checkpoint every
# 5 steps, the kill after step 15): the job ends on the surviving nodes within timeout + 10 s, the
# watchdog names ranks 2 and 3 (node2) and the collective they missed, the last checkpoint verifies
# and the run resumes on the two surviving nodes (3 ranks each).
# Open MPI settings: the harness's defaults (see cluster/netns/README.md).
source "$(dirname "$0")/common.sh"
source "$SOURCE_DIR/cluster/netns/e2e.sh"
netns_or_skip
t_all=$(now)
cluster_up 3
timeout_s=5
args=(model.name=tiny_cnn data.train_limit=12000 data.eval_limit=100 train.batch_size=16 train.epochs=20
      train.log_every=5 dist.timeout_s=$timeout_s checkpoint.every_steps=5)
log="$WORK/kill2.txt"
t0=$(now)
ctrain kill2 -np 6 --host node1:2,node2:2,node3:2 --map-by slot -- "${args[@]}" > "$log" 2>&1 &
pid=$!
wait_for_line "$log" " step 15/" 1 "$pid"
echo "step 15 reached $(since "$t0") s after the start"
"$CLUSTER" kill "$CL" node2
t0=$(now)
ended_within "$pid" "$t0" $((timeout_s + 10)) "$log"
echo "node2 killed: the job ended on every node $TOOK s later (exit $RC)"
grep -aE "lost communication|Remote daemon|Peer host|watchdog|^  rank " "$log" || true
expect_in "$log" "watchdog: collective #"
for r in 2 3; do
  grep -aqE "rank $r \(node2\): silent for" "$log" || { cat "$log"; fail "rank $r (node2) not named"; }
done
resume_on kill2 node1:3,node3:3 5 "${args[@]}"
echo "test_netfault_nodekill: $(since "$t_all") s"
