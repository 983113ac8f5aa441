# Rolling a run back: train.resume names an older checkpoint of the same folder (a user returning
# to step 60 of a run that reached 100, say to change the learning rate there). The newer
# checkpoints move aside (retention ranks by step number: kept in place, the rolled-back run's
# stop checkpoint at step 70 deleted step 60, and a later resume=auto went back to the old branch's
# step 100); the metrics files drop the records after step 60 (copies go aside with the
# checkpoints). The rolled-back branch, paused at 70 and resumed with "auto", ends bitwise where
# the first run ended (2 ranks, the same config); so does a run resumed past a damaged newest
# checkpoint.
source "$(dirname "$0")/common.sh"
common=(model.name=tiny_cnn data.train_limit=1600 data.eval_limit=500 train.batch_size=16
        train.epochs=2 train.log_every=10 checkpoint.every_steps=20 checkpoint.keep_last=3)
small_run 2 roll "${common[@]}" > "$WORK/first.txt" 2>&1 || { cat "$WORK/first.txt"; fail "first run"; }
ls "$WORK/roll"
[ -f "$WORK/roll/ckpt-step0000000060.h5" ] || fail "keep_last = 3: no checkpoint of step 60"
cp "$WORK/roll/ckpt-step0000000100.h5" "$WORK/first-100.h5"

small_run 2 roll "${common[@]}" train.resume="$WORK/roll/ckpt-step0000000060.h5" train.stop_at_step=70 \
  > "$WORK/back.txt" 2>&1 || { cat "$WORK/back.txt"; fail "rolled back to step 60"; }
expect_in "$WORK/back.txt" "resumed at step 60 below newer checkpoints of $WORK/roll"
expect_in "$WORK/back.txt" "metrics: 5 record(s) of metrics.jsonl and 5 of metrics.csv after step 60 dropped"
aside=$(ls -d "$WORK"/roll/set-aside-after-step0000000060-*)
ls "$aside"
for f in ckpt-step0000000080.h5 ckpt-step0000000100.h5 eval-latest.h5 metrics.jsonl metrics.csv; do
  [ -f "$aside/$f" ] || fail "$f not set aside"
done
[ -f "$WORK/roll/ckpt-step0000000060.h5" ] || fail "the stop checkpoint's retention deleted the resumed step 60"
[ "$(cat "$WORK/roll/latest")" = ckpt-step0000000070.h5 ] || fail "latest: $(cat "$WORK/roll/latest")"

small_run 2 roll "${common[@]}" train.resume=auto > "$WORK/on.txt" 2>&1 || { cat "$WORK/on.txt"; fail "resume=auto"; }
expect_in "$WORK/on.txt" "resumed from $WORK/roll/ckpt-step0000000070.h5"
compare "$WORK/roll/ckpt-step0000000100.h5" "$WORK/first-100.h5" --min 8

# "auto" past a damaged newest checkpoint (step 100 cut short): the run resumes at step 80, sets
# the damaged file aside with the branch's eval-latest.h5, and trains to step 100 again, bitwise
# as before.
truncate -s 4096 "$WORK/roll/ckpt-step0000000100.h5"
small_run 2 roll "${common[@]}" > "$WORK/past.txt" 2>&1 || { cat "$WORK/past.txt"; fail "resume past damage"; }
expect_in "$WORK/past.txt" "skipping damaged checkpoint $WORK/roll/ckpt-step0000000100.h5"
expect_in "$WORK/past.txt" "resumed at step 80 below newer checkpoints of $WORK/roll"
damaged=$(ls -d "$WORK"/roll/set-aside-after-step0000000080-*)
[ -f "$damaged/ckpt-step0000000100.h5" ] && [ -f "$damaged/eval-latest.h5" ] || { ls "$damaged"; fail "not set aside"; }
compare "$WORK/roll/ckpt-step0000000100.h5" "$WORK/first-100.h5" --min 8 > /dev/null
# One record per step, in order: the old branch's records after step 60 left the files (their
# copies keep them, with the first run's evaluation at step 100).
/usr/bin/python3 - "$WORK/roll" "$aside" <<'PY'
import csv, json, sys
def steps(folder, kind):
    jsonl = [r["step"] for r in map(json.loads, open(folder + "/metrics.jsonl")) if r["kind"] == kind]
    rows = [int(r["step"]) for r in csv.DictReader(open(folder + "/metrics.csv")) if r["kind"] == kind]
    assert jsonl == rows, (jsonl, rows)
    return jsonl
assert steps(sys.argv[1], "train") == list(range(10, 101, 10)), steps(sys.argv[1], "train")
assert steps(sys.argv[1], "eval") == [50, 70, 100], steps(sys.argv[1], "eval")  # 70: the pause
assert steps(sys.argv[2], "train") == list(range(10, 101, 10)), steps(sys.argv[2], "train")
assert steps(sys.argv[2], "eval") == [50, 100], steps(sys.argv[2], "eval")
print("metrics: one record per step")
PY

# A fresh start in a folder with metrics files but no checkpoints (they were moved away): the old
# files go aside whole, the new ones hold this run's records only.
small_run 2 fresh "${common[@]}" train.max_steps=20 > "$WORK/f1.txt" 2>&1 || { cat "$WORK/f1.txt"; fail "fresh 1"; }
rm "$WORK"/fresh/ckpt-step*.h5 "$WORK/fresh/latest"
small_run 2 fresh "${common[@]}" train.max_steps=20 > "$WORK/f2.txt" 2>&1 || { cat "$WORK/f2.txt"; fail "fresh 2"; }
expect_in "$WORK/f2.txt" "a fresh start in $WORK/fresh: the metrics files there (of an earlier start) moved to"
/usr/bin/python3 - "$WORK/fresh" "$(ls -d "$WORK"/fresh/set-aside-after-step0000000000-*)" <<'PY'
import json, sys
for folder in sys.argv[1:]:
    steps = [r["step"] for r in map(json.loads, open(folder + "/metrics.jsonl")) if r["kind"] == "train"]
    assert steps == [10, 20], (folder, steps)
PY
echo "test_rollback: the rolled-back branch ends bitwise where the first run ended"
