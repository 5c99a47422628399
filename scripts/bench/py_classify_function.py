#!/usr/bin/env python3
"""The Python peer of the `classify` function, for side-by-side benchmarks.

What a Python author would deploy as an OpenFaaS function: onnxruntime +
Pillow + numpy behind an HTTP server, the model loaded once per worker,
the same EfficientNet-Lite0 model and the same preprocessing as the Rust
function (scripts/reference_classify.py). `--workers N` pre-forks N
processes sharing one listening socket (the gunicorn "sync worker" model:
no GIL contention between requests), each with its own ONNX Runtime
session using `--threads` intra-op threads.

    POST /  (image bytes)  ->  {"labels": [{"label", "score"}...], "model", "op_seconds"}

Needs onnxruntime, Pillow and numpy (scripts/bench-serverless.sh builds a
virtualenv with pinned versions).
"""

from __future__ import annotations

import argparse
import http.server
import io
import json
import os
import pathlib
import signal
import socket
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
from reference_classify import preprocess, softmax  # noqa: E402

MAX_BODY = 16 << 20


class Model:
    def __init__(self, model: pathlib.Path, labels: pathlib.Path, threads: int):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self.inp = self.sess.get_inputs()[0].name
        self.out = self.sess.get_outputs()[0].name
        self.labels = labels.read_text(encoding="utf-8").splitlines()
        self.name = model.name

    def classify(self, data: bytes, top: int = 5):
        t0 = time.perf_counter()
        x = preprocess(io.BytesIO(data))  # the reference's exact preprocessing
        logits = self.sess.run([self.out], {self.inp: x})[0].reshape(-1)
        probs = softmax(logits)
        order = np.argsort(-probs, kind="stable")[:top]
        labels = [{"label": self.labels[i], "score": float(probs[i])} for i in order]
        return labels, time.perf_counter() - t0


def handler_for(model: Model):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without this, Nagle's
        # algorithm + delayed ACKs add ~40 ms per response (a real server
        # such as gunicorn sets TCP_NODELAY too).
        disable_nagle_algorithm = True

        def log_message(self, *args):  # quiet: logging per request would dominate
            pass

        def reply(self, code: int, body: bytes, ctype: str, extra=()):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            t0 = time.perf_counter()
            n = int(self.headers.get("Content-Length") or 0)
            if n <= 0 or n > MAX_BODY:
                self.reply(400, b'{"error":"send an image of 1 byte to 16 MiB"}', "application/json")
                return
            data = self.rfile.read(n)
            try:
                labels, op = model.classify(data)
            except Exception as e:  # bad image: 400, keep serving
                msg = json.dumps({"error": f"cannot classify: {e}"}).encode()
                self.reply(400, msg, "application/json")
                return
            body = json.dumps({"labels": labels, "model": model.name, "op_seconds": op}).encode()
            self.reply(200, body, "application/json",
                       [("X-Duration-Seconds", f"{time.perf_counter() - t0:.6f}")])

    return Handler


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads per worker")
    ap.add_argument("--model", type=pathlib.Path,
                    default=REPO_ROOT / "models" / "efficientnet-lite0.onnx")
    ap.add_argument("--labels", type=pathlib.Path,
                    default=REPO_ROOT / "models" / "imagenet-labels.txt")
    args = ap.parse_args(argv)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)

    children = []
    for _ in range(max(1, args.workers)):
        pid = os.fork()
        if pid == 0:
            model = Model(args.model, args.labels, args.threads)
            srv = http.server.HTTPServer(("127.0.0.1", args.port), handler_for(model),
                                         bind_and_activate=False)
            srv.socket.close()
            srv.socket = sock
            srv.handle_error = lambda request, client_address: None  # clients hanging up
            try:
                srv.serve_forever()
            except KeyboardInterrupt:
                pass
            os._exit(0)
        children.append(pid)
    print(f"python classify function: http://127.0.0.1:{args.port}/ "
          f"({args.workers} workers x {args.threads} ORT threads)", flush=True)

    def stop(*_):
        for c in children:
            try:
                os.kill(c, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
    try:
        for c in children:
            os.waitpid(c, 0)
    except KeyboardInterrupt:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
