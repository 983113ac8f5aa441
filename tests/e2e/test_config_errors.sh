# Bad configs under mpirun -np 2: one clear message naming the key (and line), printed once,
# a non-zero exit, and no hang (each run is bounded by `timeout`).
source "$(dirname "$0")/common.sh"
printf '[train]\nepochs = 2\nbatchsize = 8\n' > "$WORK/typo.toml"
expect_error "$WORK/typo.toml:3: unknown key 'train.batchsize'" "$WORK/typo.toml"
expect_in "$WORK/out.txt" "did you mean 'train.batch_size'?"
printf '[optim]\nlr = "fast"\n' > "$WORK/type.toml"
expect_error "$WORK/type.toml:2: key 'optim.lr' must be a number" "$WORK/type.toml"
expect_error "'train.batch_size' = -3 is out of range" configs/quickstart.toml train.batch_size=-3
expect_error "'optim.name' = \"adam\" is not one of" configs/quickstart.toml optim.name=adam
expect_error "cannot read config file 'nope.toml'" nope.toml
expect_error "dataset index '/nonexistent/index.toml' does not exist" configs/quickstart.toml data.path=/nonexistent
expect_error "unknown model 'resnet9000' (key model.name)" configs/quickstart.toml data.path="$DATA" model.name=resnet9000
expect_error "no shards for split 'validation'" configs/quickstart.toml data.path="$DATA" data.eval_split=validation
# Checks across keys and inputs named by a key: the config file and its overrides, the key.
expect_error "quickstart.toml with its command-line overrides: train.accum_steps = 3 does not divide" configs/quickstart.toml train.accum_steps=3
expect_error "with its command-line overrides: model.name = \"fmnist_cnn\" at 4 px (augment.image_size" configs/quickstart.toml data.path="$DATA" augment.image_size=4
expect_error "with its command-line overrides: model.init_from: cannot open HDF5 file '$WORK/typo.toml'" configs/quickstart.toml data.path="$DATA" model.init_from="$WORK/typo.toml"
expect_error "with its command-line overrides: train.resume: " configs/quickstart.toml data.path="$DATA" train.resume="$WORK/typo.toml" run.out_dir="$WORK" run.name=badresume
expect_error "with its command-line overrides: train.precision = \"fp16\" needs a CUDA device" configs/quickstart.toml data.path="$DATA" train.precision=fp16 train.device=cpu
expect_error "with its command-line overrides: train.batch_size = 64 on 2 rank(s): the training split has 100 samples" configs/quickstart.toml data.path="$DATA" train.batch_size=64 data.train_limit=100
expect_error "with its command-line overrides: optim.layer_decay = 0.5 needs a ViT or EfficientNet" configs/quickstart.toml data.path="$DATA" optim.layer_decay=0.5 model.name=resnet18
expect_error "with its command-line overrides: model.reset_head = true without model.init_from" configs/quickstart.toml model.reset_head=true
expect_error "model.dropout = -0.5 is neither -1 (the architecture's default) nor a rate in [0, 0.99]" configs/quickstart.toml model.dropout=-0.5
expect_error "overrides: augment.crop_padding = 28 is not smaller than the 28x28 images of dataset" \
  configs/quickstart.toml data.path="$DATA" augment.crop_padding=28
# run.name is a folder under run.out_dir (sweep/lr1 nests): an unset $NAME, "..", or an absolute
# path would write beside other runs or outside run.out_dir.
expect_error "run.name = \"\" is not a folder under run.out_dir" configs/quickstart.toml run.name=
expect_error "run.name = \"..\" is not a folder under run.out_dir" configs/quickstart.toml run.name=..
expect_error "run.name = \"a/../../b\" is not a folder under run.out_dir" configs/quickstart.toml run.name=a/../../b
expect_error "run.name = \"/tmp/x\" is not a folder under run.out_dir" configs/quickstart.toml run.name=/tmp/x
# A folder as the config trained on defaults; an integer past 2^53 for a float key crashed (exit
# 4); an override that is not TOML was read as a string ("must be a number, got string").
expect_error "config file 'configs' is a folder" configs
expect_error "'optim.lr' = 9007199254740992.0 is out of range [0.0, 1000.0]" \
  configs/quickstart.toml optim.lr=9007199254740993
expect_error "'train.ema_decay' = 0.9999999999 is out of range [0.0, 0.999999999]" \
  configs/quickstart.toml train.ema_decay=0.9999999999
expect_error "override 'optim.lr=.5': key 'optim.lr' must be a float; the value is not valid TOML" \
  configs/quickstart.toml optim.lr=.5
expect_error "override 'run.name=\"abc': the value is not valid TOML" configs/quickstart.toml 'run.name="abc'
# Ranks that resolved other configs (a per-node copy of the file) stop before training, naming the key.
rc=0
timeout 60 "${MPI[@]}" -np 1 "$TRAINER" configs/quickstart.toml data.path="$DATA" optim.lr=0.1 : \
  -np 1 "$TRAINER" configs/quickstart.toml data.path="$DATA" optim.lr=50 > "$WORK/out.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/out.txt"; fail "ranks with other configs: exit $rc, expected 2"; }
expect_in "$WORK/out.txt" "rank 1 resolved another config than rank 0:"
expect_in "$WORK/out.txt" "optim.lr: rank 0 0.1, rank 1 50.0"
echo "ok: ranks with other configs stop at setup"
# Non-square images at augment.image_size = 0 (the stored size): a model with a fixed classifier
# input stops at setup naming the model, both sizes and the key; one with global pooling trains.
mkdir -p "$WORK/wide"
/usr/bin/python3 - "$DATA" "$WORK/wide" <<'PY'
import sys, zlib, h5py, numpy as np
src, out = sys.argv[1], sys.argv[2]
index = open(src + "/index.toml").read().split("[[shard]]")[0].replace("width = 28", "width = 20")
for split, file in [("train", "train-00000-of-00004.h5"), ("test", "test-00000-of-00001.h5")]:
    with h5py.File(f"{src}/{file}", "r") as f:
        images, labels = f["images"][:600, :, 4:24, :], f["labels"][:600].astype(np.int64)
        attrs = dict(f.attrs)
    with h5py.File(f"{out}/{file}", "w") as g:
        g["images"], g["labels"] = images, labels
        g.attrs.update(attrs)
        g.attrs["width"] = np.int64(20)
    crc = zlib.crc32(labels.tobytes(), zlib.crc32(np.ascontiguousarray(images).tobytes()))
    index += f"[[shard]]\ncrc32 = '{crc:08x}'\nfile = '{file}'\nsamples = 600\nsplit = '{split}'\n\n"
open(out + "/index.toml", "w").write(index)
PY
"$SHARDIFY" verify "$WORK/wide" > /dev/null || fail "the 28x20 dataset does not verify"
expect_error "with its command-line overrides: model.name = \"fmnist_cnn\" on the images of '$WORK/wide' (augment.image_size = 0): model fmnist_cnn, built for 28x28 px, cannot take a 28x20 input" configs/quickstart.toml data.path="$WORK/wide" run.out_dir="$WORK/wide-run"
timeout 120 "${MPI[@]}" -np 2 "$TRAINER" configs/quickstart.toml data.path="$WORK/wide" model.name=convnet \
  train.max_steps=2 run.out_dir="$WORK/wide-run" > "$WORK/out.txt" 2>&1 || { cat "$WORK/out.txt"; fail "convnet on 28x20 images"; }
echo "ok: convnet trains on 28x20 images"
expect_error "with its command-line overrides: a micro-batch of 1 image (train.batch_size = 2 / train.accum_steps = 2) gives a BatchNorm of model efficientnet_b0 at 32x32 px one value per channel" configs/quickstart.toml data.path="$DATA" model.name=efficientnet_b0 augment.image_size=32 train.batch_size=2 train.accum_steps=2
# Failures that only rank 0 sees (it alone writes the run folder) end every rank too.
expect_error "cannot create run folder '/proc/odyssey/x'" configs/quickstart.toml data.path="$DATA" run.out_dir=/proc/odyssey run.name=x
# Devices: a GPU asked for where none can run (this LibTorch without CUDA, or no GPU visible), and
# NCCL for a CPU model.
if ! ls /dev/nvidia[0-9]* > /dev/null 2>&1; then
  expect_error 'train.device = "cuda" but' configs/quickstart.toml data.path="$DATA" train.device=cuda
  # A job given GPUs (CUDA_VISIBLE_DEVICES) that this trainer cannot use: "auto" trains on the CPU
  # and says why, once a node (not once a rank).
  timeout 120 "${MPI[@]}" -x CUDA_VISIBLE_DEVICES=0 -np 2 "$TRAINER" configs/quickstart.toml data.path="$DATA" \
    train.max_steps=2 data.eval_limit=64 train.threads=1 run.out_dir="$WORK/gpus-run" > "$WORK/out.txt" 2>&1 ||
    { cat "$WORK/out.txt"; fail "a CPU run on a node with GPUs failed"; }
  [ "$(count_in "$WORK/out.txt" 'trains on the CPU although this node has GPUs (CUDA_VISIBLE_DEVICES=0): ')" = 1 ] ||
    { cat "$WORK/out.txt"; fail "expected the CPU-although-GPUs warning once"; }
  grep -qE "GPUs \(CUDA_VISIBLE_DEVICES=0\): (this trainer's LibTorch is built without CUDA|LibTorch sees no GPU)" \
    "$WORK/out.txt" || fail "the warning's reason"
  echo "ok: device auto on a node with GPUs this trainer cannot use: trains on the CPU, warns once"
fi
expect_error 'dist.backend = "nccl" needs train.device = "cuda"' configs/quickstart.toml data.path="$DATA" train.device=cpu dist.backend=nccl

# Every shipped config parses and validates (every key known, typed and in range): the first
# error is then the missing dataset, not the config.
for cfg in configs/*.toml; do
  rc=0
  timeout 60 "$TRAINER" "$cfg" data.path=/nonexistent > "$WORK/out.txt" 2>&1 || rc=$?
  [ $rc -eq 2 ] || { cat "$WORK/out.txt"; fail "$cfg: exit $rc, expected 2"; }
  expect_in "$WORK/out.txt" "dataset index '/nonexistent/index.toml' does not exist"
  echo "ok: $cfg parses"
done
