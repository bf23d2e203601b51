/**
 * The audit trail of the PKCS#11 endpoint: one line per signing request, signed or refused,
 * through the server's logger:
 *
 *   pkcs11 sign time=2026-11-25T01:02:03.456Z key=pkcs11:token=…;id=%01;type=private
 *     digest=sha256:… identity=registry/repo:tag kind=simple-signing client=127.0.0.1 ok
 *
 * (one line; `-` for what is not known, the error code in place of `ok`). Never the PIN, never
 * the payload: only what names the key and the image. Every value is either built by this server
 * (the key URI is re-encoded, the identity was parsed as an image reference) or passed through
 * `field`, so a request cannot forge a second line. A refused payload's line names the digest and
 * identity the payload claims (`claimedInPayload`), read from it without trusting it, so a refusal
 * says what someone tried to have signed.
 */

export interface AuditEntry {
  time: Date;
  /** The key URI, re-encoded by formatPkcs11Uri; undefined when the request's URI did not parse. */
  key: string | undefined;
  digest: string | undefined;
  identity: string | undefined;
  kind: string | undefined;
  client: string;
  /** 'ok' or the error code. */
  outcome: string;
}

/** A value as one token of printable ASCII without spaces, or `-`. */
function field(v: string | undefined): string {
  if (v === undefined || v === '') return '-';
  // Cut first: cutting the escaped text could end it inside a %xx.
  return v.slice(0, 1024).replace(/[^\x21-\x7e]/g, (ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The audit line for one signing request. */
export function auditLine(e: AuditEntry): string {
  return [
    'pkcs11 sign',
    `time=${e.time.toISOString()}`,
    `key=${field(e.key)}`,
    `digest=${field(e.digest)}`,
    `identity=${field(e.identity)}`,
    `kind=${field(e.kind)}`,
    `client=${field(e.client)}`,
    field(e.outcome),
  ].join(' ');
}

/** What a payload says it is about, for the audit line of one that was refused. */
export interface Claimed {
  digest?: string;
  identity?: string;
}

function stringAt(value: unknown, ...path: string[]): string | undefined {
  let v = value;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return typeof v === 'string' ? v : undefined;
}

/**
 * The digest and identity a payload claims, whatever else is wrong with it: a simple-signing
 * payload's `critical.image.docker-manifest-digest` and `critical.identity.docker-reference`, or
 * the sha256 of the first subject of a DSSE encoding's statement. Nothing when they cannot be read.
 * The bytes are already within the endpoint's body limit. Never throws.
 */
export function claimedInPayload(bytes: Uint8Array): Claimed {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  // DSSEv1 <len> <type> <len> <body>: the body is what follows the fourth space.
  const m = /^DSSEv1 \d+ \S+ \d+ /.exec(text);
  let json: unknown;
  try {
    json = JSON.parse(m === null ? text : text.slice(m[0].length));
  } catch {
    return {};
  }
  if (m !== null) {
    const subjects = (json as { subject?: unknown } | null)?.subject;
    const sha = Array.isArray(subjects) ? stringAt(subjects[0], 'digest', 'sha256') : undefined;
    return sha === undefined ? {} : { digest: `sha256:${sha}` };
  }
  const digest = stringAt(json, 'critical', 'image', 'docker-manifest-digest');
  const identity = stringAt(json, 'critical', 'identity', 'docker-reference');
  return { ...(digest === undefined ? {} : { digest }), ...(identity === undefined ? {} : { identity }) };
}
