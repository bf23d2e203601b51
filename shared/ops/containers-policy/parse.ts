/**
 * A strict reader of containers-policy.json(5) text, as containers/image loads it
 * (signature/policy_config.go, policy_config_sigstore.go): a whole policy (`default`,
 * `transports`), one requirement object, or an array of requirements. Like its "paranoid" JSON
 * reading, a duplicate or unknown key anywhere is refused; each requirement type takes exactly its
 * fields; `sigstoreSigned` takes exactly one of keyPath/keyPaths/keyData/keyDatas/fulcio/pki, at most
 * one Rekor key form, a Rekor key with `fulcio` and none with `pki`; `signedIdentity` defaults to
 * matchRepoDigestOrExact and is checked as containers/image checks it. *Data fields are base64 of
 * the PEM text (Go's []byte in JSON). *Path forms are read and recorded: applying them is refused
 * later (apply.ts), since a browser cannot read the files they name. One difference: a JSON
 * `null` where containers/image would read an empty value is refused here.
 * https://github.com/containers/image/blob/main/docs/containers-policy.json.5.md
 */
import { PolicyError, VerificationError } from '../../errors.ts';
import { fromBase64 } from '../../encoding/base64.ts';
import { JsonNumber, StrictJsonError, isObject, parseStrictJson, type JsonValue } from '../../cosign/strict-json.ts';
import { IDENTITY_MODES, checkIdentityRule, type IdentityRule } from '../../cosign/identity.ts';
import type {
  ContainersPolicy,
  PolicyInput,
  Requirement,
  SignedIdentity,
  SigstoreSignedRequirement,
  SigstoreTrustSource,
} from './types.ts';

/** The largest policy text read (a policy with many inlined certificates stays far below). */
export const MAX_POLICY_CHARS = 512 * 1024;

type JsonObject = { [k: string]: JsonValue };

function invalid(why: string): PolicyError {
  return new PolicyError('POLICY_INVALID', `This is not a containers-policy.json containers/image would load: ${why}.`);
}

function describe(v: JsonValue): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof JsonNumber) return 'a number';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** `v` as an object holding only keys of `allowed` (every key of `required` present). */
function fields(v: JsonValue, where: string, allowed: readonly string[], required: readonly string[] = []): JsonObject {
  if (!isObject(v)) throw invalid(`${where} must be a JSON object, not ${describe(v)}`);
  for (const k of Object.keys(v))
    if (!allowed.includes(k)) throw invalid(`${where} has the unknown key ${JSON.stringify(k)}`);
  for (const k of required) if (!(k in v)) throw invalid(`${where} lacks ${JSON.stringify(k)}`);
  return v;
}

function str(o: JsonObject, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`${where}.${key} must be a string, not ${describe(v)}`);
  return v;
}

function list(o: JsonObject, key: string, where: string): JsonValue[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw invalid(`${where}.${key} must be an array, not ${describe(v)}`);
  if (v.length === 0) throw invalid(`${where}.${key} contains no entries`);
  return v;
}

function strList(o: JsonObject, key: string, where: string): string[] | undefined {
  return list(o, key, where)?.map((e, i) => {
    if (typeof e !== 'string') throw invalid(`${where}.${key}[${i}] must be a string, not ${describe(e)}`);
    return e;
  });
}

/** A *Data value: base64 (Go's []byte; line breaks skipped) of a PEM text. */
function pemText(v: JsonValue, where: string): string {
  if (typeof v !== 'string') throw invalid(`${where} must be a base64 string, not ${describe(v)}`);
  const bytes = fromBase64(v.replace(/[\r\n]/g, ''));
  if (!bytes || bytes.length === 0)
    throw invalid(`${where} must be standard base64 of a PEM text (for example the output of "base64 -w0 key.pub")`);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (!text.includes('-----BEGIN ')) throw invalid(`${where} does not decode to a PEM text`);
  return text;
}

function pemData(o: JsonObject, key: string, where: string): string | undefined {
  return o[key] === undefined ? undefined : pemText(o[key], `${where}.${key}`);
}

function pemDatas(o: JsonObject, key: string, where: string): string[] | undefined {
  return list(o, key, where)?.map((e, i) => pemText(e, `${where}.${key}[${i}]`));
}

/** The keys of `o` among `keys` that are present. */
function present(o: JsonObject, keys: readonly string[]): string[] {
  return keys.filter((k) => o[k] !== undefined);
}

/** A `signedIdentity` object, checked as containers/image checks it. */
function signedIdentity(v: JsonValue | undefined, where: string): SignedIdentity {
  if (v === undefined) return { type: 'matchRepoDigestOrExact' };
  const w = `${where}.signedIdentity`;
  const type = isObject(v) ? v.type : undefined;
  if (typeof type !== 'string' || type === 'ignore' || !(IDENTITY_MODES as readonly string[]).includes(type))
    throw invalid(`${w} has the unknown type ${JSON.stringify(type ?? '')}`);
  const extra: Record<string, string[]> = {
    exactReference: ['dockerReference'],
    exactRepository: ['dockerRepository'],
    remapIdentity: ['prefix', 'signedPrefix'],
  };
  const names = ['type', ...(extra[type] ?? [])];
  const o = fields(v, w, names, names);
  for (const k of names) str(o, k, w);
  try {
    return checkIdentityRule(o as unknown as IdentityRule) as SignedIdentity;
  } catch (e) {
    if (e instanceof VerificationError) throw invalid(`${w}: ${e.message}`);
    throw e;
  }
}

const FULCIO_KEYS = ['caPath', 'caData', 'oidcIssuer', 'subjectEmail'] as const;
const PKI_KEYS = [
  'caRootsPath',
  'caRootsData',
  'caIntermediatesPath',
  'caIntermediatesData',
  'subjectEmail',
  'subjectHostname',
] as const;

/** Exactly one of `a`/`b` (a *Path and its *Data): which, or undefined when `optional` and neither. */
function oneOf(o: JsonObject, a: string, b: string, where: string, optional = false): string | undefined {
  const got = present(o, [a, b]);
  if (got.length === 2) throw invalid(`${where}: ${a} and ${b} cannot be used simultaneously`);
  if (got.length === 0 && !optional) throw invalid(`${where}: at least one of ${a} and ${b} must be specified`);
  return got[0];
}

function fulcio(v: JsonValue, where: string, paths: string[]): SigstoreTrustSource | null {
  const w = `${where}.fulcio`;
  const o = fields(v, w, FULCIO_KEYS);
  const ca = oneOf(o, 'caPath', 'caData', w);
  const oidcIssuer = str(o, 'oidcIssuer', w) ?? '';
  const subjectEmail = str(o, 'subjectEmail', w) ?? '';
  if (oidcIssuer === '') throw invalid(`${w}: oidcIssuer not specified`);
  if (subjectEmail === '') throw invalid(`${w}: subjectEmail not specified`);
  if (ca === 'caPath') {
    str(o, 'caPath', w);
    paths.push('fulcio.caPath');
    return null;
  }
  return { kind: 'fulcio', caPem: pemData(o, 'caData', w)!, oidcIssuer, subjectEmail };
}

function pki(v: JsonValue, where: string, paths: string[]): SigstoreTrustSource | null {
  const w = `${where}.pki`;
  const o = fields(v, w, PKI_KEYS);
  const roots = oneOf(o, 'caRootsPath', 'caRootsData', w);
  const inter = oneOf(o, 'caIntermediatesPath', 'caIntermediatesData', w, true);
  const subjectEmail = str(o, 'subjectEmail', w) || undefined;
  const subjectHostname = str(o, 'subjectHostname', w) || undefined;
  if (!subjectEmail && !subjectHostname)
    throw invalid(`${w}: at least one of subjectEmail, subjectHostname must be specified`);
  for (const k of [roots, inter]) if (k?.endsWith('Path') && str(o, k, w) !== undefined) paths.push(`pki.${k}`);
  if (paths.length) return null;
  return {
    kind: 'pki',
    rootsPem: pemData(o, 'caRootsData', w)!,
    intermediatesPem: pemData(o, 'caIntermediatesData', w),
    subjectEmail,
    subjectHostname,
  };
}

const KEY_SOURCES = ['keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio', 'pki'] as const;
const REKOR_SOURCES = ['rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas'];
const SIGSTORE_KEYS = ['type', ...KEY_SOURCES, ...REKOR_SOURCES, 'signedIdentity'];

/** The key source of a sigstoreSigned requirement (null for a *Path form, recorded in `paths`). */
function keySource(o: JsonObject, where: string, source: string, paths: string[]): SigstoreTrustSource | null {
  switch (source) {
    case 'fulcio':
      return fulcio(o.fulcio!, where, paths);
    case 'pki':
      return pki(o.pki!, where, paths);
    case 'keyData':
      return { kind: 'keys', field: 'keyData', pems: [pemData(o, 'keyData', where)!] };
    case 'keyDatas':
      return { kind: 'keys', field: 'keyDatas', pems: pemDatas(o, 'keyDatas', where)! };
    case 'keyPath':
      if (str(o, 'keyPath', where) === '') throw invalid(`${where}.keyPath is empty`);
      break;
    default:
      strList(o, 'keyPaths', where);
  }
  paths.push(source);
  return null;
}

/** The Rekor keys of a sigstoreSigned requirement (PEM texts; a *Path form is recorded in `paths`). */
function rekorKeys(o: JsonObject, where: string, paths: string[]): string[] {
  const rekor = present(o, REKOR_SOURCES);
  if (rekor.length > 1)
    throw invalid(`${where}: at most one of ${REKOR_SOURCES.join(', ')} can be used simultaneously`);
  const r = rekor[0];
  if (r === 'rekorPublicKeyData') return [pemData(o, r, where)!];
  if (r === 'rekorPublicKeyDatas') return pemDatas(o, r, where)!;
  if (r === 'rekorPublicKeyPath') str(o, r, where);
  if (r === 'rekorPublicKeyPaths') strList(o, r, where);
  if (r) paths.push(r);
  return [];
}

function sigstoreSigned(v: JsonObject, where: string): SigstoreSignedRequirement {
  const o = fields(v, where, SIGSTORE_KEYS);
  const sources = present(o, KEY_SOURCES);
  if (sources.length !== 1)
    throw invalid(`${where}: exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified`);
  const source = sources[0]!;
  const hasRekor = present(o, REKOR_SOURCES).length > 0;
  if (source === 'fulcio' && !hasRekor)
    throw invalid(`${where}: a Rekor public key (rekorPublicKeyData or …Datas) must be specified if fulcio is used`);
  if (source === 'pki' && hasRekor) throw invalid(`${where}: Rekor public keys are not supported for pki`);
  const paths: string[] = [];
  const trust = keySource(o, where, source, paths);
  const rekorPems = rekorKeys(o, where, paths);
  const identity = signedIdentity(o.signedIdentity, where);
  return { type: 'sigstoreSigned', trust: paths.length ? null : trust, rekorPems, signedIdentity: identity, paths };
}

/** One requirement object. */
function requirement(v: JsonValue, where: string): Requirement {
  const type = isObject(v) ? v.type : undefined;
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject':
      fields(v, where, ['type']);
      return { type };
    case 'signedBy':
      fields(v, where, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity'], ['type', 'keyType']);
      return { type };
    case 'signedBaseLayer':
      fields(v, where, ['type', 'baseLayerIdentity'], ['type', 'baseLayerIdentity']);
      return { type };
    case 'sigstoreSigned':
      return sigstoreSigned(v as JsonObject, where);
    default:
      if (!isObject(v)) throw invalid(`${where} must be a JSON object, not ${describe(v)}`);
      throw invalid(`${where} has the unknown requirement type ${JSON.stringify(type ?? '')}`);
  }
}

/** A non-empty list of requirements. */
function requirements(v: JsonValue | undefined, where: string): Requirement[] {
  if (!Array.isArray(v)) throw invalid(`${where} must be an array of requirements, not ${describe(v ?? null)}`);
  if (v.length === 0) throw invalid(`${where}: the list of verification policy requirements must not be empty`);
  return v.map((r, i) => requirement(r, `${where}[${i}]`));
}

function policy(o: JsonObject): ContainersPolicy {
  fields(o, 'the policy', ['default', 'transports']);
  if (o.default === undefined) throw invalid('the default policy is missing ("default": [...])');
  const out: ContainersPolicy = { default: requirements(o.default, 'default'), docker: new Map(), otherTransports: [] };
  if (o.transports === undefined) return out;
  if (!isObject(o.transports)) throw invalid(`transports must be a JSON object, not ${describe(o.transports)}`);
  for (const [transport, scopes] of Object.entries(o.transports)) {
    if (!isObject(scopes)) throw invalid(`transports.${transport} must be a JSON object, not ${describe(scopes)}`);
    for (const [scope, reqs] of Object.entries(scopes)) {
      const list = requirements(reqs, `transports.${transport}[${JSON.stringify(scope)}]`);
      if (transport === 'docker') out.docker.set(scope, list);
    }
    if (transport !== 'docker') out.otherTransports.push(transport);
  }
  return out;
}

/**
 * Reads pasted containers-policy.json text: a whole policy (an object with `default`), one
 * requirement (an object with `type`), or an array of requirements.
 * @throws PolicyError POLICY_INVALID with what is wrong (never another error).
 */
export function parseContainersPolicy(text: string): PolicyInput {
  if (text.length > MAX_POLICY_CHARS) throw invalid(`it is longer than ${MAX_POLICY_CHARS} characters`);
  let json: JsonValue;
  try {
    json = parseStrictJson(text.trim());
  } catch (e) {
    if (e instanceof StrictJsonError) throw invalid(`it is not JSON without duplicate keys (${e.message})`);
    throw e;
  }
  if (Array.isArray(json)) return { kind: 'requirements', requirements: requirements(json, 'the requirements') };
  if (isObject(json) && 'type' in json)
    return { kind: 'requirements', requirements: [requirement(json, 'the requirement')] };
  if (isObject(json)) return { kind: 'policy', policy: policy(json) };
  throw invalid(`it must be a JSON object or array, not ${describe(json)}`);
}
