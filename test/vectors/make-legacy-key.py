#!/usr/bin/python3
"""Makes an "older cosign" encrypted private key, independently of cosign and of this project.

The key file is what cosign releases before 2.x wrote: PEM label ENCRYPTED COSIGN PRIVATE KEY, body
the base64 of a JSON envelope {kdf: scrypt N=32768 r=8 p=1, 32-byte salt; cipher: nacl/secretbox,
24-byte nonce; ciphertext: Poly1305 tag + XSalsa20 of the PKCS#8 DER}. Built only with Python's
hashlib.scrypt and PyNaCl (Debian's python3-nacl), so a test vector does not depend on the code it
tests. Run with Debian's /usr/bin/python3 (that is where python3-nacl is installed):

  /usr/bin/python3 make-legacy-key.py --in KEY.pkcs8.der --password 'correct horse' --out legacy.key

The result is proven valid by real cosign 2.5: `cosign2 public-key --key legacy.key` (see README).
"""
import argparse
import base64
import hashlib
import json
import os
import sys

import nacl.secret


def pem(label: str, der: bytes) -> str:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN {0}-----\n{1}\n-----END {0}-----\n".format(label, "\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--in", dest="infile", required=True, help="private key as PKCS#8 DER")
    ap.add_argument("--password", required=True, help="password ('' allowed)")
    ap.add_argument("--n", type=int, default=32768, help="scrypt N (default 32768, older cosign)")
    ap.add_argument("--label", default="ENCRYPTED COSIGN PRIVATE KEY")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    with open(a.infile, "rb") as f:
        pkcs8 = f.read()
    if not pkcs8.startswith(b"\x30"):
        print("input is not DER (expected a SEQUENCE)", file=sys.stderr)
        return 1

    salt = os.urandom(32)
    r, p = 8, 1
    key = hashlib.scrypt(
        a.password.encode("utf-8"), salt=salt, n=a.n, r=r, p=p, maxmem=256 * a.n * r + (1 << 20), dklen=32
    )
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    # PyNaCl returns nonce || tag || ciphertext; cosign stores the nonce apart and tag || ciphertext.
    sealed = nacl.secret.SecretBox(key).encrypt(pkcs8, nonce)
    ciphertext = sealed.ciphertext
    assert len(ciphertext) == len(pkcs8) + nacl.secret.SecretBox.MACBYTES

    envelope = {
        "kdf": {"name": "scrypt", "params": {"N": a.n, "r": r, "p": p}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    body = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
    with open(a.out, "w") as f:
        f.write(pem(a.label, body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
