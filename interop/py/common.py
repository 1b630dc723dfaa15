"""Shared by server.py and client.py: generating the test stubs and parsing boolean flags."""
import argparse
import atexit
import os
import shutil
import sys
import tempfile

import grpc
from grpc_tools import protoc

PROTOS = ["grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]


def load_protos():
    """Compiles the test protos from $GRPC_PROTO_ROOT into a temporary directory and returns
    the modules (empty_pb2, messages_pb2, test_pb2_grpc)."""
    root = os.environ.get("GRPC_PROTO_ROOT")
    if not root:
        sys.exit("GRPC_PROTO_ROOT must name the directory holding grpc/testing/test.proto")
    out = tempfile.mkdtemp(prefix="interop-py-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    args = ["protoc", f"-I{root}", f"--python_out={out}", f"--grpc_python_out={out}", *PROTOS]
    if protoc.main(args) != 0:
        sys.exit(f"protoc failed on {PROTOS} under {root}")
    # The generated code imports `grpc.testing.*`; `grpc` is grpcio's package, so the
    # generated directory becomes one more location of it.
    grpc.__path__.append(os.path.join(out, "grpc"))
    from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc
    return empty_pb2, messages_pb2, test_pb2_grpc


def parse_bool(text):
    value = text.lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_bool_flag(parser, name, help):
    """--name alone means true; --name=true|false sets it explicitly."""
    parser.add_argument(name, nargs="?", const=True, default=False, type=parse_bool, metavar="BOOL", help=help)


def parse_args(parser, bool_flags):
    # nargs="?" alone would take the next word in `--use_tls true`; writing a bare flag as
    # `--use_tls=true` makes argparse reject such a stray word instead.
    argv = [arg + "=true" if arg in bool_flags else arg for arg in sys.argv[1:]]
    return parser.parse_args(argv)
