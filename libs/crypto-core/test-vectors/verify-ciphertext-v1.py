#!/usr/bin/env python3
"""Checks ciphertext-v1.json against docs/ciphertext-format.md with no Keyhold code at all.

A second, independent implementation of the format (Python's `cryptography` package, not Node): if the
vectors and the document ever disagree, this fails. Not part of `npm test` (it needs Python); run it by hand
after touching the format:  python3 libs/crypto-core/test-vectors/verify-ciphertext-v1.py
"""
import base64
import json
import pathlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def canonical_context(context):
    if not context:
        return b""
    # UTF-16 code-unit order, as the format requires; Python compares code points, which differs for
    # characters above U+FFFF.
    pairs = sorted(context.items(), key=lambda item: item[0].encode("utf-16-be"))
    return json.dumps(pairs, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decrypt(key, ciphertext, context):
    prefix, name, version, body_text = ciphertext.split(":")
    header = f"{prefix}:{name}:{version}:".encode("utf-8")
    body = base64.b64decode(body_text, validate=True)
    salt, commitment, sealed = body[:32], body[32:64], body[64:]
    okm = HKDF(hashes.SHA256(), 76, salt, b"keyhold/ciphertext/v1\x00" + header).derive(key)
    if okm[44:76] != commitment:  # a real implementation compares in constant time
        raise ValueError("commitment mismatch")
    return AESGCM(okm[:32]).decrypt(okm[32:44], sealed, header + canonical_context(context))


vectors = json.loads((pathlib.Path(__file__).parent / "ciphertext-v1.json").read_text("utf-8"))["vectors"]
for vector in vectors:
    assert canonical_context(vector["context"]).hex() == vector["canonicalContext"], vector["description"]
    plaintext = decrypt(bytes.fromhex(vector["key"]), vector["ciphertext"], vector["context"])
    assert plaintext.hex() == vector["plaintext"], vector["description"]
    print("ok  ", vector["description"])
