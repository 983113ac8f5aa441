#!/usr/bin/env python3
"""Export a torchvision classification model's state_dict to Odyssey's weights format:
an HDF5 file with one dataset per state_dict key under /model (float32; int64 for
num_batches_tracked), loadable with `model.init_from = "W.h5"`.

Runs with Debian's python3-torch, python3-torchvision and python3-h5py.

  launch/export_torchvision.py efficientnet_b0 w.h5 --weights DEFAULT   # pretrained (downloads)
  launch/export_torchvision.py vit_b_16 w.h5 --state-dict vit_b_16.pth  # a local .pth
  launch/export_torchvision.py vit_b_16 w.h5 --check-batch 2            # random init + a check

MODEL is any torchvision.models builder name, or one of Odyssey's extra sizes: vit_ti16, vit_s16
(DeiT dimensions), vit_ti4 (patch 4, depth 6), vit_mini4c (vit_mini4 with a conv stem), efficientnet_s (half width/depth, stem stride 1).
--check-batch N also stores a random input /check/input [N,C,S,S] and torchvision's eval-mode
logits /check/logits, so `trainer models NAME --verify w.h5` can compare logits. Without --weights
or --state-dict the random-init model's zero parameters (a ViT's head, biases) are drawn and its
BatchNorm statistics and affine weights too, so that the logits depend on every weight.
--input-mean/--input-std store the normalisation the weights were trained with (root attributes
input_mean, input_std), which trainer predict and fewshot then use; with --weights they default
to ImageNet's, as torchvision's transforms normalise.
"""
import argparse
import sys

import h5py
import numpy as np
import torch
import torchvision.models as tvm
from torchvision.models.vision_transformer import VisionTransformer


def build(name, num_classes, image_size, weights):
    vit = lambda p, l, h, d, m: VisionTransformer(image_size or 224 if p != 4 else image_size or 28,
                                                   p, l, h, d, m, num_classes=num_classes)
    def vit_mini4c():
        from torchvision.models.vision_transformer import ConvStemConfig
        stem = [ConvStemConfig(32, 3, 1), ConvStemConfig(64, 3, 2), ConvStemConfig(96, 3, 2)]
        return VisionTransformer(image_size or 28, 4, 6, 3, 96, 384, num_classes=num_classes,
                                 conv_stem_configs=stem)
    extra = {
        "vit_mini4c": vit_mini4c,
        "vit_ti16": lambda: vit(16, 12, 3, 192, 768),
        "vit_s16": lambda: vit(16, 12, 6, 384, 1536),
        "vit_ti4": lambda: vit(4, 6, 3, 192, 768),
    }
    if name in extra:
        return extra[name]()
    if name == "efficientnet_s":
        from torchvision.models.efficientnet import _efficientnet_conf, EfficientNet
        setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.5, depth_mult=0.5)
        m = EfficientNet(setting, 0.1, stochastic_depth_prob=0.1, num_classes=num_classes, last_channel=last)
        m.features[0][0].stride = (1, 1)
        return m
    kwargs = {"weights": weights} if weights else {"num_classes": num_classes}
    if image_size and name.startswith("vit_"):
        kwargs["image_size"] = image_size
    return getattr(tvm, name)(**kwargs)


def randomise_for_check(model):
    """A random-init model's eval logits say little: torchvision's ViT head starts at zero (all
    logits 0), and fresh BatchNorm statistics (mean 0, var 1) with their unit affine make an
    EfficientNet's logits ~1e-13, in the regime where SiLU is x/2 and every squeeze-excitation gate
    ~0.5 whatever its weights. For the check, the zero parameters (heads, biases) are drawn, and
    every BatchNorm gets drawn statistics and affine weights."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                if m.running_mean is not None:  # track_running_stats
                    m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                if m.weight is not None:  # affine
                    m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        for p in model.parameters():
            if p.dtype.is_floating_point and not p.any():
                p.copy_(0.02 * torch.randn(p.shape, generator=g))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--weights", help="torchvision weights enum name, e.g. DEFAULT (needs internet)")
    ap.add_argument("--state-dict", help="a local .pth state_dict to load into the model first")
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=0, help="ViT image size (default 224; 28 for vit_ti4)")
    ap.add_argument("--check-batch", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--input-mean", type=float, nargs="+",
                    help="per-channel mean the weights were trained with, [0, 1] pixel units (predict and "
                         "fewshot normalise with it; default with --weights: ImageNet's)")
    ap.add_argument("--input-std", type=float, nargs="+", help="per-channel std, as --input-mean")
    a = ap.parse_args()
    if a.weights and a.input_mean is None and a.input_std is None:  # torchvision's transforms
        a.input_mean, a.input_std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    if (a.input_mean is None) != (a.input_std is None) or (
            a.input_mean is not None and (len(a.input_mean) != len(a.input_std) or min(a.input_std) <= 0)):
        ap.error("--input-mean and --input-std go together: one value per channel each, std > 0")
    torch.manual_seed(a.seed)
    model = build(a.model, a.num_classes, a.image_size, a.weights)
    if a.state_dict:
        model.load_state_dict(torch.load(a.state_dict, map_location="cpu"), strict=True)
    if a.check_batch and not a.weights and not a.state_dict:
        randomise_for_check(model)
    model.eval()
    with h5py.File(a.out, "w") as f:
        g = f.create_group("model")
        for key, t in model.state_dict().items():
            arr = t.detach().cpu().numpy()
            g[key] = arr.astype(np.int64 if arr.dtype.kind in "iu" else np.float32)
        if a.check_batch:
            conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
            size = a.image_size or getattr(model, "image_size", 0) or 224
            x = torch.randn(a.check_batch, conv.in_channels, size, size)
            with torch.no_grad():
                logits = model(x)
            f["check/input"] = x.numpy()
            f["check/logits"] = logits.numpy()
        if a.input_mean is not None:
            f.attrs["input_mean"] = np.array(a.input_mean, dtype=np.float64)
            f.attrs["input_std"] = np.array(a.input_std, dtype=np.float64)
        f.attrs["source"] = f"torchvision {a.model}" + (f" weights={a.weights}" if a.weights else "")
    print(f"wrote {len(model.state_dict())} tensors of {a.model} to {a.out}")


if __name__ == "__main__":
    sys.exit(main())
