"""PyTorch peer of the loader rows in build/bench_loader: a torch.utils.data.DataLoader over the
same HDF5 shards read through h5py (one file handle per worker, one sample per __getitem__, as
PyTorch users write it), a shuffled epoch, torchvision transforms per sample in the workers.
Prints one JSON line: images/s over the batches delivered.

  /usr/bin/python3 launch/peers/loader_peer.py --data datasets/fashion-mnist --batch 256 \
      --workers 2 --transform light|deit [--max-batches N]

light = RandomCrop(padding 2) + RandomHorizontalFlip + normalise (the quickstart's transform);
deit  = RandomResizedCrop(scale 0.08-1) + flip + RandAugment(2, 9) + normalise + RandomErasing(0.25).
"""
import argparse, glob, json, os, time

import h5py
import numpy as np
import torch
import torchvision.transforms as T


class Shards(torch.utils.data.Dataset):
    def __init__(self, folder, split, transform):
        self.files = sorted(glob.glob(os.path.join(folder, f"{split}-*.h5")))
        counts = []
        for f in self.files:
            with h5py.File(f, "r") as h:
                counts.append(len(h["labels"]))
        self.ends = np.cumsum(counts)
        self.transform = transform
        self.handles = None  # opened in each worker (h5py handles do not survive fork)

    def __len__(self):
        return int(self.ends[-1])

    def __getitem__(self, i):
        if self.handles is None:
            self.handles = [h5py.File(f, "r") for f in self.files]
        s = int(np.searchsorted(self.ends, i, side="right"))
        j = i - (int(self.ends[s - 1]) if s else 0)
        h = self.handles[s]
        image = torch.from_numpy(h["images"][j]).permute(2, 0, 1)  # HWC uint8 -> CHW
        return self.transform(image), int(h["labels"][j])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--transform", default="light", choices=["light", "deit"])
    ap.add_argument("--max-batches", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    mean, std = 0.5, 0.25  # the values do not change the cost
    with h5py.File(sorted(glob.glob(os.path.join(a.data, f"{a.split}-*.h5")))[0], "r") as h:
        side = h["images"].shape[1]
    norm = [T.ConvertImageDtype(torch.float32), T.Normalize([mean], [std])]
    if a.transform == "light":
        tf = T.Compose([T.RandomCrop(side, padding=2), T.RandomHorizontalFlip()] + norm)
    else:
        tf = T.Compose([T.RandomResizedCrop(side, scale=(0.08, 1.0), antialias=True), T.RandomHorizontalFlip(),
                        T.RandAugment(2, 9)] + norm + [T.RandomErasing(0.25)])
    ds = Shards(a.data, a.split, tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                         drop_last=True, persistent_workers=False,
                                         generator=torch.Generator().manual_seed(0))
    n, t0 = 0, time.perf_counter()
    for b, (x, y) in enumerate(loader):
        n += len(y)
        if a.max_batches and b + 1 >= a.max_batches:
            break
    s = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch DataLoader + h5py", "transform": a.transform, "workers": a.workers,
                      "images": n, "images_per_s": round(n / s, 1)}), flush=True)


if __name__ == "__main__":
    main()
