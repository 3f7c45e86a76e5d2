#!/usr/bin/env python3
"""Reference preprocessing with PIL and numpy, as torchvision does it, for whittle's tests.

    preprocess_reference.py OUT.npy SPEC IMAGE...

SPEC is "resize,crop,channels,scale,mean,std,layout" with sizes in pixels (0: none), e.g.
"256,224,rgb,0.00392156862745098,0.485:0.456:0.406,0.229:0.224:0.225,nchw". Writes a float32
array [N, ...] and, next to it, OUT.u8.npy with the uint8 pixels after resize and crop
(before normalisation), stacked as [N, H, W, C].

The steps follow torchvision.transforms: Image.open(p).convert("RGB" or "L"); Resize(short)
computes the long side as int(short * long / short_side) and calls PIL's resize with
BILINEAR (reducing_gap=None); CenterCrop offsets are int(round((size - crop) / 2.0)).
"""
import sys

import numpy as np
from PIL import Image


def main():
    out, spec, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    resize, crop, channels, scale, mean, std, layout = spec.split(",")
    resize, crop, scale = int(resize), int(crop), float(scale)
    mean = np.array([float(v) for v in mean.split(":")], dtype=np.float64)
    std = np.array([float(v) for v in std.split(":")], dtype=np.float64)
    samples, pixels = [], []
    for path in paths:
        img = Image.open(path).convert("L" if channels == "grey" else "RGB")
        if resize > 0:
            w, h = img.size
            if w <= h:
                size = (resize, int(resize * h / w))
            else:
                size = (int(resize * w / h), resize)
            img = img.resize(size, Image.BILINEAR)
        if crop > 0:
            w, h = img.size
            top = int(round((h - crop) / 2.0))
            left = int(round((w - crop) / 2.0))
            img = img.crop((left, top, left + crop, top + crop))
        a = np.asarray(img, dtype=np.uint8)
        if a.ndim == 2:
            a = a[:, :, None]
        pixels.append(a)
        x = a.astype(np.float64)
        if channels == "bgr":
            x = x[:, :, ::-1]
        x = (x * scale - mean) / std
        if layout == "nchw":
            x = x.transpose(2, 0, 1)
        samples.append(x.astype(np.float32))
    np.save(out, np.stack(samples))
    np.save(out[:-4] + ".u8.npy", np.stack(pixels))


if __name__ == "__main__":
    main()
