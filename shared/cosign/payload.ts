/**
 * The simple-signing payload of cosign's legacy `.sig` signatures ("cosign container image
 * signature"), built byte for byte as cosign builds it and read as strictly as containers/image
 * reads it (signature/internal/sigstore_payload.go): `critical` has exactly `type`, `image`,
 * `identity`; `image` exactly `docker-manifest-digest`; `identity` exactly `docker-reference`;
 * `optional` null or an object whose `creator` is a string and `timestamp` an integer; duplicate
 * keys anywhere are refused.
 */
import { SignatureError } from '../errors.ts';
import { JsonNumber, isObject, parseStrictJson, goJson, StrictJsonError, type JsonValue } from './strict-json.ts';

export const SIMPLE_SIGNING_TYPE = 'cosign container image signature';

export interface SimpleSigningPayload {
  dockerReference: string;
  manifestDigest: string;
  /** null, as cosign writes without annotations; or the annotations / skopeo's creator+timestamp. */
  optional: Record<string, JsonValue> | null;
}

/**
 * Builds the payload bytes as cosign 2.x does: compact JSON, fields in struct order, `optional`
 * null without annotations, or the annotations with keys sorted (Go marshals maps sorted).
 */
export function buildSimpleSigningPayload(
  dockerReference: string,
  manifestDigest: string,
  annotations: Record<string, string> = {},
): Uint8Array {
  const keys = Object.keys(annotations).sort();
  const optional = keys.length === 0 ? null : Object.fromEntries(keys.map((k) => [k, annotations[k]]));
  return new TextEncoder().encode(
    goJson({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': manifestDigest },
        type: SIMPLE_SIGNING_TYPE,
      },
      optional,
    }),
  );
}

function invalid(why: string): SignatureError {
  return new SignatureError(
    'SIGNATURE_PAYLOAD_INVALID',
    `The signed payload is not a valid cosign signature payload: ${why}.`,
  );
}

function exactFields(v: JsonValue | undefined, where: string, fields: string[]): Record<string, JsonValue> {
  if (!isObject(v)) throw invalid(`"${where}" is not an object`);
  const keys = Object.keys(v);
  for (const k of keys) if (!fields.includes(k)) throw invalid(`"${where}" has an unexpected field "${k}"`);
  for (const f of fields) if (!(f in v)) throw invalid(`"${where}" lacks "${f}"`);
  return v;
}

function str(v: JsonValue | undefined, where: string): string {
  if (typeof v !== 'string') throw invalid(`"${where}" is not a string`);
  return v;
}

/**
 * Reads a payload as containers/image does.
 * @throws SignatureError SIGNATURE_PAYLOAD_INVALID with the reason.
 */
export function parseSimpleSigningPayload(bytes: Uint8Array): SimpleSigningPayload {
  let root: JsonValue;
  try {
    root = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw invalid(e instanceof StrictJsonError ? `it is not strict JSON (${e.message})` : 'it is not UTF-8 text');
  }
  const top = exactFields(root, 'payload', ['critical', 'optional']);
  let optional: Record<string, JsonValue> | null = null;
  if (top.optional !== null) {
    if (!isObject(top.optional)) throw invalid('"optional" is neither null nor an object');
    optional = top.optional;
    if ('creator' in optional) str(optional.creator, 'optional.creator');
    if ('timestamp' in optional) {
      const t = optional.timestamp;
      if (!(t instanceof JsonNumber) || !t.isInteger()) throw invalid('"optional.timestamp" is not an integer');
    }
  }
  const critical = exactFields(top.critical, 'critical', ['type', 'image', 'identity']);
  const type = str(critical.type, 'critical.type');
  if (type !== SIMPLE_SIGNING_TYPE) throw invalid(`the signature type is "${type}", not "${SIMPLE_SIGNING_TYPE}"`);
  const image = exactFields(critical.image, 'critical.image', ['docker-manifest-digest']);
  const manifestDigest = str(image['docker-manifest-digest'], 'critical.image.docker-manifest-digest');
  if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(manifestDigest))
    throw invalid(`"${manifestDigest}" is not a digest`);
  const identity = exactFields(critical.identity, 'critical.identity', ['docker-reference']);
  const dockerReference = str(identity['docker-reference'], 'critical.identity.docker-reference');
  return { dockerReference, manifestDigest, optional };
}

/** The string-valued annotations of `optional` (what `cosign sign -a` writes), for display and checks. */
export function payloadAnnotations(p: SimpleSigningPayload): Record<string, string> {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(p.optional ?? {})) {
    if (typeof v === 'string') out.push([k, v]);
    else if (v instanceof JsonNumber) out.push([k, v.text]);
    else if (typeof v === 'boolean') out.push([k, String(v)]);
  }
  // fromEntries defines own properties: an annotation named "__proto__" stays an annotation
  // instead of replacing the result's prototype (found by the round-trip property test).
  return Object.fromEntries(out);
}
