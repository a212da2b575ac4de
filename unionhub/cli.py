"""Command line: ``unionhub serve`` and ``unionhub models``."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from captioning.asr import default_threads
from signalling.auth import (
    API_KEY_ENV,
    JWT_SECRET_ENV,
    TURN_SECRET_ENV,
    IceConfig,
    IceServer,
    Security,
    TokenSigner,
    join_url,
    secret_from_env,
)
from signalling.validation import SignallingError


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
    serve.add_argument("--no-recordings", action="store_true",
                       help="turn recording and the archive off (live streams still run, unarchived)")
    serve.add_argument("--no-live", action="store_true", help="turn live streaming (HLS and RTMP push) off")
    sec = serve.add_argument_group(
        "access", "secrets come from the environment: UNIONHUB_JWT_SECRET (signed join links), "
                  "UNIONHUB_API_KEY (POST /api/tokens), UNIONHUB_TURN_SECRET (TURN REST credentials)")
    sec.add_argument("--auth", choices=["open", "token"], default="open",
                     help="open: anyone with a room link may join (hosts can add passcodes, a lobby…); "
                          "token: only signed join links")
    sec.add_argument("--ice-server", action="append", default=[], metavar="URL",
                     help="STUN/TURN server for browsers, repeatable: stun:host:3478, "
                          "turn:host:3478?transport=udp (with UNIONHUB_TURN_SECRET), turns:user:pass@host:5349")
    sec.add_argument("--turn-ttl", type=float, default=24 * 3600, help="lifetime of TURN REST credentials (s)")
    clu = serve.add_argument_group(
        "cluster", "several processes or machines as one hub, coordinated through Redis (docs/DEPLOYMENT.md)")
    clu.add_argument("--redis", metavar="URL", help="redis://HOST:PORT/DB or unix:///path/redis.sock: "
                     "make this process a node of the cluster that Redis holds together")
    clu.add_argument("--node-id", help="this node's name in the cluster (default: HOST-PORT)")
    clu.add_argument("--public-url", help="where browsers reach this node (default: http://HOST:PORT)")
    serve.add_argument("--log-level", default="info")

    token = sub.add_parser("token", help="signed join links (needs UNIONHUB_JWT_SECRET)")
    tsub = token.add_subparsers(dest="token_command", required=True)
    create = tsub.add_parser("create", help="print a signed join link")
    create.add_argument("--room", required=True)
    create.add_argument("--role", choices=["host", "speaker", "viewer"], default="speaker")
    create.add_argument("--name", required=True, help="the name shown (verified) in the meeting")
    create.add_argument("--lang", help="the participant's language, e.g. es")
    create.add_argument("--ttl", type=float, default=3600, help="seconds until the link expires")
    create.add_argument("--url", default="http://127.0.0.1:8080", help="the hub's public base URL")

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


def _security(args: argparse.Namespace) -> Security:
    secret = secret_from_env(JWT_SECRET_ENV)
    if args.auth == "token" and not secret:
        raise ValueError(f"--auth token needs {JWT_SECRET_ENV} (at least 32 characters) in the environment")
    return Security(
        signer=TokenSigner(secret) if secret else None,
        token_only=args.auth == "token",
        ice=IceConfig([IceServer.parse(u) for u in args.ice_server], secret_from_env(TURN_SECRET_ENV), args.turn_ttl)
        if args.ice_server else None,
        api_key=secret_from_env(API_KEY_ENV),
    )


def _token(args: argparse.Namespace) -> int:
    secret = secret_from_env(JWT_SECRET_ENV)
    if not secret:
        print(f"unionhub: set {JWT_SECRET_ENV} (the same secret the hub runs with)", file=sys.stderr)
        return 2
    try:
        token = TokenSigner(secret).create(args.room, args.role, args.name, args.ttl, args.lang)
    except (ValueError, SignallingError) as exc:
        print(f"unionhub: {exc}", file=sys.stderr)
        return 2
    print(join_url(args.url, args.room, token))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = getattr(args, "log_level", "info")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiortc", "aioice", "faster_whisper", "argostranslate", "stanza"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "models":
        return _models(args)
    if args.command == "token":
        return _token(args)

    from aiohttp import web

    from captioning.service import CaptionConfig
    from cluster import ClusterConfig
    from core.database import DatabaseError

    from .app import create_app

    captions = CaptionConfig(
        models_dir=args.data_dir / "models",
        asr_model=args.asr_model,
        asr_backend=args.asr_backend,
        asr_workers=args.asr_workers,
        asr_threads=args.asr_threads,
        spoken_language=args.spoken_language,
    )
    try:
        security = _security(args)
    except ValueError as exc:
        print(f"unionhub: {exc}", file=sys.stderr)
        return 2
    cluster = None
    if args.redis:
        cluster = ClusterConfig(
            args.redis,
            args.node_id or f"{socket.gethostname()}-{args.port}",
            args.public_url or f"http://{args.host}:{args.port}",
        )
    elif args.node_id or args.public_url:
        print("unionhub: --node-id and --public-url need --redis", file=sys.stderr)
        return 2
    try:
        app = create_app(
            args.data_dir,
            sfu_options={"codec": args.codec, "mode": args.media_mode},
            max_participants=args.max_participants,
            max_rooms=args.max_rooms,
            captions=captions,
            recordings=not args.no_recordings,
            live=not args.no_live,
            auto_record=args.auto_record,
            security=security,
            cluster=cluster,
        )
    except DatabaseError as exc:  # e.g. a data directory migrated by a newer unionhub
        print(f"unionhub: {exc.message}", file=sys.stderr)
        return 2
    print(f"unionhub serving on http://{args.host}:{args.port}/", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
