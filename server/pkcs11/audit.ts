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
 * `field`, so a request cannot forge a second line.
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
