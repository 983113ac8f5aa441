# The model zoo against torchvision 0.14 (Debian python3-torchvision): for every EfficientNet and
# ViT in the registry the state_dict keys, shapes, parameter count and entry count are identical,
# at the default size and at another class count, channel count and image size.
source "$(dirname "$0")/common.sh"
/usr/bin/python3 -c "import torchvision" 2>/dev/null || { echo "SKIP: python3-torchvision is not installed"; exit 0; }
/usr/bin/python3 - "$TRAINER" <<'PY'
import subprocess, sys, torch, torchvision.models as tvm
from torchvision.models.vision_transformer import VisionTransformer
trainer = sys.argv[1]
def vit(patch, layers, heads, dim, mlp):
    return lambda image_size=224, num_classes=1000: VisionTransformer(image_size, patch, layers, heads, dim, mlp, num_classes=num_classes)
zoo = {f"efficientnet_b{i}": getattr(tvm, f"efficientnet_b{i}") for i in range(8)}
zoo.update({"vit_ti16": vit(16, 12, 3, 192, 768), "vit_s16": vit(16, 12, 6, 384, 1536),
            "vit_b16": tvm.vit_b_16, "vit_b32": tvm.vit_b_32, "vit_l16": tvm.vit_l_16,
            "vit_l32": tvm.vit_l_32, "vit_h14": tvm.vit_h_14})
def ours(name, *args):
    out = subprocess.run([trainer, "models", name, *args], check=True, capture_output=True, text=True).stdout
    lines = out.strip().splitlines()
    d = {}
    for l in lines[:-1]:
        k, shape = l.rsplit(" ", 1)
        d[k] = tuple(int(x) for x in shape.strip("[]").split(",") if x)
    return d, lines[-1]
def theirs(model):
    sd = model.state_dict()
    n = sum(p.numel() for p in model.parameters())
    return {k: tuple(v.shape) for k, v in sd.items()}, f"total {n} parameters, {len(sd)} state_dict entries"
cases = [(name, [], {}) for name in zoo]
cases += [("efficientnet_b0", ["--classes", "10"], {"num_classes": 10}),
          ("efficientnet_b5", ["--classes", "37"], {"num_classes": 37}),
          ("vit_b16", ["--image-size", "384", "--classes", "5"], {"image_size": 384, "num_classes": 5}),
          ("vit_s16", ["--image-size", "96"], {"image_size": 96})]
for name, args, kw in cases:
    a, at = ours(name, *args)
    b, bt = theirs(zoo[name](**kw))
    missing, extra = sorted(set(b) - set(a)), sorted(set(a) - set(b))
    assert not missing and not extra, (name, missing[:5], extra[:5])
    wrong = [k for k in a if a[k] != b[k]]
    assert not wrong, (name, [(k, a[k], b[k]) for k in wrong[:5]])
    assert at == bt, (name, at, bt)
    print(f"{name} {' '.join(args)}: {at} (equal to torchvision)", flush=True)
PY
