/**
 * The one place a transparency log's key is used: signatures over signed entry timestamps and
 * checkpoints, and the 4-byte key hints that name the key in a signed note. Key hints as the logs
 * write them: Rekor v1 (rekor pkg/util/signed_note.go) takes SHA-256 of the DER SPKI for every key
 * type; Rekor v2 (rekor-tiles pkg/note/note.go) does the same for ECDSA, and the signed-note rule
 * SHA-256(name ‖ "\n" ‖ type ‖ key) for Ed25519 (type 0x01, the raw 32-byte key) and RSA
 * (type 0xff ‖ "PKIX-RSA-PKCS#1v1.5", the DER SPKI).
 * https://github.com/C2SP/C2SP/blob/main/signed-note.md#signatures
 */
import { KeyError } from '../errors.ts';
import { utf8 } from '../encoding/base64.ts';
import { der } from '../encoding/der.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { parseSpki } from '../crypto/pkcs.ts';
import { verifySpkiSignature, type HashName } from '../crypto/verify-spki.ts';
import type { TrustedLog } from './types.ts';

/** The hash a log's key details name (PKIX_ECDSA_P384_SHA_384 → SHA-384); SHA-256 otherwise. */
function hashOfKeyDetails(keyDetails: string): HashName {
  const m = /SHA_?(256|384|512)$/.exec(keyDetails);
  return m ? (`SHA-${m[1]}` as HashName) : 'SHA-256';
}

/**
 * True when `signature` (DER for ECDSA) by the log's key verifies over `data`. `hash` defaults to
 * the one the log's key details name; a key this runtime cannot use verifies nothing.
 */
export async function verifyLogSignature(
  log: TrustedLog,
  data: Uint8Array,
  signature: Uint8Array,
  hash: HashName = hashOfKeyDetails(log.keyDetails),
): Promise<boolean> {
  try {
    return await verifySpkiSignature(log.spki, hash, data, signature, { rsaPss: /RSA_PSS/.test(log.keyDetails) });
  } catch (e) {
    if (e instanceof KeyError) return false;
    throw e;
  }
}

/** What kind of key the log holds; null when its SPKI cannot be read. */
function keyKind(spki: Uint8Array): 'ecdsa' | 'rsa' | 'ed25519' | null {
  try {
    return parseSpki(spki).algorithm.kind;
  } catch {
    return null;
  }
}

/**
 * The 4-byte key hint a checkpoint signature by this log carries. `rekorV1`: the hint Rekor v1
 * writes (SHA-256 of the SPKI); otherwise the signed-note key hash for `name` (the origin).
 * Null when the key is of no kind a note can name.
 */
export function checkpointKeyHint(log: TrustedLog, name: string, rekorV1: boolean): Uint8Array | null {
  const kind = keyKind(log.spki);
  if (!kind) return null;
  if (rekorV1 || kind === 'ecdsa') return sha256Bytes(log.spki).subarray(0, 4);
  // An Ed25519 SPKI is 12 bytes of algorithm and framing, then the 32-byte key.
  const typeAndKey =
    kind === 'ed25519'
      ? der.concat([new Uint8Array([0x01]), log.spki.subarray(log.spki.length - 32)])
      : der.concat([new Uint8Array([0xff]), utf8('PKIX-RSA-PKCS#1v1.5'), log.spki]);
  return sha256Bytes(der.concat([utf8(`${name}\n`), typeAndKey])).subarray(0, 4);
}
