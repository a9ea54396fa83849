"""Closed-loop load on a KMS v2 socket with Debian's python3-grpcio (gRPC C-core, asyncio), for `npm run bench`.

Usage: /usr/bin/python3 kms_load.py SOCKET PROTO_DIR STUB_DIR METHOD CONCURRENCY DURATION_S WARMUP_S [REQUEST_JSON]
METHOD is Encrypt (a fresh 32-byte seed per call) or Decrypt (REQUEST_JSON: ciphertext and annotation
values base64, key_id). Prints one JSON object: throughput (answered calls/s), p50, p99 (ms), errors.
An independent, leaner client than grpc-js: closer to kube-apiserver's Go client in what a call costs.
"""
import asyncio
import base64
import json
import os
import subprocess
import sys
import time

socket_path, proto_dir, stub_dir, method = sys.argv[1:5]
concurrency, duration, warmup = int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
request_json = json.loads(sys.argv[8]) if len(sys.argv) > 8 else {}
if not os.path.exists(os.path.join(stub_dir, "kms_v2_pb2_grpc.py")):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={stub_dir}",
         f"--grpc_python_out={stub_dir}", os.path.join(proto_dir, "kms-v2.proto")],
        check=True,
    )
sys.path.insert(0, stub_dir)

import grpc  # noqa: E402
import kms_v2_pb2 as pb  # noqa: E402
import kms_v2_pb2_grpc as pb_grpc  # noqa: E402


async def main():
    async with grpc.aio.insecure_channel(f"unix://{socket_path}") as channel:
        stub = pb_grpc.KeyManagementServiceStub(channel)
        if method == "Decrypt":
            request = pb.DecryptRequest(
                ciphertext=base64.b64decode(request_json["ciphertext"]),
                key_id=request_json["key_id"],
                annotations={k: base64.b64decode(v) for k, v in request_json.get("annotations", {}).items()},
                uid="bench",
            )
            call = lambda: stub.Decrypt(request, timeout=3)  # noqa: E731
        else:
            call = lambda: stub.Encrypt(pb.EncryptRequest(plaintext=os.urandom(32), uid="bench"), timeout=3)  # noqa: E731
        latencies, errors, sample = [], 0, ""
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + duration

        async def worker():
            nonlocal errors, sample
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    await call()
                    if t0 >= measure_from:
                        latencies.append((time.perf_counter() - t0) * 1000)
                except grpc.RpcError as exc:
                    errors += 1
                    sample = sample or f"{exc.code()}: {exc.details()}"

        cpu = {}

        async def cpu_window():
            # This process's own CPU time over the measured window (the bench cannot read it once we exit).
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            cpu["start"] = time.process_time()
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            cpu["end"] = time.process_time()

        await asyncio.gather(cpu_window(), *(worker() for _ in range(concurrency)))
        latencies.sort()
        n = len(latencies)
        pick = lambda p: latencies[min(n - 1, int(n * p))] if n else None  # noqa: E731
        print(json.dumps({"throughput": n / duration, "p50": pick(0.5), "p99": pick(0.99), "count": n,
                          "errors": errors, "errorSample": sample,
                          "clientCores": (cpu["end"] - cpu["start"]) / duration}))


asyncio.run(main())
