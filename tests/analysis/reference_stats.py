#!/usr/bin/env python3
"""Independent reference for `whittle inspect`: parameters, MACs, quantization form, sparsity.

Written against the onnx Python package (onnx.shape_inference with data propagation), sharing
no code with the C++ in src/analysis/. It applies the counting rules of docs/inspect-schema.md:

  parameters  constants (initializers and Constant nodes) of float, int8/uint8, int16/uint16,
              int32 or 4-bit types that are used as model weights: followed through
              Identity/Cast/Reshape/Transpose/Squeeze/Unsqueeze/Flatten/DequantizeLinear to
              the op that reads them, they land in a weight input (Conv W/B, Gemm, MatMul,
              BatchNormalization, QLinearConv w/bias, ...) or, with more than one element, in
              a plain data input (Add, Mul, Concat, ...). Quantization scales and zero points,
              shape-like operands (Reshape shape, Slice starts, Resize scales, Clip bounds,
              ...) and int64 tensors are not parameters.
  MACs        at batch 1 (the first dim of each graph input); other symbolic input dims are
              taken as 1 and the result is marked approximate.

Usage:
  reference_stats.py [--models DIR] [--whittle BINARY] [--json] [MODEL ...]

With a whittle binary (given, or found in build*/ under the project root) it runs
`whittle inspect --json` on every model and exits 1 when any figure disagrees.
"""

import argparse
import glob
import json
import math
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TP = onnx.TensorProto

WEIGHT_DTYPES = {TP.FLOAT, TP.FLOAT16, TP.BFLOAT16, TP.DOUBLE, TP.INT8, TP.UINT8, TP.INT16,
                 TP.UINT16, TP.INT32, TP.INT4, TP.UINT4}

# Ops that only move or re-type a tensor: (op, data input slot).
PASS_THROUGH = {('Identity', 0), ('Cast', 0), ('Reshape', 0), ('Transpose', 0), ('Squeeze', 0),
                ('Unsqueeze', 0), ('Flatten', 0), ('DequantizeLinear', 0)}

# Inputs that hold weights whatever their size.
WEIGHT_SLOTS = {
    'Conv': {1, 2}, 'ConvTranspose': {1, 2}, 'Gemm': {0, 1, 2}, 'MatMul': {0, 1},
    'BatchNormalization': {1, 2, 3, 4}, 'InstanceNormalization': {1, 2},
    'LayerNormalization': {1, 2}, 'GroupNormalization': {1, 2}, 'PRelu': {1},
    'LSTM': {1, 2, 3}, 'GRU': {1, 2, 3}, 'RNN': {1, 2, 3}, 'Gather': {0},
    'QLinearConv': {0, 3, 8}, 'QLinearMatMul': {0, 3}, 'ConvInteger': {0, 1},
    'MatMulInteger': {0, 1}, 'QGemm': {0, 3, 6},
}

# Inputs that never hold weights: quantization parameters and shape-like operands.
NON_WEIGHT_SLOTS = {
    'QuantizeLinear': {1, 2}, 'DequantizeLinear': {1, 2},
    'QLinearConv': {1, 2, 4, 5, 6, 7}, 'QLinearMatMul': {1, 2, 4, 5, 6, 7},
    'ConvInteger': {2, 3}, 'MatMulInteger': {2, 3}, 'QGemm': {1, 2, 4, 5, 7, 8},
    'QLinearAdd': {1, 2, 4, 5, 6, 7}, 'QLinearMul': {1, 2, 4, 5, 6, 7},
    'QLinearGlobalAveragePool': {1, 2, 3, 4}, 'QLinearAveragePool': {1, 2, 3, 4},
    'QLinearLeakyRelu': {1, 2, 3, 4}, 'QLinearSigmoid': {1, 2, 3, 4},
    'QLinearSoftmax': {1, 2, 3, 4},
    'Reshape': {1}, 'Slice': {1, 2, 3, 4}, 'Resize': {1, 2, 3}, 'Upsample': {1}, 'Expand': {1},
    'Tile': {1}, 'Pad': {1, 2, 3}, 'Gather': {1}, 'GatherElements': {1}, 'GatherND': {1},
    'Squeeze': {1}, 'Unsqueeze': {1}, 'Split': {1}, 'Clip': {1, 2}, 'TopK': {1},
    'ReduceMean': {1}, 'ReduceSum': {1}, 'ReduceMax': {1}, 'ReduceMin': {1}, 'ReduceProd': {1},
    'ReduceL2': {1}, 'ConstantOfShape': {0}, 'Range': {0, 1, 2}, 'OneHot': {1, 2},
    'CumSum': {1}, 'Dropout': {1, 2}, 'NonMaxSuppression': {2, 3, 4}, 'Trilu': {1},
}

MAC_OPS = {'Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'QLinearConv', 'ConvInteger',
           'QLinearMatMul', 'MatMulInteger'}


def op_key(node):
    if node.domain in ('', 'ai.onnx'):
        return node.op_type
    return node.domain + '.' + node.op_type


def final_uses(name, consumers, seen=None):
    """(node, slot) pairs that read `name`, looking through pass-through ops."""
    seen = seen if seen is not None else set()
    out = []
    for node, slot in consumers.get(name, []):
        if (node.op_type, slot) in PASS_THROUGH and node.output and node.output[0] not in seen:
            seen.add(node.output[0])
            out.extend(final_uses(node.output[0], consumers, seen))
        else:
            out.append((node, slot))
    return out


def is_weight_use(node, slot, numel):
    op = node.op_type
    if slot in WEIGHT_SLOTS.get(op, ()):
        return True
    if slot in NON_WEIGHT_SLOTS.get(op, ()):
        return False
    if op == 'QLinearConcat':  # Y_scale, Y_zp, then (X, X_scale, X_zp) triples
        return slot >= 2 and (slot - 2) % 3 == 0 and numel > 1
    if op.startswith('QLinear') and op not in NON_WEIGHT_SLOTS:
        return False  # an unknown QLinear op: assume scales and zero points
    return numel > 1


def collect_constants(graph):
    consts = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == 'Constant' and len(node.output) == 1:
            for a in node.attribute:
                if a.name == 'value' and a.type == onnx.AttributeProto.TENSOR:
                    consts[node.output[0]] = a.t
    return consts


def tensor_numel(t):
    return int(np.prod(t.dims, dtype=np.int64)) if len(t.dims) else 1


def dtype_name(code):
    return {TP.FLOAT: 'float32', TP.FLOAT16: 'float16', TP.BFLOAT16: 'bfloat16',
            TP.DOUBLE: 'float64', TP.INT8: 'int8', TP.UINT8: 'uint8', TP.INT16: 'int16',
            TP.UINT16: 'uint16', TP.INT32: 'int32', TP.INT64: 'int64', TP.INT4: 'int4',
            TP.UINT4: 'uint4'}.get(code, str(code))


def count_parameters(graph, consts, consumers):
    total = 0
    by_dtype = {}
    for name, t in consts.items():
        if t.data_type not in WEIGHT_DTYPES:
            continue
        n = tensor_numel(t)
        if any(is_weight_use(node, slot, n) for node, slot in final_uses(name, consumers)):
            total += n
            d = by_dtype.setdefault(dtype_name(t.data_type), [0, 0])
            d[0] += n
    return total, {k: v[0] for k, v in by_dtype.items()}


def int_values(m, shapes):
    """Small integer tensors computable without running the model (shape arithmetic)."""
    vals = {}
    for t in m.graph.initializer:
        if t.data_type in (TP.INT64, TP.INT32) and tensor_numel(t) <= 64:
            vals[t.name] = numpy_helper.to_array(t).astype(np.int64)
    for n in m.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        ins = [vals.get(x) for x in n.input]
        try:
            if n.op_type == 'Constant' and 'value' in attrs and attrs['value'].data_type in (TP.INT64, TP.INT32):
                r = numpy_helper.to_array(attrs['value']).astype(np.int64)
            elif n.op_type == 'Shape' and shapes.get(n.input[0]) and None not in shapes[n.input[0]]:
                r = np.array(shapes[n.input[0]][attrs.get('start', 0):attrs.get('end', None)], dtype=np.int64)
            elif any(v is None for v in ins):
                continue
            elif n.op_type == 'Gather':
                r = np.take(ins[0], ins[1], axis=attrs.get('axis', 0))
            elif n.op_type == 'Unsqueeze':
                axes = attrs['axes'] if 'axes' in attrs else list(ins[1])
                r = ins[0]
                for a in sorted(a % (r.ndim + len(axes)) for a in axes):
                    r = np.expand_dims(r, a)
            elif n.op_type == 'Squeeze':
                axes = attrs.get('axes', list(ins[1]) if len(ins) > 1 else None)
                r = np.squeeze(ins[0], axis=tuple(axes) if axes is not None else None)
            elif n.op_type == 'Slice' and len(ins) >= 3 and ins[0].ndim == 1:
                step = int(ins[4][0]) if len(ins) > 4 else 1
                r = ins[0][int(ins[1][0]):int(ins[2][0]):step]
            elif n.op_type == 'Concat':
                r = np.concatenate(ins, axis=attrs['axis'])
            elif n.op_type == 'Cast' or n.op_type == 'Identity':
                r = ins[0]
            elif n.op_type in ('Add', 'Sub', 'Mul', 'Div'):
                f = {'Add': np.add, 'Sub': np.subtract, 'Mul': np.multiply, 'Div': np.floor_divide}[n.op_type]
                r = f(ins[0], ins[1])
            else:
                continue
        except (KeyError, IndexError, ValueError):
            continue
        vals[n.output[0]] = np.asarray(r, dtype=np.int64)
    return vals


def broadcast(a, b):
    a, b = list(a), list(b)
    n = max(len(a), len(b))
    a, b = [1] * (n - len(a)) + a, [1] * (n - len(b)) + b
    return [x if y == 1 else y for x, y in zip(a, b)]


def fallback_shape(n, shapes, vals):
    """Output shape of node `n` for the few ops onnx's inference leaves open here."""
    ins = [shapes.get(x) for x in n.input]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
    if n.op_type == 'Reshape' and ins[0] and n.input[1] in vals:
        target = [int(d) for d in vals[n.input[1]]]
        total = prod(ins[0])
        out = [ins[0][i] if d == 0 else d for i, d in enumerate(target)]
        if -1 in out:
            out[out.index(-1)] = total // prod([d for d in out if d != -1])
        return out
    if n.op_type == 'Resize' and ins[0] and len(n.input) > 3 and n.input[3] in vals:
        return [int(d) for d in vals[n.input[3]]]
    if n.domain != 'com.microsoft':
        return None
    if n.op_type in ('QLinearAdd', 'QLinearMul') and ins[0] and ins[3]:
        return broadcast(ins[0], ins[3])
    if n.op_type in ('QLinearSigmoid', 'QLinearLeakyRelu') and ins[0]:
        return ins[0]
    if n.op_type == 'QLinearGlobalAveragePool' and ins[0]:
        if attrs.get('channels_last', 0):
            return [ins[0][0]] + [1] * (len(ins[0]) - 2) + [ins[0][-1]]
        return ins[0][:2] + [1] * (len(ins[0]) - 2)
    return None


def concrete_model(model):
    """A copy with batch dims 1, other symbolic input dims 1, shapes inferred with data
    propagation (and a few hand rules where onnx's inference stops). Returns (model,
    approximate)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    init_names = {t.name for t in m.graph.initializer}
    approximate = False
    for inp in m.graph.input:
        if inp.name in init_names or not inp.type.HasField('tensor_type'):
            continue
        for i, d in enumerate(inp.type.tensor_type.shape.dim):
            if not d.HasField('dim_value'):
                if i != 0:
                    approximate = True
                d.Clear()
                d.dim_value = 1
    del m.graph.value_info[:]
    for out in m.graph.output:
        if out.type.HasField('tensor_type'):
            out.type.tensor_type.ClearField('shape')
    for _ in range(len(m.graph.node) + 1):
        m = shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
        shapes = shape_table(m)
        vals = int_values(m, shapes)
        elem = {vi.name: vi.type.tensor_type.elem_type
                for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output)}
        elem.update({t.name: t.data_type for t in m.graph.initializer})
        added = False
        for n in m.graph.node:
            if not n.output or (shapes.get(n.output[0]) and None not in shapes[n.output[0]]):
                continue
            out = fallback_shape(n, shapes, vals)
            if out is not None and None not in out:
                m.graph.value_info.append(onnx.helper.make_tensor_value_info(n.output[0], elem.get(n.input[0], 0), out))
                added = True
                break  # let onnx's inference carry it on
        if not added:
            break
    return m, approximate


def shape_table(m):
    shapes = {}
    for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField('shape'):
            dims = [d.dim_value if d.HasField('dim_value') else None for d in tt.shape.dim]
            shapes[vi.name] = dims
    for t in m.graph.initializer:
        shapes[t.name] = list(t.dims)
    for n in m.graph.node:
        if n.op_type == 'Constant':
            for a in n.attribute:
                if a.name == 'value' and a.type == onnx.AttributeProto.TENSOR:
                    shapes[n.output[0]] = list(a.t.dims)
    return shapes


def prod(xs):
    return math.prod(xs) if xs else 1


def count_macs(m):
    shapes = shape_table(m)
    total = 0
    by_op = {}
    unknown = []

    def known(name):
        s = shapes.get(name)
        return s if s is not None and all(d is not None for d in s) else None

    for node in m.graph.node:
        op = node.op_type
        if op not in MAC_OPS or node.domain not in ('', 'ai.onnx'):
            continue
        macs = None
        if op in ('Conv', 'QLinearConv', 'ConvInteger'):
            w = known(node.input[3 if op == 'QLinearConv' else 1])
            y = known(node.output[0])
            if w and y:
                macs = prod(y) * prod(w[1:])
        elif op == 'ConvTranspose':
            x, w = known(node.input[0]), known(node.input[1])
            if x and w:
                macs = prod(x) * prod(w[1:])
        elif op == 'Gemm':
            a = known(node.input[0])
            y = known(node.output[0])
            trans_a = next((at.i for at in node.attribute if at.name == 'transA'), 0)
            if a and y:
                macs = prod(y) * (a[0] if trans_a else a[1])
        else:  # MatMul, QLinearMatMul, MatMulInteger
            a = known(node.input[0])
            y = known(node.output[0])
            if a and y is not None:
                macs = prod(y) * a[-1]
        if macs is None:
            unknown.append(node.name or node.output[0])
            continue
        total += macs
        by_op[op] = by_op.get(op, 0) + macs
    return total, by_op, unknown


def producer_map(graph):
    return {o: n for n in graph.node for o in n.output}


def trace_constant(name, producers, consts):
    """(TensorProto, zero point array or None) behind a weight input, through pass-through ops."""
    zp = None
    for _ in range(16):
        if name in consts and (name not in producers or producers[name].op_type == 'Constant'):
            return consts[name], zp
        node = producers.get(name)
        if node is None or (node.op_type, 0) not in PASS_THROUGH:
            return None, None
        if node.op_type == 'DequantizeLinear' and len(node.input) > 2 and node.input[2]:
            z = consts.get(node.input[2])
            axis = next((a.i for a in node.attribute if a.name == 'axis'), 1)
            zp = (numpy_helper.to_array(z), axis) if z is not None else None
        name = node.input[0]
    return None, None


def zero_fraction(values, zp):
    """Zeros counted as elements equal to their zero point (quantized) or to 0."""
    if zp is None:
        return int(np.count_nonzero(values == 0))
    z, axis = zp
    z = np.asarray(z)
    if z.size == 1:
        return int(np.count_nonzero(values.astype(np.int64) == int(z.reshape(-1)[0])))
    axis = axis % values.ndim
    shape = [1] * values.ndim
    shape[axis] = z.size
    return int(np.count_nonzero(values.astype(np.int64) == z.astype(np.int64).reshape(shape)))


def sparsity(graph, consts):
    producers = producer_map(graph)
    slots = {'Conv': (1, None), 'ConvTranspose': (1, None), 'Gemm': (1, None),
             'MatMul': (1, None), 'QLinearConv': (3, 5), 'QLinearMatMul': (3, 5),
             'ConvInteger': (1, 3), 'MatMulInteger': (1, 3)}
    seen = {}
    layers = []
    for node in graph.node:
        if node.op_type not in slots or node.domain not in ('', 'ai.onnx'):
            continue
        slot, zp_slot = slots[node.op_type]
        t, zp = trace_constant(node.input[slot], producers, consts) if len(node.input) > slot else (None, None)
        if t is None and node.op_type in ('MatMul', 'Gemm', 'QLinearMatMul', 'MatMulInteger'):
            slot = 0
            zp_slot = {'QLinearMatMul': 2, 'MatMulInteger': 2}.get(node.op_type)
            t, zp = trace_constant(node.input[0], producers, consts)
        if t is None:
            continue
        values = numpy_helper.to_array(t)
        if zp_slot is not None and len(node.input) > zp_slot and node.input[zp_slot] in consts:
            z = numpy_helper.to_array(consts[node.input[zp_slot]])
            axis = 0 if node.op_type in ('QLinearConv', 'ConvInteger') else values.ndim - 1
            zp = (z, axis)
        zeros = zero_fraction(values, zp)
        layers.append((node.name, node.op_type, values.size, zeros))
        seen[t.name or id(t)] = (values.size, zeros)
    total = sum(v[0] for v in seen.values())
    zeros = sum(v[1] for v in seen.values())
    return total, zeros, layers


def quantization(graph, consts):
    ops = [n.op_type for n in graph.node]
    producers = producer_map(graph)
    q = ops.count('QuantizeLinear')
    dq = ops.count('DequantizeLinear')
    qlinear = sum(1 for o in ops if o.startswith('QLinear') or o in ('ConvInteger', 'MatMulInteger', 'QGemm'))
    dyn = ops.count('DynamicQuantizeLinear')
    q_activation = any(n.op_type == 'QuantizeLinear' and n.input[0] not in consts for n in graph.node)
    dq_constant = any(n.op_type == 'DequantizeLinear' and n.input[0] in consts for n in graph.node)
    dynamic_fed = any(n.op_type in ('MatMulInteger', 'ConvInteger') and
                      any(producers.get(x) is not None and producers[x].op_type == 'DynamicQuantizeLinear'
                          for x in n.input) for n in graph.node)
    if dynamic_fed or any(o in ('DynamicQuantizeMatMul', 'DynamicQuantizeLSTM') for o in ops):
        form = 'dynamic'
    elif qlinear:
        form = 'qoperator'
    elif q_activation and dq:
        form = 'qdq'
    elif dq_constant:
        form = 'weight-only'
    else:
        form = 'none'
    # Quantized weights of compute ops: (dtype, per-channel?) each.
    main_slots = {'Conv': {1}, 'ConvTranspose': {1}, 'Gemm': {0, 1}, 'MatMul': {0, 1},
                  'QLinearConv': {3}, 'QLinearMatMul': {0, 3}, 'ConvInteger': {1}, 'MatMulInteger': {0, 1}}
    consumers = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
    weights = []
    for node in graph.node:
        if node.domain not in ('', 'ai.onnx'):
            if node.op_type == 'QGemm' and node.input[3] in consts:
                weights.append((consts[node.input[3]].data_type, tensor_numel(consts[node.input[4]]) > 1))
            continue
        op = node.op_type
        if op == 'DequantizeLinear' and node.input[0] in consts:
            uses = final_uses(node.output[0], consumers)
            if any(n.domain in ('', 'ai.onnx') and i in main_slots.get(n.op_type, ()) for n, i in uses):
                weights.append((consts[node.input[0]].data_type, tensor_numel(consts[node.input[1]]) > 1))
        elif op in ('QLinearConv', 'QLinearMatMul'):
            for w, sc in ((3, 4), (0, 1)) if op == 'QLinearMatMul' else ((3, 4),):
                if node.input[w] in consts:
                    weights.append((consts[node.input[w]].data_type, tensor_numel(consts[node.input[sc]]) > 1))
                    break
        elif op in ('ConvInteger', 'MatMulInteger'):
            for w, zp in ((1, 3), (0, 2)) if op == 'MatMulInteger' else ((1, 3),):
                if node.input[w] in consts:
                    z = node.input[zp] if len(node.input) > zp else ''
                    weights.append((consts[node.input[w]].data_type, z in consts and tensor_numel(consts[z]) > 1))
                    break
    dtypes = {dtype_name(d) for d, _ in weights}
    per_channel = sum(1 for _, pc in weights if pc)
    return {'form': form, 'quantizeLinear': q, 'dequantizeLinear': dq, 'qlinear': qlinear,
            'dynamicQuantizeLinear': dyn,
            'weightDtype': (dtypes.pop() if len(dtypes) == 1 else 'mixed') if dtypes else None,
            'perChannelWeights': per_channel, 'perTensorWeights': len(weights) - per_channel}


def reference(path):
    model = onnx.load(path)
    graph = model.graph
    consts = collect_constants(graph)
    consumers = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name:
                consumers.setdefault(name, []).append((node, i))
    params, params_by_dtype = count_parameters(graph, consts, consumers)
    concrete, approximate = concrete_model(model)
    macs, macs_by_op, unknown = count_macs(concrete)
    w_total, w_zeros, _ = sparsity(graph, consts)
    return {
        'params': params, 'paramsByDtype': params_by_dtype,
        'macs': macs, 'macsByOpType': macs_by_op, 'macsApproximate': approximate or bool(unknown),
        'macsUnknownNodes': unknown,
        'weightElements': w_total, 'zeroWeights': w_zeros,
        'quantization': quantization(graph, consts),
    }


def find_whittle():
    """The most recently built build*/whittle under the project root."""
    found = [p for p in glob.glob(os.path.join(ROOT, 'build*', 'whittle')) if os.access(p, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


def compare(ref, got):
    """Differences between the reference and `whittle inspect --json` output."""
    diffs = []

    def check(what, a, b):
        if a != b:
            diffs.append(f'{what}: python {a} vs whittle {b}')

    check('parameters', ref['params'], got['parameters']['total'])
    check('parameters by dtype', ref['paramsByDtype'],
          {k: v['count'] for k, v in got['parameters']['byDtype'].items()})
    check('MACs', ref['macs'], got['macs']['total'])
    check('MACs by op type', ref['macsByOpType'], got['macs']['byOpType'])
    check('MACs approximate', ref['macsApproximate'], got['macs']['approximate'])
    check('weight elements', ref['weightElements'], got['sparsity']['weightElements'])
    check('zero weights', ref['zeroWeights'], got['sparsity']['zeroElements'])
    check('quantization form', ref['quantization']['form'], got['quantization']['form'])
    check('QuantizeLinear', ref['quantization']['quantizeLinear'], got['quantization']['quantizeLinearCount'])
    check('DequantizeLinear', ref['quantization']['dequantizeLinear'], got['quantization']['dequantizeLinearCount'])
    check('QLinear ops', ref['quantization']['qlinear'], got['quantization']['qlinearCount'])
    check('weight dtype', ref['quantization']['weightDtype'], got['quantization']['weightDtype'])
    check('per-channel weights', ref['quantization']['perChannelWeights'], got['quantization']['perChannelWeights'])
    check('per-tensor weights', ref['quantization']['perTensorWeights'], got['quantization']['perTensorWeights'])
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('models', nargs='*')
    ap.add_argument('--models-dir', default=os.path.join(ROOT, '..', 'shared', 'models'))
    ap.add_argument('--whittle', default=None, help='whittle binary to compare with (default: build*/whittle)')
    ap.add_argument('--no-compare', action='store_true')
    ap.add_argument('--json', action='store_true', help='print the reference figures as JSON')
    args = ap.parse_args()
    paths = args.models or sorted(glob.glob(os.path.join(args.models_dir, '*.onnx')))
    if not paths:
        print(f'no models found in {args.models_dir}', file=sys.stderr)
        return 2
    whittle = None if args.no_compare else (args.whittle or find_whittle())
    if whittle and not args.json:
        print(f'comparing with {whittle}')
    results = {}
    failed = False
    for path in paths:
        ref = reference(path)
        results[os.path.basename(path)] = ref
        if args.json:
            continue
        q = ref['quantization']['form']
        line = (f"{os.path.basename(path):45s} params {ref['params']:>10,}  MACs {ref['macs']:>14,}"
                f"{'~' if ref['macsApproximate'] else ' '}  {q:11s} zeros {ref['zeroWeights']}/{ref['weightElements']}")
        if whittle:
            proc = subprocess.run([whittle, 'inspect', '--json', path], capture_output=True, text=True)
            if proc.returncode != 0:
                diffs = [f'whittle exit code {proc.returncode}: {proc.stderr.strip()}']
            else:
                diffs = compare(ref, json.loads(proc.stdout))
            line += '  OK' if not diffs else '  MISMATCH'
            print(line)
            for d in diffs:
                print('    ' + d)
            failed |= bool(diffs)
        else:
            print(line)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    elif not whittle and not args.no_compare:
        print('(no whittle binary found: figures not compared)')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
