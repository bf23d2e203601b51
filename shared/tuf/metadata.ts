/**
 * TUF metadata: reading root, timestamp, snapshot and targets files into checked shapes, and
 * checking that a threshold of a role's keys signed them.
 * https://theupdateframework.github.io/specification/latest/#document-formats (§4),
 * as python-tuf's `tuf/api/_payload.py` reads them (strict on the fields the client relies on,
 * tolerant of fields it does not know).
 */
import { TufError } from '../errors.ts';
import { fromHex } from '../encoding/base64.ts';
import { MAX_JSON_DEPTH, jsonDepthWithin } from '../encoding/json-depth.ts';
import { verifyTufSignature, type TufPublicKey } from '../crypto/tuf-keys.ts';
import { canonicalJson } from './canonical.ts';

export type TopRole = 'root' | 'timestamp' | 'snapshot' | 'targets';
export const TOP_ROLES: readonly TopRole[] = ['root', 'timestamp', 'snapshot', 'targets'];

/** The keys of a role and how many of them must sign. */
export interface RoleKeys {
  keyids: string[];
  threshold: number;
}

interface Common {
  version: number;
  expires: Date;
}

export interface Root extends Common {
  consistentSnapshot: boolean;
  keys: Map<string, TufPublicKey>;
  roles: Record<TopRole, RoleKeys>;
}

/** What a timestamp or snapshot says of another metadata file. */
export interface MetaFile {
  version: number;
  length?: number | undefined;
  hashes?: Record<string, string> | undefined;
}

export interface Timestamp extends Common {
  snapshotMeta: MetaFile;
}

export interface Snapshot extends Common {
  meta: Map<string, MetaFile>;
}

export interface TargetFile {
  length: number;
  hashes: Record<string, string>;
}

export interface DelegatedRole extends RoleKeys {
  name: string;
  terminating: boolean;
  paths?: string[] | undefined;
  pathHashPrefixes?: string[] | undefined;
}

export interface Targets extends Common {
  targets: Map<string, TargetFile>;
  delegations?: { keys: Map<string, TufPublicKey>; roles: DelegatedRole[] } | undefined;
}

interface Kinds {
  root: Root;
  timestamp: Timestamp;
  snapshot: Snapshot;
  targets: Targets;
}

/** A metadata file read: its `signed` part checked, its canonical bytes and its signatures by key id. */
export interface Signed<T> {
  signed: T;
  canonical: Uint8Array;
  signatures: Map<string, string>;
}

type Json = Record<string, unknown>;

function bad(what: string, why: string): TufError {
  return new TufError('TUF_METADATA_INVALID', `The TUF ${what} is malformed: ${why}.`);
}

function obj(v: unknown, what: string, field: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(what, `"${field}" is not an object`);
  return v as Json;
}

function str(v: unknown, what: string, field: string): string {
  if (typeof v !== 'string') throw bad(what, `"${field}" is not a string`);
  return v;
}

function int(v: unknown, what: string, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw bad(what, `"${field}" is not an integer of at least ${min}`);
  }
  return v;
}

function strings(v: unknown, what: string, field: string): string[] {
  if (!Array.isArray(v)) throw bad(what, `"${field}" is not a list`);
  const out = v.map((x) => str(x, what, field));
  if (new Set(out).size !== out.length) throw bad(what, `"${field}" lists an entry twice`);
  return out;
}

function optional<T>(v: unknown, read: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : read(v);
}

const EXPIRES = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

function expiresOf(v: unknown, what: string): Date {
  const text = str(v, what, 'expires');
  const date = new Date(text);
  // The round trip refuses dates the regular expression lets through, such as 2026-02-30.
  if (!EXPIRES.test(text) || Number.isNaN(date.getTime()) || date.toISOString() !== text.replace('Z', '.000Z')) {
    throw bad(what, `"expires" is not a time like 2026-01-31T12:00:00Z`);
  }
  return date;
}

function common(s: Json, type: string, what: string): Common {
  if (s['_type'] !== type) throw bad(what, `it is not ${type} metadata (its _type is ${JSON.stringify(s['_type'])})`);
  const spec = str(s['spec_version'], what, 'spec_version');
  if (!/^1\.\d+(\.\d+)?$/.test(spec)) throw bad(what, `it follows TUF specification ${spec}, not 1.x`);
  return { version: int(s['version'], what, 'version', 1), expires: expiresOf(s['expires'], what) };
}

function keysOf(v: unknown, what: string): Map<string, TufPublicKey> {
  const keys = new Map<string, TufPublicKey>();
  for (const [id, k] of Object.entries(obj(v, what, 'keys'))) {
    const key = obj(k, what, `keys.${id}`);
    keys.set(id, {
      keytype: str(key['keytype'], what, 'keytype'),
      scheme: str(key['scheme'], what, 'scheme'),
      public: str(obj(key['keyval'], what, 'keyval')['public'], what, 'keyval.public'),
    });
  }
  return keys;
}

function roleKeys(v: unknown, what: string, field: string): RoleKeys {
  const r = obj(v, what, field);
  return {
    keyids: strings(r['keyids'], what, `${field}.keyids`),
    threshold: int(r['threshold'], what, 'threshold', 1),
  };
}

function metaFile(v: unknown, what: string, field: string): MetaFile {
  const m = obj(v, what, field);
  return {
    version: int(m['version'], what, `${field}.version`, 1),
    length: optional(m['length'], (x) => int(x, what, `${field}.length`, 0)),
    hashes: optional(m['hashes'], (x) => hashesOf(x, what, `${field}.hashes`)),
  };
}

function hashesOf(v: unknown, what: string, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [alg, h] of Object.entries(obj(v, what, field))) {
    const hex = str(h, what, `${field}.${alg}`);
    if (fromHex(hex) === null) throw bad(what, `the ${alg} hash in "${field}" is not hex`);
    out[alg] = hex.toLowerCase();
  }
  if (Object.keys(out).length === 0) throw bad(what, `"${field}" lists no hash`);
  return out;
}

function readRoot(s: Json, what: string): Root {
  const roles = obj(s['roles'], what, 'roles');
  if (Object.keys(roles).length !== 4)
    throw bad(what, 'its roles are not exactly root, timestamp, snapshot and targets');
  const out = {} as Record<TopRole, RoleKeys>;
  for (const r of TOP_ROLES) out[r] = roleKeys(roles[r], what, `roles.${r}`);
  const cs = s['consistent_snapshot'] ?? false;
  if (typeof cs !== 'boolean') throw bad(what, '"consistent_snapshot" is not true or false');
  return { ...common(s, 'root', what), consistentSnapshot: cs, keys: keysOf(s['keys'], what), roles: out };
}

function readTimestamp(s: Json, what: string): Timestamp {
  const meta = obj(s['meta'], what, 'meta');
  if (Object.keys(meta).length !== 1) throw bad(what, 'its "meta" does not name snapshot.json alone');
  return { ...common(s, 'timestamp', what), snapshotMeta: metaFile(meta['snapshot.json'], what, 'snapshot.json') };
}

function readSnapshot(s: Json, what: string): Snapshot {
  const meta = new Map<string, MetaFile>();
  for (const [name, m] of Object.entries(obj(s['meta'], what, 'meta'))) meta.set(name, metaFile(m, what, name));
  return { ...common(s, 'snapshot', what), meta };
}

function delegatedRole(v: unknown, what: string): DelegatedRole {
  const r = obj(v, what, 'delegations.roles[]');
  const name = str(r['name'], what, 'name');
  if ((TOP_ROLES as readonly string[]).includes(name)) throw bad(what, `it delegates to "${name}", a top-level role`);
  const paths = optional(r['paths'], (x) => strings(x, what, `${name}.paths`));
  const pathHashPrefixes = optional(r['path_hash_prefixes'], (x) => strings(x, what, `${name}.path_hash_prefixes`));
  if ((paths === undefined) === (pathHashPrefixes === undefined)) {
    throw bad(what, `the delegation to "${name}" has not exactly one of paths and path_hash_prefixes`);
  }
  const terminating = r['terminating'];
  if (typeof terminating !== 'boolean') throw bad(what, `"terminating" of "${name}" is not true or false`);
  return { ...roleKeys(r, what, name), name, terminating, paths, pathHashPrefixes };
}

function readTargets(s: Json, what: string): Targets {
  const targets = new Map<string, TargetFile>();
  for (const [name, t] of Object.entries(obj(s['targets'], what, 'targets'))) {
    const file = obj(t, what, name);
    targets.set(name, {
      length: int(file['length'], what, `${name}.length`, 0),
      hashes: hashesOf(file['hashes'], what, name),
    });
  }
  const d = optional(s['delegations'], (x) => obj(x, what, 'delegations'));
  // Succinct hash-bin delegations (TAP 15) are not followed: no role is delegated to through them.
  const roles = d?.['roles'] === undefined ? [] : d['roles'];
  if (!Array.isArray(roles)) throw bad(what, '"delegations.roles" is not a list');
  const delegations = d && { keys: keysOf(d['keys'], what), roles: roles.map((r) => delegatedRole(r, what)) };
  if (delegations && new Set(delegations.roles.map((r) => r.name)).size !== roles.length) {
    throw bad(what, 'it delegates to a role twice');
  }
  return { ...common(s, 'targets', what), targets, delegations };
}

const READERS: { [K in keyof Kinds]: (s: Json, what: string) => Kinds[K] } = {
  root: readRoot,
  timestamp: readTimestamp,
  snapshot: readSnapshot,
  targets: readTargets,
};

function signaturesOf(v: unknown, what: string): Map<string, string> {
  if (!Array.isArray(v)) throw bad(what, '"signatures" is not a list');
  const out = new Map<string, string>();
  for (const s of v) {
    const sig = obj(s, what, 'signatures[]');
    const keyid = str(sig['keyid'], what, 'keyid');
    if (out.has(keyid)) throw bad(what, `key ${keyid.slice(0, 12)}… signed it twice`);
    out.set(keyid, str(sig['sig'], what, 'sig'));
  }
  return out;
}

/**
 * Reads a metadata file of kind `type` (`what` names it in errors, e.g. "timestamp.json"). No
 * signature is checked here.
 * @throws TufError TUF_METADATA_INVALID when it is not UTF-8 JSON of that kind's shape (or nests
 *   more than MAX_JSON_DEPTH levels).
 */
export function parseMetadata<K extends keyof Kinds>(bytes: Uint8Array, type: K, what: string): Signed<Kinds[K]> {
  let text: string;
  let json: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    json = jsonDepthWithin(text) ? JSON.parse(text) : undefined;
  } catch {
    throw bad(what, 'it is not UTF-8 JSON');
  }
  if (json === undefined) throw bad(what, `it is nested more than ${MAX_JSON_DEPTH} levels deep`);
  const top = obj(json, what, 'the file');
  const raw = obj(top['signed'], what, 'signed');
  return {
    signed: READERS[type](raw, what),
    canonical: canonicalJson(raw),
    signatures: signaturesOf(top['signatures'], what),
  };
}

/**
 * Checks that at least `role.threshold` distinct keys of `role` (looked up in `keys`) signed the
 * metadata. Signatures by other keys, or by keys of a kind shared/crypto does not check, do not count.
 * @throws TufError TUF_THRESHOLD_NOT_MET naming `what`.
 */
export async function verifyThreshold(
  md: Signed<unknown>,
  keys: Map<string, TufPublicKey>,
  role: RoleKeys,
  what: string,
): Promise<void> {
  const valid = new Set<string>();
  for (const id of role.keyids) {
    const key = keys.get(id);
    const sig = md.signatures.get(id);
    const bytes = sig === undefined ? null : fromHex(sig);
    if (!key || !bytes) continue;
    // Two key ids for the same key count once.
    if (await verifyTufSignature(key, md.canonical, bytes)) valid.add(`${key.keytype} ${key.public}`);
    if (valid.size >= role.threshold) return;
  }
  throw new TufError(
    'TUF_THRESHOLD_NOT_MET',
    `The TUF ${what} carries ${valid.size} valid signature${valid.size === 1 ? '' : 's'} by the keys it must be signed by, and ${role.threshold} are needed: it is refused.`,
  );
}
