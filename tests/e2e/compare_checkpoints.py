"""Compares the tensors of two Odyssey checkpoints with h5py (an independent reader).

  compare_checkpoints.py A.h5 B.h5 [--rel R] [--loose PATTERN --loose-rel R2] [--group G] [--min N]

Both files must hold the same datasets (in --group G when given). Without --rel every dataset
must be bitwise equal; with --rel the relative error max|a-b| / max|b| must be <= R. Datasets
whose name contains PATTERN are held to --loose-rel instead. Fails (exit 1) naming the first
dataset that differs, or those only one file holds; prints one line per dataset."""
import argparse
import sys

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rel", type=float, default=None)
    ap.add_argument("--loose", default=None)
    ap.add_argument("--loose-rel", type=float, default=1e-5)
    ap.add_argument("--group", default="")
    ap.add_argument("--min", type=int, default=1)
    args = ap.parse_args()
    a, b = h5py.File(args.a, "r"), h5py.File(args.b, "r")
    def datasets(f):
        found = []
        (f[args.group] if args.group else f).visititems(
            lambda n, o: found.append((args.group + "/" + n) if args.group else n) if isinstance(o, h5py.Dataset) else None)
        return found
    names, others = datasets(a), set(datasets(b))
    assert set(names) == others, (f"the files hold other datasets: only in {args.a}: {sorted(set(names) - others)}; "
                                  f"only in {args.b}: {sorted(others - set(names))}")
    for name in names:
        x, y = a[name][()], b[name][()]
        assert x.shape == y.shape, (name, x.shape, y.shape)
        rel = args.loose_rel if args.loose and args.loose in name else args.rel
        if rel is None:
            assert np.array_equal(x, y), f"{name} differs"
            print(name, "bitwise equal")
        else:
            err = np.abs(x.astype(np.float64) - y).max() / max(1e-12, np.abs(y).max())
            assert err <= rel, f"{name}: relative error {err} > {rel}"
            print(name, "relative error", err)
    assert len(names) >= args.min, f"only {len(names)} datasets compared, expected {args.min}+"


if __name__ == "__main__":
    sys.exit(main())
