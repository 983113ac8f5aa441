# kill -9 of one rank at random moments, over several trials (rank 0, the writer, then rank 1,
# then rank 0): each time the whole job ends within
# a bounded time, the run folder holds only checkpoints that verify, and the next start resumes.
# After the trials the run finishes with the same parameters as an uninterrupted run (bitwise;
# BatchNorm running statistics, averaged at each checkpoint, to 1e-5). Checkpoints are written
# every 10 steps in the background. Also: the checkpoint layout read with h5py, and
# `trainer checkpoint export` giving a weights file whose predictions equal the checkpoint's, also on
# a folder with other mean/std (the run's are stored).
source "$(dirname "$0")/common.sh"
common=(data.train_limit=6400 data.eval_limit=500 train.batch_size=32 train.epochs=2
        train.log_every=5 checkpoint.every_steps=10 checkpoint.keep_last=2)
small_run 2 whole "${common[@]}" > "$WORK/whole.txt" 2>&1 || { cat "$WORK/whole.txt"; fail "whole"; }

verify_folder() {  # every complete checkpoint in the folder verifies
  local n=0
  for f in "$WORK"/crash/ckpt-step*.h5; do
    [ -e "$f" ] || continue
    "$TRAINER" checkpoint info "$f" > /dev/null || fail "damaged checkpoint $f after a kill -9"
    n=$((n + 1))
  done
  echo "  $n checkpoints verify; $(ls "$WORK"/crash/*.tmp 2> /dev/null | wc -l) unfinished .tmp"
}

RANDOM=7  # reproducible trial timings
for trial in 1 2 3; do
  log="$WORK/trial$trial.txt"
  small_run 2 crash "${common[@]}" > "$log" 2>&1 &
  sub=$!
  t=0
  until grep -q ' step [0-9]*/' "$log"; do  # training (not the "resumed ... at step N" line)
    sleep 0.1; t=$((t + 1)); [ $t -lt 900 ] || { cat "$log"; fail "no progress"; }
    kill -0 $sub 2> /dev/null || break
  done
  kill -0 $sub 2> /dev/null || { cat "$log"; fail "trial $trial: the run ended before the kill"; }
  sleep "0.$((RANDOM % 10))"
  victim_rank=$(((trial + 1) % 2))  # 0, 1, 0: rank 0 (the writer) and a rank that writes nothing
  victim=""
  mpirun_pid=$(pgrep -P "$sub" | head -1 || true)
  for p in ${mpirun_pid:+$(pgrep -P "$mpirun_pid" -x trainer)}; do
    tr '\0' '\n' < /proc/$p/environ | grep -qx "OMPI_COMM_WORLD_RANK=$victim_rank" && victim=$p
  done
  if [ -z "$victim" ]; then  # mpirun or the rank gone: a late trial's last steps ended within the pause
    rc=0; wait "$sub" || rc=$?
    [ $rc -eq 0 ] || { cat "$log"; fail "trial $trial: rank $victim_rank not found, the run ended with $rc"; }
    [ "$trial" -gt 1 ] || { cat "$log"; fail "trial 1 killed nothing: rank $victim_rank not found"; }
    echo "trial $trial: the run finished before the kill"
    break
  fi
  kill -9 "$victim"
  killed=$(date +%s.%N)
  rc=0; wait "$sub" || rc=$?
  took=$(python3 -c "print(f'{$(date +%s.%N) - $killed:.1f}')")
  echo "trial $trial: kill -9 of rank $victim_rank at $(grep -ao 'step [0-9]*/' "$log" | tail -1); job over after $took s (exit $rc)"
  [ $rc -ne 0 ] || fail "trial $trial: exit 0 after a kill -9"
  python3 -c "import sys; sys.exit(0 if $took <= 15 else 1)" || { cat "$log"; fail "the job took $took s to end"; }
  ! pgrep -f "run.name=crash " > /dev/null || fail "processes left behind"
  verify_folder
done
small_run 2 crash "${common[@]}" > "$WORK/final.txt" 2>&1 || { cat "$WORK/final.txt"; fail "final resume"; }
expect_in "$WORK/final.txt" "resumed from"
[ -z "$(ls "$WORK"/crash/*.tmp 2> /dev/null)" ] || fail "unfinished .tmp files left after a clean run"
compare "$WORK/whole/ckpt-step0000000200.h5" "$WORK/crash/ckpt-step0000000200.h5" \
  --loose running_ --loose-rel 1e-5 --min 20

# The layout, read with h5py (an independent reader).
/usr/bin/python3 - "$WORK/crash/ckpt-step0000000200.h5" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
t = f["trainer"].attrs
assert t["format"] in (b"odyssey-checkpoint", "odyssey-checkpoint"), t["format"]
for key in ["format_version", "code_version", "step", "epoch", "step_in_epoch", "samples_seen",
            "world_size", "batch_size", "model_name", "config", "eval_top1", "eval_step"]:
    assert key in t, key
# Step 200 is written by checkpoint.every_steps before the run's last evaluation: it holds epoch 1's
# (step 100), or none (-1) when the last resume started from step 100's, written before that one.
assert int(t["eval_step"]) in (-1, 100), int(t["eval_step"])
assert int(t["step"]) == 200 and int(t["world_size"]) == 2 and int(t["batch_size"]) == 32
assert "features.0.weight" in f["model"] or any(k.endswith(".weight") for k in f["model"])
for name, ds in f["model"].items():
    assert ds.dtype.kind == "f" or name.endswith("num_batches_tracked"), name
    assert "crc32" in ds.attrs, name
for param, group in f["optimizer"].items():
    assert "momentum_buffer" in group, param
print("h5py layout ok:", len(f["model"]), "model tensors,", len(f["optimizer"]), "optimizer groups")
PY

# Export the model as a weights file; predictions from it equal the checkpoint's.
"$TRAINER" checkpoint export "$WORK/crash/ckpt-step0000000200.h5" --out "$WORK/w.h5" > "$WORK/export.txt"
expect_in "$WORK/export.txt" "wrote $WORK/w.h5"
/usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert set(f.keys())=={'model'}, list(f.keys())" "$WORK/w.h5"
"$TRAINER" predict --checkpoint "$WORK/crash/ckpt-step0000000200.h5" --data "$DATA" --out "$WORK/p1.h5" > /dev/null
"$TRAINER" predict --checkpoint "$WORK/w.h5" --model fmnist_cnn --data "$DATA" --out "$WORK/p2.h5" > /dev/null
/usr/bin/python3 -c "
import h5py, numpy, sys
a, b = h5py.File(sys.argv[1])['logits'][:], h5py.File(sys.argv[2])['logits'][:]
assert a.shape == b.shape and numpy.array_equal(a, b), 'logits differ'
print('exported weights predict identically on', a.shape[0], 'images')" "$WORK/p1.h5" "$WORK/p2.h5"

# predict normalises with the mean/std the run trained with, stored in the checkpoint and its export,
# not with the predicted folder's own (a folder converted alone has its own: here shifted ones).
mkdir "$WORK/shifted"
ln -s "$DATA"/*.h5 "$WORK/shifted/"
sed -e 's/^mean = .*/mean = [ 0.6 ]/' -e 's/^std = .*/std = [ 0.2 ]/' "$DATA/index.toml" > "$WORK/shifted/index.toml"
"$TRAINER" predict --checkpoint "$WORK/w.h5" --data "$WORK/shifted" --out "$WORK/p3.h5" > /dev/null
/usr/bin/python3 -c "
import h5py, shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], 'a') as f:
    assert list(f.attrs['input_mean']) == [0.28604059698879553], f.attrs['input_mean']
    del f.attrs['input_mean'], f.attrs['input_std']" "$WORK/w.h5" "$WORK/w_nonorm.h5"
"$TRAINER" predict --checkpoint "$WORK/w_nonorm.h5" --data "$WORK/shifted" --out "$WORK/p4.h5" > "$WORK/p4.txt" 2>&1 ||
  { cat "$WORK/p4.txt"; fail "predict with weights that store no mean/std"; }
expect_in "$WORK/p4.txt" "does not store the mean/std its run normalised with"
/usr/bin/python3 -c "
import h5py, numpy, sys
a, b, c = (h5py.File(p)['logits'][:] for p in sys.argv[1:4])
assert numpy.array_equal(a, b), 'the stored normalisation was not used on a folder with other statistics'
assert not numpy.allclose(a, c), 'a file without mean/std did not take the folder statistics'
assert list(h5py.File(sys.argv[2]).attrs['input_std']) == [0.35302424451492254]
print('predict normalises with the run mean/std on a folder with other statistics')" \
  "$WORK/p1.h5" "$WORK/p3.h5" "$WORK/p4.h5"
# trainer eval too: the same top-1 on the shifted folder as on the original, with a warning.
for d in "$DATA" "$WORK/shifted"; do
  "$TRAINER" eval configs/quickstart.toml --checkpoint "$WORK/crash/ckpt-step0000000200.h5" data.path="$d" \
    data.eval_limit=2000 > "$WORK/eval-$(basename "$d").txt" 2>&1 || { cat "$WORK/eval-$(basename "$d").txt"; fail "eval on $d"; }
done
expect_in "$WORK/eval-shifted.txt" "differ from the ones $WORK/crash/ckpt-step0000000200.h5 was trained with"
[ "$(grep -o 'top-1 [0-9.]*%' "$WORK/eval-shifted.txt")" = "$(grep -o 'top-1 [0-9.]*%' "$WORK/eval-$(basename "$DATA").txt")" ] ||
  fail "eval on a folder with other statistics: $(grep -o 'top-1 [0-9.]*%' "$WORK"/eval-*.txt)"
