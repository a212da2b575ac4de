"""Command line: ``unionhub serve`` and ``unionhub models``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
from signalling.vocabulary import LINK_ROLES

from . import logs
from .logs import LogFormat

if TYPE_CHECKING:
    from media_server.network import MediaNetwork


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
    cap.add_argument("--caption-pool", metavar="URL",
                     help="no model here: speech and translation by `unionhub caption-worker`s on this Redis")
    cap.add_argument("--pack-finals", nargs="?", const="always", choices=["off", "behind", "always"], default=None,
                     help="decode several speakers' finals that wait together in one Whisper window: captions "
                          "keep up with more people speaking at once on a busy machine, at some accuracy; "
                          "'behind' only while finals wait too long, 'always' (the flag alone) whenever they "
                          "wait together (default: behind; docs/BENCHMARKS.md, 'Packing only when behind')")
    cap.add_argument("--spoken-language", choices=["profile", "detect"], default="profile",
                     help="transcribe in each speaker's chosen language, or detect it per utterance "
                          "(among the room's caption languages; docs/BENCHMARKS.md)")
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
    clu.add_argument("--front-proxy", action="store_true",
                     help="every node is reached through one front proxy at --public-url, which routes on the "
                          "`node` query parameter (docs/DEPLOYMENT.md)")
    clu.add_argument("--room-capacity", type=int, metavar="N",
                     help="participants of one room on its owner node; past N, the room spans onto the least "
                          "loaded other node, which serves its new participants (docs/DEPLOYMENT.md)")
    clu.add_argument("--pipe-host", default="127.0.0.1", metavar="ADDR",
                     help="the loopback or private-network address this node's media pipes to other nodes use "
                          "(plain RTP, unencrypted: never a public address)")
    serve.add_argument("--log-level", default="info")
    ops = serve.add_argument_group("operations", "TLS without a proxy, logs, shutdown (docs/DEPLOYMENT.md)")
    ops.add_argument("--tls-cert", type=Path, metavar="FILE",
                     help="PEM certificate (chain) to serve HTTPS and WSS directly, without a TLS proxy")
    ops.add_argument("--tls-key", type=Path, metavar="FILE", help="the certificate's PEM private key")
    ops.add_argument("--log-format", choices=[f.value for f in LogFormat], default=LogFormat.TEXT.value,
                     help="json: one JSON object per line (time, level, logger, message, extra fields)")
    ops.add_argument("--shutdown-timeout", type=float, default=60.0, metavar="SECONDS",
                     help="on SIGTERM, how long to wait for recordings to be composed before exiting")

    net = serve.add_argument_group(
        "media network", "where browsers reach the hub's media (docs/DEPLOYMENT.md, \"Ports, NAT and TURN\")")
    ports = net.add_mutually_exclusive_group()
    ports.add_argument("--udp-port", type=int, metavar="PORT",
                       help="all media on this one UDP port (connections told apart by ICE username)")
    ports.add_argument("--udp-ports", metavar="A-B",
                       help="media sockets bound inside this UDP port range (one per connection and address)")
    net.add_argument("--public-ip", metavar="ADDR",
                     help="behind 1:1 NAT (AWS, GCP, Azure): announce this public IPv4 address with each "
                          "local candidate's port; 'auto' asks --stun-server")
    net.add_argument("--stun-server", metavar="HOST:PORT", help="STUN server for --public-ip auto")

    token = sub.add_parser("token", help="signed join links (needs UNIONHUB_JWT_SECRET)")
    tsub = token.add_subparsers(dest="token_command", required=True)
    create = tsub.add_parser("create", help="print a signed join link")
    create.add_argument("--room", required=True)
    create.add_argument("--role", choices=LINK_ROLES, default="speaker",
                        help="interpreter: interprets into --lang (their voice goes to that channel only)")
    create.add_argument("--name", required=True, help="the name shown (verified) in the meeting")
    create.add_argument("--lang", help="the participant's language, e.g. es (an interpreter's channel)")
    create.add_argument("--ttl", type=float, default=3600, help="seconds until the link expires")
    create.add_argument("--url", default="http://127.0.0.1:8080", help="the hub's public base URL")

    worker = sub.add_parser("caption-worker", help="serve a cluster's speech and translation requests from Redis "
                                                   "(docs/DEPLOYMENT.md: a caption worker pool)")
    worker.add_argument("--redis", required=True, metavar="URL", help="the cluster's Redis (redis://HOST:PORT/DB)")
    worker.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}", help="this worker's name")
    worker.add_argument("--data-dir", type=Path, default=Path("data"), help="where models are installed")
    worker.add_argument("--asr-model", default="auto", help="as for serve; 'none': translation only")
    worker.add_argument("--asr-backend", choices=["faster-whisper", "openai-whisper"], default="faster-whisper")
    worker.add_argument("--asr-threads", type=int, default=default_threads())
    worker.add_argument("--device", default="auto", help="cpu, cuda or auto")
    worker.add_argument("--no-translate", action="store_true", help="serve speech only")
    worker.add_argument("--claim-after", type=float, default=15.0,
                        help="seconds a request may stay with a silent worker before this one takes it over")
    worker.add_argument("--max-load", type=float, default=0.9,
                        help="stop taking requests while the load average per core is above this")
    worker.add_argument("--log-level", default="info")

    front = sub.add_parser("front-config", help="print the nginx configuration that fronts a cluster's nodes "
                                                "(nodes run with --front-proxy; docs/DEPLOYMENT.md)")
    front.add_argument("--node", action="append", required=True, metavar="ID=HOST:PORT",
                       help="a node's --node-id and where nginx reaches it (repeat per node)")
    front.add_argument("--listen", default="80", help="nginx's listen directive, e.g. 443 ssl or 127.0.0.1:8080")

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


def _network(args: argparse.Namespace) -> MediaNetwork:
    """The SFU's media ports and public address; ValueError/OSError say what is wrong."""
    from media_server.network import MediaNetwork, check_public_ip, discover_public_ip, parse_host_port
    from media_server.ports import MediaPorts, PortRange, PortRangePool, UdpMux

    public_ip = args.public_ip
    if public_ip == "auto":
        if not args.stun_server:
            raise ValueError("--public-ip auto needs --stun-server HOST:PORT")
        public_ip = asyncio.run(discover_public_ip(parse_host_port(args.stun_server)))
    elif public_ip is not None:
        check_public_ip(public_ip)
    ports: MediaPorts | None = None
    if args.udp_port is not None:
        ports = UdpMux(args.udp_port)
    elif args.udp_ports is not None:
        ports = PortRangePool(PortRange.parse(args.udp_ports))
    return MediaNetwork(ports, public_ip)


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


def _caption_worker(args: argparse.Namespace) -> int:
    from captioning.asr import AsrSpec
    from captioning.models import ModelDirs, ModelError, resolve_asr_model
    from captioning.remote_worker import CaptionWorker, WorkerConfig

    dirs = ModelDirs(args.data_dir / "models")
    spec = None
    if args.asr_model != "none":
        try:
            model = resolve_asr_model(args.asr_model, dirs)
        except ModelError as exc:
            print(f"unionhub: {exc}", file=sys.stderr)
            return 2
        if model is None:
            print(f"unionhub: no speech model {args.asr_model!r} is installed", file=sys.stderr)
            return 2
        spec = AsrSpec(args.asr_backend, str(model), device=args.device, threads=args.asr_threads)
    argos = dirs.argos
    has_argos = argos.is_dir() and any((p / "metadata.json").is_file() for p in argos.iterdir())
    config = WorkerConfig(args.redis, args.name, spec, argos if has_argos and not args.no_translate else None,
                          claim_after=args.claim_after, max_load=args.max_load)

    async def serve() -> None:
        worker = CaptionWorker(config)
        await worker.load()
        await worker.run(on_ready=lambda: print(f"caption worker {args.name} ready: {', '.join(worker.kinds)}",
                                                flush=True))

    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a worker just stops (at least once)
            asyncio.run(serve())
    except RuntimeError as exc:
        print(f"unionhub: {exc}", file=sys.stderr)
        return 2
    return 0


def _front_config(args: argparse.Namespace) -> int:
    from .front import Node, nginx_site

    try:
        print(nginx_site([Node.parse(text) for text in args.node], args.listen), end="")
    except ValueError as exc:
        print(f"unionhub: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(getattr(args, "log_level", "info"), LogFormat(getattr(args, "log_format", "text")))
    if args.command == "models":
        return _models(args)
    if args.command == "token":
        return _token(args)
    if args.command == "front-config":
        return _front_config(args)
    if args.command == "caption-worker":
        return _caption_worker(args)
    if args.pack_finals not in (None, "off") and args.caption_pool:
        # (a pool's workers decode one utterance per request: the flag would silently do nothing)
        print("unionhub: --pack-finals packs finals for this node's own speech workers; with --caption-pool "
              "the pool's workers decode them, one utterance at a time — leave one of the two out", file=sys.stderr)
        return 2

    from aiohttp import web

    from captioning.scheduler import PackFinals
    from captioning.service import CaptionConfig
    from cluster import ClusterConfig
    from core.database import DatabaseError
    from meetings.signin import SigninConfig

    from . import drain, tls
    from .app import ARCHIVE_KEY, CLUSTER_KEY, SIGNALLING_KEY, create_app

    captions = CaptionConfig(
        models_dir=args.data_dir / "models",
        asr_model=args.asr_model,
        asr_backend=args.asr_backend,
        asr_workers=args.asr_workers,
        asr_threads=args.asr_threads,
        spoken_language=args.spoken_language,
        pack_finals=PackFinals(args.pack_finals or CaptionConfig.pack_finals),
        pool_url=args.caption_pool,
        node=args.node_id or f"{socket.gethostname()}-{args.port}",
    )
    try:
        security = _security(args)
    except ValueError as exc:
        print(f"unionhub: {exc}", file=sys.stderr)
        return 2
    try:
        signin = SigninConfig.from_env(os.environ)  # identity providers and SMTP (docs/DEPLOYMENT.md)
    except ValueError as exc:
        print(f"unionhub: sign-in: {exc}", file=sys.stderr)
        return 2
    try:
        ssl_context = tls.context(args.tls_cert, args.tls_key)
    except (ValueError, OSError, ssl.SSLError) as exc:
        print(f"unionhub: TLS: {exc}", file=sys.stderr)
        return 2
    try:
        network = _network(args)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"unionhub: media network: {exc}", file=sys.stderr)
        return 2
    cluster = None
    if args.redis:
        cluster = ClusterConfig(
            args.redis,
            args.node_id or f"{socket.gethostname()}-{args.port}",
            args.public_url or f"{'https' if args.tls_cert else 'http'}://{args.host}:{args.port}",
            front=args.front_proxy,
            room_capacity=args.room_capacity,
            pipe_host=args.pipe_host,
        )
    elif args.node_id or args.public_url or args.front_proxy or args.room_capacity is not None:
        print("unionhub: --node-id, --public-url, --front-proxy and --room-capacity need --redis", file=sys.stderr)
        return 2
    if args.room_capacity is not None and args.room_capacity < 1:
        print("unionhub: --room-capacity must be at least 1", file=sys.stderr)
        return 2
    try:
        app = create_app(
            args.data_dir,
            sfu_options={"codec": args.codec, "mode": args.media_mode, "network": network},
            max_participants=args.max_participants,
            max_rooms=args.max_rooms,
            captions=captions,
            recordings=not args.no_recordings,
            live=not args.no_live,
            auto_record=args.auto_record,
            security=security,
            cluster=cluster,
            signin=signin,
        )
    except DatabaseError as exc:  # e.g. a data directory migrated by a newer unionhub
        print(f"unionhub: {exc.message}", file=sys.stderr)
        return 2
    if ssl_context is not None:
        tls.enable(app)
    node = app.get(CLUSTER_KEY)
    drain.install(app, app[SIGNALLING_KEY], app.get(ARCHIVE_KEY), args.shutdown_timeout,
                  handover=node.drain if node is not None else None)
    url = f"{'https' if ssl_context is not None else 'http'}://{args.host}:{args.port}/"
    if args.log_format == LogFormat.JSON:  # every line a JSON object, the banner too
        logging.getLogger("unionhub").info("unionhub serving on %s", url, extra={"url": url})
    else:
        print(f"unionhub serving on {url}", flush=True)
    # What is built by now (modules, classes, the app: ~110,000 objects) lives as long as the
    # process: out of the collector's full collections, which stop the event loop while they walk.
    gc.collect()
    gc.freeze()
    web.run_app(app, host=args.host, port=args.port, ssl_context=ssl_context, print=None,
                shutdown_timeout=drain.CONNECTIONS_GRACE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
