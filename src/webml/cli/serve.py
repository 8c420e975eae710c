"""``webml serve`` (the WebNN service for JavaScript programs) and ``webml grants`` (the origins it lets in)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import CliError

DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..serve.quotas import Limits

    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s; 0 picks a free one")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="let this web origin in without a grant (repeatable)")
    parser.add_argument("--token-file", type=Path, help="where to write the token "
                        "(default: $XDG_RUNTIME_DIR/webml/serve-PORT.token)")
    parser.add_argument("--grants", type=Path, help="the grants file (default: $WEBML_GRANTS or "
                        "$XDG_CONFIG_HOME/webml/grants.json)")
    parser.add_argument("--audit", type=Path, help="the audit log, JSON lines "
                        "(default: $XDG_STATE_HOME/webml/serve-audit.jsonl)")
    parser.add_argument("--max-message-bytes", type=int, default=256 << 20, help="default: %(default)s")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PKG",
                        help="serve a protected model (.webmlpkg) by name: clients run it, never see its weights "
                        "(repeatable; needs --model-key and --trusted)")
    parser.add_argument("--model-key", metavar="KEY",
                        help="the service's private key (.key), a recipient of the models")
    parser.add_argument("--trusted", action="append", default=[], metavar="PUB",
                        help="a publisher key (.pub) the models must be signed by (repeatable)")
    parser.add_argument("--model-free-dim", action="append", default=[], metavar="NAME=SIZE",
                        help="fix a dynamic dimension of the served models (repeatable)")
    defaults = Limits()
    for name in Limits.names():
        kind = float if name == "compute_seconds" else int
        parser.add_argument(f"--quota-{name.replace('_', '-')}", type=kind, default=getattr(defaults, name),
                            metavar="N", help="per origin or token (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    import ipaddress

    from ..serve import audit, frames
    from ..serve import token as tokens
    from ..serve.app import Server, Service
    from ..serve.grants import GrantError, GrantStore, normalize_origin
    from ..serve.quotas import Limits, Quotas

    try:
        if args.host != "localhost" and not ipaddress.ip_address(args.host).is_loopback:
            raise CliError(f"--host {args.host}: webml serve listens on loopback addresses only")
    except ValueError:
        raise CliError(f"--host {args.host!r} is not an IP address") from None
    if not 0 <= args.port < 65536:
        raise CliError(f"--port {args.port} is not a port")
    if args.max_message_bytes < 1024:
        raise CliError("--max-message-bytes must be at least 1024")
    try:
        allow = frozenset(normalize_origin(o) for o in args.allow_origin)
    except GrantError as exc:
        raise CliError(f"--allow-origin: {exc}") from None
    limits = Limits(**{name: getattr(args, f"quota_{name}") for name in Limits.names()})
    models = _served_models(args)
    token = tokens.new_token()
    service = Service(
        token=token,
        grants=GrantStore(args.grants),
        allow_origins=allow,
        audit=audit.AuditLog(args.audit or audit.default_path()),
        backend=args.backend,
        quotas=Quotas(limits),
        max_message_bytes=args.max_message_bytes,
        max_header_bytes=min(frames.DEFAULT_MAX_HEADER_BYTES, args.max_message_bytes),
        models=models,
    )
    server = Server(service, host=args.host, port=args.port)

    async def announce() -> None:
        # The token file names the port bound, known once uvicorn has started.
        import asyncio

        while not server.started:
            await asyncio.sleep(0.05)
        port = server.port
        path = args.token_file or tokens.default_path(port)
        tokens.write_token(path, token)
        service.token_file = str(path)
        if not args.quiet:
            print(
                f"webml serve: ws://{args.host}:{port}/webnn on the {args.backend} backend\n"
                f"  token (for Node.js and other non-browser callers) in {path} (mode 0600):\n"
                f"    connect({{ url: \"ws://{args.host}:{port}/webnn\", token: <the file's contents> }})\n"
                f"  web pages: grant their origin first: webml grants add https://app.example\n"
                f"  teach a classifier in the browser: http://{args.host}:{port}/teach/"
                + (f"\n  protected models (listModels, runModel): {', '.join(models.names())}" if len(models) else ""),
                file=sys.stderr,
                flush=True,
            )

    async def run() -> None:
        import asyncio

        task = asyncio.ensure_future(announce())
        try:
            await server.serve()
        finally:
            task.cancel()

    import asyncio

    asyncio.run(run())
    return 0


def _served_models(args: argparse.Namespace):
    """The protected models of ``--model NAME=PKG``, loaded (and so verified) before the service starts."""
    from ..serve.models import ServedModels
    from .common import parse_assignments

    packages = parse_assignments(args.model, "--model")
    if not packages:
        if args.model_key or args.trusted or args.model_free_dim:
            raise CliError("--model-key, --trusted and --model-free-dim are for --model NAME=PKG")
        return ServedModels()
    if not args.model_key or not args.trusted:
        raise CliError("--model NAME=PKG needs --model-key KEY (the service's key) and --trusted PUB (the publisher)")
    import webml.protected as wp

    free = {}
    for name, size in parse_assignments(args.model_free_dim, "--model-free-dim").items():
        if not size.isdigit() or int(size) < 1:
            raise CliError(f"--model-free-dim {name}={size}: the size must be a positive integer")
        free[name] = int(size)
    try:
        return ServedModels.load(packages, key=args.model_key, trusted=args.trusted, backend=args.backend,
                                 free_dimensions=free)
    except wp.ProtectedError as exc:
        raise CliError(str(exc)) from None


# -- webml grants ------------------------------------------------------------------


def add_grants_arguments(parser: argparse.ArgumentParser) -> None:
    from ..serve.grants import CAPABILITIES

    parser.add_argument("--grants", type=Path, help="the grants file (default: $WEBML_GRANTS or "
                        "$XDG_CONFIG_HOME/webml/grants.json)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="let ORIGIN's pages use the service")
    add.add_argument("origin", metavar="ORIGIN")
    add.add_argument("--capabilities", nargs="+", choices=CAPABILITIES, help="default: all")
    add.add_argument("--expires", help="a duration (30d, 12h, 90m), an ISO date, or 'never' (default)")
    actions.add_parser("list", help="the grants, and origins that asked")
    revoke = actions.add_parser("revoke", help="withdraw ORIGIN's grant (new connections are refused at once)")
    revoke.add_argument("origin", metavar="ORIGIN")


def grants_main(args: argparse.Namespace) -> int:
    from ..serve.grants import GrantError, GrantStore

    store = GrantStore(args.grants)
    try:
        if args.action == "add":
            grant = store.add(args.origin, args.capabilities, args.expires)
            until = f" until {grant.expires.isoformat()}" if grant.expires else ""
            print(f"granted {grant.origin}: {', '.join(grant.capabilities)}{until} ({store.path})")
        elif args.action == "revoke":
            origin = args.origin
            if not store.revoke(origin):
                raise CliError(f"{origin} has no grant in {store.path}")
            print(f"revoked {origin}")
        else:
            grants = store.grants()
            for grant in grants:
                state = "expired" if grant.expired() else (
                    f"until {grant.expires.isoformat()}" if grant.expires else "no expiry")
                print(f"{grant.origin}\t{','.join(grant.capabilities)}\t{state}")
            for origin, request in store.requests().items():
                print(f"{origin}\tasked {request.get('count', 1)} time(s), last {request.get('last', '?')}"
                      f"\t(grant it: webml grants add {origin})")
            if not grants and not store.requests():
                print(f"no grants in {store.path}")
    except GrantError as exc:
        raise CliError(str(exc)) from None
    return 0
