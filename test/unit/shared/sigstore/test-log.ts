/**
 * A transparency log made in the test with a WebCrypto ECDSA P-256 key: its trusted-root entry,
 * a signer of DER signatures over SHA-256 (as Rekor signs SETs and checkpoints), and signed notes
 * written line by line. Node and Chromium.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { rawToDer } from '../../../../shared/crypto/signature.ts';
import { toBase64 } from '../../../../shared/encoding/base64.ts';
import type { TrustedLog } from '../../../../shared/sigstore/types.ts';

export interface TestLog {
  log: TrustedLog;
  /** A DER ECDSA signature over SHA-256 of `data`. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export async function testLog(
  baseUrl = 'https://log.example.dev',
  start = new Date('2020-01-01T00:00:00Z'),
): Promise<TestLog> {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
  return {
    log: { baseUrl, logId: sha256(spki), spki, keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
    async sign(data) {
      const raw = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, data as BufferSource);
      return rawToDer(new Uint8Array(raw), 32);
    },
  };
}

/** The note key hint of an ECDSA key (Rekor v1 and v2 alike): SHA-256 of its SPKI, 4 bytes. */
export const ecdsaHint = (log: TrustedLog): Uint8Array => sha256(log.spki).slice(0, 4);

/** A signature line: "— <name> <base64(hint ‖ signature)>". */
export const sigLine = (name: string, hint: Uint8Array, sig: Uint8Array): string =>
  `\u2014 ${name} ${toBase64(new Uint8Array([...hint, ...sig]))}\n`;

/** A checkpoint body: origin, size, base64 root hash, extension lines. */
export const checkpointBody = (origin: string, size: number, root: Uint8Array, ...ext: string[]): string =>
  [origin, String(size), toBase64(root), ...ext].map((l) => `${l}\n`).join('');

/** The body signed by the log under `name`, with other signature lines before and after. */
export async function signedNote(
  t: TestLog,
  body: string,
  name: string,
  o: { before?: string[]; after?: string[]; hint?: Uint8Array } = {},
): Promise<string> {
  const sig = await t.sign(new TextEncoder().encode(body));
  return `${body}\n${(o.before ?? []).join('')}${sigLine(name, o.hint ?? ecdsaHint(t.log), sig)}${(o.after ?? []).join('')}`;
}
