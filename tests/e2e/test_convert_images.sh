# shardify folder and shardify cifar on generated collections, checked against independent readers:
# PIL decodes and resizes the same JPEG/PNG files (greyscale, palette and RGB; several sizes),
# numpy re-reads the CIFAR records; damaged files stop the conversion naming the file (a dataset
# already in the output folder stays as it was), or are skipped and counted with --skip-bad; then
# 2 ranks train on the converted RGB images with RandAugment and an evaluation resize + centre crop.
source "$(dirname "$0")/common.sh"
/usr/bin/python3 - "$WORK" <<'PY'
import os, sys, numpy as np
from PIL import Image
w = sys.argv[1]
rng = np.random.default_rng(0)
modes = ["RGB", "L", "P", "RGB"]
for split, n in (("train", 8), ("val", 3)):
    for ci, cls in enumerate(["ant", "bee", "cat"]):
        d = f"{w}/imgs/{split}/{cls}"
        os.makedirs(d)
        for i in range(n):
            h, wd = (int(v) for v in rng.integers(18, 50, 2))
            y, x = np.mgrid[0:h, 0:wd]
            rgb = np.stack([x * 255 // wd, y * 255 // h, np.full((h, wd), 60 + ci * 80)], -1)
            rgb = (rgb + rng.integers(0, 30, rgb.shape)).clip(0, 255).astype(np.uint8)
            im = Image.fromarray(rgb).convert(modes[i % 4])
            ext = "png" if i % 2 else "jpg"
            if ext == "jpg" and im.mode == "P": im = im.convert("RGB")
            im.save(f"{d}/{i:02d}.{ext}", quality=90)
# CIFAR-10 binary: 5 training batches of 7 records and a test batch of 5.
os.makedirs(f"{w}/cifar")
for name, n in [(f"data_batch_{b}.bin", 7) for b in range(1, 6)] + [("test_batch.bin", 5)]:
    rec = np.concatenate([rng.integers(0, 10, (n, 1)), rng.integers(0, 256, (n, 3072))], 1)
    rec.astype(np.uint8).tofile(f"{w}/cifar/{name}")
open(f"{w}/cifar/batches.meta.txt", "w").write(
    "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n")
PY

"$SHARDIFY" folder "$WORK/imgs" "$WORK/out" --size 16 --shard-size 10 --threads 2 > "$WORK/f.txt" 2>&1 ||
  { cat "$WORK/f.txt"; fail "shardify folder failed"; }
expect_in "$WORK/f.txt" "train: 24 images in 3 classes"
"$SHARDIFY" verify "$WORK/out" > /dev/null || fail "verify of the converted folder"
"$SHARDIFY" folder "$WORK/imgs" "$WORK/stretch" --size 16 --resize stretch --threads 1 > /dev/null 2>&1 ||
  fail "shardify folder --resize stretch"
"$SHARDIFY" cifar "$WORK/cifar" "$WORK/c10" --train-shards 2 > "$WORK/c.txt" 2>&1 ||
  { cat "$WORK/c.txt"; fail "shardify cifar failed"; }

/usr/bin/python3 - "$WORK" <<'PY'
import glob, sys, tomllib, h5py, numpy as np
from PIL import Image
w = sys.argv[1]
def read(d, split):
    idx = tomllib.load(open(f"{d}/index.toml", "rb"))
    files = [s["file"] for s in idx["shard"] if s["split"] == split]
    return idx, np.concatenate([h5py.File(f"{d}/{f}")["images"][()] for f in files]), \
        np.concatenate([h5py.File(f"{d}/{f}")["labels"][()] for f in files])
def reference(path, size, stretch):
    im = Image.open(path).convert("RGB")
    wd, h = im.size
    if stretch: return np.asarray(im.resize((size, size), Image.BILINEAR))
    nh, nw = (size, max(size, (wd * size + h // 2) // h)) if h < wd else (max(size, (h * size + wd // 2) // wd), size)
    a = np.asarray(im.resize((nw, nh), Image.BILINEAR))
    t, l = (nh - size) // 2, (nw - size) // 2
    return a[t:t + size, l:l + size]
for d, stretch in (("out", False), ("stretch", True)):
    idx, imgs, labs = read(f"{w}/{d}", "train")
    assert idx["class_names"] == ["ant", "bee", "cat"], idx["class_names"]
    assert imgs.shape == (24, 16, 16, 3) and list(labs) == [0] * 8 + [1] * 8 + [2] * 8
    files = sorted(glob.glob(f"{w}/imgs/train/*/*"))
    ref = np.stack([reference(f, 16, stretch) for f in files]).astype(float)
    diff = np.abs(imgs.astype(float) - ref)
    assert diff.mean() < 1.0 and diff.max() <= 12, (d, diff.mean(), diff.max())
    print(f"{d}: 24 images within {diff.mean():.3f} mean / {diff.max():.0f} max levels of PIL")
_, val, vlab = read(f"{w}/out", "val")
assert val.shape == (9, 16, 16, 3) and list(vlab) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
idx = tomllib.load(open(f"{w}/out/index.toml", "rb"))
assert len([s for s in idx["shard"] if s["split"] == "train"]) == 3  # 24 images, 10 per shard
_, imgs, _ = read(f"{w}/out", "train")
assert abs(idx["mean"][2] - imgs[..., 2].mean() / 255) < 1e-9

idx, imgs, labs = read(f"{w}/c10", "train")
raw = np.concatenate([np.fromfile(f"{w}/cifar/data_batch_{b}.bin", np.uint8).reshape(-1, 3073) for b in range(1, 6)])
assert (labs == raw[:, 0]).all() and (imgs == raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)).all()
assert idx["class_names"][9] == "truck" and idx["name"] == "cifar-10"
_, timgs, tlabs = read(f"{w}/c10", "test")
assert timgs.shape == (5, 32, 32, 3)
print("cifar-10: 35 + 5 records byte-exact")
PY

# A damaged JPEG: the conversion stops naming it (exit 2), or skips and counts it.
mkdir -p "$WORK/bad/train/ant" "$WORK/bad/train/bee"
cp "$WORK"/imgs/train/ant/0[0-3].* "$WORK/bad/train/ant/"
cp "$WORK"/imgs/train/bee/0[0-3].* "$WORK/bad/train/bee/"
head -c 300 "$WORK/imgs/train/bee/00.jpg" > "$WORK/bad/train/bee/00.jpg"
rc=0; "$SHARDIFY" folder "$WORK/bad" "$WORK/bad-out" --size 16 > "$WORK/b.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/b.txt"; fail "damaged JPEG: exit $rc, expected 2"; }
expect_in "$WORK/b.txt" "JPEG image '$WORK/bad/train/bee/00.jpg'"
"$SHARDIFY" folder "$WORK/bad" "$WORK/bad-out" --size 16 --skip-bad > "$WORK/b.txt" 2>&1 ||
  { cat "$WORK/b.txt"; fail "--skip-bad failed"; }
expect_in "$WORK/b.txt" "skipped 1 undecodable files"
expect_in "$WORK/b.txt" "7 train images"
# Converting the damaged folder again, without --skip-bad, into the folder that now holds a dataset:
# it stops, and the dataset there is as it was (the new shards waited in a staging folder).
cp "$WORK/bad-out/index.toml" "$WORK/index-before.toml"
rc=0; "$SHARDIFY" folder "$WORK/bad" "$WORK/bad-out" --size 24 > "$WORK/b2.txt" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$WORK/b2.txt"; fail "damaged JPEG over a dataset: exit $rc, expected 2"; }
expect_in "$WORK/b2.txt" "the dataset there is unchanged"
cmp -s "$WORK/bad-out/index.toml" "$WORK/index-before.toml" || fail "a stopped conversion changed the index"
"$SHARDIFY" verify "$WORK/bad-out" > /dev/null || fail "a stopped conversion damaged the dataset there"
[ ! -e "$WORK/bad-out/.shardify-staging" ] || fail "a stopped conversion left its staging folder"

# Images PIL's convert("RGB") reads differently from the libraries' defaults: a PNG's alpha is
# dropped, keeping the colour under transparent pixels (libpng composited onto whatever its buffer
# held), 16-bit PNG samples are sRGB-encoded (libpng took them as linear: mid-grey 32768 came out
# 188, not 128), and a CMYK JPEG is converted (libjpeg-turbo refuses CMYK to RGB).
/usr/bin/python3 - "$WORK" <<'PY'
import os, sys, numpy as np
from PIL import Image
d = f"{sys.argv[1]}/deep/train/x"; os.makedirs(d)
rgba = np.random.default_rng(1).integers(0, 256, (16, 16, 4)).astype(np.uint8)
rgba[:, :8, 3] = 0                   # the left half transparent, its colour kept in the file
Image.fromarray(rgba, "RGBA").save(f"{d}/a.png")
Image.fromarray(rgba[..., [0, 3]].copy(), "LA").save(f"{d}/b.png")
Image.fromarray(np.full((16, 16), 32768, np.uint16)).save(f"{d}/c.png")   # 16-bit grey
Image.fromarray(rgba[..., :3].copy()).convert("CMYK").save(f"{d}/d.jpg", quality=95)  # CMYK JPEG
PY
"$SHARDIFY" folder "$WORK/deep/" "$WORK/deep-out" --size 16 > "$WORK/d.txt" 2>&1 ||
  { cat "$WORK/d.txt"; fail "shardify folder of RGBA, LA and 16-bit PNGs"; }
/usr/bin/python3 - "$WORK" <<'PY'
import sys, tomllib, h5py, numpy as np
from PIL import Image
w = sys.argv[1]
idx = tomllib.load(open(f"{w}/deep-out/index.toml", "rb"))
assert idx["name"] == "deep", idx["name"]   # "SRC/" names the dataset after SRC
imgs = np.concatenate([h5py.File(f"{w}/deep-out/{s['file']}")["images"][()] for s in idx["shard"]])
for i, f in enumerate(["a", "b"]):
    ref = np.asarray(Image.open(f"{w}/deep/train/x/{f}.png").convert("RGB"))
    assert (imgs[i] == ref).all(), (f, np.abs(imgs[i].astype(int) - ref).max())
assert np.abs(imgs[2].astype(int) - 128).max() <= 1, imgs[2].min()
ref = np.asarray(Image.open(f"{w}/deep/train/x/d.jpg").convert("RGB")).astype(int)
assert np.abs(imgs[3].astype(int) - ref).max() <= 1, np.abs(imgs[3].astype(int) - ref).max()
print("RGBA, LA and 16-bit PNGs and a CMYK JPEG as PIL's convert('RGB') (16-bit: the high byte)")
PY

# Training on the RGB shards: 2 ranks, RandAugment, 12-pixel inputs, eval centre crop.
"${MPI[@]}" -np 2 "$TRAINER" configs/quickstart.toml data.path="$WORK/out" data.eval_split=val \
  run.out_dir="$WORK" run.name=rgb train.threads=1 train.epochs=2 train.batch_size=4 \
  augment.randaugment_n=2 augment.image_size=12 augment.eval_crop=0.875 > "$WORK/t.txt" 2>&1 ||
  { cat "$WORK/t.txt"; fail "training on the converted folder failed"; }
expect_in "$WORK/t.txt" "on 9 val images"
# predict reads the run's input size (12) and eval crop from the checkpoint's config.
"$TRAINER" predict --checkpoint "$WORK/rgb/ckpt-step0000000006.h5" --data "$WORK/out" --split val \
  --out "$WORK/p.h5" > "$WORK/p.txt" 2>&1 || { cat "$WORK/p.txt"; fail "predict on the converted folder"; }
/usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert f['logits'].shape == (9, 3), f['logits'].shape" "$WORK/p.h5" ||
  fail "predict logits shape"
echo "ok: converters and training on converted RGB images"
