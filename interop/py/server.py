"""A grpcio grpc.testing.TestService server for the gRPC interop cases
(doc/interop-test-descriptions.md in the grpc repository, "Server" section).

GRPC_PROTO_ROOT must name the directory holding grpc/testing/test.proto.
"""
import argparse
import signal
import time
from concurrent import futures

import grpc

import common

empty_pb2, messages_pb2, test_pb2_grpc = common.load_protos()

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
CODES = {code.value[0]: code for code in grpc.StatusCode}


def payload(size):
    return messages_pb2.Payload(body=bytes(size))


def echo_metadata(context):
    """Echo Metadata: returns the one key in initial and the other in trailing metadata."""
    received = dict(context.invocation_metadata())
    if ECHO_INITIAL in received:
        context.send_initial_metadata([(ECHO_INITIAL, received[ECHO_INITIAL])])
    if ECHO_TRAILING in received:
        context.set_trailing_metadata([(ECHO_TRAILING, received[ECHO_TRAILING])])


def check_request(request, context):
    """Echo Status, and the only PayloadType the protos define."""
    if request.response_type != messages_pb2.COMPRESSABLE:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type")
    status = request.response_status
    if status.code != 0:
        code = CODES.get(status.code, grpc.StatusCode.UNKNOWN)
        context.abort(code, status.message)


def compress_responses(context, wanted):
    """CompressedResponse: gzip for the call if any response asks for it. grpcio cannot see
    whether a request arrived compressed, so expect_compressed (CompressedRequest) is not
    checked here."""
    if any(wanted):
        context.set_compression(grpc.Compression.Gzip)


def responses(request, context):
    compress_responses(context, [p.HasField("compressed") and p.compressed.value
                                 for p in request.response_parameters])
    for params in request.response_parameters:
        time.sleep(params.interval_us / 1e6)
        if params.HasField("compressed") and not params.compressed.value:
            context.disable_next_message_compression()
        yield messages_pb2.StreamingOutputCallResponse(payload=payload(params.size))


class TestService(test_pb2_grpc.TestServiceServicer):
    # UnimplementedCall is left to the base class, which answers UNIMPLEMENTED.

    def EmptyCall(self, request, context):
        echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        echo_metadata(context)
        check_request(request, context)
        if request.HasField("response_compressed"):
            if request.response_compressed.value:
                compress_responses(context, [True])
            else:
                context.disable_next_message_compression()
        return messages_pb2.SimpleResponse(payload=payload(request.response_size))

    def StreamingOutputCall(self, request, context):
        echo_metadata(context)
        check_request(request, context)
        yield from responses(request, context)

    def StreamingInputCall(self, request_iterator, context):
        echo_metadata(context)
        total = sum(len(request.payload.body) for request in request_iterator)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        for request in request_iterator:
            check_request(request, context)
            yield from responses(request, context)


def main():
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    parser.add_argument("--port", type=int, required=True)
    common.add_bool_flag(parser, "--use_tls", "serve TLS (needs the two files below)")
    parser.add_argument("--tls_cert_file", help="PEM certificate chain")
    parser.add_argument("--tls_key_file", help="PEM private key")
    parser.add_argument("--compression", choices=["gzip"],
                        help="compress every response (not one of gRPC's interop flags)")
    args = common.parse_args(parser, ["--use_tls"])

    compression = grpc.Compression.Gzip if args.compression == "gzip" else None
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), compression=compression)
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    address = f"127.0.0.1:{args.port}"
    if args.use_tls:
        if not (args.tls_cert_file and args.tls_key_file):
            parser.error("--use_tls needs --tls_cert_file and --tls_key_file")
        with open(args.tls_key_file, "rb") as key, open(args.tls_cert_file, "rb") as cert:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        parser.exit(1, f"cannot bind {address}\n")

    server.start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.stop(grace=1))
    print(f"listening on {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
