"""Command line: ``unionhub serve`` and ``unionhub models``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from captioning.asr import default_threads


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unionhub", description="unionhub: video calls with live multilingual captions")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the hub (web client, signalling, SFU, captions)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--data-dir", type=Path, default=Path("data"))
    serve.add_argument("--codec", choices=["vp8", "h264"], default="vp8",
                       help="video codec of every room (media is forwarded, never transcoded)")
    serve.add_argument("--max-participants", type=int, default=50)
    serve.add_argument("--max-rooms", type=int, default=200)
    serve.add_argument("--media-mode", choices=["forward", "relay"], default="forward",
                       help=argparse.SUPPRESS)  # relay = decode+re-encode baseline for bench/
    cap = serve.add_argument_group("captions")
    cap.add_argument("--asr-model", default="auto",
                     help="speech model: a name (base, tiny.en, …), a faster-whisper model directory, "
                          "'auto' (best installed) or 'none' (captions off)")
    cap.add_argument("--asr-backend", choices=["faster-whisper", "openai-whisper"], default="faster-whisper")
    cap.add_argument("--asr-workers", type=int, default=1, help="speech worker processes")
    cap.add_argument("--asr-threads", type=int, default=default_threads(), help="threads per speech worker")
    cap.add_argument("--spoken-language", choices=["profile", "detect"], default="profile",
                     help="transcribe in each speaker's chosen language, or detect it per utterance")
    serve.add_argument("--auto-record", action="store_true", help="record every room from its first join")
    serve.add_argument("--no-recordings", action="store_true", help="turn recording and the archive off")
    serve.add_argument("--log-level", default="info")

    models = sub.add_parser("models", help="install or list speech and translation models")
    models.add_argument("--data-dir", type=Path, default=Path("data"))
    msub = models.add_subparsers(dest="models_command", required=True)
    install = msub.add_parser("install", help="download models (needs internet)")
    install.add_argument("--asr", help="speech model name, e.g. base or small")
    install.add_argument("--translate", default="",
                         help="comma-separated pairs, e.g. en:es,es:en,pt:en,en:pt")
    msub.add_parser("list", help="show installed models")
    return parser


def _models(args: argparse.Namespace) -> int:
    from captioning import models as m
    from captioning.translate import configure

    dirs = m.ModelDirs(args.data_dir / "models")
    configure(dirs.argos)
    try:
        if args.models_command == "install":
            if args.asr:
                path = m.install_whisper(args.asr, dirs)
                print(f"speech model {args.asr}: {path}")
            pairs = []
            for item in filter(None, (p.strip() for p in args.translate.split(","))):
                src, _, dst = item.partition(":")
                if not src or not dst:
                    raise m.ModelError(f"bad pair {item!r}: use from:to, e.g. en:es")
                pairs.append((src, dst))
            if pairs:
                for pair in m.install_translation(pairs, dirs):
                    print(f"translation {pair}: installed")
            if not args.asr and not pairs:
                print("nothing to install: give --asr and/or --translate", file=sys.stderr)
                return 2
        else:
            print("speech models:")
            for name, path in m.installed_whisper(dirs).items():
                print(f"  {name:10} {path}")
            import argostranslate.package as package

            print("translation models:")
            for pkg in package.get_installed_packages():
                print(f"  {pkg.from_code}:{pkg.to_code}  {pkg.package_path}")
    except m.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = getattr(args, "log_level", "info")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiortc", "aioice", "faster_whisper", "argostranslate", "stanza"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "models":
        return _models(args)

    from aiohttp import web

    from captioning.service import CaptionConfig

    from .app import create_app

    captions = CaptionConfig(
        models_dir=args.data_dir / "models",
        asr_model=args.asr_model,
        asr_backend=args.asr_backend,
        asr_workers=args.asr_workers,
        asr_threads=args.asr_threads,
        spoken_language=args.spoken_language,
    )
    app = create_app(
        args.data_dir,
        sfu_options={"codec": args.codec, "mode": args.media_mode},
        max_participants=args.max_participants,
        max_rooms=args.max_rooms,
        captions=captions,
        recordings=not args.no_recordings,
        auto_record=args.auto_record,
    )
    print(f"unionhub serving on http://{args.host}:{args.port}/", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0
