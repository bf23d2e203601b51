/**
 * Signed certificate timestamps embedded in a Fulcio certificate (RFC 6962 §3.2–3.3): each SCT
 * signs the precertificate — the leaf's tbsCertificate without the SCT-list extension — with the
 * SHA-256 of the issuer's key, and must verify with a CT log of the trusted root that was valid
 * at the SCT's time. cosign asks for at least one. (sigstore-go pkg/verify/sct.go)
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual } from '../encoding/base64.ts';
import { DerError, children, der, parseDer, decodeOid, tlv } from '../encoding/der.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import type { HashName } from '../crypto/verify-spki.ts';
import { verifyLogSignature } from './log-key.ts';
import { SCT_LIST_OID, type Certificate } from './certificate.ts';
import { validAt } from './trusted-root.ts';
import type { TrustedLog } from './types.ts';

interface Sct {
  logId: Uint8Array;
  timestamp: bigint;
  extensions: Uint8Array;
  hash: HashName;
  signature: Uint8Array;
}

const HASHES: Record<number, HashName> = { 4: 'SHA-256', 5: 'SHA-384', 6: 'SHA-512' };

function bad(why: string): VerificationError {
  return new VerificationError('VERIFY_SCT_INVALID', `The certificate's SCTs cannot be read: ${why}.`);
}

/** A TLS-encoded reader over the SCT list. */
class Reader {
  #pos = 0;
  constructor(readonly buf: Uint8Array) {}
  get done(): boolean {
    return this.#pos >= this.buf.length;
  }
  uint(n: number): number {
    if (this.#pos + n > this.buf.length) throw bad('it is truncated');
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + this.buf[this.#pos++]!;
    return v;
  }
  bytes(n: number): Uint8Array {
    if (this.#pos + n > this.buf.length) throw bad('it is truncated');
    const out = this.buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }
  vector(lenBytes: number): Uint8Array {
    return this.bytes(this.uint(lenBytes));
  }
}

/** Reads the SCT list. @throws VerificationError VERIFY_SCT_INVALID */
export function parseSctList(list: Uint8Array): Sct[] {
  const outer = new Reader(list);
  const all = new Reader(outer.vector(2));
  if (!outer.done) throw bad('bytes follow the list');
  const out: Sct[] = [];
  while (!all.done) {
    const r = new Reader(all.vector(2));
    if (r.uint(1) !== 0) throw bad('an SCT is not version 1');
    const logId = r.bytes(32);
    const timestamp = BigInt(r.uint(4)) * 2n ** 32n + BigInt(r.uint(4));
    const extensions = r.vector(2);
    const hash = HASHES[r.uint(1)];
    r.uint(1); // the signature algorithm: the log's key says what it is
    const signature = r.vector(2);
    if (!hash || !r.done) throw bad('an SCT names an unknown hash or has trailing bytes');
    out.push({ logId, timestamp, extensions, hash, signature });
  }
  return out;
}

/** The leaf's tbsCertificate without the SCT-list extension: what the CT log saw. */
function precertificateTbs(leaf: Certificate): Uint8Array {
  try {
    const fields = children(parseDer(leaf.tbs)).flatMap((f) => {
      if (f.tag !== 0xa3) return [f.raw];
      const exts = children(children(f)[0]!).filter((e) => decodeOid(children(e)[0]) !== SCT_LIST_OID);
      return exts.length ? [tlv(0xa3, der.seq(...exts.map((e) => e.raw)))] : []; // no empty [3]
    });
    return der.seq(...fields);
  } catch (e) {
    if (e instanceof DerError) throw bad(`the certificate is not DER (${e.message})`);
    throw e;
  }
}

function signedData(sct: Sct, issuerKeyHash: Uint8Array, tbs: Uint8Array): Uint8Array {
  const head = [0, 0]; // version v1, signature_type certificate_timestamp
  const ts: number[] = [];
  for (let i = 7; i >= 0; i--) ts.push(Number((sct.timestamp >> BigInt(i * 8)) & 0xffn));
  return der.concat([
    new Uint8Array([...head, ...ts, 0, 1]), // entry_type precert_entry
    issuerKeyHash,
    new Uint8Array([(tbs.length >> 16) & 255, (tbs.length >> 8) & 255, tbs.length & 255]),
    tbs,
    new Uint8Array([(sct.extensions.length >> 8) & 255, sct.extensions.length & 255]),
    sct.extensions,
  ]);
}

/**
 * The SCTs of `leaf` that verify with a CT log of the root.
 * @throws VerificationError VERIFY_SCT_MISSING when the certificate carries none,
 *   VERIFY_SCT_INVALID when none verifies.
 */
export async function verifyEmbeddedScts(
  leaf: Certificate,
  issuer: Certificate,
  ctlogs: TrustedLog[],
): Promise<{ logId: Uint8Array; time: Date; log: TrustedLog }[]> {
  if (!leaf.sctList)
    throw new VerificationError(
      'VERIFY_SCT_MISSING',
      'The certificate carries no SCT from a certificate-transparency log.',
    );
  const scts = parseSctList(leaf.sctList);
  if (scts.length === 0) throw new VerificationError('VERIFY_SCT_MISSING', "The certificate's SCT list is empty.");
  const tbs = precertificateTbs(leaf);
  const keyHash = sha256Bytes(issuer.spki);
  const out: { logId: Uint8Array; time: Date; log: TrustedLog }[] = [];
  for (const sct of scts) {
    const time = new Date(Number(sct.timestamp));
    const log = ctlogs.find((l) => bytesEqual(l.logId, sct.logId) && validAt(l.validFor, time));
    if (!log) continue;
    if (await verifyLogSignature(log, signedData(sct, keyHash, tbs), sct.signature, sct.hash))
      out.push({ logId: sct.logId, time, log });
  }
  if (out.length === 0)
    throw new VerificationError(
      'VERIFY_SCT_INVALID',
      `None of the certificate's ${scts.length} SCTs verifies with a CT log of the trusted root.`,
    );
  return out;
}
