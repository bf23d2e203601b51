/**
 * A small, strict ASN.1 DER reader and writer (ITU-T X.690 §8, §10), enough for the key and
 * signature structures this project handles: SEQUENCE, INTEGER, OBJECT IDENTIFIER, OCTET STRING,
 * BIT STRING, NULL and context-specific tags. The reader refuses indefinite lengths, non-minimal
 * length encodings, lengths past the end of the input and trailing bytes: anything that is not
 * exactly DER is an error, so one key never has two encodings.
 */
import { KeyError } from '../errors.ts';

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
} as const;

export interface DerNode {
  /** The whole identifier octet, e.g. 0x30 for SEQUENCE, 0xa0 for [0] constructed. */
  tag: number;
  /** The content octets. */
  value: Uint8Array;
  /** The whole encoding, header included. */
  raw: Uint8Array;
}

/** Thrown by the reader; callers turn it into the error their domain needs. */
export class DerError extends Error {}

function readNode(buf: Uint8Array, pos: number): { node: DerNode; next: number } {
  if (pos + 2 > buf.length) throw new DerError('truncated header');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used here');
  let len = buf[pos + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length');
    if (n > 4) throw new DerError('length too large');
    if (pos + 2 + n > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
    if (len < 0x80 || buf[pos + 2]! === 0) throw new DerError('non-minimal length');
    hdr += n;
  }
  const end = pos + hdr + len;
  if (end > buf.length) throw new DerError('length past end of input');
  return {
    node: { tag, value: buf.subarray(pos + hdr, end), raw: buf.subarray(pos, end) },
    next: end,
  };
}

/** Parses exactly one DER element filling all of `buf`. @throws DerError */
export function parseDer(buf: Uint8Array): DerNode {
  const { node, next } = readNode(buf, 0);
  if (next !== buf.length) throw new DerError('trailing bytes after the element');
  return node;
}

/** The children of a constructed element. @throws DerError */
export function children(node: DerNode): DerNode[] {
  if ((node.tag & 0x20) === 0) throw new DerError('not a constructed element');
  const out: DerNode[] = [];
  let pos = 0;
  while (pos < node.value.length) {
    const { node: child, next } = readNode(node.value, pos);
    out.push(child);
    pos = next;
  }
  return out;
}

/** Checks a node's tag. @throws DerError */
export function expect(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node) throw new DerError(`missing ${what}`);
  if (node.tag !== tag)
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
  return node;
}

/** A SEQUENCE's children. @throws DerError */
export function sequence(node: DerNode | undefined, what: string): DerNode[] {
  return children(expect(node, TAG.SEQUENCE, what));
}

/** Decodes an OBJECT IDENTIFIER's content into dotted form. @throws DerError */
export function decodeOid(node: DerNode | undefined): string {
  const v = expect(node, TAG.OID, 'object identifier').value;
  if (v.length === 0) throw new DerError('empty object identifier');
  const parts: number[] = [];
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (n === 0 && b === 0x80) throw new DerError('non-minimal OID arc');
    n = n * 128 + (b & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID arc too large');
    if ((b & 0x80) === 0) {
      if (parts.length === 0) {
        const first = n < 40 ? 0 : n < 80 ? 1 : 2;
        parts.push(first, n - first * 40);
      } else parts.push(n);
      n = 0;
    } else if (i === v.length - 1) throw new DerError('truncated OID');
  }
  return parts.join('.');
}

/**
 * The magnitude of a non-negative INTEGER, without its sign padding byte.
 * @throws DerError on a negative or non-minimally encoded integer.
 */
export function decodeUnsigned(node: DerNode | undefined, what: string): Uint8Array {
  const v = expect(node, TAG.INTEGER, what).value;
  if (v.length === 0) throw new DerError(`${what}: empty integer`);
  if (v[0]! & 0x80) throw new DerError(`${what}: negative integer`);
  if (v.length > 1 && v[0] === 0 && (v[1]! & 0x80) === 0) throw new DerError(`${what}: non-minimal integer`);
  return v[0] === 0 && v.length > 1 ? v.subarray(1) : v;
}

/** A small non-negative INTEGER as a number. @throws DerError */
export function decodeSmallInt(node: DerNode | undefined, what: string): number {
  const v = decodeUnsigned(node, what);
  if (v.length > 4) throw new DerError(`${what}: integer too large`);
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

/** A BIT STRING's bytes; only whole-byte bit strings are used by keys. @throws DerError */
export function decodeBitString(node: DerNode | undefined, what: string): Uint8Array {
  const v = expect(node, TAG.BIT_STRING, what).value;
  if (v.length === 0 || v[0] !== 0) throw new DerError(`${what}: bit string with unused bits`);
  return v.subarray(1);
}

// ---- writing ----

function encodeLength(len: number): number[] {
  if (len < 0x80) return [len];
  const bytes: number[] = [];
  for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** One element from its tag and content octets. */
export function tlv(tag: number, value: Uint8Array): Uint8Array {
  const len = encodeLength(value.length);
  const out = new Uint8Array(1 + len.length + value.length);
  out[0] = tag;
  out.set(len, 1);
  out.set(value, 1 + len.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const der = {
  seq: (...items: Uint8Array[]): Uint8Array => tlv(TAG.SEQUENCE, concat(items)),
  ctx: (n: number, inner: Uint8Array, constructed = true): Uint8Array => tlv((constructed ? 0xa0 : 0x80) | n, inner),
  octets: (v: Uint8Array): Uint8Array => tlv(TAG.OCTET_STRING, v),
  bits: (v: Uint8Array): Uint8Array => tlv(TAG.BIT_STRING, concat([new Uint8Array([0]), v])),
  null: (): Uint8Array => tlv(TAG.NULL, new Uint8Array(0)),
  /** A non-negative INTEGER from its big-endian magnitude (leading zeros are trimmed). */
  uint(magnitude: Uint8Array): Uint8Array {
    let i = 0;
    while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
    const m = magnitude.subarray(i);
    const body = m.length === 0 ? new Uint8Array([0]) : m[0]! & 0x80 ? concat([new Uint8Array([0]), m]) : m;
    return tlv(TAG.INTEGER, body);
  },
  small: (n: number): Uint8Array =>
    der.uint(new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])),
  oid(dotted: string): Uint8Array {
    const arcs = dotted.split('.').map(Number);
    const out: number[] = [];
    const push = (n: number): void => {
      const tmp = [n & 0x7f];
      for (n = Math.floor(n / 128); n > 0; n = Math.floor(n / 128)) tmp.unshift(0x80 | (n & 0x7f));
      out.push(...tmp);
    };
    push(arcs[0]! * 40 + arcs[1]!);
    for (const a of arcs.slice(2)) push(a);
    return tlv(TAG.OID, new Uint8Array(out));
  },
  concat,
};

/** Runs a DER-reading function, turning reader failures into a KeyError with `code`. */
export function withDer<T>(code: 'KEY_DER_INVALID' | 'KEY_NOT_PKCS8', what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DerError) throw new KeyError(code, `${what} (${e.message}).`, { cause: e });
    throw e;
  }
}
