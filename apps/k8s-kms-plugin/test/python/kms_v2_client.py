"""An independent KMS v2 client (Debian's python3-grpcio, gRPC C-core) for the plugin's conformance tests.

Usage: /usr/bin/python3 kms_v2_client.py SOCKET_PATH PROTO_DIR STUB_DIR
Generates the stubs from the project's .proto into STUB_DIR, runs the checks against the plugin on the
socket, prints one JSON line per check and exits 1 if any failed.
"""
import json
import os
import re
import subprocess
import sys

socket_path, proto_dir, stub_dir = sys.argv[1:4]
subprocess.run(
    [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={stub_dir}",
     f"--grpc_python_out={stub_dir}", os.path.join(proto_dir, "kms-v2.proto")],
    check=True,
)
sys.path.insert(0, stub_dir)

import grpc  # noqa: E402
import kms_v2_pb2 as pb  # noqa: E402
import kms_v2_pb2_grpc as pb_grpc  # noqa: E402

TARGET = f"unix://{socket_path}"
FQDN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+\.?$")
results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append({"check": name, "ok": True})
        except Exception as exc:  # noqa: BLE001
            results.append({"check": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return fn
    return wrap


def code_of(fn):
    try:
        fn()
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


channel = grpc.insecure_channel(TARGET, options=[("grpc.default_authority", "localhost")])
stub = pb_grpc.KeyManagementServiceStub(channel)
state = {}


@check("Status: version v2, healthz ok, key_id non-empty and < 1 kB")
def _status():
    res = stub.Status(pb.StatusRequest(), timeout=3)
    assert res.version == "v2", res.version
    assert res.healthz == "ok", res.healthz
    assert 0 < len(res.key_id.encode()) <= 1023
    state["key_id"] = res.key_id


@check("Encrypt: 32-byte seed, key_id equals Status, ciphertext <= 1024 bytes, FQDN annotation keys")
def _encrypt():
    seed = os.urandom(32)
    res = stub.Encrypt(pb.EncryptRequest(plaintext=seed, uid="py-encrypt"), timeout=3)
    assert res.key_id == state["key_id"], (res.key_id, state["key_id"])
    assert 0 < len(res.ciphertext) <= 1024, len(res.ciphertext)
    total = 0
    for k, v in res.annotations.items():
        assert FQDN.match(k) and "/" not in k, k
        total += len(k.encode()) + len(v)
    assert total <= 32768
    state.update(seed=seed, enc=res)


@check("Decrypt: round trip")
def _decrypt():
    enc = state["enc"]
    res = stub.Decrypt(pb.DecryptRequest(ciphertext=enc.ciphertext, uid="py-decrypt", key_id=enc.key_id,
                                         annotations=dict(enc.annotations)), timeout=3)
    assert res.plaintext == state["seed"]


@check("Decrypt: tampered ciphertext, key_id, annotations and empty ciphertext are INVALID_ARGUMENT")
def _tamper():
    enc = state["enc"]
    ct = bytearray(enc.ciphertext)
    ct[-6] ^= 1
    ann = dict(enc.annotations)
    cases = {
        "ciphertext": pb.DecryptRequest(ciphertext=bytes(ct), uid="t1", key_id=enc.key_id, annotations=ann),
        "key_id": pb.DecryptRequest(ciphertext=enc.ciphertext, uid="t2", key_id=enc.key_id + "x", annotations=ann),
        "annotations": pb.DecryptRequest(ciphertext=enc.ciphertext, uid="t3", key_id=enc.key_id, annotations={}),
        "extra annotation": pb.DecryptRequest(ciphertext=enc.ciphertext, uid="t4", key_id=enc.key_id,
                                              annotations={**ann, "x.example.com": b"1"}),
        "empty": pb.DecryptRequest(ciphertext=b"", uid="t5", key_id=enc.key_id, annotations=ann),
    }
    for what, req in cases.items():
        got = code_of(lambda: stub.Decrypt(req, timeout=3))
        assert got == grpc.StatusCode.INVALID_ARGUMENT, (what, got)


@check("Encrypt: empty plaintext is INVALID_ARGUMENT")
def _empty_plaintext():
    got = code_of(lambda: stub.Encrypt(pb.EncryptRequest(plaintext=b"", uid="e"), timeout=3))
    assert got == grpc.StatusCode.INVALID_ARGUMENT, got


@check("Unknown method is UNIMPLEMENTED")
def _unimplemented():
    call = channel.unary_unary("/v2.KeyManagementService/Rotate", request_serializer=lambda x: x,
                               response_deserializer=lambda x: x)
    got = code_of(lambda: call(b"", timeout=3))
    assert got == grpc.StatusCode.UNIMPLEMENTED, got


@check("1000 seeds give 1000 distinct (ciphertext, key_id, annotations)")
def _distinct():
    seen = set()
    for i in range(1000):
        res = stub.Encrypt(pb.EncryptRequest(plaintext=os.urandom(32), uid=f"py-{i}"), timeout=3)
        seen.add((bytes(res.ciphertext), res.key_id, tuple(sorted(res.annotations.items()))))
    assert len(seen) == 1000, len(seen)


@check("authority = socket path (what kube-apiserver <= 1.31 sends) is refused: apiserver >= 1.32 needed")
def _authority():
    old = grpc.insecure_channel(TARGET, options=[("grpc.default_authority", socket_path)])
    got = code_of(lambda: pb_grpc.KeyManagementServiceStub(old).Status(pb.StatusRequest(), timeout=2))
    old.close()
    assert got != grpc.StatusCode.OK, got


channel.close()
for r in results:
    print(json.dumps(r))
sys.exit(0 if all(r["ok"] for r in results) else 1)
