/**
 * What a signing service may sign for a page: exactly the two byte strings shared/cosign/sign.ts
 * hands its Signer, and nothing else, so a service holding a key (the relay's PKCS#11 endpoint)
 * is never an oracle for arbitrary bytes.
 *
 * - the simple-signing payload (shared/cosign/payload.ts), read as strictly as containers/image
 *   reads it, whose `docker-manifest-digest` is `sha256:` and 64 lower-case hex digits and whose
 *   `docker-reference` is an image reference in a registry the caller allows;
 * - the DSSE pre-authentication encoding (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md)
 *   `DSSEv1 <len> application/vnd.in-toto+json <len> <statement>`, byte for byte as `pae()` writes
 *   it, over an in-toto statement with predicate `https://sigstore.dev/cosign/sign/v1` (a
 *   signature, not an attestation of something else) and exactly one subject whose only digest is
 *   a sha256 one. cosign 3.1 and the page write the subject without a name; when a name is there,
 *   it must be a reference in an allowed registry.
 */
import { Pkcs11Error } from '../errors.ts';
import { bytesEqual } from '../encoding/base64.ts';
import { parseReference } from '../registry/reference.ts';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, pae, parseStatement, STATEMENT_V1 } from './dsse.ts';
import { parseSimpleSigningPayload } from './payload.ts';
import { isObject, parseStrictJson, type JsonValue } from './strict-json.ts';

export interface CheckedPayload {
  kind: 'simple-signing' | 'dsse-in-toto';
  /** `sha256:<64 hex>`: the image manifest the signature is for. */
  digest: string;
  /** The docker-reference of a simple-signing payload, or the statement subject's name; null without one. */
  identity: string | null;
}

/** Decides whether an image in `registry` (`host[:port]`, `docker.io` normalised) may be signed. */
export type RegistryAllowed = (registry: string) => boolean;

const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;
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

function checkStatementShape(root: JsonValue): void {
  if (!isObject(root)) throw refused('the statement is not a JSON object');
  for (const k of Object.keys(root)) {
    if (!['_type', 'subject', 'predicateType', 'predicate'].includes(k)) {
      throw refused(`the statement has a field "${k.slice(0, 40)}" a cosign signature statement does not have`);
    }
  }
  if (root._type !== STATEMENT_V1) throw refused(`the statement is not an in-toto Statement v1`);
}

function claimedDigest(bytes: Uint8Array): string | undefined {
  try {
    const root = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    const critical = isObject(root) ? root.critical : undefined;
    const image = critical !== undefined && isObject(critical) ? critical.image : undefined;
    const digest = image !== undefined && isObject(image) ? image['docker-manifest-digest'] : undefined;
    return typeof digest === 'string' ? digest : undefined;
  } catch {
    return undefined;
  }
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
    let root: JsonValue;
    try {
      root = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(body));
    } catch {
      throw refused('the statement is not strict JSON');
    }
    checkStatementShape(root);
    let statement;
    try {
      statement = parseStatement(body);
    } catch (e) {
      throw refused(e instanceof Error ? e.message.replace(/\.$/, '') : 'the statement is invalid');
    }
    if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
      throw refused(`the statement's predicate is "${statement.predicateType.slice(0, 100)}", not a cosign signature`);
    }
    if (statement.subjects.length !== 1) throw refused('the statement has more than one subject');
    const subject = statement.subjects[0]!;
    const algorithms = Object.keys(subject.digests);
    if (algorithms.length !== 1 || algorithms[0] !== 'sha256') {
      throw digestInvalid(algorithms.map((a) => `${a}:${subject.digests[a]}`).join(', '));
    }
    const digest = `sha256:${subject.digests['sha256']}`;
    if (!SHA256_DIGEST.test(digest)) throw digestInvalid(digest);
    if (subject.name !== undefined) checkIdentity(subject.name, allowed);
    return { kind: 'dsse-in-toto', digest, identity: subject.name ?? null };
  }
  if (bytes[0] !== 0x7b /* { */) throw refused('it is neither JSON nor a DSSE encoding');
  // A digest of the wrong form gets its own code, before the strict parse refuses it more vaguely.
  const claimed = claimedDigest(bytes);
  if (claimed !== undefined && !SHA256_DIGEST.test(claimed)) throw digestInvalid(claimed);
  let payload;
  try {
    payload = parseSimpleSigningPayload(bytes);
  } catch (e) {
    throw refused(e instanceof Error ? e.message.replace(/\.$/, '') : 'the payload is invalid');
  }
  if (!SHA256_DIGEST.test(payload.manifestDigest)) throw digestInvalid(payload.manifestDigest);
  checkIdentity(payload.dockerReference, allowed);
  return { kind: 'simple-signing', digest: payload.manifestDigest, identity: payload.dockerReference };
}
