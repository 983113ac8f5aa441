# The whole augmentation suite on real data: two ranks train the quickstart model with a warp per
# image (crop, rotation, translation, shear, perspective), colour jitter, erasing (noise-filled, as
# DeiT's) and mixup/cutmix
# with mixed labels. It must still learn (test top-1 > 70 % after 2 epochs on 6,400 images,
# against > 75 % without augmentation in test_train_loss_falls); a second run stopped at step 20
# holds bitwise the same parameters as the first at step 20 (the draws depend only on seed, epoch,
# step and rank), and a run without augmentation holds different ones (the suite did something).
# timm's RandAugment (DeiT's form) through the config: two runs to step 20 alike, unlike the plain.
source "$(dirname "$0")/common.sh"
aug=(augment.rrc_scale_min=0.6 augment.rotate_deg=10 augment.translate=0.08 augment.shear_deg=5
     augment.perspective=0.1 augment.brightness=0.3 augment.contrast=0.3 augment.erasing_p=0.2 augment.erasing_mode=pixel
     augment.mixup_alpha=0.2 augment.cutmix_alpha=1.0 augment.mix_p=0.5 train.label_smoothing=0.1)
base=(data.train_limit=6400 data.eval_limit=2000 train.epochs=2 train.log_every=10
      checkpoint.every_steps=20 checkpoint.keep_every=20)
small_run 2 auga "${base[@]}" "${aug[@]}" > "$WORK/a.txt" 2>&1 || { cat "$WORK/a.txt"; fail "training with augmentation"; }
small_run 2 augb "${base[@]}" "${aug[@]}" train.stop_at_step=20 > "$WORK/b.txt" 2>&1 || { cat "$WORK/b.txt"; fail "second run"; }
small_run 2 plain "${base[@]}" train.label_smoothing=0.1 train.stop_at_step=20 > "$WORK/p.txt" 2>&1 || { cat "$WORK/p.txt"; fail "plain run"; }
top1=$(grep -ao 'test top-1 accuracy [0-9.]*' "$WORK/a.txt" | grep -o '[0-9.]*$')
echo "test top-1 with the augmentation suite: $top1 %"
python3 -c "import sys; sys.exit(0 if $top1 > 70 else 1)" || { cat "$WORK/a.txt"; fail "top-1 $top1 % <= 70 %"; }
compare "$WORK/auga/ckpt-step0000000020.h5" "$WORK/augb/ckpt-step0000000020.h5" --min 20 > /dev/null
# differs RUN WHAT: RUN's weights at step 20 differ from the plain run's by more than 1e-3.
differs() {
  /usr/bin/python3 - "$WORK/$1/ckpt-step0000000020.h5" "$WORK/plain/ckpt-step0000000020.h5" "$2" <<'PY'
import sys, h5py, numpy
a, p = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
diff = max(float(numpy.abs(a["model"][k][()] - p["model"][k][()]).max()) for k in a["model"] if "weight" in k)
assert diff > 1e-3, f"parameters with and without {sys.argv[3]} differ by only {diff}"
print(f"{sys.argv[3]}: {diff:.3g} from the plain run at step 20")
PY
}
differs auga "the augmentation suite"
ra=(augment.randaugment_n=2 augment.randaugment_policy=timm augment.randaugment_mstd=0.5
    train.label_smoothing=0.1 train.stop_at_step=20)  # as the plain run but for RandAugment
small_run 2 raa "${base[@]}" "${ra[@]}" > "$WORK/ra.txt" 2>&1 || { cat "$WORK/ra.txt"; fail "timm RandAugment"; }
small_run 2 rab "${base[@]}" "${ra[@]}" > "$WORK/rb.txt" 2>&1 || { cat "$WORK/rb.txt"; fail "timm RandAugment again"; }
compare "$WORK/raa/ckpt-step0000000020.h5" "$WORK/rab/ckpt-step0000000020.h5" --min 20 > /dev/null
differs raa "timm's RandAugment (two runs alike)"
