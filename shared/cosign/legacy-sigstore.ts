/**
 * A legacy `.sig` layer's Sigstore material, read into the same model as a bundle so one verifier
 * judges both: the certificate (`dev.sigstore.cosign/certificate`, PEM), its chain
 * (`dev.sigstore.cosign/chain`, not used: trust comes from the root or the PKI given), the Rekor v1 entry with its SET (`dev.sigstore.cosign/bundle`)
 * and an RFC 3161 timestamp (`dev.sigstore.cosign/rfc3161timestamp`). Read the way containers/image
 * reads it (`containers`), the timestamp is ignored and the chain, less its last certificate, is
 * kept as intermediates (signature/fulcio_cert.go, pki_cert.go).
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md and cosign's
 * pkg/cosign/bundle/{rekor,tsa}.go for the JSON shapes:
 *   {"SignedEntryTimestamp":"<b64>","Payload":{"body":"<b64>","integratedTime":N,"logIndex":N,"logID":"<hex>"}}
 *   {"SignedRFC3161Timestamp":"<b64 DER>"}
 * The layer's signature covers the payload bytes, and the entry's body (hashedrekord 0.0.1) names
 * SHA-256 of those bytes, the signature and the certificate or key; a timestamp covers the raw
 * signature bytes, as cosign's VerifyRFC3161Timestamp hashes them.
 */
import { SignatureError } from '../errors.ts';
import { fromBase64, fromHex } from '../encoding/base64.ts';
import { MAX_JSON_DEPTH, jsonDepthWithin } from '../encoding/json-depth.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { pemCertificates } from '../sigstore/private-pki.ts';
import { parseJsonObject, isJsonObject, uintField } from '../sigstore/json.ts';
import type { SigstoreBundle, TlogEntry } from '../sigstore/types.ts';
import { BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION } from './manifests.ts';

export const TIMESTAMP_ANNOTATION = 'dev.sigstore.cosign/rfc3161timestamp';

function bad(annotation: string, why: string): SignatureError {
  return new SignatureError(
    'SIGNATURE_ANNOTATION_INVALID',
    `The layer's ${annotation} annotation is not valid: ${why}.`,
  );
}

function rekorEntry(json: string, annotation: string): TlogEntry {
  const no = (why: string) => bad(annotation, why);
  const root = parseJsonObject(json, no);
  const set = typeof root.SignedEntryTimestamp === 'string' ? fromBase64(root.SignedEntryTimestamp) : null;
  if (!set || set.length === 0) throw no('its SignedEntryTimestamp is not base64');
  const p = isJsonObject(root.Payload) ? root.Payload : null;
  if (!p) throw no('it has no Payload');
  const body = typeof p.body === 'string' ? fromBase64(p.body) : null;
  if (!body) throw no("its Payload's body is not base64");
  const logId = typeof p.logID === 'string' ? fromHex(p.logID) : null;
  if (!logId) throw no("its Payload's logID is not hex");
  const text = new TextDecoder().decode(body);
  if (!jsonDepthWithin(text)) throw no(`its Payload's body is nested more than ${MAX_JSON_DEPTH} levels deep`);
  let kind: unknown;
  try {
    kind = JSON.parse(text);
  } catch {
    throw no("its Payload's body is not JSON");
  }
  const k = isJsonObject(kind) ? kind : {};
  return {
    logIndex: uintField(p.logIndex, 'the log index', no),
    logId,
    kindVersion: { kind: String(k.kind ?? ''), version: String(k.apiVersion ?? '') },
    integratedTime: uintField(p.integratedTime, 'the integrated time', no),
    inclusionPromise: { signedEntryTimestamp: set },
    canonicalizedBody: body,
  };
}

function timestamp(json: string): Uint8Array {
  const no = (why: string) => bad(TIMESTAMP_ANNOTATION, why);
  const root = parseJsonObject(json, no);
  const token = typeof root.SignedRFC3161Timestamp === 'string' ? fromBase64(root.SignedRFC3161Timestamp) : null;
  if (!token || token.length === 0) throw no('its SignedRFC3161Timestamp is not base64');
  return token;
}

/** The chain annotation as containers/image reads it: every certificate but the last. */
function containersChain(annotations: Record<string, string>): Uint8Array[] {
  const pem = annotations[CHAIN_ANNOTATION];
  if (pem === undefined || pem.trim() === '') return [];
  try {
    return pemCertificates(pem, 'chain annotation').slice(0, -1);
  } catch (e) {
    throw bad(CHAIN_ANNOTATION, (e as Error).message);
  }
}

/**
 * The layer's Sigstore material as a v0.1-style bundle over `payload` (the layer's blob), or null
 * when the layer carries neither a certificate, a log entry nor a timestamp.
 * @throws SignatureError SIGNATURE_ANNOTATION_INVALID when an annotation is malformed.
 */
export function legacySigstoreBundle(
  annotations: Record<string, string>,
  payload: Uint8Array,
  signature: Uint8Array,
  opts: { containers?: boolean } = {},
): SigstoreBundle | null {
  const certPem = annotations[CERTIFICATE_ANNOTATION];
  const rekor = annotations[BUNDLE_ANNOTATION];
  const ts = opts.containers ? undefined : annotations[TIMESTAMP_ANNOTATION];
  if (certPem === undefined && rekor === undefined && ts === undefined) return null;
  let signer: SigstoreBundle['signer'] = { kind: 'publicKey', hint: '' };
  if (certPem !== undefined) {
    let certs: Uint8Array[];
    try {
      certs = pemCertificates(certPem, 'certificate annotation');
    } catch (e) {
      throw bad(CERTIFICATE_ANNOTATION, (e as Error).message);
    }
    // The chain annotation is not used (trust comes from the trusted root or the private PKI given),
    // except as containers/image uses it: all but its last certificate, as untrusted intermediates.
    signer = {
      kind: 'certificate',
      certificate: certs[0]!,
      chain: opts.containers ? containersChain(annotations) : [],
    };
  }
  return {
    mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
    version: 1,
    signer,
    tlogEntries: rekor === undefined ? [] : [rekorEntry(rekor, BUNDLE_ANNOTATION)],
    rfc3161Timestamps: ts === undefined ? [] : [timestamp(ts)],
    content: { kind: 'messageSignature', signature, digest: { algorithm: 'SHA2_256', digest: sha256Bytes(payload) } },
  };
}
