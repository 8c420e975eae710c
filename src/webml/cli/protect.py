"""``webml protect``, ``webml unprotect`` and ``webml rewrap``: protected model packages.

    webml protect model.onnx -o model.webmlpkg --recipient device.pub --sign publisher.key
    webml unprotect model.webmlpkg -o model.onnx --key publisher.key --i-am-the-publisher
    webml rewrap model.webmlpkg -o model.webmlpkg --key publisher.key --add tablet.pub --remove device.pub

A package is encrypted for its recipients and signed by its publisher
(:mod:`webml.protected`, docs/protected-models.md); ``webml info PKG`` shows
its signed header without decrypting it.
"""

from __future__ import annotations

import argparse

from . import CliError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the ONNX model to protect")
    p.add_argument("-o", "--output", required=True, help="the package to write (.webmlpkg)")
    p.add_argument("--recipient", action="append", default=[], metavar="PUB",
                   help="a public key (.pub) that may open the package (repeatable)")
    p.add_argument("--sign", required=True, metavar="KEY", help="the publisher's private key (.key)")
    p.add_argument("--expires", metavar="WHEN", help="a duration (30d, 12h, 90m) or an ISO date: no load after it")
    p.add_argument("--backend", dest="backends", action="append", metavar="NAME",
                   help="only contexts of this backend may load it (repeatable; default: any)")


def add_unprotect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", help="the .webmlpkg package")
    p.add_argument("-o", "--output", required=True, help="the ONNX file to write (never replaced; mode 0600)")
    p.add_argument("--key", required=True, help="the publisher's own private key (.key)")
    p.add_argument("--i-am-the-publisher", action="store_true",
                   help="required: this writes the model in the clear, which only its publisher may do")


def add_rewrap_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", help="the .webmlpkg package")
    p.add_argument("-o", "--output", required=True, help="the package to write (may be the same path)")
    p.add_argument("--key", required=True, help="the publisher's private key (.key)")
    p.add_argument("--add", action="append", default=[], metavar="PUB", help="a recipient to add (repeatable)")
    p.add_argument("--remove", action="append", default=[], metavar="PUB|KEY_ID",
                   help="a recipient to remove: its .pub file or its key id (repeatable)")


def main(args: argparse.Namespace) -> int:
    import webml.protected as wp
    from webml.serve.grants import GrantError, parse_expiry

    try:
        expires = parse_expiry(args.expires) if args.expires else None
    except GrantError as exc:
        raise CliError(str(exc)) from None
    if not args.recipient:
        raise CliError("protect: give at least one --recipient PUB (the publisher can always open its own)")
    try:
        out = wp.protect(args.model, args.output, recipients=args.recipient, key=args.sign, expires=expires,
                         backends=args.backends)
        info = wp.describe(out)
    except (wp.ProtectedError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if not args.quiet:
        limits = [f"expires {info['expires']}" if info["expires"] else "",
                  f"backends {', '.join(info['backends'])}" if info["backends"] else ""]
        extra = "; ".join(x for x in limits if x)
        print(f"{out}: {info['package_bytes']:,} bytes, {len(info['recipients']) - 1} recipient(s) and the "
              f"publisher {info['publisher']['fingerprint']}" + (f"; {extra}" if extra else ""))
    return 0


def unprotect_main(args: argparse.Namespace) -> int:
    import webml.protected as wp

    if not args.i_am_the_publisher:
        raise CliError(
            "unprotect writes the model in the clear; only its publisher may, with its own key: "
            "add --i-am-the-publisher to confirm"
        )
    try:
        out = wp.unprotect(args.package, args.output, key=args.key)
    except wp.ProtectedError as exc:
        raise CliError(str(exc)) from None
    if not args.quiet:
        print(f"{out}: the plaintext model (mode 0600)")
    return 0


def rewrap_main(args: argparse.Namespace) -> int:
    import webml.protected as wp

    if not args.add and not args.remove:
        raise CliError("rewrap: give --add PUB or --remove PUB|KEY_ID")
    try:
        out = wp.rewrap(args.package, args.output, key=args.key, add=args.add, remove=args.remove)
        info = wp.describe(out)
    except (wp.ProtectedError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if not args.quiet:
        print(f"{out}: {len(info['recipients']) - 1} recipient(s) and the publisher")
    return 0
