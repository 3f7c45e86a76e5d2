"""Probe: small models written in plain torch, exported as torch 2.x users export today.

Not run by the tests: it needs torch and onnxscript, which are not in requirements.txt. Run it from a separate
virtualenv (session 14: torch 2.15.0, onnxscript 0.7.2):

    BENCHVENV/bin/python benchmarks/probe_torch_export.py OUT [dyn]

For each of four models (a depthwise CNN with SiLU/HardSwish/BatchNorm, a pre-norm Transformer encoder with a
padding mask, a causal decoder block with scaled_dot_product_attention and RMSNorm, a 2-layer GRU into a
bidirectional LSTM) it writes OUT/NAME-dynamo.onnx (`torch.onnx.export(dynamo=True)`, the default exporter;
with `dyn`, every input axis dynamic), OUT/NAME-legacy.onnx (the TorchScript exporter, opset 17),
OUT/NAME.inputs.npz and OUT/NAME.ref.npy (torch's own output). RESULTS.md "torch 2.15's exporters" has what
whittle did with them.
"""

import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.bn = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x + self.c2(F.hardswish(self.bn(self.c1(x))))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(*[Block(32) for _ in range(3)])
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.blocks(F.silu(self.stem(x)))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Encoder(nn.Module):
    def __init__(self, d=64, heads=4, layers=2, vocab=1000):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, 128, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, batch_first=True, norm_first=True, activation="gelu")
        self.enc = nn.TransformerEncoder(layer, layers)
        self.out = nn.Linear(d, 5)

    def forward(self, ids, mask):
        x = self.emb(ids) + self.pos[:, : ids.shape[1]]
        return self.out(self.enc(x, src_key_padding_mask=mask == 0).mean(1))


class Decoder(nn.Module):
    """One causal block: RMSNorm, scaled_dot_product_attention, a SiLU feed-forward."""

    def __init__(self, d=64, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)
        self.norm = nn.RMSNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 128), nn.SiLU(), nn.Linear(128, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.o(a)
        return x + self.ff(self.norm(x))


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(16, 32, batch_first=True, num_layers=2)
        self.lstm = nn.LSTM(32, 16, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        y, _ = self.gru(x)
        y, _ = self.lstm(y)
        return self.fc(y[:, -1])


def main():
    warnings.filterwarnings("ignore")
    out = sys.argv[1]
    dynamic = len(sys.argv) > 2 and sys.argv[2] == "dyn"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    cases = {  # name: model, example inputs, dynamic axes by input name
        "cnn": (Cnn(), (torch.randn(1, 3, 64, 64),), {"x": {0: "batch"}}),
        "tx": (Encoder(), (torch.randint(0, 1000, (2, 16)), torch.ones(2, 16, dtype=torch.int64)),
               {"ids": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}}),
        "sdpa": (Decoder(), (torch.randn(1, 24, 64),), {"x": {0: "b", 1: "t"}}),
        "gru": (Recurrent(), (torch.randn(2, 20, 16),), {"x": {0: "b", 1: "t"}}),
    }
    for name, (model, args, axes) in cases.items():
        model.eval()
        names = list(axes)
        with torch.no_grad():
            np.save(f"{out}/{name}.ref.npy", model(*args).numpy())
        np.savez(f"{out}/{name}.inputs.npz", **{n: a.numpy() for n, a in zip(names, args)})
        for mode in ("dynamo", "legacy"):
            path = f"{out}/{name}-{mode}.onnx"
            try:
                if mode == "dynamo":
                    shapes = {n: {k: torch.export.Dim.AUTO for k in a} for n, a in axes.items()} if dynamic else None
                    torch.onnx.export(model, args, input_names=names, dynamic_shapes=shapes, dynamo=True).save(path)
                else:
                    torch.onnx.export(model, args, path, input_names=names, dynamic_axes=axes, dynamo=False,
                                      opset_version=17)
                print(name, mode, "ok")
            except Exception as e:  # an exporter's failure is a finding, not a stop
                print(name, mode, "FAILED", type(e).__name__, str(e)[:300])


if __name__ == "__main__":
    main()
