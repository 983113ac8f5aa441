"""PyTorch DDP peer for launch/bench-peer: the same model, data, batch, optimizer and threads as an
Odyssey run, launched under the same mpirun (gloo backend). Prints one JSON line on rank 0."""
import argparse, glob, json, os, time

import h5py
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def fmnist_cnn(widths=(32, 64, 128), classes=10):
    layers, c = [], 1
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        c = w
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * 9, classes))


def zoo_model(name, size, classes=10):
    """torchvision's own models with a 1-channel stem, as Odyssey's zoo builds them for
    Fashion-MNIST (same layouts: parameter counts are checked by the model zoo tests)."""
    import torchvision
    if name == "fmnist_cnn":
        return fmnist_cnn(classes=classes)
    if name == "efficientnet_b0":
        m = torchvision.models.efficientnet_b0(num_classes=classes)
        m.features[0][0] = nn.Conv2d(1, 32, 3, stride=2, padding=1, bias=False)
        return m
    if name in ("resnet18", "resnet34", "resnet50"):
        m = getattr(torchvision.models, name)(num_classes=classes)
        m.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(m.conv1.weight, mode="fan_out", nonlinearity="relu")
        return m
    vits = {  # patch, depth, heads, width, MLP: Odyssey's registry (models/vit.cpp)
        "vit_ti4": (4, 6, 3, 192, 768), "vit_mini4": (4, 6, 3, 96, 384),
        "vit_ti16": (16, 12, 3, 192, 768), "vit_s16": (16, 12, 6, 384, 1536)}
    if name in vits:
        patch, depth, heads, hidden, mlp = vits[name]
        m = torchvision.models.VisionTransformer(image_size=size, patch_size=patch, num_layers=depth,
                                                 num_heads=heads, hidden_dim=hidden, mlp_dim=mlp,
                                                 num_classes=classes)
        m.conv_proj = nn.Conv2d(1, hidden, patch, stride=patch)
        return m
    raise SystemExit(f"unknown model {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="fmnist_cnn")
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--memory-format", default="nchw", choices=["nchw", "nhwc", "as-loaded"],
                    help="model and batches NCHW or NHWC, each batch with that order's own strides; "
                    "as-loaded: model NCHW, batches as indexed from the permuted NHWC pixels (a "
                    "1-channel batch then keeps channels-last strides, and convolutions answer "
                    "channels-last: what a plain PyTorch script does with Fashion-MNIST)")
    ap.add_argument("--ddp", default="tuned", choices=["tuned", "defaults"],
                    help="tuned (default): what a PyTorch user tuning for speed sets: gradients as "
                    "views of DDP's buckets (no copy in and out), no BatchNorm buffer broadcast "
                    "before every forward (Odyssey averages them at checkpoints and evaluations), "
                    "Odyssey's 4 MB buckets (the first 1 MB on both), SGD's multi-tensor (foreach) "
                    "step and denormals flushed; defaults: DDP and SGD as constructed plainly")
    a = ap.parse_args()
    rank = int(os.environ["OMPI_COMM_WORLD_RANK"]); world = int(os.environ["OMPI_COMM_WORLD_SIZE"])
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1"); os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(a.threads)
    tuned = a.ddp == "tuned"
    if tuned:
        torch.set_flush_denormal(True)
    torch.manual_seed(0)
    shards = sorted(glob.glob(os.path.join(a.data, "train-*.h5")))
    images = np.concatenate([h5py.File(s)["images"][()] for s in shards])
    labels = np.concatenate([h5py.File(s)["labels"][()] for s in shards])
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255).sub_(0.2860).div_(0.3530).contiguous()
    y_all = torch.from_numpy(labels)
    fmt = torch.channels_last if a.memory_format == "nhwc" else torch.contiguous_format
    ddp_options = dict(gradient_as_bucket_view=True, broadcast_buffers=False, bucket_cap_mb=4) if tuned else {}
    model = nn.parallel.DistributedDataParallel(zoo_model(a.model, a.image_size).to(memory_format=fmt),
                                                **ddp_options)

    def in_order(x):
        # A 1-channel batch is contiguous in both orders, so .contiguous(memory_format=...) keeps
        # whatever strides it has; convolutions follow those. Give it the order's own strides.
        if a.memory_format == "as-loaded":
            return x
        return torch.empty_like(x, memory_format=fmt).copy_(x)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
                          **(dict(foreach=True) if tuned else {}))
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(len(x_all), generator=g)
    gb = a.batch * world
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            dist.barrier(); t0 = time.time()
        base = (step * gb) % (len(x_all) - gb)
        idx = perm[base + rank * a.batch: base + (rank + 1) * a.batch]
        x, y = x_all[idx], y_all[idx]
        if a.image_size != x.shape[-1]:  # per batch, as Odyssey's augment.image_size
            x = F.interpolate(x, size=(a.image_size, a.image_size), mode="bilinear", align_corners=False, antialias=True)
        loss = F.cross_entropy(model(in_order(x)), y)
        opt.zero_grad(); loss.backward(); opt.step()
    dist.barrier()
    dt = time.time() - t0
    if rank == 0:
        print(json.dumps({"images_per_s": a.steps * gb / dt, "loss": loss.item()}), flush=True)


if __name__ == "__main__":
    main()
