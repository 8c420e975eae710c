"""The ``webml`` command.

    webml classify [IMAGE ...]          top-5 ImageNet classes (default: a sample photo)
    webml video SOURCE                  classify the frames of a video file or a camera
    webml run MODEL.onnx --input N=F.npy run any ONNX model, print output statistics
    webml info MODEL.onnx               inputs, outputs, operators and what is unsupported
    webml export --web MODEL OUT/       a static folder that runs MODEL in the browser
    webml shrink MODEL.onnx --to int8 -o OUT.onnx  float16/int8/int4 weights, with a report
    webml train DATA_DIR --output M.npz transfer learning on one sub-folder of images per class
    webml federated simulate DATA_DIR   federated training with Flower (also: server, client)
    webml wpt [--backend NAME]          the WebNN Web Platform Tests
    webml demo                          build and run a small network with the builder
    webml serve [--port 8765]           the WebNN service for JavaScript programs (Node.js, pages)
    webml grants add|list|revoke ORIGIN the web origins that webml serve lets in
    webml keys new NAME                 a key pair for protected models (NAME.key, NAME.pub)
    webml protect MODEL -o PKG --recipient PUB --sign KEY   an encrypted, signed model package
    webml batch MODEL INPUT OUT         a model over a folder or Parquet dataset on Ray, results as Parquet

Bad input (an unreadable or corrupt file, an unsupported operator, a wrong
input name, shape or data type, an image that is not an image) gives one
clear message on stderr and a non-zero exit status, never a traceback
(set ``WEBML_DEBUG=1`` to see one).  Ctrl-C stops any command quietly with
exit status 130.  Every command takes ``--quiet`` (no progress lines) and
``--verbose`` (ONNX Runtime's own warnings too).

Start-up is kept short: this module and the subcommand modules import only
NumPy at the top; the API, ONNX Runtime, onnx and the zoo load when a
command needs them (``bench/startup.py`` measures it).
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..backends import BACKENDS, DEFAULT_BACKEND

__all__ = ["CliError", "main"]


class CliError(Exception):
    """A user-facing error: printed as ``webml: error: <message>``, exit status 2."""


#: Examples shown at the end of each subcommand's --help.
EXAMPLES = {
    "classify": """\
  webml classify                            the sample photo, top-5 ImageNet classes
  webml classify cat.jpg dog.png --top-k 3
  webml classify photo.jpg --json           one JSON object per image
  webml classify photo.jpg --model pets.npz a classifier made by webml train
  webml classify clip.mp4 --model net.onnx  every frame of a video, planes into the graph (as webml video)
  webml classify photo.jpg --model net.onnx --labels labels.txt --backend reference""",
    "video": """\
  webml video clip.mp4                      top-5 ImageNet classes of every frame, fps, per-stage timing
  webml video clip.mp4 --every 10 --json    every 10th frame, one JSON object per frame
  webml video /dev/video0 --max-frames 100 --camera-option video_size=640x480
  webml video clip.mp4 --model net.onnx --labels labels.txt --normalize lite""",
    "train": """\
  webml train pets/ --output pets.npz       pets/cat/*.jpg, pets/dog/*.jpg ...
  webml train pets/ -o pets.npz --epochs 20 --validation-split 0.1
  webml train pets/ -o pets.npz --base-model features.onnx --base-output pooled
  webml classify photo.jpg --model pets.npz then use it""",
    "federated": """\
  webml federated simulate pets/ --clients 8 --rounds 20 --split dirichlet:0.5 --history h.json
  webml federated simulate pets/ --clients 8 --rounds 20 --secagg
  webml federated simulate pets/ --clients 8 --rounds 20 --dp-noise 1.0 --dp-clip 1.0
  webml federated server --insecure --address 0.0.0.0:8080 --min-clients 2 --rounds 5 --classes cat,dog
  webml federated client my-pets/ --server 192.168.1.10:8080 --insecure""",
    "run": """\
  webml run model.onnx --input x=x.npy                 print each output's values
  webml run model.onnx -i input_ids=ids.npy -i mask=mask.npy -o out/
  webml run model.onnx -i x=batch.npz:images --free-dim batch=8
  webml run model.onnx -i x=x.npy --backend reference""",
    "shrink": """\
  webml shrink model.onnx --to float16 -o model-fp16.onnx
  webml shrink model.onnx --to int8 -o model-int8.onnx --calibration photos/ --report int8.json
  webml shrink encoder.onnx --to int4 -o encoder-int4.onnx --input-shape input_ids=1,128 --input-shape mask=1,128""",
    "info": """\
  webml info model.onnx                     inputs, outputs, operators, what webml does not support
  webml info model.webmlpkg --trusted publisher.pub   a protected package's signed header""",
    "export": """\
  webml export --web model.onnx site/        index.html, webml-model.js, model.onnx, onnxruntime-web
  webml export --web pets.npz site/          a classifier made by webml train, with an image demo
  webml export --web net.onnx site/ --labels labels.txt --normalize lite""",
    "demo": """\
  webml demo
  webml demo --backend reference""",
    "serve": """\
  webml serve                               ws://127.0.0.1:8765/webnn, token in $XDG_RUNTIME_DIR/webml/
  webml serve --port 9000 --backend reference --audit audit.jsonl
  webml serve --allow-origin http://localhost:5173 --quota-contexts 8""",
    "keys": """\
  webml keys new publisher                  publisher.key (mode 0600) and publisher.pub
  webml keys new kiosk --dir /etc/webml     a device's key pair
  webml keys show kiosk.pub                 its publisher fingerprint and recipient key id""",
    "protect": """\
  webml protect model.onnx -o model.webmlpkg --recipient kiosk.pub --sign publisher.key
  webml protect model.onnx -o model.webmlpkg --recipient a.pub --recipient b.pub --sign publisher.key \\
      --expires 30d --backend onnxruntime
  webml info model.webmlpkg                 its signed header, never decrypted""",
    "unprotect": """\
  webml unprotect model.webmlpkg -o model.onnx --key publisher.key --i-am-the-publisher""",
    "rewrap": """\
  webml rewrap model.webmlpkg -o model.webmlpkg --key publisher.key --add tablet.pub
  webml rewrap model.webmlpkg -o model.webmlpkg --key publisher.key --remove kiosk.pub""",
    "grants": """\
  webml grants add https://app.example --expires 30d
  webml grants add http://localhost:5173 --capabilities compute
  webml grants list                         grants, and origins that asked for one
  webml grants revoke https://app.example""",
    "batch": """\
  webml batch - photos/ out/                        EfficientNet-Lite0 top-5 classes of every image, on a local Ray
  webml batch model.onnx arrays/ out/ --workers 2   one .npy input per item, outputs as Parquet
  webml batch model.onnx data.parquet out/ --id-column key   a column per model input
  webml batch net.onnx photos/ out/ --labels labels.txt --address 10.0.0.1:6379   on a Ray cluster""",
}


def _parser() -> argparse.ArgumentParser:
    from . import batch, classify, demo, export, federated, info, keys, protect, run, serve, shrink, train, video

    parser = argparse.ArgumentParser(
        prog="webml",
        description="The W3C WebNN API for Python.",
        epilog="examples:\n  webml classify photo.jpg\n  webml run model.onnx --input x=x.npy\n"
        "  webml wpt --backend reference --ops relu,conv2d\n  webml COMMAND --help   (each command's examples)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"webml {__version__}")
    _global_options(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # The same options after the command name; SUPPRESS keeps a value given before it.
    shared = argparse.ArgumentParser(add_help=False)
    _global_options(shared, argparse.SUPPRESS)

    def add_command(command: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            command,
            help=help_text,
            parents=[shared],
            epilog="examples:\n" + EXAMPLES[command],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def backend_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS, help="default: %(default)s")

    # Each subcommand module has add_arguments(parser) and main(args); all but info run on a backend.
    for command, module, help_text, on_backend in (
        ("classify", classify, "classify images with EfficientNet-Lite0 or an ONNX image classifier", True),
        ("video", video, "classify the frames of a video file or camera (planes straight into the graph)", True),
        ("train", train, "train a classifier on a folder of class sub-folders (transfer learning)", True),
        ("federated", federated, "federated training with Flower: simulate, server, client", False),
        ("run", run, "run an ONNX model on .npy inputs", True),
        ("shrink", shrink, "float16, int8 or int4 weights for an ONNX model, with a size/accuracy report", True),
        ("info", info, "describe an ONNX model (or a protected package) and what webml supports of it", False),
        ("export", export, "a static web folder that runs a model in the browser (onnxruntime-web)", False),
        ("serve", serve, "the WebNN service for JavaScript programs: Node.js and granted web pages", True),
        ("batch", batch, "run a model over a folder of images, .npy files or Parquet on Ray (Parquet out)", True),
    ):
        p = add_command(command, help_text)
        module.add_arguments(p)
        if on_backend:
            backend_option(p)
        p.set_defaults(handler=module.main)

    sub.add_parser("wpt", help="run the WebNN Web Platform Tests (webml wpt --help)", add_help=False)

    # Protected models (webml.protected).
    for command, add, handler, help_text in (
        ("keys", keys.add_arguments, keys.main, "key pairs for protected models: new, show"),
        ("protect", protect.add_arguments, protect.main, "encrypt and sign a model for chosen recipients"),
        ("unprotect", protect.add_unprotect_arguments, protect.unprotect_main,
         "the plaintext model of a package, for its publisher only"),
        ("rewrap", protect.add_rewrap_arguments, protect.rewrap_main,
         "add or remove a package's recipients without encrypting it again"),
    ):
        p = add_command(command, help_text)
        add(p)
        p.set_defaults(handler=handler)

    p = add_command("grants", "the web origins that webml serve lets in: add, list, revoke")
    serve.add_grants_arguments(p)
    p.set_defaults(handler=serve.grants_main)

    p = add_command("demo", "build and run a small network with the builder")
    backend_option(p)
    p.set_defaults(handler=lambda args: demo.demo(args.backend))
    return parser


_GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose")


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress lines")
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="also ONNX Runtime's own warnings"
    )


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C: stop quietly, with the shell's status for SIGINT
        return 130
    except BrokenPipeError:  # `webml ... | head`: the reader has gone; stop quietly
        sys.stdout = open(os.devnull, "w")  # replaces the closed pipe until exit
        return 141


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    if argv[command_at:command_at + 1] == ["wpt"]:
        from ..conformance.__main__ import main as wpt_main
        from .common import Progress

        # Global options given before "wpt" are wpt's own too (--quiet, --verbose).
        wpt_args = argv[:command_at] + argv[command_at + 1 :]
        quiet = any(a in ("-q", "--quiet") for a in wpt_args)
        return wpt_main(wpt_args, progress=Progress(None if quiet else sys.stderr))
    if all(a in _GLOBAL_FLAGS for a in argv):  # `webml` alone (or with -q/-v) classifies the sample photo
        argv = [*argv, "classify"]
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        if getattr(args, "backend", None) == "onnxruntime" and not args.verbose:
            from .common import quiet_onnxruntime

            quiet_onnxruntime()
        return int(args.handler(args) or 0)
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # one clear line for the user, whatever went wrong
        if os.environ.get("WEBML_DEBUG"):
            raise
        print(f"webml: error: {_message(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, (CliError, OSError, ValueError, TypeError)) else 1


def _message(exc: Exception) -> str:
    """What the user reads: errors that are written for users as they are, others with their type."""
    from ..images import UnreadableImageError

    if isinstance(exc, (CliError, UnreadableImageError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
