# Weights from torchvision: launch/export_torchvision.py writes a model's state_dict and
# torchvision's eval logits on a random batch (its random init with the zero head and biases and
# the BatchNorm statistics drawn, so that the logits depend on every weight: max |logit| 0.2-15,
# not 0 or 1e-13); Odyssey loads the file strictly and reproduces the
# logits (max |diff| <= 1e-4 x max |logit|; a check whose logits are all below 1e-3 is refused) for efficientnet_b0, vit_b16, resnet18 and small
# variants (one ViT with a convolutional stem). Then transfer learning: init_from with reset_head
# trains a 10-class head on Fashion-MNIST, and a wrong head without reset_head is a clear error.
source "$(dirname "$0")/common.sh"
/usr/bin/python3 -c "import torchvision" 2>/dev/null || { skip "python3-torchvision is not installed"; }
export_tv() { /usr/bin/python3 "$SOURCE_DIR/launch/export_torchvision.py" "$@" > /dev/null; }
export_tv efficientnet_b0 "$WORK/effb0.h5" --check-batch 2
"$TRAINER" models efficientnet_b0 --verify "$WORK/effb0.h5"
export_tv vit_b_16 "$WORK/vitb16.h5" --check-batch 2
"$TRAINER" models vit_b16 --verify "$WORK/vitb16.h5"
export_tv efficientnet_s "$WORK/effs.h5" --num-classes 10 --image-size 32 --check-batch 4
"$TRAINER" models efficientnet_s --classes 10 --image-size 32 --verify "$WORK/effs.h5"
export_tv vit_ti4 "$WORK/vitti4.h5" --num-classes 10 --image-size 28 --check-batch 4
"$TRAINER" models vit_ti4 --classes 10 --image-size 28 --verify "$WORK/vitti4.h5"
export_tv resnet18 "$WORK/resnet18.h5" --check-batch 2
"$TRAINER" models resnet18 --verify "$WORK/resnet18.h5"
export_tv vit_mini4c "$WORK/vitmini4c.h5" --num-classes 10 --image-size 28 --check-batch 4
"$TRAINER" models vit_mini4c --classes 10 --image-size 28 --verify "$WORK/vitmini4c.h5"

# Transfer: a 1000-class small ViT (1 channel, 28 px) -> 10 Fashion-MNIST classes.
/usr/bin/python3 - "$WORK/gray.h5" <<'PY'
import sys, h5py, torch
from torchvision.models.vision_transformer import VisionTransformer
torch.manual_seed(0)
m = VisionTransformer(28, 4, 6, 3, 192, 768, num_classes=1000)
m.conv_proj = torch.nn.Conv2d(1, 192, 4, 4)
with h5py.File(sys.argv[1], "w") as f:
    for k, v in m.state_dict().items():
        f["model/" + k] = v.numpy()
PY
# --verify needs torchvision's logits (/check): a file without them is one clear error.
rc=0; "$TRAINER" models vit_ti4 --classes 1000 --image-size 28 --in-channels 1 --verify "$WORK/gray.h5" > "$WORK/nocheck.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/nocheck.txt"; fail "exit $rc for --verify without /check"; }
expect_in "$WORK/nocheck.txt" "'$WORK/gray.h5' has no /check group"
expect_in "$WORK/nocheck.txt" "launch/export_torchvision.py --check-batch N"
rc=0; small_run 2 nohead model.name=vit_ti4 model.init_from="$WORK/gray.h5" train.max_steps=2 > "$WORK/nohead.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/nohead.txt"; fail "exit $rc for a 1000-class head into 10 classes"; }
expect_in "$WORK/nohead.txt" "dataset /model/heads.head.weight in '$WORK/gray.h5' has shape [1000, 192], the model expects [10, 192]"
small_run 2 transfer model.name=vit_ti4 model.init_from="$WORK/gray.h5" model.reset_head=true \
  data.train_limit=640 data.eval_limit=500 train.max_steps=10 optim.name=adamw optim.lr=1e-3 \
  > "$WORK/transfer.txt" 2>&1 || { cat "$WORK/transfer.txt"; fail "transfer"; }
expect_in "$WORK/transfer.txt" "initialised from $WORK/gray.h5 (classifier head kept fresh)"
