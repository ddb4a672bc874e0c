"""`transferkit serve`: a saved run behind an HTTP API (FastAPI + uvicorn) with a page to try it."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

EPILOG = """examples:
  transferkit serve runs/demo                                  (http://127.0.0.1:8000: the page; /docs: the API)
  transferkit serve runs/demo --port 9000 --top-k 3
  transferkit serve runs/demo --runtime onnx                   (after `transferkit export runs/demo`)
  TRANSFERKIT_TOKEN=s3cret transferkit serve runs/demo --host 0.0.0.0
  curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"inputs": ["what a great film"]}'
  curl -s localhost:8000/predict -F files=@cat.png -F files=@dog.jpg        (image and audio runs: uploads)

Routes: POST /predict (JSON {"inputs": [...], "top_k": k} for text and feature-vector runs, multipart file
uploads for image and audio runs; returns labels with probabilities, label sets or values), GET /metadata
(labels, backbone, metrics, version, limits), GET /health (never needs the token), GET / (the page), /docs.
Concurrent requests are micro-batched: gathered for up to --max-wait-ms or --max-batch-size inputs and run as
one batch. Requests over a limit get a JSON error (413 too large, 415 wrong content type, 422 malformed).
With --token (or TRANSFERKIT_TOKEN), every route but /health needs `Authorization: Bearer <token>`, the page
and /docs included. Binds 127.0.0.1 unless --host says otherwise. Ctrl-C / SIGTERM finishes in-flight requests."""


def add_parser(sub) -> None:
    from transferkit.cli import _field_help, _parse_value
    from transferkit.cli_predict import add_runtime_argument, add_trust_argument
    from transferkit.serving.config import ServeConfig

    serve = sub.add_parser(
        "serve",
        help="serve a saved run over HTTP (JSON API, micro-batching, a page to try it)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    serve.add_argument("run", help="run directory written by `transferkit fit`")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument(
        "--token",
        default=os.environ.get("TRANSFERKIT_TOKEN"),
        help="require `Authorization: Bearer TOKEN` on every route but /health (default: $TRANSFERKIT_TOKEN)",
    )
    serve.add_argument("--name", help="the model's name on the page and in /metadata (default: the run's folder)")
    add_runtime_argument(serve)
    add_trust_argument(serve)
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    group = serve.add_argument_group("limits and batching")
    helps = _field_help(ServeConfig)
    for field in dataclasses.fields(ServeConfig):
        if field.name == "token":
            continue
        group.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=_parse_value(str(field.type)),
            default=argparse.SUPPRESS,
            metavar=field.name.upper(),
            help=f"{helps.get(field.name, '')} (default: {field.default})",
        )
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    import transferkit as tk
    from transferkit.serving.config import ServeConfig
    from transferkit.serving.server import serve

    names = {f.name for f in dataclasses.fields(ServeConfig)} - {"token"}
    options = {k: v for k, v in vars(args).items() if k in names}
    config = ServeConfig.from_dict({**options, "token": args.token or None})
    model = tk.load(args.run, runtime=args.runtime, trust_remote_code=args.trust_remote_code)
    name = args.name or Path(args.run).resolve().name
    print(f"serving {name} on http://{args.host}:{args.port} (docs: /docs)", file=sys.stderr)
    serve(model, config, args.host, args.port, name=name, log_level=args.log_level)
    return 0
