/**
 * PEM (RFC 7468) reading and writing: `-----BEGIN LABEL-----`, base64 body, `-----END LABEL-----`.
 * Written as Go's encoding/pem writes it (64-character lines, trailing newline) so that files we
 * produce are byte-for-byte what cosign would write for the same contents.
 */
import { KeyError } from '../errors.ts';
import { fromBase64, toBase64 } from './base64.ts';

export interface PemBlock {
  label: string;
  bytes: Uint8Array;
}

const BEGIN = /-----BEGIN ([A-Z0-9 ]+)-----/;

/**
 * Reads the first PEM block in `text` (text around it is ignored, as Go's pem.Decode does).
 * @throws KeyError `KEY_PEM_INVALID` when there is no complete block or its body is not base64.
 */
export function decodePem(text: string): PemBlock {
  const begin = BEGIN.exec(text);
  if (!begin) {
    throw new KeyError('KEY_PEM_INVALID', 'This is not a PEM file: there is no "-----BEGIN …-----" line.');
  }
  const label = begin[1]!;
  const endMarker = `-----END ${label}-----`;
  const start = begin.index + begin[0].length;
  const end = text.indexOf(endMarker, start);
  if (end < 0) {
    throw new KeyError(
      'KEY_PEM_INVALID',
      `The PEM block "${label}" has no matching END line: the file looks truncated.`,
    );
  }
  const body = text.slice(start, end);
  if (/^[ \t]*[A-Za-z-]+:/m.test(body)) {
    throw new KeyError('KEY_PEM_INVALID', `The PEM block "${label}" has headers, which cosign keys never have.`);
  }
  const b64 = body.replace(/[\r\n\t ]/g, '');
  const bytes = fromBase64(b64);
  if (!bytes || bytes.length === 0) {
    throw new KeyError(
      'KEY_PEM_INVALID',
      `The body of the PEM block "${label}" is not valid base64: the file is damaged or truncated.`,
    );
  }
  return { label, bytes };
}

/** Writes one PEM block with 64-character lines and a final newline. */
export function encodePem(label: string, bytes: Uint8Array): string {
  const b64 = toBase64(bytes);
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + '\n';
  return out + `-----END ${label}-----\n`;
}
