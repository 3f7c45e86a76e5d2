#!/usr/bin/env python3
"""The recipe for the exporter zoo of RESULTS.md ("Models users bring: the torch exporters'
zoo (session 15)"): torchvision and Hugging Face transformers architectures with seeded random
weights, exported the way users do it, by torch.onnx.export with the dynamo exporter (torch's
default) and with the TorchScript exporter at opset 17.

usage: export_zoo.py OUT_DIR [--family tv|hf|big] [--only NAME,NAME] [--modes dynamo,legacy]

Writes OUT_DIR/NAME-MODE.onnx, OUT_DIR/NAME.inputs.npz (the example inputs, by input name) and
OUT_DIR/NAME.ref.npz (torch's outputs out0, out1, ...); benchmarks/zoo_check.py runs them.
Random weights: a conformance and speed corpus (does whittle run, optimize and quantize what the
exporters write, against ONNX Runtime), not an accuracy one. `big` holds three real-size configs
(GPT-2 small, ALBERT-base, T5-small) to size what the exporters duplicate.

torch, torchvision and transformers are not project packages (PyPI's torch wheel pulls the CUDA
libraries): run this from a separate virtualenv that has them, e.g. torch 2.15, torchvision 0.29.2
(installed with --no-deps), transformers 5.25, pillow, onnx, onnxscript. No test runs it.
"""
import argparse, importlib, os, time, warnings
import numpy as np

warnings.filterwarnings("ignore")
torch = importlib.import_module("torch")

def torchvision_cases():
    torchvision = importlib.import_module("torchvision")
    M, D, S, V = (importlib.import_module("torchvision.models" + s) for s in ("", ".detection", ".segmentation", ".video"))
    class DetWrap(torch.nn.Module):
        def __init__(s, m, keys): super().__init__(); s.m = m; s.keys = keys
        def forward(s, x):
            r = s.m(x)[0]
            return tuple(r[k] for k in s.keys)
    class SegWrap(torch.nn.Module):
        def __init__(s, m): super().__init__(); s.m = m
        def forward(s, x): return s.m(x)["out"]
    class FlowWrap(torch.nn.Module):
        def __init__(s, m): super().__init__(); s.m = m
        def forward(s, a, b): return s.m(a, b, num_flow_updates=4)[-1]

    def img(h=224, w=224, n=1): return (torch.rand(n, 3, h, w),)
    cases = {
        "resnet18": lambda: (M.resnet18(), img()),
        "efficientnet_b0": lambda: (M.efficientnet_b0(), img()),
        "efficientnet_v2_s": lambda: (M.efficientnet_v2_s(), img()),
        "convnext_tiny": lambda: (M.convnext_tiny(), img()),
        "regnet_y_400mf": lambda: (M.regnet_y_400mf(), img()),
        "mobilenet_v3_small": lambda: (M.mobilenet_v3_small(), img()),
        "mnasnet0_5": lambda: (M.mnasnet0_5(), img()),
        "swin_t": lambda: (M.swin_t(), img()),
        "maxvit_t": lambda: (M.maxvit_t(), img()),
        "vit_small": lambda: (M.VisionTransformer(224, 16, 4, 4, 256, 512, num_classes=100), img()),
        "lraspp_mbv3": lambda: (SegWrap(S.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)), img(320, 320)),
        "deeplabv3_mbv3": lambda: (SegWrap(S.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=False)), img(320, 320)),
        "ssdlite320": lambda: (DetWrap(D.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None), ["boxes", "scores", "labels"]), img(320, 320)),
        "fasterrcnn_mbv3_320": lambda: (DetWrap(D.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None), ["boxes", "scores", "labels"]), img(320, 320)),
        "retinanet_r50": lambda: (DetWrap(D.retinanet_resnet50_fpn(weights=None, weights_backbone=None), ["boxes", "scores", "labels"]), img(320, 320)),
        "fcos_r50": lambda: (DetWrap(D.fcos_resnet50_fpn(weights=None, weights_backbone=None), ["boxes", "scores", "labels"]), img(320, 320)),
        "maskrcnn_r50": lambda: (DetWrap(D.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None), ["boxes", "scores", "labels", "masks"]), img(320, 320)),
        "keypointrcnn_r50": lambda: (DetWrap(D.keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None), ["boxes", "scores", "keypoints"]), img(320, 320)),
        "r3d_18": lambda: (V.r3d_18(), (torch.rand(1, 3, 8, 112, 112),)),
        "s3d": lambda: (V.s3d(), (torch.rand(1, 3, 16, 224, 224),)),
        "raft_small": lambda: (FlowWrap(torchvision.models.optical_flow.raft_small()), (torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128))),
    }
    for name in ("ssdlite320", "fasterrcnn_mbv3_320", "retinanet_r50", "fcos_r50", "maskrcnn_r50", "keypointrcnn_r50"):
        cases[name] = _low_threshold(cases[name])
    return {k: (lambda make=make: _positional(*make())) for k, make in cases.items()}


def _low_threshold(make):
    """Random detection heads score everything alike: a low threshold so that boxes come out."""
    def made():
        m, args = make()
        inner = m.m
        if hasattr(inner, "score_thresh"): inner.score_thresh = 0.01
        if hasattr(inner, "roi_heads"): inner.roi_heads.score_thresh = 0.01
        return m, args
    return made


def _positional(m, args):
    return m, {f"in{i}": a for i, a in enumerate(args)}, False

def transformers_cases():
    T = importlib.import_module("transformers")
    small = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=1000)
    def ids(n=16, b=1): g = torch.Generator().manual_seed(1); return torch.randint(3, 1000, (b, n), generator=g)
    def txt(): i = ids(); return {"input_ids": i, "attention_mask": torch.ones_like(i)}
    def causal(cls, cfg, **kw): return (lambda: (cls(cfg(**small, **kw)), txt()))
    cases = {
        "bert": lambda: (T.BertForSequenceClassification(T.BertConfig(**small, num_labels=5)), {**txt(), "token_type_ids": torch.zeros(1, 16, dtype=torch.long)}),
        "distilbert": lambda: (T.DistilBertForSequenceClassification(T.DistilBertConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=128, vocab_size=1000, num_labels=5)), txt()),
        "roberta": lambda: (T.RobertaForSequenceClassification(T.RobertaConfig(**small, num_labels=5)), txt()),
        "albert": lambda: (T.AlbertForSequenceClassification(T.AlbertConfig(**small, embedding_size=32, num_labels=5)), txt()),
        "deberta_v2": lambda: (T.DebertaV2ForSequenceClassification(T.DebertaV2Config(**small, num_labels=5)), txt()),
        "electra": lambda: (T.ElectraForSequenceClassification(T.ElectraConfig(**small, embedding_size=64, num_labels=5)), txt()),
        "gpt2": lambda: (T.GPT2LMHeadModel(T.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=1000, use_cache=False)), txt()),
        "llama": causal(T.LlamaForCausalLM, T.LlamaConfig, num_key_value_heads=2, use_cache=False),
        "qwen2": causal(T.Qwen2ForCausalLM, T.Qwen2Config, num_key_value_heads=2, use_cache=False),
        "mistral": causal(T.MistralForCausalLM, T.MistralConfig, num_key_value_heads=2, use_cache=False),
        "phi3": causal(T.Phi3ForCausalLM, T.Phi3Config, num_key_value_heads=2, use_cache=False, pad_token_id=0),
        "gemma": causal(T.GemmaForCausalLM, T.GemmaConfig, num_key_value_heads=2, head_dim=16, use_cache=False),
        "gpt_neox": causal(T.GPTNeoXForCausalLM, T.GPTNeoXConfig, use_cache=False),
        "bloom": lambda: (T.BloomForCausalLM(T.BloomConfig(hidden_size=64, n_layer=2, n_head=4, vocab_size=1000, use_cache=False)), txt()),
        "t5": lambda: (T.T5ForConditionalGeneration(T.T5Config(d_model=64, d_ff=128, num_layers=2, num_heads=4, d_kv=16, vocab_size=1000, use_cache=False)), {**txt(), "decoder_input_ids": ids(8)}),
        "bart": lambda: (T.BartForConditionalGeneration(T.BartConfig(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, vocab_size=1000, use_cache=False)), {**txt(), "decoder_input_ids": ids(8)}),
        "whisper": lambda: (T.WhisperForConditionalGeneration(T.WhisperConfig(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, vocab_size=1000, num_mel_bins=80, max_source_positions=100, max_target_positions=64, use_cache=False, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)), {"input_features": torch.randn(1, 80, 200), "decoder_input_ids": ids(8)}),
        "wav2vec2": lambda: (T.Wav2Vec2ForCTC(T.Wav2Vec2Config(**small, conv_dim=(32, 32, 32), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)), {"input_values": torch.randn(1, 4000)}),
        "vit": lambda: (T.ViTForImageClassification(T.ViTConfig(**{k: v for k, v in small.items() if k != "vocab_size"}, image_size=64, patch_size=8, num_labels=10)), {"pixel_values": torch.rand(1, 3, 64, 64)}),
        "swin": lambda: (T.SwinForImageClassification(T.SwinConfig(image_size=64, patch_size=4, embed_dim=32, depths=[2, 2], num_heads=[2, 4], window_size=4, num_labels=10)), {"pixel_values": torch.rand(1, 3, 64, 64)}),
        "convnext": lambda: (T.ConvNextForImageClassification(T.ConvNextConfig(num_stages=2, hidden_sizes=[32, 64], depths=[1, 1], num_labels=10)), {"pixel_values": torch.rand(1, 3, 64, 64)}),
        "segformer": lambda: (T.SegformerForSemanticSegmentation(T.SegformerConfig(hidden_sizes=[16, 32, 64, 96], depths=[1, 1, 1, 1], num_labels=5, decoder_hidden_size=64)), {"pixel_values": torch.rand(1, 3, 128, 128)}),
        "mobilevit": lambda: (T.MobileViTForImageClassification(T.MobileViTConfig(image_size=128, num_labels=10)), {"pixel_values": torch.rand(1, 3, 128, 128)}),
        "clip": lambda: (T.CLIPModel(T.CLIPConfig(text_config=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=1000), vision_config=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=64, patch_size=8), projection_dim=32)), {**txt(), "pixel_values": torch.rand(1, 3, 64, 64)}),
        "mamba": lambda: (T.MambaForCausalLM(T.MambaConfig(hidden_size=64, num_hidden_layers=2, vocab_size=1000, state_size=8, use_cache=False)), {"input_ids": ids()}),
        "detr": lambda: (T.DetrForObjectDetection(T.DetrConfig(use_timm_backbone=False, use_pretrained_backbone=False, backbone_config=T.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1], out_features=["stage4"]), d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, num_queries=20, num_labels=5)), {"pixel_values": torch.rand(1, 3, 128, 128)}),
    }
    return {k: (lambda make=make: (*make(), True)) for k, make in cases.items()}


def big_cases():
    T = importlib.import_module("transformers")
    i = torch.randint(3, 1000, (1, 16), generator=torch.Generator().manual_seed(1)); a = torch.ones_like(i)
    return {
        "gpt2-124m": lambda: (T.GPT2LMHeadModel(T.GPT2Config(use_cache=False)), {"input_ids": i, "attention_mask": a}, True),
        "albert-base": lambda: (T.AlbertForSequenceClassification(T.AlbertConfig(hidden_size=768, num_attention_heads=12, intermediate_size=3072, embedding_size=128, num_labels=5)), {"input_ids": i, "attention_mask": a}, True),
        "t5-small": lambda: (T.T5ForConditionalGeneration(T.T5Config(use_cache=False)), {"input_ids": i, "attention_mask": a, "decoder_input_ids": i[:, :8]}, True),
    }


class HfWrap(torch.nn.Module):
    """Keyword inputs in, a tuple of tensors out: the logits (or first hidden state), and boxes when the model has them."""
    def __init__(s, m, keys): super().__init__(); s.m = m; s.keys = keys
    def forward(s, *args):
        r = s.m(**dict(zip(s.keys, args)), return_dict=True)
        first = [k for k in ("logits", "logits_per_image", "last_hidden_state") if getattr(r, k, None) is not None]
        outs = [getattr(r, first[0])]
        if getattr(r, "pred_boxes", None) is not None: outs.append(r.pred_boxes)
        return tuple(outs)


def export(out, family, only, modes):
    os.makedirs(out, exist_ok=True)
    cases = {"tv": torchvision_cases, "hf": transformers_cases, "big": big_cases}[family]()
    for name, make in cases.items():
        if only and name not in only: continue
        torch.manual_seed(0)
        try:
            m, kw, keyword = make()
            keys = list(kw); args = tuple(kw.values())
            w = (HfWrap(m.eval(), keys) if keyword else m).eval()
            with torch.no_grad(): ref = w(*args)
        except Exception as e:
            print(name, "BUILD FAILED", type(e).__name__, str(e)[:300].replace("\n", " "), flush=True); continue
        ref = ref if isinstance(ref, tuple) else (ref,)
        outs = [f"out{k}" for k in range(len(ref))]
        np.savez(f"{out}/{name}.inputs.npz", **{n: a.numpy() for n, a in zip(keys, args)})
        np.savez(f"{out}/{name}.ref.npz", **{o: r.numpy() for o, r in zip(outs, ref)})
        for mode in modes:
            path = f"{out}/{name}-{mode}.onnx"; t = time.time()
            try:
                with torch.no_grad():
                    if mode == "dynamo":
                        torch.onnx.export(w, args, input_names=keys, output_names=outs, dynamo=True).save(path)
                    else:
                        torch.onnx.export(w, args, path, input_names=keys, output_names=outs, dynamo=False, opset_version=17)
                print(name, mode, "ok", f"{time.time() - t:.0f}s", os.path.getsize(path), flush=True)
            except Exception as e:
                print(name, mode, "FAILED", type(e).__name__, str(e)[:300].replace("\n", " "), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--family", choices=["tv", "hf", "big"], default="tv")
    ap.add_argument("--only", default="")
    ap.add_argument("--modes", default="dynamo,legacy")
    a = ap.parse_args()
    export(a.out, a.family, set(filter(None, a.only.split(","))), a.modes.split(","))
