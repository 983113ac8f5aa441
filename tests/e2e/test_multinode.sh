# Across nodes, on a cluster of 3 network-namespace "nodes" (cluster/netns/cluster) with Open MPI's
# rsh launcher, TCP between nodes and shared memory within one:
#  - placement: 2 nodes x 2 and 3 nodes x 2 ranks, --map-by slot and --map-by node: every rank is
#    on the node the mapping says, and its local rank and ranks-per-node from
#    MPI_Comm_split_type(SHARED) (what the trainer uses) are right; the trainer says "(2 per node)"
#    and picks 25 MB gradient buckets for a job across nodes;
#  - the distributed GoogleTests pass on 2 nodes x 2;
#  - 4 ranks over 2 nodes (--map-by node: ranks 0 and 2 share a node), 6 ranks over 3 nodes and
#    3 ranks over nodes of 2 and 1 with batch B end with the same parameters as 1 rank with the whole batch (rel 1e-5);
#  - the run folder holds one checkpoint, written once by rank 0, that verifies; metrics.jsonl has
#    each logged step once and the evaluation counted every test image once.
# Skips (exit 77: CTest reports it skipped) where network namespaces are not permitted (not root).
source "$(dirname "$0")/common.sh"
source "$SOURCE_DIR/cluster/netns/e2e.sh"
netns_or_skip
t_all=$(now)
cluster_up 3

# ---- placement ---------------------------------------------------------------------------------
# A probe that asks MPI what the trainer asks (processor name, shared-memory split); without mpicc,
# Open MPI's own view (OMPI_COMM_WORLD_LOCAL_RANK) is checked instead.
cat > "$WORK/probe.c" <<'EOF'
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char** argv) {
  int rank, lrank, lsize, len;
  char host[MPI_MAX_PROCESSOR_NAME];
  MPI_Comm node;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &lrank);
  MPI_Comm_size(node, &lsize);
  MPI_Get_processor_name(host, &len);
  const char* ompi = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  printf("placement %d %s %d %d %s\n", rank, host, lrank, lsize, ompi ? ompi : "-");
  MPI_Finalize();
  return 0;
}
EOF
if command -v mpicc > /dev/null && mpicc -O1 -o "$WORK/probe" "$WORK/probe.c" 2> "$WORK/mpicc.txt"; then
  probe=("$WORK/probe")
else
  echo "no mpicc: checking Open MPI's local ranks only"
  probe=(sh -c 'echo placement $OMPI_COMM_WORLD_RANK $(hostname) $OMPI_COMM_WORLD_LOCAL_RANK $OMPI_COMM_WORLD_LOCAL_SIZE $OMPI_COMM_WORLD_LOCAL_RANK')
fi

placement() {  # placement NODES MAP: NODES x 2 ranks mapped by MAP (slot|node), checked rank by rank
  local nodes=$1 map=$2 np=$(($1 * 2)) hosts="" i
  for i in $(seq 1 "$nodes"); do hosts+="${hosts:+,}node$i:2"; done
  crun -np $np --host "$hosts" --map-by "$map" "${probe[@]}" > "$WORK/place.txt" 2>&1 \
    || { cat "$WORK/place.txt"; fail "placement run $nodes nodes --map-by $map"; }
  python3 - "$WORK/place.txt" "$nodes" "$map" <<'EOF' || { cat "$WORK/place.txt"; fail "placement $nodes nodes --map-by $map"; }
import sys
rows = sorted((l.split()[1:] for l in open(sys.argv[1]) if l.startswith("placement ")), key=lambda r: int(r[0]))
nodes, by = int(sys.argv[2]), sys.argv[3]
np = 2 * nodes
assert [int(r[0]) for r in rows] == list(range(np)), f"ranks {[r[0] for r in rows]}"
for rank, host, local, local_size, ompi_local in rows:
    r = int(rank)
    node, lr = (r // 2 + 1, r % 2) if by == "slot" else (r % nodes + 1, r // nodes)
    want = (f"node{node}", str(lr), "2", str(lr))
    assert (host, local, local_size, ompi_local) == want, f"rank {r}: got {(host, local, local_size, ompi_local)}, want {want}"
print(f"{nodes} nodes --map-by {by}: " + ", ".join(f"{r[0]}@{r[1]}/{r[2]}" for r in rows))
EOF
}
t=$(now)
placement 2 slot
placement 2 node
placement 3 slot
placement 3 node
echo "placement: $(since "$t") s"

# ---- the distributed GoogleTests on 2 nodes x 2 -------------------------------------------------
dist_tests="$BUILD_DIR/tests/dist_tests"
[ -x "$dist_tests" ] || fail "no $dist_tests (the build makes it with the tests)"
t=$(now)
crun -np 4 --host node1:2,node2:2 --map-by node --bind-to none "$dist_tests" > "$WORK/dist.txt" 2>&1 \
  || { cat "$WORK/dist.txt"; fail "dist_tests on 2 nodes x 2"; }
expect_in "$WORK/dist.txt" "PASSED"
echo "dist_tests on 2 nodes x 2: $(since "$t") s"

# ---- equivalence across nodes -------------------------------------------------------------------
t=$(now)
common=(model.name=tiny_cnn augment.hflip=false data.train_limit=2400 data.eval_limit=500
        train.max_steps=12 train.log_every=4 optim.nesterov=false)
small_run 1 one train.batch_size=24 "${common[@]}" > "$WORK/one.txt" 2>&1 || { cat "$WORK/one.txt"; fail "1 rank"; }
ctrain two_nodes -np 4 --host node1:2,node2:2 --map-by node -- train.batch_size=6 "${common[@]}" \
  > "$WORK/two_nodes.txt" 2>&1 || { cat "$WORK/two_nodes.txt"; fail "4 ranks on 2 nodes"; }
ctrain three_nodes -np 6 --host node1:2,node2:2,node3:2 --map-by slot -- train.batch_size=4 "${common[@]}" \
  > "$WORK/three_nodes.txt" 2>&1 || { cat "$WORK/three_nodes.txt"; fail "6 ranks on 3 nodes"; }
# Nodes with different numbers of ranks (2 + 1): setup's collectives are the world's on every rank
# (a node of one rank skipped the shared-memory split the others waited in: a hang).
ctrain uneven -np 3 --host node1:2,node2:1 -- train.batch_size=8 dist.first_timeout_s=60 "${common[@]}" \
  > "$WORK/uneven.txt" 2>&1 || { cat "$WORK/uneven.txt"; fail "3 ranks on nodes of 2 and 1"; }
expect_in "$WORK/two_nodes.txt" "4 ranks (2 per node)"
expect_in "$WORK/three_nodes.txt" "6 ranks (2 per node)"
expect_in "$WORK/two_nodes.txt" "gradient buckets 25 MB"  # dist.bucket_mb = 0: the job spans nodes
for run in two_nodes three_nodes uneven; do
  compare "$WORK/$run/ckpt-step0000000012.h5" "$WORK/one/ckpt-step0000000012.h5" --group model --rel 1e-5 --min 4 \
    > "$WORK/cmp.txt" || { cat "$WORK/cmp.txt"; fail "$run differs from 1 rank with the whole batch"; }
done
echo "equivalence (1 rank; 2 nodes x 2; 3 nodes x 2; 2 + 1): $(since "$t") s"

# ---- run folder: one checkpoint, written once, by rank 0; metrics counted once ------------------
for run in two_nodes three_nodes; do
  dir="$WORK/$run"
  [ "$(ls "$dir")" = "$(printf 'ckpt-step0000000012.h5\nconfig.toml\neval-latest.h5\nlatest\nmetrics.csv\nmetrics.jsonl\nreport.html')" ] \
    || { ls -la "$dir"; fail "$run: unexpected files in the run folder"; }
  [ "$(count_in "$WORK/$run.txt" "written in")" -eq 1 ] || { cat "$WORK/$run.txt"; fail "$run: not one checkpoint write"; }
  grep -aE "\] \[rank [1-9][0-9]*\] .*(checkpoint|metrics)" "$WORK/$run.txt" && fail "$run: a rank other than 0 wrote"
  "$TRAINER" checkpoint info "$dir/ckpt-step0000000012.h5" > "$WORK/info.txt" 2>&1 || { cat "$WORK/info.txt"; fail "$run: checkpoint does not verify"; }
  expect_in "$WORK/info.txt" "verified"
  expect_in "$WORK/info.txt" "step 12, epoch 0"
  expect_in "$WORK/info.txt" "288 samples seen"
  python3 - "$dir/metrics.jsonl" <<'EOF' || fail "$run: metrics.jsonl"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
train = [r for r in recs if r["kind"] == "train"]
evals = [r for r in recs if r["kind"] == "eval"]
assert [r["step"] for r in train] == [4, 8, 12], [r["step"] for r in train]
assert [r["samples_seen"] for r in train] == [96, 192, 288], [r["samples_seen"] for r in train]
for r in train:
    assert r["images_per_s"] > 0 and r["window_s"] > 0, r
    assert 0 <= r["comm_wait_s"] <= r["window_s"] * 1.01, r
assert len(evals) == 1 and evals[0]["samples"] == 500, evals
EOF
done
# ---- the all-reduce sweep across nodes and its calibration -------------------------------------
# allreduce_sweep tells timings across nodes apart (its nodes column, from the shared-memory split);
# simulate --calibrate fits the intra-node link to the one-node rows and the link between nodes
# to the others. From 256 KiB: below it the namespaces' TCP answers in a flat ~8 ms (delayed
# acknowledgements), and a fit over those sizes alone once found no bandwidth (2026-12-02).
sweep=(--bind-to none "$BUILD_DIR/allreduce_sweep" --min-bytes 262144 --max-bytes 16777216 --repeat 3)
crun -np 2 --host node1:2 "${sweep[@]}" > "$WORK/sweep1.csv" 2> "$WORK/sweep.err" ||
  { cat "$WORK/sweep.err"; fail "sweep, 1 node"; }
crun -np 4 --host node1:2,node2:2 --map-by slot "${sweep[@]}" > "$WORK/sweep2.csv" 2>> "$WORK/sweep.err" ||
  { cat "$WORK/sweep.err"; fail "sweep, 2 nodes"; }
{ cat "$WORK/sweep1.csv"; tail -n +2 "$WORK/sweep2.csv"; } > "$WORK/sweep.csv"
head -1 "$WORK/sweep.csv" | grep -qx "ranks,bytes,seconds,median_seconds,nodes" ||
  { cat "$WORK/sweep.csv"; fail "sweep header"; }
[ "$(grep -c '^2,.*,1$' "$WORK/sweep.csv")" = 7 ] && [ "$(grep -c '^4,.*,2$' "$WORK/sweep.csv")" = 7 ] ||
  { cat "$WORK/sweep.csv"; fail "7 sizes at 2 ranks on 1 node and at 4 ranks on 2 nodes"; }
"$TRAINER" simulate --network cpu-shm --fit-max-mb 16 --calibrate "$WORK/sweep.csv" > "$WORK/cal.txt" 2>&1 ||
  { cat "$WORK/cal.txt"; fail "calibrate"; }
cat "$WORK/cal.txt"
expect_in "$WORK/cal.txt" "7 of 14 timings on one node"
expect_in "$WORK/cal.txt" "across nodes: 7 timings (up to 16 MiB), 2 ranks a node"
grep -q "^  alpha_inter [0-9.]* us, the node's bandwidth [0-9.]* GB/s" "$WORK/cal.txt" || fail "no inter-node fit"
echo "test_multinode: $(since "$t_all") s"
