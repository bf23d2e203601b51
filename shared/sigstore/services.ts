/**
 * Talking to the Sigstore services a signature is logged and timestamped by, with a `fetch` passed
 * in (the page's goes through the relay; tests' straight to loopback):
 *
 * - Rekor v2 (rekor-tiles): `POST <url>/api/v2/log/entries` with a `hashedRekordRequestV002` —
 *   the SHA-256 digest the signature is over, the signature and the public key (DER SPKI with its
 *   protobuf-specs key details) — answered 201 with a TransparencyLogEntry (inclusion proof and
 *   checkpoint; no SET, no integrated time). https://github.com/sigstore/rekor-tiles/blob/main/CLIENTS.md
 * - Rekor v1: `POST <url>/api/v1/log/entries` with a proposed entry (a `hashedrekord` 0.0.1 for a
 *   legacy `.sig` signature, a `dsse` 0.0.1 for a bundle's envelope, as cosign 3.1 and sigstore-go
 *   upload them), answered 201 with `{"<uuid>": LogEntry}`: the canonicalized body, integrated
 *   time, log id (hex), index, and its verification (signed entry timestamp, inclusion proof with
 *   a checkpoint). 409 when the entry is already logged. https://github.com/sigstore/rekor/blob/main/openapi.yaml
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
import { fromBase64, fromHex, toBase64, toHex, utf8 } from '../encoding/base64.ts';
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
export function rekorKeyDetails(algorithm: KeyAlgorithm, version = 2): string {
  if (algorithm.kind === 'ecdsa' && algorithm.curve === 'P-256') return 'PKIX_ECDSA_P256_SHA_256';
  throw new SigningServiceError(
    'SIGNING_TLOG_KEY_UNSUPPORTED',
    `Only ECDSA P-256 keys (what cosign generate-key-pair makes) can be logged to Rekor v${version} from this page yet.`,
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

/** A Rekor v1 entry in both forms a signature carries it. */
export interface RekorV1Entry {
  /** As a bundle's `verificationMaterial.tlogEntries[]` holds it (what sigstore-go's tle package makes). */
  bundle: TlogEntryJson;
  /**
   * As a legacy layer's `dev.sigstore.cosign/bundle` holds it (cosign pkg/cosign/bundle RekorBundle):
   * the SET and the signed fields, the body kept as the log's base64 and the log id as its hex.
   */
  legacy: { signedEntryTimestamp: string; body: string; integratedTime: number; logIndex: number; logId: string };
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** The fields of one Rekor v1 LogEntry (openapi.yaml `LogEntry`, `InclusionProof`), each checked. */
function v1Fields(e: JsonObject, invalid: (why: string) => never) {
  const obj = (v: unknown, where: string): JsonObject => (isJsonObject(v) ? v : invalid(`${where} is missing`));
  const uint = (v: unknown, where: string): number =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : invalid(`${where} is not a non-negative integer`);
  const hex = (v: unknown, where: string): string =>
    typeof v === 'string' && HEX64.test(v) ? v.toLowerCase() : invalid(`${where} is not 64 hex digits`);
  const b64 = (v: unknown, where: string): Uint8Array => {
    const bytes = typeof v === 'string' ? fromBase64(v) : null;
    return bytes && bytes.length > 0 ? bytes : invalid(`${where} is not base64`);
  };
  const verification = obj(e.verification, 'its verification');
  const proof = obj(verification.inclusionProof, 'its inclusion proof');
  const hashes = Array.isArray(proof.hashes) ? proof.hashes : invalid("its proof's hashes are not a list");
  const checkpoint = typeof proof.checkpoint === 'string' ? proof.checkpoint : invalid('its checkpoint is missing');
  const treeSize = uint(proof.treeSize, "its proof's tree size");
  if (treeSize < 1) invalid("its proof's tree size is 0");
  return {
    body: b64(e.body, 'its body'),
    integratedTime: uint(e.integratedTime, 'its integratedTime'),
    logId: hex(e.logID, 'its logID'),
    logIndex: uint(e.logIndex, 'its logIndex'),
    set: b64(verification.signedEntryTimestamp, 'its signedEntryTimestamp'),
    proof: {
      logIndex: uint(proof.logIndex, "its proof's logIndex"),
      rootHash: hex(proof.rootHash, "its proof's root hash"),
      treeSize,
      hashes: hashes.map((h, i) => hex(h, `its proof's hash ${i}`)),
      checkpoint,
    },
  };
}

/** The kind and API version a canonicalized body names. */
function bodyKind(body: Uint8Array, invalid: (why: string) => never): { kind: string; version: string } {
  const j = parseJsonObject(body, (why) => invalid(`its body is not a JSON object (${why})`));
  if (typeof j.kind !== 'string' || typeof j.apiVersion !== 'string') invalid('its body names no kind and apiVersion');
  return { kind: j.kind, version: j.apiVersion };
}

/**
 * Reads Rekor v1's answer to a new entry: one `{"<uuid>": LogEntry}` with every field the two forms
 * need, of the right type. Nothing is verified here (the caller verifies against the trusted root).
 * @throws SigningServiceError SIGNING_TLOG_ANSWER_INVALID
 */
export function parseRekorV1Answer(bytes: Uint8Array, url: string): RekorV1Entry {
  const invalid = (why: string): never =>
    fail('TLOG', 'ANSWER_INVALID', `The transparency log at ${url} answered an entry that is not valid: ${why}.`);
  const answer = parseJsonObject(bytes, (why) => invalid(`it is not an entry (${why})`));
  const uuids = Object.keys(answer);
  if (uuids.length !== 1) invalid(`it holds ${uuids.length} entries, not one`);
  const e = answer[uuids[0]!];
  if (!isJsonObject(e)) invalid('its entry is not an object');
  const f = v1Fields(e as JsonObject, invalid);
  const body = toBase64(f.body);
  const b64OfHex = (h: string) => toBase64(fromHex(h)!);
  return {
    bundle: {
      logIndex: String(f.logIndex),
      logId: { keyId: b64OfHex(f.logId) },
      kindVersion: bodyKind(f.body, invalid),
      integratedTime: String(f.integratedTime),
      inclusionPromise: { signedEntryTimestamp: toBase64(f.set) },
      inclusionProof: {
        logIndex: String(f.proof.logIndex),
        rootHash: b64OfHex(f.proof.rootHash),
        treeSize: String(f.proof.treeSize),
        hashes: f.proof.hashes.map(b64OfHex),
        checkpoint: { envelope: f.proof.checkpoint },
      },
      canonicalizedBody: body,
    },
    legacy: {
      signedEntryTimestamp: toBase64(f.set),
      body,
      integratedTime: f.integratedTime,
      logIndex: f.logIndex,
      logId: f.logId,
    },
  };
}

/**
 * A `hashedrekord` 0.0.1 proposed entry, as cosign logs a legacy signature: SHA-256 of the signed
 * bytes (hex), the signature, and the signer's PEM (public key, or certificate when keyless).
 */
export function hashedRekordV001(sha256: Uint8Array, signature: Uint8Array, signerPem: string): JsonObject {
  return {
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: 'sha256', value: toHex(sha256) } },
      signature: { content: toBase64(signature), publicKey: { content: toBase64(utf8(signerPem)) } },
    },
  };
}

/**
 * A `dsse` 0.0.1 proposed entry, as sigstore-go's sign package (cosign 3.1) logs a bundle's DSSE
 * envelope to a v1 log: the envelope's JSON (`json.Marshal` of the protobuf Envelope: payload,
 * payloadType, signatures with sig) and the signer's PEM as its one verifier.
 */
export function dsseV001(
  envelope: { payload: Uint8Array; payloadType: string; signature: Uint8Array },
  signerPem: string,
): JsonObject {
  const json = JSON.stringify({
    payload: toBase64(envelope.payload),
    payloadType: envelope.payloadType,
    signatures: [{ sig: toBase64(envelope.signature) }],
  });
  return {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: { proposedContent: { envelope: json, verifiers: [toBase64(utf8(signerPem))] } },
  };
}

/**
 * Logs a proposed entry to a Rekor v1 log.
 * @param baseUrl the log's URL from the signing config (`https://rekor.sigstore.dev`).
 * @returns the entry in its bundle and legacy forms (not yet verified).
 * @throws SigningServiceError SIGNING_TLOG_UNREACHABLE, SIGNING_TLOG_REFUSED (an error status,
 *   409 for an entry already logged), SIGNING_TLOG_ANSWER_INVALID.
 */
export async function logToRekorV1(f: ServiceFetch, baseUrl: string, proposedEntry: JsonObject): Promise<RekorV1Entry> {
  const url = `${baseUrl.replace(/\/+$/, '')}/api/v1/log/entries`;
  const r = await post('TLOG', f, url, JSON.stringify(proposedEntry), {
    'Content-Type': 'application/json',
    Accept: 'application/json',
  });
  if (r.status !== 201 && r.status !== 200) refused('TLOG', url, r.status, r.bytes);
  return parseRekorV1Answer(r.bytes, url);
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
