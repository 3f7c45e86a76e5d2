#!/usr/bin/env python3
"""Writes the .npy / .npz / .png fixtures of whittle's data tests into a folder.

    make_fixtures.py FOLDER

Needs numpy only (PNG files are written by hand with zlib).
"""
import os
import struct
import sys
import zlib

import numpy as np


def png(path, width, height, color_type, bit_depth, rows, palette=None, trns=None):
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + r for r in rows)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        body += chunk(b"PLTE", palette)
    if trns is not None:
        body += chunk(b"tRNS", trns)
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(body)


def main():
    d = sys.argv[1]
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 3, 4)).astype(np.float32)
    b = rng.integers(-100, 100, size=(5, 2), dtype=np.int64)
    labels = np.arange(5, dtype=np.int64) % 3
    np.savez(os.path.join(d, "stored.npz"), x=a, y=b, labels=labels)
    np.savez_compressed(os.path.join(d, "deflated.npz"), x=a, y=b, labels=labels)
    np.savez_compressed(os.path.join(d, "single.npz"), a)
    np.save(os.path.join(d, "x.npy"), a)
    np.save(os.path.join(d, "b.npy"), b)
    # Every dtype, for reading what numpy wrote.
    for code in ["f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"]:
        v = (np.arange(24).reshape(2, 3, 4) * 3 % 7).astype(code)
        np.save(os.path.join(d, "dtype_%s.npy" % code), v)
    # Header versions 2.0 and 3.0.
    with open(os.path.join(d, "v2.npy"), "wb") as f:
        np.lib.format.write_array(f, a, version=(2, 0))
    with open(os.path.join(d, "v3.npy"), "wb") as f:
        np.lib.format.write_array(f, a, version=(3, 0))
    # Fortran order and big-endian.
    np.save(os.path.join(d, "fortran.npy"), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    np.save(os.path.join(d, "bigendian.npy"), np.arange(6, dtype=">f4"))
    np.save(os.path.join(d, "unicode.npy"), np.array(["ab", "cd"]))
    # PNGs: 2x2 RGB, RGBA, grey 16-bit, palette with tRNS.
    png(os.path.join(d, "rgb.png"), 2, 2, 2, 8, [bytes([255, 0, 0, 0, 255, 0]), bytes([0, 0, 255, 10, 20, 30])])
    png(os.path.join(d, "rgba.png"), 2, 1, 6, 8, [bytes([1, 2, 3, 0, 4, 5, 6, 255])])
    png(os.path.join(d, "grey16.png"), 2, 1, 0, 16, [bytes([0x12, 0x34, 0xAB, 0xCD])])
    png(os.path.join(d, "palette.png"), 2, 1, 3, 8, [bytes([0, 1])], palette=bytes([9, 8, 7, 6, 5, 4]), trns=bytes([0]))


if __name__ == "__main__":
    main()
