# A run stopped mid-epoch and resumed with train.resume=auto ends with bitwise the same parameters
# and optimizer state as the uninterrupted run (2 ranks, augmentation on).
source "$(dirname "$0")/common.sh"
common=(model.name=tiny_cnn data.train_limit=1600 data.eval_limit=500 train.batch_size=16
        train.epochs=2 train.log_every=10 augment.crop_padding=2)
small_run 2 whole "${common[@]}" > "$WORK/whole.txt" 2>&1 || { cat "$WORK/whole.txt"; fail "whole"; }
small_run 2 split "${common[@]}" train.stop_at_step=33 > "$WORK/a.txt" 2>&1 || { cat "$WORK/a.txt"; fail "first part"; }
expect_in "$WORK/a.txt" "ckpt-step0000000033.h5"
expect_in "$WORK/a.txt" "stopped at step 33 (train.stop_at_step) before the run's end"
expect_in "$WORK/a.txt" "paused: 33 steps"
small_run 2 split "${common[@]}" train.resume=auto > "$WORK/b.txt" 2>&1 || { cat "$WORK/b.txt"; fail "resume"; }
expect_in "$WORK/b.txt" "resumed from"
expect_in "$WORK/b.txt" "at step 33 (epoch 0, step 33 of the epoch)"
# tiny_cnn: 4 model tensors + 4 momentum buffers, all bitwise equal.
compare "$WORK/whole/ckpt-step0000000100.h5" "$WORK/split/ckpt-step0000000100.h5" --min 8

# A checkpoint of a build before the random streams of 2026-12-02 (no random_streams attribute,
# nor the CRC it enters), resumed mid-epoch: the warning names the epoch whose order differs.
mkdir -p "$WORK/old" && cp "$WORK/split/ckpt-step0000000033.h5" "$WORK/old/"
/usr/bin/python3 - "$WORK/old/ckpt-step0000000033.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    assert f["trainer"].attrs["random_streams"] == 2
    del f["trainer"].attrs["random_streams"], f["trainer"].attrs["crc32"]
PY
small_run 2 old "${common[@]}" train.resume=auto train.max_steps=35 > "$WORK/old.txt" 2>&1 || { cat "$WORK/old.txt"; fail "old checkpoint"; }
expect_in "$WORK/old.txt" "ckpt-step0000000033.h5 was written by a build whose data order and augmentation drew from other random streams (before 2026-12-02): epoch 0's order differs from the first part's"
[ "$(count_in "$WORK/b.txt" "other random streams")" = 0 ] || fail "a current checkpoint warned of other streams"

# Another world size: 2 ranks x 16 stop at step 40 of a 50-step epoch (1,280 samples consumed);
# one rank x 16 re-plans the same epoch from sample 1,280 = its step 80, and finishes the run. The
# schedule follows the data (step 80 of 2 x 100 in the new batch), so its lr decays to the floor
# at the run's end (it kept the update count, 40, and ended short of the floor); step numbers go
# on counting updates: 120 more, the last checkpoint is step 160.
small_run 2 regrid "${common[@]}" train.stop_at_step=40 > "$WORK/r1.txt" 2>&1 || { cat "$WORK/r1.txt"; fail "regrid first part"; }
small_run 1 regrid "${common[@]}" train.resume=auto > "$WORK/r2.txt" 2>&1 || { cat "$WORK/r2.txt"; fail "regrid resume"; }
expect_in "$WORK/r2.txt" "global batch changed from 32 to 16: resuming epoch 0 at step 80"
expect_in "$WORK/r2.txt" "the schedule continues at step 80 of 200 (where the data is); step numbers go on from 40"
expect_in "$WORK/r2.txt" "test top-1 accuracy"
grep -aq "step 200/200 " "$WORK/r2.txt" || { cat "$WORK/r2.txt"; fail "the schedule did not end at its step 200"; }
[ "$(cat "$WORK/regrid/latest")" = ckpt-step0000000160.h5 ] || { ls "$WORK/regrid"; fail "the re-planned run's last checkpoint is not step 160"; }
# Re-planned onto an epoch's end: 2 x 16 stopped at step 48 of a 50-step epoch (1,536 samples
# consumed) resumed on 2 x 48, whose epoch has 16 steps (1,536 samples): epoch 0 is done. Its end
# (the evaluation after step 48) runs before epoch 1 when the stop did not evaluate (a signal's
# stop; here the state it leaves, made from train.stop_at_step's: no evaluation in the checkpoint,
# written as before the /trainer CRC, nor in the metrics files); it was skipped. After
# train.stop_at_step, which evaluated step 48, it is not evaluated twice.
small_run 2 edge "${common[@]}" train.stop_at_step=48 > "$WORK/e1.txt" 2>&1 \
  || { cat "$WORK/e1.txt"; fail "edge first part"; }
cp -r "$WORK/edge" "$WORK/edge2"
/usr/bin/python3 - "$WORK/edge2" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(d + "/ckpt-step0000000048.h5", "r+") as f:
    t = f["trainer"].attrs
    del t["crc32"]
    t["eval_step"], t["eval_top1"] = np.int64(-1), np.float64(-1)
for name in ("metrics.jsonl", "metrics.csv"):
    lines = [l for l in open(f"{d}/{name}") if '"kind":"eval"' not in l and not l.startswith("eval,")]
    open(f"{d}/{name}", "w").writelines(lines)
PY
evals() {  # evals RUN: (step, epoch) of each evaluation record
  /usr/bin/python3 -c 'import json, sys
rows = map(json.loads, open(sys.argv[1]))
print([(r["step"], r["epoch"]) for r in rows if r["kind"] == "eval"])' "$WORK/$1/metrics.jsonl"
}
for run in edge edge2; do
  small_run 2 "$run" "${common[@]}" train.batch_size=48 train.stop_at_step=50 > "$WORK/$run.txt" 2>&1 \
    || { cat "$WORK/$run.txt"; fail "$run resume"; }
  expect_in "$WORK/$run.txt" "global batch changed from 32 to 96: resuming epoch 0 at step 16"
done
[ "$(evals edge)" = "[(48, 0), (50, 1)]" ] || fail "edge: evaluations $(evals edge)"
[ "$(evals edge2)" = "[(48, 1), (50, 1)]" ] || fail "edge2: evaluations $(evals edge2)"
# Mid-epoch over a train split of another size (data.train_limit 1600 -> 1280): a warning says the
# epoch's order differs.
small_run 2 shrunk "${common[@]}" train.resume="$WORK/split/ckpt-step0000000033.h5" data.train_limit=1280 \
  train.stop_at_step=34 > "$WORK/k.txt" 2>&1 || { cat "$WORK/k.txt"; fail "resume over a smaller split"; }
expect_in "$WORK/k.txt" "the train split holds 1280 samples, 1600 when $WORK/split/ckpt-step0000000033.h5 was written"
# The other way, 1 x 16 stopped at step 150 (epoch 1, step 50) resumed on 2 x 16: the schedule at
# step 75 of 100, step numbers on from 150 to 175, so the newest checkpoint has the highest number
# and a later resume=auto takes it (with the step count following the schedule, the run ended at
# a lower step than the stop checkpoint's, and resume=auto went back to step 150).
small_run 1 grow "${common[@]}" train.stop_at_step=150 > "$WORK/g1.txt" 2>&1 || { cat "$WORK/g1.txt"; fail "grow first part"; }
small_run 2 grow "${common[@]}" > "$WORK/g2.txt" 2>&1 || { cat "$WORK/g2.txt"; fail "grow resume"; }
expect_in "$WORK/g2.txt" "the schedule continues at step 75 of 100"
[ "$(cat "$WORK/grow/latest")" = ckpt-step0000000175.h5 ] || { ls "$WORK/grow"; fail "the grown run's last checkpoint is not step 175"; }
small_run 2 grow "${common[@]}" > "$WORK/g3.txt" 2>&1 || { cat "$WORK/g3.txt"; fail "grow rerun"; }
expect_in "$WORK/g3.txt" "resumed from $WORK/grow/ckpt-step0000000175.h5"
# Nothing left to train: the rerun evaluates and says so, but its metrics files keep one record of
# the evaluation after step 175 (each rerun appended another). The finished run resumed into
# another run folder records it there (that folder's first).
expect_in "$WORK/g3.txt" "the metrics files hold the evaluation after step 175 already: not recorded again"
small_run 2 fromgrow "${common[@]}" train.resume="$WORK/grow" > "$WORK/g4.txt" 2>&1 || { cat "$WORK/g4.txt"; fail "finished run resumed into another folder"; }
! grep -q "not recorded again" "$WORK/g4.txt" || { cat "$WORK/g4.txt"; fail "another folder's metrics taken for this one's"; }
evals_at_175() {
  /usr/bin/python3 - "$1" <<'PY'
import csv, json, sys
jsonl = [r for r in map(json.loads, open(sys.argv[1] + "/metrics.jsonl")) if r["kind"] == "eval"]
rows = [r for r in csv.DictReader(open(sys.argv[1] + "/metrics.csv")) if r["kind"] == "eval"]
assert [r["step"] for r in jsonl].count(175) == 1, [r["step"] for r in jsonl]
assert [r["step"] for r in rows].count("175") == 1, [r["step"] for r in rows]
PY
}
evals_at_175 "$WORK/grow"
evals_at_175 "$WORK/fromgrow"
[ -f "$WORK/fromgrow/eval-latest.h5" ] || fail "no eval-latest.h5 in the new run folder"

# Precision and EMA may change on resume. The step-33 checkpoint (float32, no EMA) with an fp16
# run's loss-scaler state added resumes in float32 (the scale is not used) with EMA on: the average
# starts from the checkpoint's weights, so one step later it lies between step 33's and step 34's
# weights (decay 35/44 at step 34: |ema - w33| = 0.205 |w34 - w33|), not near the initial ones.
/usr/bin/python3 - "$WORK/split/ckpt-step0000000033.h5" "$WORK/amp.h5" <<'PY'
import shutil, sys, zlib, h5py, numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    for name, value in (("scale", 65536.0), ("clean_steps", 0.0)):
        a = np.array([value], dtype=np.float64)
        f.create_dataset(f"optimizer/amp/{name}", data=a).attrs["crc32"] = np.int64(zlib.crc32(a.tobytes()))
    names = []  # the group's manifest follows (as the trainer writes it)
    f["optimizer"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    f["optimizer"].attrs["dataset_count"] = np.int64(len(names))
    f["optimizer"].attrs["names_crc32"] = np.int64(zlib.crc32("".join(n + "\n" for n in sorted(names)).encode()))
PY
small_run 2 switched "${common[@]}" train.resume="$WORK/amp.h5" train.ema_decay=0.99 run.seed=5 \
  train.stop_at_step=34 > "$WORK/s.txt" 2>&1 || { cat "$WORK/s.txt"; fail "resume in another precision, EMA on"; }
expect_in "$WORK/s.txt" "holds an fp16 loss scale; train.precision = \"fp32\" does not use it"
expect_in "$WORK/s.txt" "holds no EMA weights (train.ema_decay was off): the average starts now"
# The keys changed since the checkpoint's run are listed (train.resume is not among them); a
# changed seed changes the data order of the rest of the run (a warning). The EMA check below
# holds whatever step 34 trained on.
expect_in "$WORK/s.txt" "config changed since $WORK/amp.h5 was written: run.name \"split\" -> \"switched\"; \
run.seed 0 -> 5; train.stop_at_step 33 -> 34; train.ema_decay 0"
expect_in "$WORK/s.txt" "warning: resuming with another data order than the checkpoint's run (run.seed 0 -> 5)"
/usr/bin/python3 - "$WORK/split/ckpt-step0000000033.h5" "$WORK/switched/ckpt-step0000000034.h5" <<'PY'
import sys, h5py, numpy as np
w33, s = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert len(s["ema"]) > 0
for k in s["ema"]:
    ema, a, b = s["ema"][k][()], w33["model"][k][()], s["model"][k][()]
    step = np.abs(b - a).max()
    assert step > 0, k
    ratio = np.abs(ema - a).max() / step
    assert ratio < 0.5, f"{k}: |ema - w33| = {ratio:.3f} x |w34 - w33| (the average did not start at the checkpoint)"
print(f"EMA after the resume starts from the checkpoint's weights ({len(s['ema'])} tensors)")
PY

# Two trainers in one run folder (a repeated run.name): the second stops at once with exit 2 naming
# the first, which goes on undisturbed (its retention and temporaries are its own) and stops with
# its checkpoint on SIGUSR1.
small_run 2 shared "${common[@]}" train.epochs=200 > "$WORK/first.txt" 2>&1 &
first=$!
t=0
until grep -q " step [0-9]*/" "$WORK/first.txt"; do
  sleep 0.1; t=$((t + 1))
  [ $t -lt 900 ] || { kill $first; cat "$WORK/first.txt"; fail "the first run logged no step"; }
done
rc=0
small_run 2 shared "${common[@]}" > "$WORK/second.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { kill $first; cat "$WORK/second.txt"; fail "second trainer in the folder: exit $rc, expected 2"; }
expect_in "$WORK/second.txt" \
  "run folder '$WORK/shared' (keys run.out_dir / run.name) is in use by another trainer (host"
kill -USR1 "$(pgrep -P $first | head -1)"  # mpirun, which passes it to the ranks
rc=0; wait $first || rc=$?
[ $rc -eq 75 ] || { cat "$WORK/first.txt"; fail "the first run: exit $rc after SIGUSR1, expected 75"; }
expect_in "$WORK/first.txt" "stopped by signal 10"
echo "ok: a second trainer in a run folder in use stops at once; the first goes on"
