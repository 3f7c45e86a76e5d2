#!/usr/bin/env python3
"""One-node models of the long-tail op families, built with onnx.helper, with ONNX Runtime's outputs.

usage: long_tail_ort_cases.py FAMILY OUT_DIR      (FAMILY: bitwise, signal, strings, tfidf, ml, trees)

Writes one folder per case into OUT_DIR: model.onnx, input_<i>.pb for every graph input (in
graph order) and output_<i>.pb in the model's output order, computed by ONNX Runtime (CPU,
1 thread). tests/kernels/cpu/<family>_test.cpp runs the same models on whittle and compares
(tests/kernels/cpu/long_tail_cases.h).
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(7)
ML = "ai.onnx.ml"


def tensor_type(a):
    if a.dtype == object:
        return TensorProto.STRING
    return helper.np_dtype_to_tensor_dtype(a.dtype)


def save_case(out_dir, name, op, inputs, n_outputs, attrs, opset=20, domain="", ml_opset=5):
    """inputs: list of (name, array or None); None leaves an optional input absent."""
    graph_inputs, feeds, node_inputs = [], {}, []
    for in_name, value in inputs:
        if value is None:
            node_inputs.append("")
            continue
        node_inputs.append(in_name)
        graph_inputs.append(helper.make_tensor_value_info(in_name, tensor_type(value), value.shape))
        feeds[in_name] = value
    outs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op, node_inputs, outs, domain=domain, **attrs)
    graph = helper.make_graph([node], name, graph_inputs,
                              [helper.make_value_info(o, onnx.TypeProto()) for o in outs])
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, ml_opset))
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    results = session.run(None, feeds)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    # Output types as ONNX Runtime gave them, so that whittle's shape inference is not needed.
    for o, r in zip(graph.output, results):
        o.CopyFrom(helper.make_tensor_value_info(o.name, tensor_type(np.asarray(r)), None))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for i, (_, value) in enumerate([x for x in inputs if x[1] is not None]):
        with open(os.path.join(d, f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.asarray(value)).SerializeToString())
    for i, r in enumerate(results):
        with open(os.path.join(d, f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.asarray(r)).SerializeToString())


def bitwise(out):
    for dt in (np.int8, np.uint16, np.int32, np.uint64):
        info = np.iinfo(dt)
        a = RNG.integers(info.min, info.max, size=(2, 3, 4), dtype=dt, endpoint=True)
        b = RNG.integers(info.min, info.max, size=(3, 1), dtype=dt, endpoint=True)
        for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
            save_case(out, f"{op}_{np.dtype(dt).name}", op, [("a", a), ("b", b)], 1, {}, opset=18)
        save_case(out, f"BitwiseNot_{np.dtype(dt).name}", "BitwiseNot", [("a", a)], 1, {}, opset=18)


def signal(out):
    x = RNG.standard_normal((2, 12, 3, 1)).astype(np.float32)
    xc = RNG.standard_normal((2, 12, 3, 2)).astype(np.float32)
    for opset in (17, 20):
        for inverse in (0, 1):
            for onesided in (0, 1):
                if inverse and onesided:
                    continue  # ONNX Runtime 1.32 refuses an inverse one-sided DFT
                for length in (None, 9, 16):
                    src = x if not inverse else xc
                    inputs = [("x", src), ("n", None if length is None else np.array(length, np.int64))]
                    attrs = {"inverse": inverse, "onesided": onesided}
                    if opset == 17:
                        attrs["axis"] = 1
                    else:
                        inputs.append(("axis", np.array(1, np.int64)))
                    save_case(out, f"DFT{opset}_inv{inverse}_one{onesided}_n{length}", "DFT", inputs, 1, attrs, opset=opset)
    save_case(out, "DFT20_axis2_complex", "DFT", [("x", xc), ("n", None), ("axis", np.array(-2, np.int64))], 1, {}, opset=20)
    signal_1d = RNG.standard_normal((2, 64, 1)).astype(np.float32)
    window = np.hanning(16).astype(np.float32)
    save_case(out, "STFT_window", "STFT", [("s", signal_1d), ("step", np.array(5, np.int64)), ("w", window)], 1, {}, opset=17)
    save_case(out, "STFT_length", "STFT", [("s", signal_1d), ("step", np.array(8, np.int64)), ("w", None),
                                          ("len", np.array(12, np.int64))], 1, {}, opset=17)
    # [batch, length] without the trailing 1: ONNX Runtime takes it as a real signal (onnx-asr's
    # log-mel preprocessors are written so).
    save_case(out, "STFT_rank2", "STFT", [("s", signal_1d[:, :, 0].copy()), ("step", np.array(5, np.int64)), ("w", window)],
              1, {}, opset=17)
    save_case(out, "STFT_twosided", "STFT", [("s", signal_1d), ("step", np.array(8, np.int64)), ("w", window)], 1,
              {"onesided": 0}, opset=17)
    for op in ("HannWindow", "HammingWindow", "BlackmanWindow"):
        for periodic in (0, 1):
            for size in (1, 7, 32):
                save_case(out, f"{op}_p{periodic}_{size}", op, [("n", np.array(size, np.int64))], 1,
                          {"periodic": periodic}, opset=17)
        save_case(out, f"{op}_double", op, [("n", np.array(10, np.int32))], 1, {"output_datatype": TensorProto.DOUBLE},
                  opset=17)
    for bins, length, rate, lo, hi in ((8, 16, 8192, 0.0, 4096.0), (20, 512, 16000, 20.0, 7600.0), (40, 400, 22050, 0.0, 8000.0)):
        save_case(out, f"Mel_{bins}_{length}", "MelWeightMatrix",
                  [("b", np.array(bins, np.int64)), ("l", np.array(length, np.int64)), ("r", np.array(rate, np.int64)),
                   ("lo", np.array(lo, np.float32)), ("hi", np.array(hi, np.float32))], 1, {}, opset=17)


def strings(out):
    a = np.array([["ab", "", "x y"], ["naïve", "Z", "q"]], dtype=object)
    b = np.array(["-1", "", "!"], dtype=object)
    save_case(out, "StringConcat", "StringConcat", [("a", a), ("b", b)], 1, {}, opset=20)
    s = np.array([" a  b ", "a,b,,c", "", "one"], dtype=object)
    save_case(out, "StringSplit_space", "StringSplit", [("s", s)], 2, {}, opset=20)
    save_case(out, "StringSplit_comma", "StringSplit", [("s", s)], 2, {"delimiter": ","}, opset=20)
    save_case(out, "StringSplit_max1", "StringSplit", [("s", s)], 2, {"delimiter": ",", "maxsplit": 1}, opset=20)
    save_case(out, "StringSplit_space_max1", "StringSplit", [("s", s)], 2, {"maxsplit": 1}, opset=20)
    words = np.array(["Monday", "TUESDAY", "wednesday", "monday"], dtype=object)
    for action in ("NONE", "LOWER", "UPPER"):
        for sensitive in (0, 1):
            save_case(out, f"StringNormalizer_{action}_{sensitive}", "StringNormalizer", [("s", words)], 1,
                      {"case_change_action": action, "is_case_sensitive": sensitive, "stopwords": ["monday"],
                       "locale": "C"}, opset=10)
    save_case(out, "StringNormalizer_2d", "StringNormalizer", [("s", words.reshape(1, 4))], 1,
              {"case_change_action": "LOWER", "stopwords": ["tuesday"], "locale": "C"}, opset=10)
    text = np.array([["abc123", "abc", "123"], ["a1b2", "", "ABC123"]], dtype=object)
    for pattern in (r"[a-z]+\d+", r"\w*", r"(a|b)1.*", r"[A-Z]{3}\d{3}"):
        save_case(out, f"RegexFullMatch_{len(pattern)}", "RegexFullMatch", [("s", text)], 1, {"pattern": pattern}, opset=20)


def tfidf(out):
    x = RNG.integers(0, 8, size=(3, 10)).astype(np.int64)
    pool = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6, 7, 1, 2]  # 5 unigrams, 3 bigrams, 1 trigram
    for mode in ("TF", "IDF", "TFIDF"):
        for lo, hi, skip in ((1, 1, 0), (1, 2, 0), (2, 2, 3), (1, 3, 2)):
            attrs = {"mode": mode, "min_gram_length": lo, "max_gram_length": hi, "max_skip_count": skip,
                     "ngram_counts": [0, 5, 11], "ngram_indexes": list(range(9)), "pool_int64s": pool[:14],
                     "weights": [0.5 + i for i in range(9)]}
            save_case(out, f"TfIdf_{mode}_{lo}{hi}{skip}", "TfIdfVectorizer", [("x", x)], 1, attrs, opset=9)
    words = np.array(["a", "b", "a", "c", "b", "a"], dtype=object)
    save_case(out, "TfIdf_strings", "TfIdfVectorizer", [("x", words)], 1,
              {"mode": "TF", "min_gram_length": 1, "max_gram_length": 2, "max_skip_count": 1, "ngram_counts": [0, 2],
               "ngram_indexes": [1, 0, 2], "pool_strings": ["a", "b", "a", "b"]}, opset=9)


def ml(out):
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    save_case(out, "Binarizer", "Binarizer", [("x", x)], 1, {"threshold": 0.2}, domain=ML, ml_opset=1)
    save_case(out, "ArrayFeatureExtractor", "ArrayFeatureExtractor", [("x", x), ("i", np.array([3, 0, 3], np.int64))], 1,
              {}, domain=ML, ml_opset=1)
    save_case(out, "ArrayFeatureExtractor_1d", "ArrayFeatureExtractor", [("x", x[0]), ("i", np.array([1], np.int64))],
              1, {}, domain=ML, ml_opset=1)
    for norm in ("MAX", "L1", "L2"):
        save_case(out, f"Normalizer_{norm}", "Normalizer", [("x", x)], 1, {"norm": norm}, domain=ML, ml_opset=1)
    coefficients = RNG.standard_normal(12).astype(np.float32).tolist()
    for post in ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"):
        save_case(out, f"LinearClassifier_{post}", "LinearClassifier", [("x", x)], 2,
                  {"coefficients": coefficients, "intercepts": [0.1, -0.2, 0.3], "classlabels_ints": [7, 8, 9],
                   "post_transform": post}, domain=ML, ml_opset=1)
    save_case(out, "LinearClassifier_strings", "LinearClassifier", [("x", x)], 2,
              {"coefficients": coefficients, "intercepts": [0.1, -0.2, 0.3], "classlabels_strings": ["a", "b", "c"]},
              domain=ML, ml_opset=1)
    # More coefficients than classes x features (ONNX Runtime's own logreg_iris.onnx is so): the
    # first classes x features are used.
    save_case(out, "LinearClassifier_extra_coefficients", "LinearClassifier", [("x", x[:, :2])], 2,
              {"coefficients": coefficients, "intercepts": [0.1, -0.2, 0.3], "classlabels_ints": [7, 8, 9],
               "post_transform": "LOGISTIC"}, domain=ML, ml_opset=1)
    save_case(out, "LinearClassifier_binary", "LinearClassifier", [("x", x)], 2,
              {"coefficients": coefficients[:4], "intercepts": [0.1], "classlabels_ints": [0, 1],
               "post_transform": "LOGISTIC"}, domain=ML, ml_opset=1)
    # PROBIT keeps away from p = 0.5, where ONNX Runtime's float erfinv loses its digits.
    for post in ("NONE", "LOGISTIC", "SOFTMAX", "PROBIT"):
        for targets in (1, 3):
            coef = (RNG.standard_normal(4 * targets) * (0.05 if post == "PROBIT" else 1)).astype(np.float32).tolist()
            save_case(out, f"LinearRegressor_{post}_{targets}", "LinearRegressor",
                      [("x", (x * 0.5 if post == "PROBIT" else x))], 1,
                      {"coefficients": coef, "intercepts": ([0.25, 0.75, 0.3][:targets] if post == "PROBIT"
                                                            else [0.1, -0.2, 0.3][:targets]),
                       "targets": targets, "post_transform": post}, domain=ML, ml_opset=1)
    save_case(out, "LinearRegressor_nointercept", "LinearRegressor", [("x", x)], 1,
              {"coefficients": [1.0, -2.0, 0.5, 0.25]}, domain=ML, ml_opset=1)
    save_case(out, "Scaler", "Scaler", [("x", x)], 1, {"offset": [0.1, -0.2, 0.3, 0.0], "scale": [2.0, 0.5, -1.0, 3.0]},
              domain=ML, ml_opset=1)
    save_case(out, "Scaler_broadcast_int64", "Scaler", [("x", RNG.integers(-5, 5, size=(3, 4)).astype(np.int64))], 1,
              {"offset": [1.5], "scale": [0.25]}, domain=ML, ml_opset=1)
    save_case(out, "Scaler_double", "Scaler", [("x", x.astype(np.float64))], 1,
              {"offset": [0.1, -0.2, 0.3, 0.0], "scale": [2.0, 1.0, 0.5, -1.0]}, domain=ML, ml_opset=1)
    supports = RNG.standard_normal((5, 4)).astype(np.float32)
    svm_coef = RNG.standard_normal(5).astype(np.float32).tolist()
    for kernel in ("LINEAR", "POLY", "RBF", "SIGMOID"):
        save_case(out, f"SVMRegressor_{kernel}", "SVMRegressor", [("x", x)], 1,
                  {"kernel_type": kernel, "kernel_params": [0.3, 0.5, 3.0], "support_vectors": supports.ravel().tolist(),
                   "coefficients": svm_coef, "n_supports": 5, "rho": [0.2]}, domain=ML, ml_opset=1)
    save_case(out, "SVMRegressor_one_class", "SVMRegressor", [("x", x)], 1,
              {"kernel_type": "RBF", "kernel_params": [0.3, 0.0, 3.0], "support_vectors": supports.ravel().tolist(),
               "coefficients": svm_coef, "n_supports": 5, "rho": [0.1], "one_class": 1}, domain=ML, ml_opset=1)
    save_case(out, "SVMRegressor_linear_form", "SVMRegressor", [("x", x)], 1,
              {"coefficients": [0.5, -1.0, 0.25, 2.0], "rho": [0.3], "kernel_params": [0.0, 0.0, 0.0]}, domain=ML, ml_opset=1)
    # SVMClassifier: 3 classes of 2, 1 and 2 support vectors, every kernel, with and without
    # probabilities; two classes; the linear form.
    sv = RNG.standard_normal((5, 4)).astype(np.float32).ravel().tolist()
    svc = {"support_vectors": sv, "vectors_per_class": [2, 1, 2], "kernel_params": [0.4, 0.3, 2.0],
           "coefficients": RNG.standard_normal(10).astype(np.float32).tolist(), "rho": [0.1, -0.2, 0.05],
           "classlabels_ints": [3, 4, 5]}
    for kernel in ("LINEAR", "POLY", "RBF", "SIGMOID"):
        save_case(out, f"SVMClassifier_{kernel}", "SVMClassifier", [("x", x)], 2, dict(svc, kernel_type=kernel),
                  domain=ML, ml_opset=1)
        save_case(out, f"SVMClassifier_{kernel}_proba", "SVMClassifier", [("x", x)], 2,
                  dict(svc, kernel_type=kernel, prob_a=[-1.5, -2.0, -0.8], prob_b=[0.1, -0.05, 0.2]), domain=ML,
                  ml_opset=1)
    save_case(out, "SVMClassifier_softmax_strings", "SVMClassifier", [("x", x)], 2,
              dict({k: v for k, v in svc.items() if k != "classlabels_ints"}, kernel_type="RBF",
                   post_transform="SOFTMAX", classlabels_strings=["a", "b", "c"]), domain=ML, ml_opset=1)
    binary = {"support_vectors": sv[:12], "vectors_per_class": [1, 2], "kernel_params": [0.4, 0.3, 2.0],
              "coefficients": [0.7, -0.4, -0.3], "rho": [0.15], "classlabels_ints": [0, 1], "kernel_type": "RBF"}
    save_case(out, "SVMClassifier_binary", "SVMClassifier", [("x", x)], 2, binary, domain=ML, ml_opset=1)
    save_case(out, "SVMClassifier_binary_proba", "SVMClassifier", [("x", x)], 2,
              dict(binary, prob_a=[-2.0], prob_b=[0.3]), domain=ML, ml_opset=1)
    # (Not PROBIT: ONNX Runtime leaves the second column as whatever its buffer held.)
    for post in ("LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"):
        save_case(out, f"SVMClassifier_binary_{post}", "SVMClassifier", [("x", x)], 2,
                  dict(binary, post_transform=post), domain=ML, ml_opset=1)
    save_case(out, "SVMClassifier_linear", "SVMClassifier", [("x", x)], 2,
              {"coefficients": RNG.standard_normal(12).astype(np.float32).tolist(), "rho": [0.2],
               "kernel_params": [0.0, 0.0, 0.0], "classlabels_ints": [7, 8, 9]}, domain=ML, ml_opset=1)
    save_case(out, "SVMClassifier_linear_binary", "SVMClassifier", [("x", x)], 2,
              {"coefficients": RNG.standard_normal(8).astype(np.float32).tolist(), "rho": [0.2],
               "kernel_params": [0.0, 0.0, 0.0], "classlabels_ints": [0, 1]}, domain=ML, ml_opset=1)
    keys = np.array(["a", "b", "c"], dtype=object)
    save_case(out, "LabelEncoder_string_int", "LabelEncoder", [("x", np.array(["a", "c", "z", "b"], dtype=object))], 1,
              {"keys_strings": ["a", "b", "c"], "values_int64s": [5, 6, 7], "default_int64": -9}, domain=ML, ml_opset=4)
    save_case(out, "LabelEncoder_int_string", "LabelEncoder", [("x", np.array([3, 1, 2, 3], np.int64))], 1,
              {"keys_int64s": [1, 2], "values_strings": ["one", "two"]}, domain=ML, ml_opset=4)
    save_case(out, "LabelEncoder_float_float", "LabelEncoder", [("x", np.array([0.5, 1.5, 2.5], np.float32))], 1,
              {"keys_floats": [0.5, 2.5], "values_floats": [10.0, 30.0]}, domain=ML, ml_opset=4)
    save_case(out, "LabelEncoder_tensor", "LabelEncoder", [("x", np.array(["a", "c", "q"], dtype=object))], 1,
              {"keys_tensor": numpy_helper.from_array(keys, "k"),
               "values_tensor": numpy_helper.from_array(np.array([1.5, 2.5, 3.5]), "v"),
               "default_tensor": numpy_helper.from_array(np.array([-1.0]), "d")}, domain=ML, ml_opset=4)
    # A depth-2 tree and a stump, two targets, every comparison mode but MEMBER, and NaN handling.
    xt = RNG.standard_normal((8, 3)).astype(np.float32)
    xt[0, 0] = np.nan
    for aggregate in (0, 1, 2, 3):
        for post in (0,):  # ONNX Runtime 1.32 applies softmax for 2, which the spec names LOGISTIC
            attrs = {
                "nodes_featureids": [0, 1, 2, 2],
                "nodes_modes": numpy_helper.from_array(np.array([0, 3, 1, 5], np.uint8), "m"),
                "nodes_splits": numpy_helper.from_array(np.array([0.1, -0.3, 0.5, 0.0], np.float32), "s"),
                "nodes_truenodeids": [1, 0, 2, 4], "nodes_trueleafs": [0, 1, 1, 1],
                "nodes_falsenodeids": [2, 1, 3, 5], "nodes_falseleafs": [0, 1, 1, 1],
                "nodes_missing_value_tracks_true": [1, 0, 0, 0],
                "leaf_targetids": [0, 1, 0, 1, 0, 1], "leaf_weights": numpy_helper.from_array(
                    np.array([1.0, 2.0, -3.0, 4.5, 0.25, -1.0], np.float32), "w"),
                "tree_roots": [0, 3], "n_targets": 2, "aggregate_function": aggregate, "post_transform": post,
            }
            save_case(out, f"TreeEnsemble_a{aggregate}", "TreeEnsemble", [("x", xt)], 1, attrs, domain=ML,
                      ml_opset=5)
    # BRANCH_MEMBER: two NaN-terminated sets, one node tracking NaN to the true side, and a tree
    # whose root's true branch is a node and false branch a leaf.
    xm = np.array([[1, 0.2, 2], [3, 0.9, 5], [2, 0.1, 7], [np.nan, 0, np.nan], [1, 1, 4]], np.float32)
    attrs = {
        "nodes_featureids": [0, 1, 2],
        "nodes_modes": numpy_helper.from_array(np.array([6, 0, 6], np.uint8), "m"),
        "nodes_splits": numpy_helper.from_array(np.array([0.0, 0.5, 0.0], np.float32), "s"),
        "nodes_truenodeids": [1, 0, 2], "nodes_trueleafs": [0, 1, 1],
        "nodes_falsenodeids": [1, 1, 3], "nodes_falseleafs": [1, 1, 1],
        "nodes_missing_value_tracks_true": [0, 0, 1],
        "membership_values": numpy_helper.from_array(np.array([1, 3, np.nan, 2, 5, 7, np.nan], np.float32), "v"),
        "leaf_targetids": [0, 0, 0, 0],
        "leaf_weights": numpy_helper.from_array(np.array([1.0, 2.0, 4.0, 8.0], np.float32), "w"),
        "tree_roots": [0, 2], "n_targets": 1, "aggregate_function": 1, "post_transform": 0,
    }
    save_case(out, "TreeEnsemble_member", "TreeEnsemble", [("x", xm)], 1, attrs, domain=ML, ml_opset=5)


def legacy_tree_attrs(prefix, modes, weights, missing=None, values_as_tensor=False, weights_as_tensor=False):
    """Two trees in the TreeEnsembleClassifier/Regressor layout: tree 0 is three branches deep on
    features 0, 1 and 2; tree 1 (node ids 0, 5, 7, out of order) is a stump on feature 2. `modes`
    holds the four branch modes; `weights` the (tree, node, target, weight) rows."""
    tree_ids = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    node_ids = [0, 1, 2, 3, 4, 5, 6, 0, 7, 5]
    features = [0, 1, 2, 0, 0, 0, 0, 2, 0, 0]
    splits = [0.1, -0.3, 0.5, 0, 0, 0, 0, 0.0, 0, 0]
    node_modes = [modes[0], modes[1], modes[2], "LEAF", "LEAF", "LEAF", "LEAF", modes[3], "LEAF", "LEAF"]
    true_ids = [1, 3, 5, 0, 0, 0, 0, 5, 0, 0]
    false_ids = [2, 4, 6, 0, 0, 0, 0, 7, 0, 0]
    attrs = {"nodes_treeids": tree_ids, "nodes_nodeids": node_ids, "nodes_featureids": features,
             "nodes_modes": node_modes, "nodes_truenodeids": true_ids, "nodes_falsenodeids": false_ids}
    if missing is not None:
        attrs["nodes_missing_value_tracks_true"] = missing
    if values_as_tensor:
        attrs["nodes_values_as_tensor"] = numpy_helper.from_array(np.array(splits, np.float32), "v")
    else:
        attrs["nodes_values"] = splits
    attrs[f"{prefix}_treeids"] = [w[0] for w in weights]
    attrs[f"{prefix}_nodeids"] = [w[1] for w in weights]
    attrs[f"{prefix}_ids"] = [w[2] for w in weights]
    if weights_as_tensor:
        attrs[f"{prefix}_weights_as_tensor"] = numpy_helper.from_array(np.array([w[3] for w in weights], np.float32), "w")
    else:
        attrs[f"{prefix}_weights"] = [w[3] for w in weights]
    return attrs


def legacy_trees(out):
    """TreeEnsembleRegressor and TreeEnsembleClassifier (ai.onnx.ml 1 and 3) over their variants."""
    x = RNG.standard_normal((12, 3)).astype(np.float32)
    x[0, 0] = np.nan
    x[1, 1] = np.nan
    x[2, 2] = np.nan
    leq = ["BRANCH_LEQ"] * 4
    leaves = [(0, 3), (0, 4), (0, 5), (0, 6), (1, 5), (1, 7)]
    one = [(t, n, 0, w) for (t, n), w in zip(leaves, [0.5, -1.25, 2.0, 0.75, -0.5, 1.5])]
    two = one + [(t, n, 1, w) for (t, n), w in zip(leaves, [1.0, 0.25, -2.0, 3.0, 0.5, -0.75])]
    for aggregate in ("SUM", "AVERAGE", "MIN", "MAX"):
        for targets, weights in ((1, one), (2, two)):
            attrs = legacy_tree_attrs("target", leq, weights, missing=[1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
            attrs.update(n_targets=targets, aggregate_function=aggregate, base_values=[0.25] * targets)
            save_case(out, f"TreeRegressor_{aggregate}_{targets}", "TreeEnsembleRegressor", [("x", x)], 1, attrs,
                      domain=ML, ml_opset=1)
    for modes in (["BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ"], ["BRANCH_NEQ", "BRANCH_LEQ", "BRANCH_LT",
                                                                         "BRANCH_GT"]):
        attrs = legacy_tree_attrs("target", modes, two, missing=[0, 1, 0, 0, 0, 0, 0, 1, 0, 0])
        attrs.update(n_targets=2)
        save_case(out, f"TreeRegressor_{modes[0]}", "TreeEnsembleRegressor", [("x", x)], 1, attrs, domain=ML,
                  ml_opset=1)
    for post in ("LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"):
        for targets, weights in ((1, one), (2, two)):
            attrs = legacy_tree_attrs("target", leq, weights)
            attrs.update(n_targets=targets, post_transform=post)
            save_case(out, f"TreeRegressor_{post}_{targets}", "TreeEnsembleRegressor", [("x", x)], 1, attrs,
                      domain=ML, ml_opset=1)
    attrs = legacy_tree_attrs("target", leq, [(t, n, 0, w) for (t, n), w in zip(leaves, [0.1, 0.2, 0.05, 0.3, 0.15,
                                                                                        0.2])])
    attrs.update(n_targets=1, post_transform="PROBIT")
    save_case(out, "TreeRegressor_PROBIT", "TreeEnsembleRegressor", [("x", x)], 1, attrs, domain=ML, ml_opset=1)
    attrs = legacy_tree_attrs("target", leq, two, values_as_tensor=True, weights_as_tensor=True)
    attrs.update(n_targets=2, base_values_as_tensor=numpy_helper.from_array(np.array([1.0, -1.0], np.float32), "b"))
    save_case(out, "TreeRegressor_as_tensor", "TreeEnsembleRegressor", [("x", x)], 1, attrs, domain=ML, ml_opset=3)
    save_case(out, "TreeRegressor_double", "TreeEnsembleRegressor", [("x", x.astype(np.float64))], 1,
              dict(legacy_tree_attrs("target", leq, two), n_targets=2), domain=ML, ml_opset=1)
    xi = RNG.integers(-2, 3, size=(12, 3)).astype(np.int64)

    # Classifiers: three classes, then the two-label layouts converters write.
    three = two + [(t, n, 2, w) for (t, n), w in zip(leaves, [0.2, 0.9, -0.1, 0.4, 1.1, 0.0])]
    for post in ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"):
        attrs = legacy_tree_attrs("class", leq, three, missing=[1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
        attrs.update(classlabels_int64s=[4, 5, 6], post_transform=post)
        save_case(out, f"TreeClassifier3_{post}", "TreeEnsembleClassifier", [("x", x)], 2, attrs, domain=ML,
                  ml_opset=1)
    attrs = legacy_tree_attrs("class", leq, three[:8])  # class 2 never scored; base values fill it
    attrs.update(classlabels_strings=["a", "b", "c"], base_values=[0.1, -0.2, 0.3])
    save_case(out, "TreeClassifier3_strings_base", "TreeEnsembleClassifier", [("x", x)], 2, attrs, domain=ML,
              ml_opset=1)
    probabilities = [(t, n, 0, w) for (t, n), w in zip(leaves, [0.1, 0.4, 0.2, 0.35, 0.15, 0.3])]
    attrs = legacy_tree_attrs("class", leq, probabilities)
    attrs.update(classlabels_int64s=[0, 1])  # all weights positive: label at > 0.5, scores [1 - p, p]
    save_case(out, "TreeClassifier2_positive", "TreeEnsembleClassifier", [("x", x)], 2, attrs, domain=ML, ml_opset=1)
    for post, base in (("LOGISTIC", [0.3]), ("NONE", [0.3]), ("NONE", None), ("LOGISTIC", None)):
        attrs = legacy_tree_attrs("class", leq, one)  # mixed signs: label at > 0
        attrs.update(classlabels_int64s=[0, 1], post_transform=post)
        if base:
            attrs["base_values"] = base
        save_case(out, f"TreeClassifier2_mixed_{post}_{len(base or [])}", "TreeEnsembleClassifier", [("x", x)], 2,
                  attrs, domain=ML, ml_opset=1)
    for base in (None, [0.5, 0.5]):
        attrs = legacy_tree_attrs("class", leq, two)  # two weight columns
        attrs.update(classlabels_strings=["no", "yes"])
        if base:
            attrs["base_values"] = base
        save_case(out, f"TreeClassifier2_columns_{len(base or [])}", "TreeEnsembleClassifier", [("x", x)], 2, attrs,
                  domain=ML, ml_opset=1)
    attrs = legacy_tree_attrs("class", leq, two)
    attrs.update(classlabels_int64s=[3, 7])  # ONNX Runtime answers 0 or 1 here, not 3 or 7
    save_case(out, "TreeClassifier2_columns_int", "TreeEnsembleClassifier", [("x", x)], 2, attrs, domain=ML,
              ml_opset=1)
    attrs = legacy_tree_attrs("class", leq, three, values_as_tensor=True, weights_as_tensor=True)
    attrs.update(classlabels_int64s=[4, 5, 6], base_values_as_tensor=numpy_helper.from_array(np.array([0.5, 0, 0], np.float32), "b"))
    save_case(out, "TreeClassifier3_as_tensor", "TreeEnsembleClassifier", [("x", x)], 2, attrs, domain=ML, ml_opset=3)
    save_case(out, "TreeClassifier3_double", "TreeEnsembleClassifier", [("x", x.astype(np.float64))], 2,
              dict(legacy_tree_attrs("class", leq, three), classlabels_int64s=[4, 5, 6]), domain=ML, ml_opset=1)
    save_case(out, "TreeClassifier3_int64", "TreeEnsembleClassifier", [("x", xi)], 2,
              dict(legacy_tree_attrs("class", leq, three), classlabels_int64s=[4, 5, 6]), domain=ML, ml_opset=1)


def main():
    family, out = sys.argv[1], sys.argv[2]
    {"bitwise": bitwise, "signal": signal, "strings": strings, "tfidf": tfidf, "ml": ml,
     "trees": legacy_trees}[family](out)


if __name__ == "__main__":
    main()
