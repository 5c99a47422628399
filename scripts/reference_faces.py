#!/usr/bin/env python3
"""Python reference face detector for the BlazeFace ONNX models.

Needs a Python environment with onnxruntime, Pillow and numpy (NOT installed by
setup_models.py; use a throwaway venv):

    python3 -m venv /tmp/ref-venv
    /tmp/ref-venv/bin/pip install onnxruntime Pillow numpy
    /tmp/ref-venv/bin/python scripts/reference_faces.py test-data/images/portrait.jpg
    /tmp/ref-venv/bin/python scripts/reference_faces.py \
        --model models/face_detection_full_range.onnx \
        --blur /tmp/group-blurred.jpg test-data/images/group.jpg

Prints one JSON document: per image the detected faces with score, box
(pixel coordinates of the original image, xmin/ymin/xmax/ymax, unclipped)
and the six keypoints. Everything (letterbox, anchors, decoding, weighted
NMS, blur) follows docs/faces-model.md; the model variant (short / full
range) is chosen from the model's input size (128 or 192).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageFilter, ImageOps

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center",
                  "right_ear_tragion", "left_ear_tragion")

# Per input size: SSD anchor options and decoder options (docs/faces-model.md).
VARIANTS = {
    128: {
        "name": "short_range",
        "strides": [8, 16, 16, 16],
        "interpolated_scale_aspect_ratio": 1.0,
        "num_anchors": 896,
        "min_score": 0.5,
    },
    192: {
        "name": "full_range",
        "strides": [4],
        "interpolated_scale_aspect_ratio": 0.0,
        "num_anchors": 2304,
        "min_score": 0.6,
    },
}
ANCHOR_OFFSET = 0.5
ASPECT_RATIOS = [1.0]
SCORE_CLIP = 100.0
NMS_IOU = 0.3


# --------------------------------------------------------------------------
# Anchors (MediaPipe SsdAnchorsCalculator with fixed_anchor_size = true)
# --------------------------------------------------------------------------

def generate_anchors(input_size: int, strides, interpolated_scale_aspect_ratio: float):
    """Return float32 [N, 2] anchor centres (x, y), normalised to [0, 1].

    With fixed_anchor_size every anchor has w = h = 1, so only the centres
    matter. Consecutive layers with the same stride share one feature map; a
    cell of that map gets (len(ASPECT_RATIOS) + (1 if interpolated > 0)) anchors
    per layer, all with the same centre.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += len(ASPECT_RATIOS)
            if interpolated_scale_aspect_ratio > 0.0:
                per_cell += 1
            last += 1
        fm = int(math.ceil(input_size / strides[layer]))
        for y in range(fm):
            cy = (y + ANCHOR_OFFSET) / fm
            for x in range(fm):
                cx = (x + ANCHOR_OFFSET) / fm
                centres.extend([(cx, cy)] * per_cell)
        layer = last
    return np.asarray(centres, dtype=np.float32)


# --------------------------------------------------------------------------
# Pre-processing: letterbox to S x S, RGB in [-1, 1], NCHW
# --------------------------------------------------------------------------

def letterbox(img: Image.Image, size: int):
    """Scale the long side to `size` (aspect kept), centre on a black canvas.

    Returns (NCHW float32 tensor, (scale_x, scale_y, off_x, off_y)) where a
    tensor pixel coordinate p maps back to the image as (p - off) / scale.
    """
    w, h = img.size
    long_side = max(w, h)
    nw = max(1, int(round(w * size / long_side)))
    nh = max(1, int(round(h * size / long_side)))
    resized = img.resize((nw, nh), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (0, 0, 0))
    off_x, off_y = (size - nw) // 2, (size - nh) // 2
    canvas.paste(resized, (off_x, off_y))
    x = np.asarray(canvas, dtype=np.float32) / 127.5 - 1.0
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    return x, (nw / w, nh / h, off_x, off_y)


# --------------------------------------------------------------------------
# Decoding + weighted NMS
# --------------------------------------------------------------------------

def decode(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray,
           input_size: int, min_score: float):
    """Return list of (score, box[4] = xmin,ymin,xmax,ymax, kps[6,2]), normalised
    to the S x S input tensor, for anchors with score >= min_score."""
    raw = regressors.reshape(-1, 16).astype(np.float32)
    logit = logits.reshape(-1).astype(np.float64)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logit, -SCORE_CLIP, SCORE_CLIP)))
    out = []
    for i in np.nonzero(scores >= min_score)[0]:
        ax, ay = anchors[i]
        r = raw[i] / float(input_size)
        cx, cy = r[0] + ax, r[1] + ay
        w, h = r[2], r[3]
        box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float32)
        kps = r[4:16].reshape(6, 2) + np.array([ax, ay], dtype=np.float32)
        out.append((float(scores[i]), box, kps))
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def weighted_nms(dets, iou_threshold: float):
    """MediaPipe WEIGHTED non-max suppression (see docs/faces-model.md)."""
    remaining = sorted(dets, key=lambda d: -d[0])
    kept = []
    while remaining:
        top = remaining[0]
        group, rest = [], []
        for d in remaining:
            (group if iou(d[1], top[1]) > iou_threshold else rest).append(d)
        if group:
            wsum = sum(d[0] for d in group)
            box = sum(d[0] * d[1] for d in group) / wsum
            kps = sum(d[0] * d[2] for d in group) / wsum
        else:  # degenerate (zero-area) top box: keep it as is
            box, kps = top[1], top[2]
            rest = remaining[1:]
        kept.append((top[0], box, kps))
        remaining = rest
    return kept


def plain_nms(dets, iou_threshold: float):
    kept = []
    for d in sorted(dets, key=lambda d: -d[0]):
        if all(iou(d[1], k[1]) <= iou_threshold for k in kept):
            kept.append(d)
    return kept


# --------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------

class FaceDetector:
    def __init__(self, model_path: str, min_score=None, iou_threshold=NMS_IOU,
                 nms="weighted", threads: int = 1):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model_path, sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3]:
            raise SystemExit(f"{model_path}: expected NCHW [1,3,S,S] input, got {shape}")
        self.size = int(shape[2])
        if self.size not in VARIANTS:
            raise SystemExit(f"{model_path}: unknown BlazeFace input size {self.size}")
        self.variant = VARIANTS[self.size]
        self.anchors = generate_anchors(self.size, self.variant["strides"],
                                        self.variant["interpolated_scale_aspect_ratio"])
        assert len(self.anchors) == self.variant["num_anchors"], len(self.anchors)
        names = [o.name for o in self.session.get_outputs()]
        self.out_names = ["regressors", "classificators"] if "regressors" in names else names
        self.min_score = self.variant["min_score"] if min_score is None else min_score
        self.iou_threshold = iou_threshold
        self.nms = weighted_nms if nms == "weighted" else plain_nms

    def detect(self, img: Image.Image, timing: dict | None = None):
        """Faces in `img` as dicts with pixel coordinates of `img`."""
        t0 = time.perf_counter()
        x, (sx, sy, ox, oy) = letterbox(img, self.size)
        t1 = time.perf_counter()
        reg, cls = self.session.run(self.out_names, {self.input_name: x})
        t2 = time.perf_counter()
        dets = self.nms(decode(reg, cls, self.anchors, self.size, self.min_score),
                        self.iou_threshold)
        faces = []
        for score, box, kps in dets:
            px = lambda v: (float(v) * self.size - ox) / sx  # noqa: E731
            py = lambda v: (float(v) * self.size - oy) / sy  # noqa: E731
            faces.append({
                "score": round(score, 6),
                "box": [round(px(box[0]), 2), round(py(box[1]), 2),
                        round(px(box[2]), 2), round(py(box[3]), 2)],
                "keypoints": {n: [round(px(k[0]), 2), round(py(k[1]), 2)]
                              for n, k in zip(KEYPOINT_NAMES, kps)},
            })
        t3 = time.perf_counter()
        if timing is not None:
            for k, v in (("preprocess_ms", t1 - t0), ("inference_ms", t2 - t1),
                         ("decode_nms_ms", t3 - t2)):
                timing[k] = timing.get(k, 0.0) + v * 1000.0
        return faces


def detect_tiled(det: FaceDetector, img: Image.Image, grid: int, overlap: float,
                 timing: dict):
    """Run on the whole image plus a grid x grid set of overlapping tiles and
    merge all detections with the same NMS (coordinates in pixels)."""
    w, h = img.size
    all_faces = det.detect(img, timing)
    tw, th = w / (grid - (grid - 1) * overlap), h / (grid - (grid - 1) * overlap)
    for gy in range(grid):
        for gx in range(grid):
            x0 = int(round(gx * tw * (1 - overlap)))
            y0 = int(round(gy * th * (1 - overlap)))
            x1, y1 = min(w, int(round(x0 + tw))), min(h, int(round(y0 + th)))
            for f in det.detect(img.crop((x0, y0, x1, y1)), timing):
                b = f["box"]
                f["box"] = [b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0]
                f["keypoints"] = {k: [v[0] + x0, v[1] + y0] for k, v in f["keypoints"].items()}
                all_faces.append(f)
    dets = [(f["score"], np.array(f["box"], dtype=np.float64),
             np.array(list(f["keypoints"].values()), dtype=np.float64)) for f in all_faces]
    merged = []
    for score, box, kps in det.nms(dets, det.iou_threshold):
        merged.append({
            "score": round(float(score), 6),
            "box": [round(float(v), 2) for v in box],
            "keypoints": {n: [round(float(k[0]), 2), round(float(k[1]), 2)]
                          for n, k in zip(KEYPOINT_NAMES, kps)},
        })
    return merged


# --------------------------------------------------------------------------
# Blur
# --------------------------------------------------------------------------

def blur_region(box, w: int, h: int, pad: float):
    """Integer pixel rectangle [x0, y0, x1) x [y0, y1) to blur for one face."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    x0 = max(0, int(math.floor(box[0] - pad * bw)))
    y0 = max(0, int(math.floor(box[1] - pad * bh)))
    x1 = min(w, int(math.ceil(box[2] + pad * bw)))
    y1 = min(h, int(math.ceil(box[3] + pad * bh)))
    return x0, y0, x1, y1


def blur_faces(img: Image.Image, faces, pad: float) -> Image.Image:
    out = img.copy()
    for f in faces:
        x0, y0, x1, y1 = blur_region(f["box"], img.width, img.height, pad)
        if x1 <= x0 or y1 <= y0:
            continue
        sigma = max(2.0, 0.1 * max(x1 - x0, y1 - y0))
        region = out.crop((x0, y0, x1, y1)).filter(ImageFilter.GaussianBlur(sigma))
        out.paste(region, (x0, y0))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Reference BlazeFace detector (onnxruntime).")
    ap.add_argument("images", nargs="+", type=pathlib.Path)
    ap.add_argument("--model", default=str(REPO_ROOT / "models" / "face_detection_short_range.onnx"))
    ap.add_argument("--threshold", type=float, default=None,
                    help="min score (default 0.5 short range, 0.6 full range)")
    ap.add_argument("--iou", type=float, default=NMS_IOU, help="NMS IoU threshold (0.3)")
    ap.add_argument("--nms", choices=("weighted", "plain"), default="weighted")
    ap.add_argument("--tiles", type=int, default=0,
                    help="also run on an N x N grid of overlapping tiles (0 = off)")
    ap.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--blur", type=pathlib.Path, default=None,
                    help="write a copy with each face blurred (only with one image)")
    ap.add_argument("--pad", type=float, default=0.2,
                    help="blur padding per side, fraction of box size (0.2)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per image for timing")
    args = ap.parse_args(argv)
    if args.blur and len(args.images) != 1:
        ap.error("--blur needs exactly one image")

    det = FaceDetector(args.model, args.threshold, args.iou, args.nms, args.threads)
    results = []
    for path in args.images:
        with Image.open(path) as im:
            img = ImageOps.exif_transpose(im).convert("RGB")
        timing: dict = {}
        for _ in range(max(1, args.repeat)):
            timing.clear()
            t0 = time.perf_counter()
            if args.tiles > 1:
                faces = detect_tiled(det, img, args.tiles, args.overlap, timing)
            else:
                faces = det.detect(img, timing)
            timing["total_ms"] = (time.perf_counter() - t0) * 1000.0
        faces.sort(key=lambda f: (f["box"][0], f["box"][1]))
        results.append({
            "image": str(path),
            "width": img.width,
            "height": img.height,
            "count": len(faces),
            "faces": faces,
            "timing_ms": {k: round(v, 2) for k, v in timing.items()},
        })
        if args.blur:
            blur_faces(img, faces, args.pad).save(args.blur, quality=90)
    json.dump({
        "model": str(args.model),
        "variant": det.variant["name"],
        "input_size": det.size,
        "min_score": det.min_score,
        "nms": args.nms,
        "iou_threshold": args.iou,
        "tiles": args.tiles,
        "results": results,
    }, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
