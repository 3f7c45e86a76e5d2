#!/usr/bin/env python3
"""Train whittle's demo CNN in pure numpy and export it to ONNX.

The model is a small digit classifier trained on the 8x8 handwritten digits
bundled with scikit-learn (UCI "Optical Recognition of Handwritten Digits",
CC BY 4.0).  It is deliberately built from the layers that make graph
optimisation interesting: Conv followed by a separate BatchNormalization,
Relu, a depthwise Conv + BN + Relu + pointwise 1x1 Conv, a residual Add,
MaxPool, GlobalAveragePool, Flatten and a final Gemm.

Everything (forward pass, backward pass, im2col convolutions, Adam) is written
by hand in numpy; no deep-learning framework is used.  A fixed seed makes the
run deterministic: running the script twice produces a byte-identical
models/demo_cnn.onnx (BLAS is pinned to one thread so the core count does not
matter; a different numpy/BLAS build or CPU instruction set may still change
the last bits of the weights).

Outputs (all next to this script):
  demo_cnn.onnx                  opset 17, IR 8, input "input" [batch,1,8,8],
                                 output "logits" [batch,10]
  demo_data/test_images.npy      float32 [360,1,8,8], held-out test split
  demo_data/test_labels.txt      one integer class per line, same order
  demo_data/calib_images.npy     float32 [100,1,8,8], from the training split

Usage:  python3 models/train_demo.py
Needs:  numpy, onnx, onnxruntime, scikit-learn (for the bundled data only).
"""

import hashlib
import os
import sys
import time

# Single-threaded BLAS: multi-threaded GEMM may sum in a different order
# depending on the core count, which would change the trained weights in the
# last bits.  With one thread the result depends only on the numpy/BLAS build
# and CPU instruction set.  Must be set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

SEED = 20240607
EPOCHS = 60
BATCH = 32
LR = 3e-3
WEIGHT_DECAY = 1e-4
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
TEST_PER_CLASS = 36      # 10 classes x 36 = 360 held-out images
CALIB_PER_CLASS = 10     # 10 classes x 10 = 100 calibration images
NUM_CLASSES = 10

HERE = os.path.dirname(os.path.abspath(__file__))
ONNX_PATH = os.path.join(HERE, "demo_cnn.onnx")
DATA_DIR = os.path.join(HERE, "demo_data")

F32 = np.float32


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def load_data(rng):
    """Returns (x_train, y_train, x_test, y_test), x as float32 [N,1,8,8]."""
    from sklearn.datasets import load_digits  # bundled with sklearn, no download

    digits = load_digits()
    images = digits.images.astype(F32) / F32(16.0)  # 0..16 -> 0..1
    labels = digits.target.astype(np.int64)

    train_idx, test_idx = [], []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        test_idx.append(idx[:TEST_PER_CLASS])
        train_idx.append(idx[TEST_PER_CLASS:])
    train_idx = np.concatenate(train_idx)
    test_idx = np.concatenate(test_idx)
    # Interleave classes so the exported files are not sorted by label.
    train_idx = train_idx[rng.permutation(len(train_idx))]
    test_idx = test_idx[rng.permutation(len(test_idx))]

    x = images[:, None, :, :]
    return (np.ascontiguousarray(x[train_idx]), labels[train_idx],
            np.ascontiguousarray(x[test_idx]), labels[test_idx])


def augment(x, rng):
    """Random integer shift of up to 1 pixel in each direction, zero fill."""
    n, _, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dy = rng.integers(0, 3, size=n)
    dx = rng.integers(0, 3, size=n)
    out = np.empty_like(x)
    for i in range(n):
        out[i] = xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


# --------------------------------------------------------------------------
# Layers (stride 1, "same" padding convolutions via im2col)
# --------------------------------------------------------------------------

def im2col(x, k, pad):
    """[N,C,H,W] -> [N,C,k*k,H,W] (stride 1, output size == input size)."""
    _, _, h, w = x.shape
    if k == 1:
        return x[:, :, None]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return np.stack([xp[:, :, i:i + h, j:j + w]
                     for i in range(k) for j in range(k)], axis=2)


def col2im(dcols, k, pad):
    """Adjoint of im2col: [N,C,k*k,H,W] -> [N,C,H,W]."""
    n, c, _, h, w = dcols.shape
    if k == 1:
        return dcols[:, :, 0]
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dcols.dtype)
    idx = 0
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + h, j:j + w] += dcols[:, :, idx]
            idx += 1
    return dxp[:, :, pad:pad + h, pad:pad + w]


def conv_fwd(x, w, b):
    """Dense conv, w [O,C,k,k], stride 1, pad (k-1)/2."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    cols = im2col(x, k, (k - 1) // 2)                       # N,C,kk,H,W
    cols2 = cols.transpose(0, 3, 4, 1, 2).reshape(n * h * wd, c * k * k)
    out = cols2 @ w.reshape(o, -1).T                        # NHW,O
    if b is not None:
        out += b
    out = out.reshape(n, h, wd, o).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), (cols2, x.shape)


def conv_bwd(dout, w, cache):
    cols2, xshape = cache
    n, c, h, wd = xshape
    o, _, k, _ = w.shape
    d2 = dout.transpose(0, 2, 3, 1).reshape(-1, o)          # NHW,O
    dw = (d2.T @ cols2).reshape(w.shape)
    db = d2.sum(axis=0)
    dcols = (d2 @ w.reshape(o, -1)).reshape(n, h, wd, c, k * k)
    dx = col2im(np.ascontiguousarray(dcols.transpose(0, 3, 4, 1, 2)),
                k, (k - 1) // 2)
    return dx, dw, db


def dwconv_fwd(x, w):
    """Depthwise conv (group == channels), w [C,1,k,k], no bias."""
    c, _, k, _ = w.shape
    cols = im2col(x, k, (k - 1) // 2)                       # N,C,kk,H,W
    out = np.einsum("nckhw,ck->nchw", cols, w.reshape(c, k * k))
    return out, cols


def dwconv_bwd(dout, w, cols):
    c, _, k, _ = w.shape
    dw = np.einsum("nchw,nckhw->ck", dout, cols).reshape(w.shape)
    dcols = dout[:, :, None] * w.reshape(1, c, k * k, 1, 1)
    return col2im(dcols, k, (k - 1) // 2), dw


def bn_fwd(x, p, name, train):
    g, b = p[name + ".scale"], p[name + ".bias"]
    if train:
        mean = x.mean(axis=(0, 2, 3))
        var = x.var(axis=(0, 2, 3))
        m = x.shape[0] * x.shape[2] * x.shape[3]
        rm, rv = p[name + ".mean"], p[name + ".var"]
        rm *= 1 - BN_MOMENTUM
        rm += BN_MOMENTUM * mean
        rv *= 1 - BN_MOMENTUM
        rv += BN_MOMENTUM * var * (m / (m - 1))             # unbiased, as PyTorch
    else:
        mean, var = p[name + ".mean"], p[name + ".var"]
    inv = (1.0 / np.sqrt(var + F32(BN_EPS))).astype(F32)
    xhat = (x - mean[None, :, None, None]) * inv[None, :, None, None]
    y = xhat * g[None, :, None, None] + b[None, :, None, None]
    return y, (xhat, inv)


def bn_bwd(dy, g, cache):
    xhat, inv = cache
    m = dy.shape[0] * dy.shape[2] * dy.shape[3]
    dg = (dy * xhat).sum(axis=(0, 2, 3))
    db = dy.sum(axis=(0, 2, 3))
    dxhat = dy * g[None, :, None, None]
    dx = (inv / m)[None, :, None, None] * (
        m * dxhat
        - dxhat.sum(axis=(0, 2, 3))[None, :, None, None]
        - xhat * (dxhat * xhat).sum(axis=(0, 2, 3))[None, :, None, None])
    return dx, dg, db


def maxpool2_fwd(x):
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    r = r.reshape(n, c, h // 2, w // 2, 4)
    arg = r.argmax(axis=-1)
    out = np.take_along_axis(r, arg[..., None], axis=-1)[..., 0]
    return out, (arg, x.shape)


def maxpool2_bwd(dout, cache):
    arg, (n, c, h, w) = cache
    dr = np.zeros((n, c, h // 2, w // 2, 4), dtype=dout.dtype)
    np.put_along_axis(dr, arg[..., None], dout[..., None], axis=-1)
    dr = dr.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return dr.reshape(n, c, h, w)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------
#
#  input [N,1,8,8]
#  stem.conv 3x3 1->24 (no bias) -> stem.bn -> stem.relu            = s
#  block1.dw 3x3 depthwise 24 (no bias) -> block1.dw_bn -> block1.dw_relu
#  block1.pw 1x1 24->24 (no bias) -> block1.pw_bn
#  block1.add (+ s) -> block1.relu
#  pool MaxPool 2x2/2                                           [N,24,4,4]
#  block2.conv 3x3 24->48 (with bias) -> block2.bn -> block2.relu
#  head.gap GlobalAveragePool -> head.flatten -> head.fc Gemm 48->10 = logits

C1, C2 = 24, 48


def init_params(rng):
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(F32)

    p = {}

    def bn(name, c):
        p[name + ".scale"] = np.ones(c, F32)
        p[name + ".bias"] = np.zeros(c, F32)
        p[name + ".mean"] = np.zeros(c, F32)
        p[name + ".var"] = np.ones(c, F32)

    p["stem.conv.weight"] = he((C1, 1, 3, 3), 9)
    bn("stem.bn", C1)
    p["block1.dw.weight"] = he((C1, 1, 3, 3), 9)
    bn("block1.dw_bn", C1)
    p["block1.pw.weight"] = he((C1, C1, 1, 1), C1)
    bn("block1.pw_bn", C1)
    p["block2.conv.weight"] = he((C2, C1, 3, 3), C1 * 9)
    # A bias in front of a BatchNorm gets no gradient in training mode (the
    # batch mean absorbs it), but it is kept -- with non-zero values -- so that
    # Conv(bias)+BN folding in the optimiser has something real to fold.
    p["block2.conv.bias"] = rng.uniform(-0.1, 0.1, C2).astype(F32)
    bn("block2.bn", C2)
    p["head.fc.weight"] = (rng.standard_normal((NUM_CLASSES, C2))
                           * np.sqrt(1.0 / C2)).astype(F32)
    p["head.fc.bias"] = np.zeros(NUM_CLASSES, F32)
    return p


TRAINABLE_SUFFIXES = (".weight", ".scale", ".bias")


def forward(p, x, train):
    c = {}
    h, c["stem.conv"] = conv_fwd(x, p["stem.conv.weight"], None)
    h, c["stem.bn"] = bn_fwd(h, p, "stem.bn", train)
    s = np.maximum(h, 0)
    c["stem.relu"] = s > 0

    h, c["block1.dw"] = dwconv_fwd(s, p["block1.dw.weight"])
    h, c["block1.dw_bn"] = bn_fwd(h, p, "block1.dw_bn", train)
    h = np.maximum(h, 0)
    c["block1.dw_relu"] = h > 0
    h, c["block1.pw"] = conv_fwd(h, p["block1.pw.weight"], None)
    h, c["block1.pw_bn"] = bn_fwd(h, p, "block1.pw_bn", train)
    h = h + s
    h = np.maximum(h, 0)
    c["block1.relu"] = h > 0

    h, c["pool"] = maxpool2_fwd(h)

    h, c["block2.conv"] = conv_fwd(h, p["block2.conv.weight"],
                                   p["block2.conv.bias"])
    h, c["block2.bn"] = bn_fwd(h, p, "block2.bn", train)
    h = np.maximum(h, 0)
    c["block2.relu"] = h > 0
    c["head.gap"] = h.shape
    f = h.mean(axis=(2, 3))                                  # N,C2
    c["head.fc"] = f
    logits = f @ p["head.fc.weight"].T + p["head.fc.bias"]
    return logits, c


def backward(p, c, dlogits):
    g = {}
    f = c["head.fc"]
    g["head.fc.weight"] = dlogits.T @ f
    g["head.fc.bias"] = dlogits.sum(axis=0)
    df = dlogits @ p["head.fc.weight"]
    n, ch, hh, ww = c["head.gap"]
    dh = np.broadcast_to((df / F32(hh * ww))[:, :, None, None],
                         (n, ch, hh, ww)) * c["block2.relu"]
    dh, g["block2.bn.scale"], g["block2.bn.bias"] = bn_bwd(
        dh, p["block2.bn.scale"], c["block2.bn"])
    dh, g["block2.conv.weight"], g["block2.conv.bias"] = conv_bwd(
        dh, p["block2.conv.weight"], c["block2.conv"])

    dh = maxpool2_bwd(dh, c["pool"])
    dh = dh * c["block1.relu"]
    ds = dh                                                  # residual branch
    dh, g["block1.pw_bn.scale"], g["block1.pw_bn.bias"] = bn_bwd(
        dh, p["block1.pw_bn.scale"], c["block1.pw_bn"])
    dh, g["block1.pw.weight"], _ = conv_bwd(dh, p["block1.pw.weight"],
                                            c["block1.pw"])
    dh = dh * c["block1.dw_relu"]
    dh, g["block1.dw_bn.scale"], g["block1.dw_bn.bias"] = bn_bwd(
        dh, p["block1.dw_bn.scale"], c["block1.dw_bn"])
    dh, g["block1.dw.weight"] = dwconv_bwd(dh, p["block1.dw.weight"],
                                           c["block1.dw"])
    ds = ds + dh

    dh = ds * c["stem.relu"]
    dh, g["stem.bn.scale"], g["stem.bn.bias"] = bn_bwd(
        dh, p["stem.bn.scale"], c["stem.bn"])
    _, g["stem.conv.weight"], _ = conv_bwd(dh, p["stem.conv.weight"],
                                           c["stem.conv"])
    return g


def softmax_xent(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    prob = e / e.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = -np.log(prob[np.arange(n), y] + 1e-12).mean()
    d = prob
    d[np.arange(n), y] -= 1
    return float(loss), (d / n).astype(F32)


def predict(p, x, batch=256):
    out = []
    for i in range(0, len(x), batch):
        logits, _ = forward(p, x[i:i + batch], train=False)
        out.append(logits.astype(F32))
    return np.concatenate(out)


def train(p, x, y, rng):
    names = [k for k in p if k.endswith(TRAINABLE_SUFFIXES)]
    m = {k: np.zeros_like(p[k]) for k in names}
    v = {k: np.zeros_like(p[k]) for k in names}
    b1, b2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = (len(x) + BATCH - 1) // BATCH
    total = EPOCHS * steps_per_epoch
    t = 0
    for epoch in range(EPOCHS):
        perm = rng.permutation(len(x))
        xa = augment(x, rng)
        loss_sum, correct = 0.0, 0
        for s in range(steps_per_epoch):
            idx = perm[s * BATCH:(s + 1) * BATCH]
            xb, yb = xa[idx], y[idx]
            logits, cache = forward(p, xb, train=True)
            loss, dlogits = softmax_xent(logits, yb)
            loss_sum += loss * len(idx)
            correct += int((logits.argmax(axis=1) == yb).sum())
            g = backward(p, cache, dlogits)
            t += 1
            lr = LR * 0.5 * (1 + np.cos(np.pi * (t - 1) / total))  # cosine
            for k in names:
                gk = g[k].astype(F32)
                if k.endswith(".weight"):
                    gk = gk + F32(WEIGHT_DECAY) * p[k]
                m[k] = F32(b1) * m[k] + F32(1 - b1) * gk
                v[k] = F32(b2) * v[k] + F32(1 - b2) * gk * gk
                mh = m[k] / F32(1 - b1 ** t)
                vh = v[k] / F32(1 - b2 ** t)
                p[k] -= (F32(lr) * mh / (np.sqrt(vh) + F32(eps))).astype(F32)
        if epoch % 5 == 4 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1:3d}/{EPOCHS}  loss {loss_sum / len(x):.4f}"
                  f"  train-aug acc {correct / len(x):.4f}", flush=True)


# --------------------------------------------------------------------------
# ONNX export
# --------------------------------------------------------------------------

def export_onnx(p, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.ascontiguousarray(p[k], dtype=F32), k)
             for k in p]
    N = helper.make_node
    nodes = [
        N("Conv", ["input", "stem.conv.weight"], ["stem.conv.out"],
          name="stem.conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
          strides=[1, 1], dilations=[1, 1], group=1),
        N("BatchNormalization",
          ["stem.conv.out", "stem.bn.scale", "stem.bn.bias", "stem.bn.mean",
           "stem.bn.var"], ["stem.bn.out"], name="stem.bn", epsilon=BN_EPS),
        N("Relu", ["stem.bn.out"], ["stem.relu.out"], name="stem.relu"),

        N("Conv", ["stem.relu.out", "block1.dw.weight"], ["block1.dw.out"],
          name="block1.dw", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
          strides=[1, 1], dilations=[1, 1], group=C1),
        N("BatchNormalization",
          ["block1.dw.out", "block1.dw_bn.scale", "block1.dw_bn.bias",
           "block1.dw_bn.mean", "block1.dw_bn.var"], ["block1.dw_bn.out"],
          name="block1.dw_bn", epsilon=BN_EPS),
        N("Relu", ["block1.dw_bn.out"], ["block1.dw_relu.out"],
          name="block1.dw_relu"),
        N("Conv", ["block1.dw_relu.out", "block1.pw.weight"], ["block1.pw.out"],
          name="block1.pw", kernel_shape=[1, 1], pads=[0, 0, 0, 0],
          strides=[1, 1], dilations=[1, 1], group=1),
        N("BatchNormalization",
          ["block1.pw.out", "block1.pw_bn.scale", "block1.pw_bn.bias",
           "block1.pw_bn.mean", "block1.pw_bn.var"], ["block1.pw_bn.out"],
          name="block1.pw_bn", epsilon=BN_EPS),
        N("Add", ["block1.pw_bn.out", "stem.relu.out"], ["block1.add.out"],
          name="block1.add"),
        N("Relu", ["block1.add.out"], ["block1.relu.out"], name="block1.relu"),

        N("MaxPool", ["block1.relu.out"], ["pool.out"], name="pool",
          kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0]),

        N("Conv", ["pool.out", "block2.conv.weight", "block2.conv.bias"],
          ["block2.conv.out"], name="block2.conv", kernel_shape=[3, 3],
          pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1),
        N("BatchNormalization",
          ["block2.conv.out", "block2.bn.scale", "block2.bn.bias",
           "block2.bn.mean", "block2.bn.var"], ["block2.bn.out"],
          name="block2.bn", epsilon=BN_EPS),
        N("Relu", ["block2.bn.out"], ["block2.relu.out"], name="block2.relu"),

        N("GlobalAveragePool", ["block2.relu.out"], ["head.gap.out"],
          name="head.gap"),
        N("Flatten", ["head.gap.out"], ["head.flatten.out"],
          name="head.flatten", axis=1),
        N("Gemm", ["head.flatten.out", "head.fc.weight", "head.fc.bias"],
          ["logits"], name="head.fc", alpha=1.0, beta=1.0, transB=1),
    ]
    graph = helper.make_graph(
        nodes, "whittle_demo_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                       ["batch", NUM_CLASSES])],
        initializer=inits,
        doc_string="8x8 digit classifier (sklearn digits / UCI, CC BY 4.0). "
                   "Input: grey levels scaled to [0,1] (raw 0..16 / 16). "
                   "Output: unnormalised class logits for digits 0-9.")
    model = helper.make_model(
        graph, producer_name="whittle-train_demo", producer_version="1",
        opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.model_version = 1
    model.doc_string = "whittle demo CNN, generated by models/train_demo.py"
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString(deterministic=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return data


def verify_onnx(path, x_test, y_test, np_logits):
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    onnx.checker.check_model(path, full_check=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    ort_logits = sess.run(["logits"], {"input": x_test})[0]
    # Also exercise the symbolic batch dim with a different batch size.
    ort_small = sess.run(["logits"], {"input": x_test[:7]})[0]
    assert ort_logits.shape == (len(x_test), NUM_CLASSES), ort_logits.shape
    assert np.allclose(ort_small, ort_logits[:7], atol=1e-5)
    max_diff = float(np.abs(ort_logits - np_logits).max())
    np_pred = np_logits.argmax(axis=1)
    ort_pred = ort_logits.argmax(axis=1)
    np_acc = float((np_pred == y_test).mean())
    ort_acc = float((ort_pred == y_test).mean())
    print(f"onnxruntime vs numpy: max |logit diff| = {max_diff:.2e}, "
          f"numpy acc {np_acc:.4f}, onnxruntime acc {ort_acc:.4f}")
    assert np.array_equal(np_pred, ort_pred), "prediction mismatch"
    assert np_acc == ort_acc
    assert max_diff < 1e-3, max_diff
    return ort_acc


# --------------------------------------------------------------------------

def main():
    t0 = time.time()
    rng = np.random.default_rng(SEED)
    x_train, y_train, x_test, y_test = load_data(rng)
    print(f"data: train {x_train.shape}, test {x_test.shape}")

    p = init_params(rng)
    train(p, x_train, y_train, rng)
    t_train = time.time() - t0

    train_acc = float((predict(p, x_train).argmax(1) == y_train).mean())
    np_test_logits = predict(p, x_test)
    test_acc = float((np_test_logits.argmax(1) == y_test).mean())

    data = export_onnx(p, ONNX_PATH)

    os.makedirs(DATA_DIR, exist_ok=True)
    np.save(os.path.join(DATA_DIR, "test_images.npy"),
            np.ascontiguousarray(x_test, dtype=F32))
    with open(os.path.join(DATA_DIR, "test_labels.txt"), "w") as fh:
        fh.write("".join(f"{int(c)}\n" for c in y_test))
    calib_idx = np.concatenate([np.flatnonzero(y_train == c)[:CALIB_PER_CLASS]
                                for c in range(NUM_CLASSES)])
    calib_idx.sort()
    np.save(os.path.join(DATA_DIR, "calib_images.npy"),
            np.ascontiguousarray(x_train[calib_idx], dtype=F32))

    ort_acc = verify_onnx(ONNX_PATH, x_test, y_test, np_test_logits)
    assert ort_acc == test_acc

    print(f"train accuracy (numpy, no augmentation): {train_acc:.4f}")
    print(f"test accuracy  (numpy):       {test_acc:.4f}  "
          f"({int(round(test_acc * len(y_test)))}/{len(y_test)})")
    print(f"test accuracy  (onnxruntime): {ort_acc:.4f}")
    print(f"wrote {ONNX_PATH} ({len(data)} bytes) "
          f"sha256 {hashlib.sha256(data).hexdigest()}")
    for fn in ("test_images.npy", "test_labels.txt", "calib_images.npy"):
        fp = os.path.join(DATA_DIR, fn)
        with open(fp, "rb") as fh:
            h = hashlib.sha256(fh.read()).hexdigest()
        print(f"wrote {fp} ({os.path.getsize(fp)} bytes) sha256 {h}")
    print(f"training time {t_train:.1f} s, total {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
