#!/usr/bin/env python3
"""Checks test-vectors/audit-chain-v1.json with nothing but Python's standard library (docs/audit.md)."""
import hashlib, json, os, sys

v = json.load(open(os.path.join(os.path.dirname(__file__), 'audit-chain-v1.json'), encoding='utf-8'))
FIELDS = ['sequence', 'time', 'plane', 'actor', 'operation', 'keyName', 'keyVersion', 'outcome', 'errorCode', 'requestId', 'sourceAddress', 'contextHmac']
prev = '0' * 64
for entry in v['records']:
    record = entry['record']
    canonical = json.dumps(['keyhold.audit.record.v1'] + [record[f] for f in FIELDS], separators=(',', ':'), ensure_ascii=False)
    assert canonical == entry['canonical'], canonical
    assert record['prevHash'] == prev
    prev = hashlib.sha256(bytes.fromhex(prev) + canonical.encode('utf-8')).hexdigest()
    assert prev == record['hash'], record['sequence']
cp = v['checkpoint']['checkpoint']
assert json.dumps(['keyhold.audit.checkpoint.v1', cp['sequence'], cp['headHash'], cp['time'], cp['keyFingerprint']], separators=(',', ':')) == v['checkpoint']['checkpointCanonical']
assert cp['headHash'] == prev
pr = v['prune']['prune']
assert json.dumps(['keyhold.audit.prune.v1', pr['throughSequence'], pr['anchorHash'], pr['time'], pr['keyFingerprint']], separators=(',', ':')) == v['prune']['pruneCanonical']
assert pr['anchorHash'] == cp['headHash'] and pr['throughSequence'] == cp['sequence']
print('audit-chain-v1: %d records and the checkpoint and prune canonical forms agree (verify the Ed25519 signature with any RFC 8032 library)' % len(v['records']))
sys.exit(0)
