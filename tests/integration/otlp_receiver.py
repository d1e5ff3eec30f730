#!/usr/bin/python3
"""A real OTLP/gRPC trace receiver for the tracing test.

It compiles the repository's OTLP .proto files (proto/opentelemetry, the
official ones) with protoc at start, serves
opentelemetry.proto.collector.trace.v1.TraceService/Export on a port the
kernel picks, and appends every ExportTraceServiceRequest it receives to OUT
as one line of protobuf JSON (google.protobuf.json_format). It prints
"listening on 127.0.0.1:PORT" once it serves.

usage: otlp_receiver.py PROTO_DIR OUT
"""
import importlib
import os
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

import grpc
from google.protobuf import json_format


def compile_protos(proto_dir):
    out = tempfile.mkdtemp(prefix="otlp-receiver-")
    files = [os.path.join(proto_dir, "opentelemetry/proto", f) for f in (
        "common/v1/common.proto", "resource/v1/resource.proto",
        "trace/v1/trace.proto", "collector/trace/v1/trace_service.proto")]
    subprocess.run(["protoc", "--proto_path=" + proto_dir,
                    "--python_out=" + out] + files, check=True)
    # Generated packages have no __init__.py; namespace packages import fine.
    sys.path.insert(0, out)
    return importlib.import_module(
        "opentelemetry.proto.collector.trace.v1.trace_service_pb2")


def main():
    proto_dir, out_path = sys.argv[1], sys.argv[2]
    pb = compile_protos(proto_dir)
    lock = threading.Lock()
    out = open(out_path, "a", encoding="utf-8")

    def export(request, context):
        line = json_format.MessageToJson(request, indent=None)
        with lock:
            out.write(line + "\n")
            out.flush()
        return pb.ExportTraceServiceResponse()

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService", {
            "Export": grpc.unary_unary_rpc_method_handler(
                export,
                request_deserializer=pb.ExportTraceServiceRequest.FromString,
                response_serializer=(
                    pb.ExportTraceServiceResponse.SerializeToString)),
        })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("listening on 127.0.0.1:%d" % port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
