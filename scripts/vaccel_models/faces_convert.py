"""Convert MediaPipe BlazeFace TFLite models to ONNX (runs inside the model venv).

This module is executed by ``vaccel_models.faces.prepare`` with the private
virtualenv's interpreter, e.g.::

    PYTHONPATH=scripts python -m vaccel_models.faces_convert convert \
        --tflite face_detection_short_range.tflite \
        --onnx models/face_detection_short_range.onnx --source "..."

It needs ``tflite2onnx`` (and therefore ``tflite``, ``onnx``, ``numpy``).

The raw ``tflite2onnx`` output is post-processed so that it is stable and easy
to consume from Rust:

* both models get the output names ``regressors`` ([1, N, 16]) and
  ``classificators`` ([1, N, 1]) (the full-range model calls them
  ``reshaped_regressor_face_4`` / ``reshaped_classifier_face_4`` in TFLite);
* initializers and value_info are sorted by name and the producer fields are
  fixed, because ``tflite2onnx`` emits initializers in a random order
  (so two runs would otherwise give different bytes);
* a few ``metadata_props`` document layout and value range of the input;
* each 2x bilinear ``Resize`` (full-range model only) becomes
  ``Pad(edge) -> Resize -> Slice``, which gives the same values but avoids a
  border bug in tract-onnx 0.22 (see ``portable_resize``).

``tflite2onnx`` propagates the layout, so the ONNX input is NCHW
``[1, 3, H, W]`` although the TFLite input is NHWC ``[1, H, W, 3]``.

The ``verify`` sub-command compares the ONNX model (onnxruntime) with the
TFLite model (``ai_edge_litert``, ``tflite_runtime`` or ``tensorflow``) on
random inputs; it is not used by ``prepare`` (those packages are large) but
documents how parity was checked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

REGRESSORS = "regressors"
CLASSIFICATORS = "classificators"


def _dims(value_info):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in value_info.type.tensor_type.shape.dim]


def _rename_tensor(graph, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for coll in (graph.output, graph.value_info):
        for vi in coll:
            if vi.name == old:
                vi.name = new


def portable_resize(model) -> int:
    """Rewrite 2-D linear half_pixel Resize nodes so tract computes them right.

    tract-onnx 0.22 does not clamp the source coordinate of a half_pixel
    linear Resize, so the first output row/column (source coordinate -0.25)
    is extrapolated instead of copying the edge pixel; the full-range model
    then differs from onnxruntime by up to ~40 on its raw outputs.  The
    equivalent, clamp-free form is::

        Pad(edge, 1 px on H and W) -> Resize(linear, half_pixel, scales s)
        -> Slice([s, s + s*n) on H and W)

    (with integer factor s: source coordinate (o+0.5)/s - 0.5 in the original
    is (o+s+0.5)/s - 0.5 - 1 in the padded tensor, always >= 1 - 0.5/s, and
    the edge padding reproduces ONNX's clamping).  Returns the number of nodes
    rewritten.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    shapes = {vi.name: _dims(vi) for vi in list(graph.value_info) + list(graph.input)}
    new_nodes = []
    rewritten = 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        mode = attrs.get("mode", b"nearest")
        ctm = attrs.get("coordinate_transformation_mode", b"half_pixel")
        sizes_name = node.input[3] if len(node.input) > 3 else ""
        in_shape = shapes.get(node.input[0]) if node.input else None
        if (node.op_type != "Resize" or mode != b"linear" or ctm != b"half_pixel"
                or sizes_name not in inits or not in_shape or len(in_shape) != 4
                or not all(isinstance(d, int) and d > 0 for d in in_shape)):
            new_nodes.append(node)
            continue
        sizes = numpy_helper.to_array(inits[sizes_name]).astype(np.int64).tolist()
        n, c, h, w = in_shape
        if (sizes[0] != n or sizes[1] != c or sizes[2] % h or sizes[3] % w
                or sizes[2] // h != sizes[3] // w or sizes[2] // h < 2):
            new_nodes.append(node)
            continue
        f = sizes[2] // h
        base = node.name or node.output[0]

        def const(name, values):
            t = numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)
            graph.initializer.append(t)
            return name

        pads = const(f"{base}/portable/pads", [0, 0, 1, 1, 0, 0, 1, 1])
        # Scales rather than sizes: tract 0.22 takes an empty `scales` input
        # literally (no resampling at all) when `sizes` is used instead.
        scales = f"{base}/portable/scales"
        graph.initializer.append(numpy_helper.from_array(
            np.asarray([1.0, 1.0, float(f), float(f)], dtype=np.float32), scales))
        starts = const(f"{base}/portable/starts", [f, f])
        ends = const(f"{base}/portable/ends", [f + f * h, f + f * w])
        axes = const(f"{base}/portable/axes", [2, 3])
        padded = f"{base}/portable/padded"
        resized = f"{base}/portable/resized"
        new_nodes.append(helper.make_node("Pad", [node.input[0], pads], [padded],
                                          name=f"{base}/portable/pad", mode="edge"))
        new_nodes.append(helper.make_node(
            "Resize", [padded, node.input[1], scales], [resized],
            name=f"{base}/portable/resize", mode="linear",
            coordinate_transformation_mode="half_pixel"))
        new_nodes.append(helper.make_node("Slice", [resized, starts, ends, axes],
                                          [node.output[0]], name=base))
        rewritten += 1
    if rewritten:
        del graph.node[:]
        graph.node.extend(new_nodes)
        used = {i for nd in graph.node for i in nd.input}
        keep = [t for t in graph.initializer if t.name in used]
        keep = [type(keep[0]).FromString(t.SerializeToString()) for t in keep]
        del graph.initializer[:]
        graph.initializer.extend(keep)
    return rewritten


def canonicalize(model, source: str):
    """Rename outputs, sort unordered collections, set fixed metadata."""
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 2:
        raise SystemExit(f"unexpected graph signature: {len(graph.input)} inputs, "
                         f"{len(graph.output)} outputs")
    inp = graph.input[0]
    in_dims = _dims(inp)
    if len(in_dims) != 4 or in_dims[0] != 1 or in_dims[1] != 3 or in_dims[2] != in_dims[3]:
        raise SystemExit(f"unexpected input shape {in_dims} (want [1,3,S,S])")

    # Identify outputs by their last dimension (16 coords vs 1 score).
    renames = {}
    for out in graph.output:
        dims = _dims(out)
        if len(dims) != 3 or dims[0] != 1:
            raise SystemExit(f"unexpected output shape {dims} for {out.name}")
        if dims[2] == 16:
            renames[out.name] = REGRESSORS
        elif dims[2] == 1:
            renames[out.name] = CLASSIFICATORS
        else:
            raise SystemExit(f"unexpected output shape {dims} for {out.name}")
    if sorted(renames.values()) != sorted([REGRESSORS, CLASSIFICATORS]):
        raise SystemExit(f"could not identify outputs: {renames}")
    for old, new in renames.items():
        _rename_tensor(graph, old, new)
    # Keep a fixed output order: regressors first, classificators second.
    outs = sorted(graph.output, key=lambda vi: 0 if vi.name == REGRESSORS else 1)
    outs = [type(outs[0]).FromString(o.SerializeToString()) for o in outs]
    del graph.output[:]
    graph.output.extend(outs)

    inits = sorted(graph.initializer, key=lambda t: t.name)
    inits = [type(inits[0]).FromString(t.SerializeToString()) for t in inits]
    del graph.initializer[:]
    graph.initializer.extend(inits)

    vis = sorted(graph.value_info, key=lambda v: v.name)
    if vis:
        vis = [type(vis[0]).FromString(v.SerializeToString()) for v in vis]
    del graph.value_info[:]
    graph.value_info.extend(vis)

    model.producer_name = "vaccel-rs faces_convert (tflite2onnx)"
    model.producer_version = ""
    model.doc_string = f"Converted from {source}"
    graph.name = "blazeface"
    del model.metadata_props[:]
    size = in_dims[2]
    n_anchors = _dims(graph.output[0])[1]
    for key, value in (
        ("source", source),
        ("input_layout", "NCHW"),
        ("input_range", "[-1,1] (pixel/127.5 - 1), RGB"),
        ("input_size", str(size)),
        ("num_anchors", str(n_anchors)),
        ("outputs", "regressors[1,N,16] (cx,cy,w,h + 6 keypoints, pixels of the "
                    "input tensor, relative to anchor), classificators[1,N,1] (logits)"),
    ):
        prop = model.metadata_props.add()
        prop.key = key
        prop.value = value
    return model


def convert(tflite_path: str, onnx_path: str, source: str) -> dict:
    import logging

    import onnx
    import tflite2onnx

    # tflite2onnx warns about every float16 weight ("not supported/tested
    # yet") and about the empty roi/scales inputs it gives Resize; both are
    # fine here (outputs checked against TFLite, see docs/faces-model.md).
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    out_dir = os.path.dirname(os.path.abspath(onnx_path))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        tflite2onnx.convert(tflite_path, raw)
        model = onnx.load(raw)
    rewritten = portable_resize(model)
    model = canonicalize(model, source)
    onnx.checker.check_model(model, full_check=True)
    tmp_out = onnx_path + ".tmp"
    onnx.save(model, tmp_out)
    os.replace(tmp_out, onnx_path)
    g = model.graph
    return {
        "onnx": onnx_path,
        "input": {"name": g.input[0].name, "shape": _dims(g.input[0])},
        "outputs": [{"name": o.name, "shape": _dims(o)} for o in g.output],
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")],
        "resize_rewritten": rewritten,
    }


def _tflite_interpreter(path: str):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf
            Interpreter = tf.lite.Interpreter
    it = Interpreter(model_path=path)
    it.allocate_tensors()
    return it


def verify(tflite_path: str, onnx_path: str, samples: int, images: list[str]) -> dict:
    """Max |onnx - tflite| over random inputs in [-1, 1] and optional images."""
    import numpy as np
    import onnxruntime as ort

    it = _tflite_interpreter(tflite_path)
    tin = it.get_input_details()[0]
    touts = it.get_output_details()
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    oin = sess.get_inputs()[0]
    onames = [o.name for o in sess.get_outputs()]
    _, h, w, _ = (int(v) for v in tin["shape"])

    # Map TFLite outputs to ONNX outputs by their last dimension.
    tmap = {int(d["shape"][-1]): d["index"] for d in touts}
    omap = {REGRESSORS: tmap[16], CLASSIFICATORS: tmap[1]}

    inputs = []
    rng = np.random.default_rng(1234)
    for _ in range(samples):
        inputs.append(("random", rng.uniform(-1.0, 1.0, size=(1, h, w, 3)).astype(np.float32)))
    for path in images:
        from PIL import Image
        img = Image.open(path).convert("RGB").resize((w, h), Image.BILINEAR)
        x = np.asarray(img, dtype=np.float32)[None] / 127.5 - 1.0
        inputs.append((os.path.basename(path), x.astype(np.float32)))

    worst = {REGRESSORS: 0.0, CLASSIFICATORS: 0.0}
    worst_rel = {REGRESSORS: 0.0, CLASSIFICATORS: 0.0}
    worst_post = {"score": 0.0, "coord": 0.0}
    per_input = []
    for label, x in inputs:
        it.set_tensor(tin["index"], x)
        it.invoke()
        got = dict(zip(onames, sess.run(None, {oin.name: np.transpose(x, (0, 3, 1, 2))})))
        row = {"input": label}
        for name in (REGRESSORS, CLASSIFICATORS):
            ref = it.get_tensor(omap[name])
            diff = float(np.max(np.abs(got[name] - ref)))
            scale = float(np.max(np.abs(ref)))
            worst[name] = max(worst[name], diff)
            worst_rel[name] = max(worst_rel[name], diff / max(scale, 1e-6))
            row[name] = {"max_abs_diff": diff, "max_abs_ref": scale}
            # What the decoder actually consumes: sigmoid(clip(logit)) and
            # offsets divided by the input size.
            if name == CLASSIFICATORS:
                def sig(a):
                    return 1.0 / (1.0 + np.exp(-np.clip(a.astype(np.float64), -100, 100)))
                d2 = float(np.max(np.abs(sig(got[name]) - sig(ref))))
                worst_post["score"] = max(worst_post["score"], d2)
            else:
                d2 = diff / float(w)
                worst_post["coord"] = max(worst_post["coord"], d2)
        per_input.append(row)
    return {"onnx": onnx_path, "max_abs_diff": worst,
            "max_abs_diff_over_max_abs_ref": worst_rel,
            "max_abs_diff_decoded": worst_post, "per_input": per_input}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="convert one .tflite to a canonical .onnx")
    c.add_argument("--tflite", required=True)
    c.add_argument("--onnx", required=True)
    c.add_argument("--source", default="", help="provenance string stored in the model")
    v = sub.add_parser("verify", help="compare ONNX (onnxruntime) with TFLite outputs")
    v.add_argument("--tflite", required=True)
    v.add_argument("--onnx", required=True)
    v.add_argument("--samples", type=int, default=8)
    v.add_argument("--image", action="append", default=[])
    args = ap.parse_args(argv)
    if args.cmd == "convert":
        src = args.source or os.path.basename(args.tflite)
        result = convert(args.tflite, args.onnx, src)
    else:
        result = verify(args.tflite, args.onnx, args.samples, args.image)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
