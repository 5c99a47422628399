#!/usr/bin/env python3
"""Python reference classifier for the EfficientNet-Lite0 ONNX model.

Needs a Python environment with onnxruntime, Pillow and numpy (these are NOT
installed by setup_models.py; use a throwaway venv):

    python3 -m venv /tmp/ref-venv
    /tmp/ref-venv/bin/pip install onnxruntime Pillow numpy
    /tmp/ref-venv/bin/python scripts/reference_classify.py test-data/images/*.jpg
    /tmp/ref-venv/bin/python scripts/reference_classify.py --dump-logits dog.json test-data/images/dog.jpg

Preprocessing (the contract any other implementation must follow to get the
same logits):
  1. decode, convert to RGB (8-bit);
  2. resize so the short side is 256 px, long side round(long * 256 / short),
     Pillow bilinear filter (antialiased when downscaling);
  3. centre-crop 224x224 at offset ((w - 224) // 2, (h - 224) // 2);
  4. float32 (x - 127) / 128 per channel, NCHW [1, 3, 224, 224].
The model outputs 1000 raw logits; probabilities are their softmax.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
RESIZE_SHORT = 256
CROP = 224
MEAN = 127.0
STD = 128.0


def preprocess(path) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        if w <= h:
            nw, nh = RESIZE_SHORT, int(h * RESIZE_SHORT / w + 0.5)
        else:
            nw, nh = int(w * RESIZE_SHORT / h + 0.5), RESIZE_SHORT
        im = im.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - CROP) // 2, (nh - CROP) // 2
        im = im.crop((left, top, left + CROP, top + CROP))
        x = np.asarray(im, dtype=np.float32)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Top-k ImageNet classes with the ONNX reference model.")
    ap.add_argument("images", nargs="+", type=pathlib.Path)
    ap.add_argument("--model", type=pathlib.Path,
                    default=REPO_ROOT / "models" / "efficientnet-lite0.onnx")
    ap.add_argument("--labels", type=pathlib.Path,
                    default=REPO_ROOT / "models" / "imagenet-labels.txt")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--dump-logits", type=pathlib.Path, metavar="FILE",
                    help="write the raw 1000 logits of the (single) image as a JSON array")
    args = ap.parse_args(argv)
    if args.dump_logits and len(args.images) != 1:
        ap.error("--dump-logits takes exactly one image")

    labels = args.labels.read_text(encoding="utf-8").splitlines()
    if len(labels) != 1000:
        ap.error(f"{args.labels}: expected 1000 labels, found {len(labels)}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(args.model), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    out = sess.get_outputs()[0].name

    for path in args.images:
        logits = sess.run([out], {inp: preprocess(path)})[0].reshape(-1)
        probs = softmax(logits)
        order = np.argsort(-probs, kind="stable")[: args.top]
        print(path)
        print(f"classification tags: {probs[order[0]] * 100:.3f}% {labels[order[0]]}")
        for rank, i in enumerate(order, 1):
            print(f"  {rank}. {probs[i] * 100:7.3f}%  [{i:3d}] {labels[i]}  (logit {logits[i]:.4f})")
        if args.dump_logits:
            args.dump_logits.write_text(
                json.dumps([float(v) for v in logits]) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
