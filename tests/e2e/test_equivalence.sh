# N ranks with batch B end with the same parameters as one rank with batch N*B: 12 SGD-momentum
# steps on real Fashion-MNIST (BatchNorm-free tiny_cnn, no augmentation), compared tensor by
# tensor from the checkpoints (relative error <= 1e-5).
source "$(dirname "$0")/common.sh"
common=(model.name=tiny_cnn augment.hflip=false data.train_limit=2400 data.eval_limit=500
        train.max_steps=12 train.log_every=4 optim.nesterov=false)
small_run 1 one train.batch_size=24 "${common[@]}" > "$WORK/one.txt" 2>&1 || { cat "$WORK/one.txt"; fail "1 rank"; }
small_run 2 two train.batch_size=12 "${common[@]}" > "$WORK/two.txt" 2>&1 || { cat "$WORK/two.txt"; fail "2 ranks"; }
small_run 3 three train.batch_size=8 "${common[@]}" > "$WORK/three.txt" 2>&1 || { cat "$WORK/three.txt"; fail "3 ranks"; }
/usr/bin/python3 - "$WORK" <<'PY'
import sys, h5py, numpy as np
work = sys.argv[1]
def params(name):
    f = h5py.File(f"{work}/{name}/ckpt-step0000000012.h5", "r")
    return {k: f["model"][k][()] for k in f["model"]}
one = params("one")
for other in ("two", "three"):
    p = params(other)
    assert p.keys() == one.keys()
    for k in one:
        err = np.abs(p[k] - one[k]).max() / max(1e-12, np.abs(one[k]).max())
        assert err <= 1e-5, (other, k, err)
        print(other, k, "rel err", err)
    start = h5py.File(f"{work}/{other}/ckpt-step0000000012.h5", "r")
assert not np.allclose(one["features.0.weight"], 0)
PY
