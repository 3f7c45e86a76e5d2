"""ONNX Runtime's own 4-bit weight-only quantizer, for the side-by-side table in RESULTS.md.

usage: ort_quantize_weights.py MODEL OUT [--block 128] [--asymmetric] [--method rtn|default]

method rtn: RTNWeightOnlyQuantConfig (round to nearest); default: DefaultWeightOnlyQuantConfig
(MLAS blockwise quantization, what `quantize_matmul_4bits` does). Prints the time taken.
"""
import argparse
import time

import onnx
from onnxruntime.quantization import matmul_nbits_quantizer as mnq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--asymmetric", action="store_true")
    ap.add_argument("--method", choices=["rtn", "default"], default="default")
    args = ap.parse_args()
    model = onnx.load(args.model)
    start = time.perf_counter()
    if args.method == "rtn":
        config = mnq.RTNWeightOnlyQuantConfig()
    else:
        config = mnq.DefaultWeightOnlyQuantConfig(block_size=args.block, is_symmetric=not args.asymmetric)
    q = mnq.MatMulNBitsQuantizer(model, block_size=args.block, is_symmetric=not args.asymmetric, algo_config=config)
    q.process()
    elapsed = time.perf_counter() - start
    q.model.save_model_to_file(args.out, use_external_data_format=False)
    print(f"ONNX Runtime MatMulNBitsQuantizer ({args.method}, block {args.block}, "
          f"{'asymmetric' if args.asymmetric else 'symmetric'}): {elapsed:.1f} s")


if __name__ == "__main__":
    main()
