"""``webml keys new NAME``: a key pair for protected models (publisher and recipient in one).

Writes ``NAME.key`` (the private keys, readable by the user only) and
``NAME.pub`` (the public keys, to give to publishers as ``--recipient`` and to
devices as ``--trusted``) in ``--dir`` (default: the current folder).
"""

from __future__ import annotations

import argparse
import json

from . import CliError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = sub.add_parser("new", help="make a key pair NAME.key (private, mode 0600) and NAME.pub")
    new.add_argument("name", help="the files' name: letters, digits, '.', '_', '-'")
    new.add_argument("--dir", default=".", help="the folder to write them in (default: the current one)")
    new.add_argument("--json", action="store_true", help="print the paths and ids as one JSON object")
    show = sub.add_parser("show", help="the publisher fingerprint and recipient key id of a .pub or .key file")
    show.add_argument("file", help="a .pub (or .key) file")
    show.add_argument("--json", action="store_true", help="print them as one JSON object")


def main(args: argparse.Namespace) -> int:
    import webml.protected as wp

    try:
        if args.keys_command == "new":
            private, public = wp.new_key_pair(args.name, args.dir)
            key = wp.load_public_key(public)
            info = {"private_key": str(private), "public_key": str(public),
                    "publisher_fingerprint": key.fingerprint, "recipient_key_id": key.key_id}
        else:
            is_private = str(args.file).endswith(".key")
            key = wp.load_private_key(args.file).public_key() if is_private else wp.load_public_key(args.file)
            info = {"file": str(args.file), "publisher_fingerprint": key.fingerprint, "recipient_key_id": key.key_id}
    except wp.ProtectedError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(info, indent=2))
    elif args.keys_command == "new":
        print(f"private key: {info['private_key']} (mode 0600: keep it secret)")
        print(f"public key:  {info['public_key']} (give it to publishers and devices)")
        print(f"publisher fingerprint {key.fingerprint}, recipient key id {key.key_id}")
    else:
        print(f"{args.file}: publisher fingerprint {key.fingerprint}, recipient key id {key.key_id}")
    return 0
