/**
 * What a signing service may sign for a page: exactly the two byte strings shared/ops/sign.ts
 * hands its Signer, and nothing else, so a service holding a key (the relay's PKCS#11 endpoint)
 * is never an oracle for arbitrary bytes.
 *
 * - the simple-signing payload, byte for byte as `buildSimpleSigningPayload` (shared/cosign/payload.ts)
 *   writes it from its digest, identity and annotations, whose `docker-manifest-digest` is `sha256:`
 *   and 64 lower-case hex digits and whose `docker-reference` is an image reference in a registry
 *   the caller allows;
 * - the DSSE pre-authentication encoding (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md)
 *   `DSSEv1 <len> application/vnd.in-toto+json <len> <statement>`, byte for byte as `pae()` writes
 *   it, over the statement `buildSignStatement` (shared/cosign/dsse.ts) writes for its sha256 digest
 *   and annotations: predicate `https://sigstore.dev/cosign/sign/v1` with an empty predicate, one
 *   subject without a name.
 *
 * Digest and annotations are read from the bytes only to rebuild them; anything the builders would
 * not write the same way (another predicate, an extra field, a subject name, other key order or
 * spacing) is refused, so the check never has to understand more JSON than the page writes.
 */
import { Pkcs11Error } from '../errors.ts';
import { bytesEqual } from '../encoding/base64.ts';
import { isSha256Digest, parseReference } from '../registry/reference.ts';
import { buildSignStatement, COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, pae } from './dsse.ts';
import { buildSimpleSigningPayload } from './payload.ts';
import { isObject, parseStrictJson, type JsonValue } from './strict-json.ts';

export interface CheckedPayload {
  kind: 'simple-signing' | 'dsse-in-toto';
  /** `sha256:<64 hex>`: the image manifest the signature is for. */
  digest: string;
  /** The docker-reference of a simple-signing payload; null for a statement (its subject has no name). */
  identity: string | null;
}

/** Decides whether an image in `registry` (`host[:port]`, `docker.io` normalised) may be signed. */
export type RegistryAllowed = (registry: string) => boolean;

const DSSE_PREFIX = 'DSSEv1 ';

function refused(why: string): Pkcs11Error {
  return new Pkcs11Error(
    'PKCS11_PAYLOAD_REFUSED',
    `This is not something the server signs: ${why}. It signs only a cosign simple-signing payload or the DSSE encoding of a cosign signature statement.`,
    422,
  );
}

function digestInvalid(digest: string): Pkcs11Error {
  return new Pkcs11Error(
    'PKCS11_DIGEST_INVALID',
    `The image digest "${digest.slice(0, 80)}" is not sha256: followed by 64 lower-case hex digits.`,
    422,
  );
}

function checkIdentity(identity: string, allowed: RegistryAllowed): void {
  let registry: string;
  try {
    const ref = parseReference(identity);
    if (ref.digest !== undefined) throw new Error('digest');
    registry = ref.registry;
  } catch {
    throw refused(`the identity "${identity.slice(0, 200)}" is not an image reference (repository or repository:tag)`);
  }
  if (!allowed(registry)) {
    throw new Pkcs11Error(
      'PKCS11_REGISTRY_NOT_ALLOWED',
      `The image is in ${registry}, which this server is not configured to reach; it signs only images in the registries it serves.`,
      403,
    );
  }
}

/** Bytes as one character each (only ever compared against ASCII patterns). */
function ascii(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

/** Reads `DSSEv1 <len> <type> <len> <body>`; lengths are decimal without leading zeros. */
function splitPae(bytes: Uint8Array): { type: string; body: Uint8Array } {
  const text = ascii(bytes.subarray(0, 256));
  const m = /^DSSEv1 (0|[1-9][0-9]{0,5}) /.exec(text);
  if (!m) throw refused('the DSSE encoding does not start with "DSSEv1 <length> "');
  const typeStart = m[0].length;
  const typeLen = Number(m[1]);
  const typeBytes = bytes.subarray(typeStart, typeStart + typeLen);
  const type = new TextDecoder().decode(typeBytes);
  const after = ascii(bytes.subarray(typeStart + typeLen, typeStart + typeLen + 12));
  const n = /^ (0|[1-9][0-9]{0,9}) /.exec(after);
  if (typeBytes.length !== typeLen || !n) throw refused('the DSSE encoding is malformed');
  const bodyStart = typeStart + typeLen + n[0].length;
  const body = bytes.subarray(bodyStart);
  if (body.length !== Number(n[1])) throw refused('the DSSE payload length does not match');
  return { type, body };
}

function readJson(bytes: Uint8Array, what: string): Record<string, JsonValue> {
  let root: JsonValue;
  try {
    root = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw refused(`the ${what} is not strict JSON`);
  }
  if (!isObject(root)) throw refused(`the ${what} is not a JSON object`);
  return root;
}

/** String-valued annotations, as the builders take them; undefined when a value is not a string. */
function stringMap(v: JsonValue | undefined): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  const entries = Object.entries(v);
  if (!entries.every((e): e is [string, string] => typeof e[1] === 'string')) return undefined;
  // fromEntries defines own properties, so a key like "__proto__" is kept, not set as a prototype.
  return Object.fromEntries(entries);
}

function checkStatement(body: Uint8Array): string {
  const root = readJson(body, 'statement');
  if (root.predicateType !== COSIGN_SIGN_PREDICATE) {
    const p = typeof root.predicateType === 'string' ? root.predicateType : String(root.predicateType);
    throw refused(`the statement's predicate type is "${p.slice(0, 100)}", not a cosign signature`);
  }
  const subjects = root.subject;
  if (!Array.isArray(subjects) || subjects.length !== 1)
    throw refused('the statement does not have exactly one subject');
  const subject = subjects[0];
  if (!isObject(subject) || !isObject(subject.digest)) throw refused('the statement subject has no digest');
  const digests = subject.digest;
  const algorithms = Object.keys(digests);
  const hex = digests.sha256;
  if (algorithms.length !== 1 || typeof hex !== 'string') {
    throw digestInvalid(algorithms.map((a) => `${a}:${String(digests[a])}`).join(', '));
  }
  const digest = `sha256:${hex}`;
  if (!isSha256Digest(digest)) throw digestInvalid(digest);
  const annotations = stringMap(subject.annotations ?? {});
  if (annotations === undefined || !bytesEqual(buildSignStatement(digest, annotations), body)) {
    throw refused('the statement is not, byte for byte, the cosign signature statement for its digest and annotations');
  }
  return digest;
}

function checkSimpleSigning(bytes: Uint8Array, allowed: RegistryAllowed): CheckedPayload {
  const root = readJson(bytes, 'payload');
  const critical = root.critical;
  const image = isObject(critical) ? critical.image : undefined;
  const identityField = isObject(critical) ? critical.identity : undefined;
  const digest = isObject(image) ? image['docker-manifest-digest'] : undefined;
  const identity = isObject(identityField) ? identityField['docker-reference'] : undefined;
  if (typeof digest !== 'string' || typeof identity !== 'string') {
    throw refused('the payload lacks a string docker-manifest-digest or docker-reference');
  }
  // A digest of the wrong form gets its own code, before the payload is compared as a whole.
  if (!isSha256Digest(digest)) throw digestInvalid(digest);
  // The page writes `optional: null` without annotations and a string map with them.
  const annotations = root.optional === null ? {} : stringMap(root.optional);
  if (annotations === undefined || !bytesEqual(buildSimpleSigningPayload(identity, digest, annotations), bytes)) {
    throw refused('the payload is not, byte for byte, the cosign simple-signing payload for its digest and identity');
  }
  checkIdentity(identity, allowed);
  return { kind: 'simple-signing', digest, identity };
}

/**
 * Checks that `bytes` is one of the two things the page signs, for an image in an allowed registry.
 * @throws Pkcs11Error PKCS11_PAYLOAD_REFUSED (422) for anything else, PKCS11_DIGEST_INVALID (422)
 *   for a digest that is not sha256 with 64 lower-case hex digits, PKCS11_REGISTRY_NOT_ALLOWED
 *   (403) for an image in a registry `allowed` refuses
 */
export function checkSigningPayload(bytes: Uint8Array, allowed: RegistryAllowed): CheckedPayload {
  if (bytes.length === 0) throw refused('it is empty');
  const head = ascii(bytes.subarray(0, DSSE_PREFIX.length));
  if (head === DSSE_PREFIX) {
    const { type, body } = splitPae(bytes);
    if (type !== IN_TOTO_PAYLOAD_TYPE) throw refused(`the DSSE payload type is "${type.slice(0, 80)}"`);
    // Canonical: exactly what pae() writes for this body.
    if (!bytesEqual(pae(IN_TOTO_PAYLOAD_TYPE, body), bytes)) throw refused('the DSSE encoding is not canonical');
    return { kind: 'dsse-in-toto', digest: checkStatement(body), identity: null };
  }
  if (bytes[0] !== 0x7b /* { */) throw refused('it is neither JSON nor a DSSE encoding');
  return checkSimpleSigning(bytes, allowed);
}
