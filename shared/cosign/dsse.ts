/**
 * DSSE envelopes (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md) and the
 * in-toto Statement v1 that cosign 3.x signs for an image: subject = the image digest (no name),
 * predicateType https://sigstore.dev/cosign/sign/v1, predicate {}; `cosign sign -a k=v` puts the
 * annotations into `subject[0].annotations`. The signature is over the pre-authentication
 * encoding, never over the raw payload.
 */
import { SignatureError } from '../errors.ts';
import { utf8 } from '../encoding/base64.ts';
import { isObject, parseStrictJson, goJson, StrictJsonError, stringFields, type JsonValue } from './strict-json.ts';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

export { pae } from '../encoding/pae.ts';

/** The statement bytes cosign 3.1 signs for an image digest (`sha256:<hex>`). */
export function buildSignStatement(manifestDigest: string, annotations: Record<string, string> = {}): Uint8Array {
  const [alg, hex] = manifestDigest.split(':') as [string, string];
  const sorted = Object.fromEntries(
    Object.keys(annotations)
      .sort()
      .map((k) => [k, annotations[k]]),
  );
  return utf8(
    goJson({
      _type: STATEMENT_V1,
      subject: [{ digest: { [alg]: hex }, annotations: sorted }],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
  );
}

export interface Statement {
  predicateType: string;
  subjects: { name?: string; digests: Record<string, string>; annotations: Record<string, string> }[];
  predicate: JsonValue;
}

function bad(why: string): SignatureError {
  return new SignatureError(
    'SIGNATURE_BUNDLE_INVALID',
    `The signed statement is not a valid in-toto statement: ${why}.`,
  );
}

/**
 * Reads an in-toto statement (v1, or v0.1 as older tools write).
 * @throws SignatureError SIGNATURE_BUNDLE_INVALID
 */
export function parseStatement(bytes: Uint8Array): Statement {
  let root: JsonValue;
  try {
    root = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw bad(e instanceof StrictJsonError ? `not strict JSON (${e.message})` : 'not UTF-8');
  }
  if (!isObject(root)) throw bad('not an object');
  if (root._type !== STATEMENT_V1 && root._type !== 'https://in-toto.io/Statement/v0.1')
    throw bad(`unknown _type ${JSON.stringify(root._type)}`);
  if (typeof root.predicateType !== 'string') throw bad('no predicateType');
  if (!Array.isArray(root.subject) || root.subject.length === 0) throw bad('no subject');
  const subjects = root.subject.map((s, n) => {
    if (!isObject(s) || !isObject(s.digest)) throw bad(`subject ${n} has no digest`);
    for (const [k, v] of Object.entries(s.digest)) {
      if (typeof v !== 'string') throw bad(`subject ${n} digest ${k} is not a string`);
    }
    const digests = stringFields(s.digest);
    let annotations: Record<string, string> = {};
    if (s.annotations !== undefined && s.annotations !== null) {
      if (!isObject(s.annotations)) throw bad(`subject ${n} annotations are not an object`);
      annotations = stringFields(s.annotations);
    }
    return { ...(typeof s.name === 'string' ? { name: s.name } : {}), digests, annotations };
  });
  return { predicateType: root.predicateType, subjects, predicate: root.predicate ?? null };
}
