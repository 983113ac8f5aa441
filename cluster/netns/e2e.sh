# Helpers for the end-to-end tests that run on a network-namespace cluster (cluster/netns/cluster).
# Sourced after tests/e2e/common.sh, not run. Every cluster a test starts is torn down on exit,
# also on failure or a signal; one killed outright is pruned by the next `cluster up`.
CLUSTER="$SOURCE_DIR/cluster/netns/cluster"
CL="$WORK/cluster"

# Root, network namespaces, veth pairs, a bridge and `ip netns exec` + `unshare --uts` are needed;
# anywhere else the test skips (exit 77: CTest lists it as skipped). netns_or_skip tbf: also tc's tbf qdisc.
netns_or_skip() {
  [ "$(id -u)" -eq 0 ] || { skip "needs root for network namespaces"; }
  command -v ip > /dev/null || { skip "ip (iproute2) is not installed"; }
  command -v unshare > /dev/null || { skip "unshare (util-linux) is not installed"; }
  local probe="ody-probe-$$" ok=1
  ip netns add "$probe" 2> /dev/null || { skip "ip netns is not permitted here"; }
  { ip -n "$probe" link add br0 type bridge && ip -n "$probe" link add v0 type veth peer name v1 &&
    ip netns exec "$probe" unshare --uts sh -c 'hostname probe' &&
    { [ "${1:-}" != tbf ] || { command -v tc > /dev/null && ip -n "$probe" link set v0 up &&
      ip netns exec "$probe" tc qdisc add dev v0 root tbf rate 10mbit burst 64kb latency 500ms; }; }
  } > /dev/null 2>&1 || ok=0
  ip netns del "$probe"
  [ $ok -eq 1 ] || { skip "veth, bridge, unshare --uts${1:+ or tc $1} not available in network namespaces here"; }
}

netns_cleanup() {
  [ -f "$CL/cluster.env" ] && "$CLUSTER" down "$CL" || true
  rm -rf "$WORK"
}

cluster_up() {  # cluster_up N [SLOTS]: start the test's cluster (one per test)
  trap netns_cleanup EXIT
  trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP
  local t0; t0=$(now)
  CLUSTER_OWNER=$$ "$CLUSTER" up "$1" "$CL" "${2:-2}" > /dev/null
  echo "cluster of $1 nodes up in $(since "$t0") s"
}

crun() { MPIRUN="$MPIRUN" "$CLUSTER" run "$CL" -- "$@"; }   # crun MPIRUN-ARGS...: mpirun on node1

# ctrain NAME MPIRUN-ARGS... -- OVERRIDES...: the trainer over the cluster on the quickstart config
ctrain() {
  local name=$1 args=()
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  crun --bind-to none "${args[@]}" "$TRAINER" configs/quickstart.toml data.path="$DATA" \
    run.out_dir="$WORK" run.name="$name" train.threads=1 "$@"
}

# Times without a process per call (the tests poll): now is $EPOCHREALTIME (bash 5).
now() { echo "$EPOCHREALTIME"; }
us() { local t=${1//[.,]/}; echo $((10#$t)); }                       # us T: microseconds
since_us() { echo $(( $(us "$EPOCHREALTIME") - $(us "$1") )); }       # since_us T0
since() { local d; d=$(since_us "$1"); printf '%d.%d' $((d / 1000000)) $((d / 100000 % 10)); }

wait_for_line() {  # wait_for_line LOG TEXT COUNT PID: until LOG has COUNT lines with TEXT
  local n=0
  until [ "$(count_in "$1" "$2")" -ge "$3" ]; do
    kill -0 "$4" 2> /dev/null || { cat "$1"; fail "the job ended before '$2' appeared $3 times"; }
    n=$((n + 1)); [ $n -lt 1200 ] || { cat "$1"; fail "'$2' did not appear $3 times in 120 s"; }
    sleep 0.1
  done
}

# ended_within PID T0 LIMIT LOG: wait for the job PID (a background ctrain); fails unless it ends
# within LIMIT s of T0 with a non-zero exit and nothing of the job is left on any node.
# Sets TOOK (seconds since T0) and RC.
ended_within() {
  local pid=$1 t0=$2 limit=$3 log=$4 n=0 left
  while kill -0 "$pid" 2> /dev/null; do
    if [ "$(since_us "$t0")" -gt $(((limit + 20) * 1000000)) ]; then
      cat "$log"; fail "the job still runs $(since "$t0") s after the fault"
    fi
    sleep 0.1
  done
  local took_us; took_us=$(since_us "$t0")
  TOOK=$(since "$t0"); RC=0; wait "$pid" || RC=$?
  # Every process on every node (trainers, Open MPI daemons) must be gone too.
  until [ -z "$("$CLUSTER" pids "$CL")" ]; do
    n=$((n + 1))
    if [ $n -ge 100 ]; then
      left=$(for p in $("$CLUSTER" pids "$CL"); do cat "/proc/$p/comm" 2> /dev/null; done | sort | uniq -c | tr '\n' ' ')
      cat "$log"; fail "processes left on the nodes 10 s after mpirun ended: $left"
    fi
    sleep 0.1
  done
  [ "$RC" -ne 0 ] || { cat "$log"; fail "the job exited 0 after the fault"; }
  [ "$took_us" -le $((limit * 1000000)) ] || { cat "$log"; fail "the job ended $TOOK s after the fault (limit $limit s)"; }
}

# train_share RUN_DIR KEY: KEY summed over the "train" records of metrics.jsonl, as a share of
# window_s (the first record, with the warm-up, left out)
train_share() {
  python3 - "$1/metrics.jsonl" "$2" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
train = [r for r in recs if r.get("kind") == "train"][1:]
assert train, "no train records"
print(f"{sum(r[sys.argv[2]] for r in train) / sum(r['window_s'] for r in train):.3f}")
EOF
}

# last_checkpoint RUN_DIR: the checkpoint `latest` names, verified (trainer checkpoint info);
# prints its step
last_checkpoint() {
  local ckpt
  ckpt="$1/$(cat "$1/latest")"
  [ -f "$ckpt" ] || fail "latest in $1 names no file"
  "$TRAINER" checkpoint info "$ckpt" > "$WORK/info.txt" 2>&1 || { cat "$WORK/info.txt"; fail "$ckpt does not verify"; }
  grep -q "verified" "$WORK/info.txt" || { cat "$WORK/info.txt"; fail "$ckpt: not verified"; }
  sed -n 's/.*ckpt-step0*\([0-9][0-9]*\)\.h5.*/\1/p' "$1/latest"
}

# resume_on NAME HOSTS STEPS OVERRIDES...: resume run NAME (train.resume=auto) with one rank per
# slot of HOSTS ("node1:3,node2:3") for STEPS more steps; it must finish and checkpoint
resume_on() {
  local name=$1 hosts=$2 more=$3 step np log="$WORK/resume-$1.txt" t0
  shift 3
  t0=$(now)
  step=$(last_checkpoint "$WORK/$name")
  np=$(echo "$hosts" | tr ',' '\n' | awk -F: '{n += $2} END {print n}')
  ctrain "$name" -np "$np" --host "$hosts" -- "$@" train.max_steps=$((step + more)) > "$log" 2>&1 \
    || { cat "$log"; fail "resume of $name on $hosts"; }
  grep -q "resumed from" "$log" || { cat "$log"; fail "$name did not resume"; }
  [ "$(last_checkpoint "$WORK/$name")" -eq $((step + more)) ] || { cat "$log"; fail "$name: no checkpoint at step $((step + more))"; }
  echo "resumed $name from step $step on $hosts ($np ranks): finished at step $((step + more)) ($(since "$t0") s)"
}
