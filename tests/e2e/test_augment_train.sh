# The whole augmentation suite on real data: two ranks train the quickstart model with a warp per
# image (crop, rotation, translation, shear, perspective), colour jitter, erasing and mixup/cutmix
# with mixed labels. It must still learn (test top-1 > 70 % after 2 epochs on 6,400 images,
# against > 75 % without augmentation in test_train_loss_falls), and two identical runs end with
# bitwise identical parameters (the draws depend only on seed, epoch, step and rank).
source "$(dirname "$0")/common.sh"
aug=(augment.rrc_scale_min=0.6 augment.rotate_deg=10 augment.translate=0.08 augment.shear_deg=5
     augment.perspective=0.1 augment.brightness=0.3 augment.contrast=0.3 augment.erasing_p=0.2
     augment.mixup_alpha=0.2 augment.cutmix_alpha=1.0 augment.mix_p=0.5 train.label_smoothing=0.1)
for run in a b; do
  small_run 2 "aug$run" data.train_limit=6400 data.eval_limit=2000 train.epochs=2 train.log_every=10 \
    "${aug[@]}" > "$WORK/$run.txt" 2>&1 || { cat "$WORK/$run.txt"; fail "training with augmentation"; }
done
top1=$(grep -ao 'test top-1 accuracy [0-9.]*' "$WORK/a.txt" | grep -o '[0-9.]*$')
echo "test top-1 with the augmentation suite: $top1 %"
python3 -c "import sys; sys.exit(0 if $top1 > 70 else 1)" || { cat "$WORK/a.txt"; fail "top-1 $top1 % <= 70 %"; }
compare "$WORK/auga/ckpt-step0000000100.h5" "$WORK/augb/ckpt-step0000000100.h5" --min 20
