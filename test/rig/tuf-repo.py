#!/usr/bin/env python3
"""Builds a real TUF repository with python-tuf, for the TUF client tests (shared/tuf/).

https://theupdateframework.github.io/specification/latest/ (repository layout, §4-§5)

Usage: PYTHONPATH=$CACHE/python-tuf-<ver> python3 test/rig/tuf-repo.py OUTDIR TARGET_FILE

Writes, with consistent snapshots:
  OUTDIR/metadata/1.root.json         root v1 (ALREADY EXPIRED: a client must still rotate from it)
  OUTDIR/metadata/2.root.json         root v2: a new root key set and a new timestamp key, signed
                                      by the threshold of v1's root keys AND of its own
  OUTDIR/metadata/timestamp.json      timestamp v2 (snapshot v1)
  OUTDIR/metadata/1.snapshot.json     snapshot v1 (targets v1 with length and sha256, extra v1)
  OUTDIR/metadata/1.targets.json      targets v1: trusted_root.json (TARGET_FILE's bytes), and a
                                      delegation of "extra/*" to the role "extra"
  OUTDIR/metadata/1.extra.json        the delegated role "extra": extra/hello.txt
  OUTDIR/targets/<sha256>.trusted_root.json, OUTDIR/targets/extra/<sha256>.hello.txt
  OUTDIR/variants/<name>/...          files a test serves INSTEAD of the ones above (same paths);
                                      a line in variants/<name>/missing.txt is a path served 404
  OUTDIR/manifest.json                versions, names, lengths and hashes, for the test to assert

Key types, as Sigstore's repository and securesystemslib write them: ecdsa-sha2-nistp256 (PEM),
ed25519 (hex), rsa with rsassa-pss-sha256 (PEM).
"""

import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone

import tuf
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

NOW = datetime.now(timezone.utc).replace(microsecond=0)
FUTURE = NOW + timedelta(days=365)
PAST = NOW - timedelta(days=1)
PRETTY = JSONSerializer(compact=False)


def write(out, rel, md_or_bytes):
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = md_or_bytes if isinstance(md_or_bytes, bytes) else md_or_bytes.to_bytes(PRETTY)
    with open(path, "wb") as f:
        f.write(data)
    return data


def signed(payload, *signers):
    md = Metadata(payload)
    for s in signers:
        md.sign(s, append=True)
    return md


def root_with(keys, expires, version):
    """keys: role -> (threshold, [signers])."""
    root = Root(version=version, expires=expires, consistent_snapshot=True)
    for role, (threshold, signers) in keys.items():
        for s in signers:
            root.add_key(s.public_key, role)
        root.roles[role].threshold = threshold
    return root


def meta_file(version, data):
    return MetaFile(version=version, length=len(data), hashes={"sha256": hashlib.sha256(data).hexdigest()})


def build(out, target_bytes):
    ecdsa = CryptoSigner.generate_ecdsa
    old_root = [ecdsa(), ecdsa(), ecdsa()]
    new_root = [CryptoSigner.generate_ed25519(), ecdsa(), CryptoSigner.generate_rsa(size=2048)]
    ts_old, ts_new = CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()
    snap = CryptoSigner.generate_rsa(size=2048)  # rsassa-pss-sha256
    tgt = ecdsa()
    extra_key = CryptoSigner.generate_ed25519()

    common = {"snapshot": (1, [snap]), "targets": (1, [tgt])}
    root1 = root_with({"root": (2, old_root), "timestamp": (1, [ts_old]), **common}, PAST, 1)
    root2 = root_with({"root": (2, new_root), "timestamp": (1, [ts_new]), **common}, FUTURE, 2)
    write(out, "metadata/1.root.json", signed(root1, *old_root))
    write(out, "metadata/2.root.json", signed(root2, old_root[0], old_root[1], new_root[0], new_root[2]))

    # The delegated role "extra" and its target.
    hello = b"hello from a delegated role\n"
    extra = Targets(version=1, expires=FUTURE)
    extra.targets["extra/hello.txt"] = TargetFile.from_data("extra/hello.txt", hello, ["sha256", "sha512"])
    extra_bytes = write(out, "metadata/1.extra.json", signed(extra, extra_key))

    targets = Targets(version=1, expires=FUTURE)
    tf = TargetFile.from_data("trusted_root.json", target_bytes, ["sha256"])
    targets.targets["trusted_root.json"] = tf
    role = DelegatedRole("extra", [extra_key.public_key.keyid], 1, True, paths=["extra/*"])
    targets.delegations = Delegations({extra_key.public_key.keyid: extra_key.public_key}, roles={"extra": role})
    targets_bytes = write(out, "metadata/1.targets.json", signed(targets, tgt))

    snapshot = Snapshot(version=1, expires=FUTURE)
    snapshot.meta["targets.json"] = meta_file(1, targets_bytes)
    snapshot.meta["extra.json"] = MetaFile(version=1)
    snapshot_bytes = write(out, "metadata/1.snapshot.json", signed(snapshot, snap))

    def timestamp(version, expires, signer=ts_new):
        ts = Timestamp(version=version, expires=expires, snapshot_meta=meta_file(1, snapshot_bytes))
        return signed(ts, signer)

    write(out, "metadata/timestamp.json", timestamp(2, FUTURE))

    sha = hashlib.sha256(target_bytes).hexdigest()
    write(out, f"targets/{sha}.trusted_root.json", target_bytes)
    hello_sha = hashlib.sha256(hello).hexdigest()
    write(out, f"targets/extra/{hello_sha}.hello.txt", hello)

    # Variants: each replaces files of the repository above, as an attacker or a stale mirror would.
    v = lambda name, rel, data: write(out, f"variants/{name}/{rel}", data)  # noqa: E731
    v("expired-timestamp", "metadata/timestamp.json", timestamp(3, PAST))
    v("timestamp-rollback", "metadata/timestamp.json", timestamp(1, FUTURE))
    v("old-timestamp-key", "metadata/timestamp.json", timestamp(3, FUTURE, ts_old))
    # Root v2 with one old root signature (v1 asks for 2), and with one new one (v2 asks for 2).
    v("root-few-old-signatures", "metadata/2.root.json", signed(root2, old_root[0], *new_root))
    v("root-few-new-signatures", "metadata/2.root.json", signed(root2, *old_root, new_root[1]))
    tampered = bytearray(target_bytes)
    tampered[len(tampered) // 2] ^= 0x01
    v("tampered-target", f"targets/{sha}.trusted_root.json", bytes(tampered))
    v("longer-target", f"targets/{sha}.trusted_root.json", target_bytes + b" ")
    # The same canonical form and length (so the signature and length check), another sha256.
    v("tampered-snapshot", "metadata/1.snapshot.json", snapshot_bytes.replace(b'"_type": ', b'"_type":\t', 1))
    # No rotation: the client stays on root v1, which expired.
    v("no-rotation", "missing.txt", b"metadata/2.root.json\n")

    manifest = {
        "python_tuf": tuf.__version__,
        "root_version": 2,
        "timestamp_version": 2,
        "snapshot_version": 1,
        "targets_version": 1,
        "expires": FUTURE.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target": {"name": "trusted_root.json", "length": len(target_bytes), "sha256": sha},
        "delegated_target": {"name": "extra/hello.txt", "length": len(hello), "sha256": hello_sha},
        "variants": sorted(os.listdir(os.path.join(out, "variants"))),
    }
    write(out, "manifest.json", json.dumps(manifest, indent=2).encode())


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: tuf-repo.py OUTDIR TARGET_FILE")
    out, target = sys.argv[1], sys.argv[2]
    with open(target, "rb") as f:
        build(out, f.read())


if __name__ == "__main__":
    main()
