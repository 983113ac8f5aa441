# launch/scale, the scaling sweep: strong and weak runs at 1 and 2 ranks of the quickstart CNN on
# Fashion-MNIST. Every run's row in scaling.csv with what the run used (threads per rank, ranks
# per node, backend), efficiency = measured / ideal against the smallest run, the step split;
# a run that exits 0 without records (a wrapper standing in for a trainer that wrote nothing) is
# a row with its status and the others are still written (exit 1); no rank count the global
# batch divides is one clear error.
source "$(dirname "$0")/common.sh"
cat > "$WORK/trainer" <<SH
#!/bin/bash
case " \$* " in *" run.name=weak-n2 "*) exit 0 ;; esac
exec "$TRAINER" "\$@"
SH
chmod +x "$WORK/trainer"
rc=0
launch/scale --ranks "1 2" --steps 10 --warmup 5 --log-every 5 --trainer "$WORK/trainer" --out "$WORK/sweep" \
  configs/quickstart.toml "data.path=$DATA" train.threads=1 train.batch_size=32 > "$WORK/scale.txt" 2>&1 || rc=$?
cat "$WORK/scale.txt"
[ $rc -eq 1 ] || fail "a sweep with a failed run exits 1, not $rc"
expect_in "$WORK/scale.txt" "exit 0 but nothing to measure"
for f in scaling.csv scaling.svg scaling.md; do [ -s "$WORK/sweep/$f" ] || fail "no $f"; done
/usr/bin/python3 - "$WORK/sweep/scaling.csv" <<'PY'
import csv, sys
rows = {(r["mode"], int(r["ranks"])): r for r in csv.DictReader(open(sys.argv[1]))}
assert set(rows) == {("strong", 1), ("strong", 2), ("weak", 1), ("weak", 2)}, rows.keys()
assert rows[("weak", 2)]["status"] == "no measurement", rows[("weak", 2)]
for key in [("strong", 1), ("strong", 2), ("weak", 1)]:
    r = rows[key]
    assert r["status"] == "ok", r
    assert r["threads_per_rank"] == "1" and r["device"] == "cpu", r
    assert r["backend"] == ("mpi" if key[1] == 2 else "single"), r
    assert r["ranks_per_node"] == str(key[1]), r
    assert int(r["steps"]) == 10, r
    busy, wait = float(r["comm_busy_s_per_step"] or 0), float(r["comm_s_per_step"])
    assert float(r["optimizer_s_per_step"]) > 0, r
    if key[1] == 2:
        assert busy > 0 and r["comm_hidden_frac"] != "", r
# Strong: global batch 64 (32 per rank x 2 ranks): 64 x 1, 32 x 2.
assert rows[("strong", 1)]["per_rank_batch"] == "64" and rows[("strong", 2)]["per_rank_batch"] == "32"
base = float(rows[("strong", 1)]["images_per_s"])
s2 = rows[("strong", 2)]
assert abs(float(s2["ideal_images_per_s"]) - 2 * base) < 0.2, s2
assert abs(float(s2["efficiency"]) - float(s2["images_per_s"]) / (2 * base)) < 1e-3, s2
assert float(rows[("strong", 1)]["efficiency"]) == 1.0
print("scaling.csv checks passed")
PY
expect_in "$WORK/sweep/scaling.md" "| weak | 2 |"
expect_in "$WORK/sweep/scaling.md" "no measurement"

# Without train.threads the sweep warns that thread counts differ between runs; a global batch
# that no rank count divides is one error, before any run.
rc=0
launch/scale --ranks "2 4" --mode strong --global-batch 3 --out "$WORK/none" configs/quickstart.toml \
  "data.path=$DATA" > "$WORK/none.txt" 2>&1 || rc=$?
cat "$WORK/none.txt"
[ $rc -ne 0 ] || fail "no run, exit 0"
expect_in "$WORK/none.txt" "train.threads is 0"
expect_in "$WORK/none.txt" "the global batch 3 divides none of the rank counts [2, 4]"
echo "scale: all checks passed"
