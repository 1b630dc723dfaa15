"""Checks a server's grpc.health.v1.Health with grpcio-health-checking's own client: the
server as a whole and grpc.testing.TestService are SERVING, an unknown service is NOT_FOUND,
and a Watch starts with the current status. Prints PASS/FAIL lines; exits 0 if all passed."""
import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server_host", default="127.0.0.1")
    parser.add_argument("--server_port", type=int, required=True)
    args = parser.parse_args()
    channel = grpc.insecure_channel(f"{args.server_host}:{args.server_port}")
    stub = health_pb2_grpc.HealthStub(channel)
    failures = 0

    def case(name, check):
        nonlocal failures
        try:
            check()
            print(f"PASS health {name}")
        except Exception as e:  # noqa: BLE001 - any failure is the case's
            failures += 1
            print(f"FAIL health {name}: {e}")

    def check_serving(service):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == SERVING, f"status {reply.status}"

    def check_unknown():
        try:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, f"code {e.code()}"
            return
        raise AssertionError("an unknown service was found")

    def watch():
        stream = stub.Watch(
            health_pb2.HealthCheckRequest(service="grpc.testing.TestService"), timeout=10
        )
        first = next(stream)
        stream.cancel()
        assert first.status == SERVING, f"status {first.status}"

    case("check server", lambda: check_serving(""))
    case("check service", lambda: check_serving("grpc.testing.TestService"))
    case("check unknown", check_unknown)
    case("watch", watch)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
