#!/usr/bin/python3
"""The coordinator serves grpc.health.v1 and server reflection (what grpcurl and Kubernetes
probes use). Raw protobuf bytes, so no generated stubs are needed.

usage: grpc_services_test.py PATH/TO/fetchfleet-coordinator
"""
import re
import subprocess
import sys
import time

import grpc


def main():
    coordinator = subprocess.Popen([sys.argv[1], "--listen", "127.0.0.1:0"],
                                   stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.time() + 20
        while port is None and time.time() < deadline:
            line = coordinator.stderr.readline()
            m = re.search(r"listening on [^ ]*:(\d+)", line)
            if m:
                port = int(m.group(1))
        assert port, "the coordinator did not report its port"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)

        # HealthCheckRequest{service: ""} is empty; SERVING is status=1 -> bytes 08 01.
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        reply = check(b"", timeout=5)
        assert reply == b"\x08\x01", f"health: unexpected reply {reply!r}"

        # ServerReflectionRequest{list_services: "*"} (field 7).
        info = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        replies = list(info(iter([b"\x3a\x01*"]), timeout=5))
        assert replies, "reflection: no reply"
        for service in (b"fetchfleet.v1.JobService", b"fetchfleet.v1.WorkerService",
                        b"fetchfleet.v1.AdminService", b"fetchfleet.v1.GatewayService",
                        b"grpc.health.v1.Health"):
            assert service in replies[0], f"reflection does not list {service!r}"
        print("1 passed, 0 failed")
    finally:
        coordinator.terminate()
        coordinator.wait(timeout=20)


if __name__ == "__main__":
    main()
