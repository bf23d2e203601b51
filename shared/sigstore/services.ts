/**
 * Talking to the Sigstore services a signature is logged and timestamped by, with a `fetch` passed
 * in (the page's goes through the relay; tests' straight to loopback):
 *
 * - Rekor v2 (rekor-tiles): `POST <url>/api/v2/log/entries` with a `hashedRekordRequestV002` —
 *   the SHA-256 digest the signature is over, the signature and the public key (DER SPKI with its
 *   protobuf-specs key details) — answered 201 with a TransparencyLogEntry (inclusion proof and
 *   checkpoint; no SET, no integrated time). https://github.com/sigstore/rekor-tiles/blob/main/CLIENTS.md
 * - A timestamp authority: `POST <url>` (`.../api/v1/timestamp`) with an RFC 3161 TimeStampReq
 *   (`application/timestamp-query`) over SHA-256 of the signature bytes, a random nonce and
 *   certReq, answered with a TimeStampResp (`application/timestamp-reply`), kept whole as
 *   cosign keeps it. https://www.rfc-editor.org/rfc/rfc3161#section-2.4
 *
 * Nothing here trusts an answer: the caller verifies each against the trusted root (the whole
 * bundle, with shared/sigstore/verify-bundle.ts) before anything is pushed. What is checked here
 * is only the answer's shape, so that a malformed one has its own code.
 */
import { SigningServiceError } from '../errors.ts';
import { toBase64 } from '../encoding/base64.ts';
import { der } from '../encoding/der.ts';
import type { KeyAlgorithm } from '../crypto/pkcs.ts';
import { randomBytes } from '../crypto/webcrypto.ts';
import { isJsonObject, parseJsonObject, type JsonObject } from './json.ts';

/**
 * The fetch the services are reached with (the page's relays each URL, and throws when the relay
 * itself could not reach the service, so that it counts as unreachable).
 */
export type ServiceFetch = (url: string, init: RequestInit) => Promise<Response>;

/** Largest answer read from a log or a timestamp authority (an entry or a token is a few KiB). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** A log entry exactly as a bundle's `verificationMaterial.tlogEntries[]` holds it (protobuf JSON). */
export type TlogEntryJson = JsonObject;

type Service = 'TLOG' | 'TSA';
const NAMES: Record<Service, string> = { TLOG: 'transparency log', TSA: 'timestamp authority' };

function fail(service: Service, kind: 'UNREACHABLE' | 'REFUSED' | 'ANSWER_INVALID', message: string): never {
  throw new SigningServiceError(`SIGNING_${service}_${kind}`, message);
}

/**
 * protobuf-specs PublicKeyDetails for a signing key, as Rekor v2 takes it. Only ECDSA P-256 (with
 * SHA-256, which every cosign signature uses) is offered: the digest logged must be the one the
 * key's details name, and the page signs every key with SHA-256.
 * @throws SigningServiceError SIGNING_TLOG_KEY_UNSUPPORTED
 */
export function rekorKeyDetails(algorithm: KeyAlgorithm): string {
  if (algorithm.kind === 'ecdsa' && algorithm.curve === 'P-256') return 'PKIX_ECDSA_P256_SHA_256';
  throw new SigningServiceError(
    'SIGNING_TLOG_KEY_UNSUPPORTED',
    'Only ECDSA P-256 keys (what cosign generate-key-pair makes) can be logged to Rekor v2 from this page yet.',
  );
}

/** POSTs and reads the answer's bytes; a fetch that throws is UNREACHABLE. */
async function post(
  service: Service,
  f: ServiceFetch,
  url: string,
  body: Uint8Array | string,
  headers: Record<string, string>,
): Promise<{ status: number; bytes: Uint8Array; headers: Headers }> {
  const name = NAMES[service];
  let res: Response;
  try {
    res = await f(url, { method: 'POST', headers, body: body as BodyInit });
  } catch (e) {
    fail(service, 'UNREACHABLE', `The ${name} at ${url} cannot be reached: ${(e as Error)?.message ?? String(e)}.`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > MAX_ANSWER_BYTES) fail(service, 'ANSWER_INVALID', `The ${name} at ${url} answered too much.`);
  const bytes = new Uint8Array(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
  if (bytes.length > MAX_ANSWER_BYTES) fail(service, 'ANSWER_INVALID', `The ${name} at ${url} answered too much.`);
  return { status: res.status, bytes, headers: res.headers };
}

/** The first line of an error answer, for the sentence (services answer `{"code","message"}` or text). */
function answerText(bytes: Uint8Array): string {
  const text = new TextDecoder().decode(bytes.subarray(0, 400)).trim();
  try {
    const j = JSON.parse(text) as { message?: unknown };
    if (typeof j?.message === 'string') return j.message;
  } catch {
    // not JSON: the text itself
  }
  return text.split('\n')[0] ?? '';
}

function refused(service: Service, url: string, status: number, bytes: Uint8Array): never {
  const why = answerText(bytes);
  fail(
    service,
    'REFUSED',
    `The ${NAMES[service]} at ${url} refused the request (HTTP ${status}${why ? `: ${why}` : ''}).`,
  );
}

/** What is logged: the digest the signature is over, the signature, the signer's key. */
export interface LogRequest {
  /** SHA-256 of the signed bytes (for a DSSE envelope: of its PAE). */
  digest: Uint8Array;
  signature: Uint8Array;
  spki: Uint8Array;
  algorithm: KeyAlgorithm;
  /** The signer's certificate (DER), logged as the verifier instead of the bare key (keyless). */
  certificate?: Uint8Array;
}

/** The shape of a TransparencyLogEntry: the fields a bundle keeps, each of the right type. */
function entryShape(j: JsonObject, url: string): TlogEntryJson {
  const invalid = (why: string): never =>
    fail('TLOG', 'ANSWER_INVALID', `The transparency log at ${url} answered an entry that is not valid: ${why}.`);
  const str = (v: unknown, where: string): string => (typeof v === 'string' ? v : invalid(`${where} is missing`));
  const obj = (v: unknown, where: string): JsonObject => (isJsonObject(v) ? v : invalid(`${where} is missing`));
  const logId = obj(j.logId, 'its logId');
  const kv = obj(j.kindVersion, 'its kindVersion');
  const proof = obj(j.inclusionProof, 'its inclusion proof');
  const checkpoint = obj(proof.checkpoint, 'its checkpoint');
  const hashes = proof.hashes ?? [];
  if (!Array.isArray(hashes) || hashes.some((h) => typeof h !== 'string')) invalid('its proof hashes are not a list');
  return {
    logIndex: str(j.logIndex ?? '0', 'its logIndex'),
    logId: { keyId: str(logId.keyId, 'its log id') },
    kindVersion: { kind: str(kv.kind, 'its kind'), version: str(kv.version, 'its version') },
    ...(j.integratedTime !== undefined ? { integratedTime: str(j.integratedTime, 'its integratedTime') } : {}),
    inclusionProof: {
      logIndex: str(proof.logIndex ?? '0', "its proof's logIndex"),
      rootHash: str(proof.rootHash, "its proof's root hash"),
      treeSize: str(proof.treeSize, "its proof's tree size"),
      hashes,
      checkpoint: { envelope: str(checkpoint.envelope, 'its checkpoint') },
    },
    canonicalizedBody: str(j.canonicalizedBody, 'its body'),
  };
}

/**
 * Logs a signature to a Rekor v2 log as a hashedrekord 0.0.2 entry.
 * @param baseUrl the log's URL from the signing config (`https://log2025-1.rekor.sigstore.dev`).
 * @returns the entry as a bundle carries it (not yet verified).
 * @throws SigningServiceError SIGNING_TLOG_UNREACHABLE, SIGNING_TLOG_REFUSED (an error status,
 *   409 for an entry already logged), SIGNING_TLOG_ANSWER_INVALID, SIGNING_TLOG_KEY_UNSUPPORTED.
 */
export async function logToRekorV2(f: ServiceFetch, baseUrl: string, req: LogRequest): Promise<TlogEntryJson> {
  const url = `${baseUrl.replace(/\/+$/, '')}/api/v2/log/entries`;
  const body = JSON.stringify({
    hashedRekordRequestV002: {
      digest: toBase64(req.digest),
      signature: {
        content: toBase64(req.signature),
        verifier: {
          ...(req.certificate
            ? { x509Certificate: { rawBytes: toBase64(req.certificate) } }
            : { publicKey: { rawBytes: toBase64(req.spki) } }),
          keyDetails: rekorKeyDetails(req.algorithm),
        },
      },
    },
  });
  const r = await post('TLOG', f, url, body, { 'Content-Type': 'application/json', Accept: 'application/json' });
  if (r.status !== 200 && r.status !== 201) refused('TLOG', url, r.status, r.bytes);
  const j = parseJsonObject(r.bytes, (why) =>
    fail('TLOG', 'ANSWER_INVALID', `The transparency log at ${url} answered what is not an entry: ${why}.`),
  );
  return entryShape(j, url);
}

const SHA256_OID = '2.16.840.1.101.3.4.2.1';

/** A DER TimeStampReq v1 over a SHA-256 digest, with a nonce, asking for the signer's certificate. */
export function timestampRequest(sha256: Uint8Array, nonce: Uint8Array): Uint8Array {
  return der.seq(
    der.small(1),
    der.seq(der.seq(der.oid(SHA256_OID), der.null()), der.octets(sha256)),
    der.uint(nonce),
    // certReq BOOLEAN TRUE
    new Uint8Array([0x01, 0x01, 0xff]),
  );
}

/**
 * Asks a timestamp authority for an RFC 3161 timestamp over SHA-256 of `signature`.
 * @param sha256 SHA-256 of the signature bytes (the imprint).
 * @returns the DER TimeStampResp, as bundles and cosign's `rfc3161timestamp` annotation keep it
 *   (not yet verified). The imprint is of a fresh signature, so an old answer replayed cannot match
 *   it; the nonce is sent as cosign sends one.
 * @throws SigningServiceError SIGNING_TSA_UNREACHABLE, SIGNING_TSA_REFUSED, SIGNING_TSA_ANSWER_INVALID
 */
export async function requestTimestamp(f: ServiceFetch, url: string, sha256: Uint8Array): Promise<Uint8Array> {
  const nonce = randomBytes(8);
  nonce[0]! &= 0x7f;
  const r = await post('TSA', f, url, timestampRequest(sha256, nonce), {
    'Content-Type': 'application/timestamp-query',
    Accept: 'application/timestamp-reply',
  });
  if (r.status !== 200 && r.status !== 201) refused('TSA', url, r.status, r.bytes);
  // A TimeStampResp is a DER SEQUENCE; what it holds is verified by the caller.
  if (r.bytes.length < 8 || r.bytes[0] !== 0x30)
    fail('TSA', 'ANSWER_INVALID', `The timestamp authority at ${url} answered what is not an RFC 3161 response.`);
  return r.bytes;
}
