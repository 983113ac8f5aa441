"""PyTorch peer of build/bench_step: the same zoo model (torchvision's own), synthetic batch,
optimizer, autocast and memory order, timed the same way; prints the same JSON keys.

  python3 launch/peers/step_peer.py --model vit_b16 --image-size 224 --batch 256 \
      --precision bf16 --device cuda --peak-tflops 790 [--channels-last] [--compile]
"""
import argparse, json, time

import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torchvision.models.vision_transformer import VisionTransformer

MODELS = {
    "vit_b16": lambda s, k: tvm.vit_b_16(image_size=s, num_classes=k),
    "vit_s16": lambda s, k: VisionTransformer(s, 16, 12, 6, 384, 1536, num_classes=k),
    "vit_ti16": lambda s, k: VisionTransformer(s, 16, 12, 3, 192, 768, num_classes=k),
    "efficientnet_b0": lambda s, k: tvm.efficientnet_b0(num_classes=k),
    "resnet18": lambda s, k: tvm.resnet18(num_classes=k),
    "resnet50": lambda s, k: tvm.resnet50(num_classes=k),
}
# Forward MACs per 224 px image (torchvision's model docs, GFLOPS column = GMACs); other sizes
# scale with the pixel count for the CNNs (ViT: pass --gmacs).
GMACS_224 = {"vit_b16": 17.56, "vit_s16": 4.60, "vit_ti16": 1.25, "efficientnet_b0": 0.39, "resnet18": 1.81,
             "resnet50": 4.09}  # README, Models (the ViTs' scale with tokens only roughly: pass --gmacs off 224)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18", choices=sorted(MODELS))
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--peak-tflops", type=float, default=0)
    ap.add_argument("--gmacs", type=float, default=0, help="forward GMACs per image (default: table)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch 2)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = MODELS[a.model](a.image_size, a.classes).to(dev).to(memory_format=fmt).train()
    step_model = torch.compile(model) if a.compile else model
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=5e-4)
    else:
        try:  # PyTorch 2's fused CUDA AdamW: one kernel for the step, as a speed-minded user picks
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-4, fused=dev.type == "cuda")
        except (TypeError, RuntimeError):  # 1.13 has no fused AdamW
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.image_size, a.image_size, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    scaler = torch.cuda.amp.GradScaler() if a.precision == "fp16" else None

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(step_model(x).float(), y)
        if scaler:
            scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
        else:
            loss.backward(); opt.step()
        return loss

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    sync()
    s = time.perf_counter() - t0
    ips = a.steps * a.batch / s
    gmacs = a.gmacs or GMACS_224.get(a.model, 0) * (a.image_size / 224) ** 2
    tflops = ips * 6 * gmacs * 1e9 * 1e-12
    mfu = tflops / a.peak_tflops if a.peak_tflops else 0.0
    print(f"pytorch {torch.__version__} {a.model} @{a.image_size} batch {a.batch} {a.precision} {dev}"
          f"{' NHWC' if a.channels_last else ''}{' compiled' if a.compile else ''}: {ips:.1f} img/s, "
          f"{1e3 * s / a.steps:.2f} ms/step, {tflops:.1f} TFLOP/s" + (f", MFU {100 * mfu:.1f} %" if mfu else "")
          + f", loss {loss.item():.3f}", flush=True)
    print(json.dumps({"impl": "pytorch", "model": a.model, "image_size": a.image_size, "batch": a.batch,
                      "precision": a.precision, "device": str(dev), "channels_last": a.channels_last,
                      "compiled": a.compile, "images_per_s": round(ips, 2), "tflops": round(tflops, 3),
                      "mfu": round(mfu, 4)}), flush=True)


if __name__ == "__main__":
    main()
