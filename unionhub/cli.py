"""Command line: ``unionhub serve``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from aiohttp import web

from .app import create_app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unionhub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the hub (web client, signalling, SFU)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--data-dir", type=Path, default=Path("data"))
    serve.add_argument("--codec", choices=["vp8", "h264"], default="vp8",
                       help="video codec of every room (media is forwarded, never transcoded)")
    serve.add_argument("--max-participants", type=int, default=50)
    serve.add_argument("--max-rooms", type=int, default=200)
    serve.add_argument("--media-mode", choices=["forward", "relay"], default="forward",
                       help=argparse.SUPPRESS)  # relay = decode+re-encode baseline for bench/
    serve.add_argument("--log-level", default="info")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    if args.command == "serve":
        app = create_app(
            args.data_dir,
            sfu_options={"codec": args.codec, "mode": args.media_mode},
            max_participants=args.max_participants,
            max_rooms=args.max_rooms,
        )
        print(f"unionhub serving on http://{args.host}:{args.port}/", flush=True)
        web.run_app(app, host=args.host, port=args.port, print=None)
    return 0
