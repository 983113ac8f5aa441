# The model zoo against torchvision 0.14 (Debian python3-torchvision): for every EfficientNet, ViT
# (one with torchvision's convolutional stem) and ResNet in the registry the state_dict keys, shapes, parameter count and entry count are identical,
# at the default size and at another class count, channel count and image size; and the forward
# MACs `trainer models NAME` counts equal an independent count over torchvision's modules
# (forward hooks on Conv2d, Linear and MultiheadAttention, run on the meta device).
source "$(dirname "$0")/common.sh"
/usr/bin/python3 -c "import torchvision" 2>/dev/null || { skip "python3-torchvision is not installed"; }
/usr/bin/python3 - "$TRAINER" <<'PY'
import subprocess, sys, torch, torchvision.models as tvm
from torchvision.models.vision_transformer import VisionTransformer
trainer = sys.argv[1]
def vit(patch, layers, heads, dim, mlp):
    return lambda image_size=224, num_classes=1000: VisionTransformer(image_size, patch, layers, heads, dim, mlp, num_classes=num_classes)
zoo = {f"efficientnet_b{i}": getattr(tvm, f"efficientnet_b{i}") for i in range(8)}
zoo.update({"vit_ti16": vit(16, 12, 3, 192, 768), "vit_s16": vit(16, 12, 6, 384, 1536),
            "vit_b16": tvm.vit_b_16, "vit_b32": tvm.vit_b_32, "vit_l16": tvm.vit_l_16,
            "vit_l32": tvm.vit_l_32, "vit_h14": tvm.vit_h_14,
            "resnet18": tvm.resnet18, "resnet34": tvm.resnet34, "resnet50": tvm.resnet50})
from torchvision.models.vision_transformer import ConvStemConfig
zoo["vit_mini4c"] = lambda image_size=28, num_classes=1000: VisionTransformer(
    image_size, 4, 6, 3, 96, 384, num_classes=num_classes,
    conv_stem_configs=[ConvStemConfig(32, 3, 1), ConvStemConfig(64, 3, 2), ConvStemConfig(96, 3, 2)])
def ours(name, *args):
    out = subprocess.run([trainer, "models", name, *args], check=True, capture_output=True, text=True).stdout
    d, total, macs = {}, None, None
    for l in out.strip().splitlines():
        if l.startswith("total "):
            total = l
        elif l.startswith("forward MACs"):
            macs = int(l.split(": ")[1].split(" ")[0])
        else:
            k, shape = l.rsplit(" ", 1)
            d[k] = tuple(int(x) for x in shape.strip("[]").split(",") if x)
    return d, total, macs
def forward_macs(model, size):
    """Conv2d: outputs x in/groups x kernel; Linear: outputs x in; attention (batch first):
    q/k/v and output projections plus the two T x T products. Norms and activations: 0."""
    total = 0
    def conv(m, i, o):
        nonlocal total
        total += o.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
    def linear(m, i, o):
        nonlocal total
        total += o.numel() * m.in_features
    def attention(m, i, o):
        nonlocal total
        b, t, d = o[0].shape  # the output has the query's shape (torchvision passes it by keyword)
        total += 4 * b * t * d * d + 2 * b * t * t * d
    kinds = [(torch.nn.Conv2d, conv), (torch.nn.Linear, linear), (torch.nn.MultiheadAttention, attention)]
    for m in model.modules():
        for cls, hook in kinds:
            if isinstance(m, cls):
                m.register_forward_hook(hook)
    with torch.no_grad():
        model.to("meta").eval()(torch.empty(1, 3, size, size, device="meta"))
    return total
def theirs(model, size):
    sd = model.state_dict()
    n = sum(p.numel() for p in model.parameters())
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    return shapes, f"total {n} parameters, {len(sd)} state_dict entries", forward_macs(model, size)
default_size = {f"efficientnet_b{i}": s for i, s in enumerate([224, 240, 288, 300, 380, 456, 528, 600])}
default_size["vit_mini4c"] = 28
cases = [(name, [], {}) for name in zoo]
cases += [("efficientnet_b0", ["--classes", "10"], {"num_classes": 10}),
          ("efficientnet_b5", ["--classes", "37"], {"num_classes": 37}),
          ("vit_b16", ["--image-size", "384", "--classes", "5"], {"image_size": 384, "num_classes": 5}),
          ("vit_s16", ["--image-size", "96"], {"image_size": 96}),
          ("resnet18", ["--classes", "10", "--image-size", "64"], {"num_classes": 10}),
          ("vit_mini4c", ["--image-size", "32", "--classes", "10"], {"image_size": 32, "num_classes": 10})]
cases += [("efficientnet_b0", ["--image-size", "160"], {}), ("efficientnet_b2", ["--image-size", "200"], {})]
for name, args, kw in cases:
    size = int(args[args.index("--image-size") + 1]) if "--image-size" in args else default_size.get(name, 224)
    a, at, am = ours(name, *args)
    b, bt, bm = theirs(zoo[name](**kw), size)
    missing, extra = sorted(set(b) - set(a)), sorted(set(a) - set(b))
    assert not missing and not extra, (name, missing[:5], extra[:5])
    wrong = [k for k in a if a[k] != b[k]]
    assert not wrong, (name, [(k, a[k], b[k]) for k in wrong[:5]])
    assert at == bt, (name, at, bt)
    assert am == bm, (name, size, am, bm)
    print(f"{name} {' '.join(args)}: {at}, {am / 1e9:.3f} GMACs at {size} (equal to torchvision)", flush=True)
PY
