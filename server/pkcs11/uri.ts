/**
 * PKCS#11 URIs (RFC 7512, https://www.rfc-editor.org/rfc/rfc7512): how the relay names a key on a
 * token, e.g. `pkcs11:token=My%20token;manufacturer=…;serial=…;model=…;object=cosign;id=%01;type=private`.
 *
 * Encoding: every byte outside RFC 3986's unreserved set is percent-encoded (uppercase hex), and
 * `id` is percent-encoded whole (RFC 7512 section 2.3 recommends it for binary ids). Parsing takes
 * any percent-encoding, refuses an attribute given twice, an unknown standard attribute, malformed
 * escapes, strings that are not UTF-8, and every query attribute: the PIN never travels in a URI
 * here (`pin-value`, `pin-source`) and a request never chooses the module (`module-name`,
 * `module-path`). Vendor attributes (`x-…`) are kept but do not select anything.
 *
 * Signing selects a token by token/manufacturer/serial/model and a key by object/id/type only;
 * requireSelectingAttributes refuses a URI that names a slot, the library or a vendor attribute,
 * rather than sign with a key those attributes would not have chosen.
 */
import { Pkcs11Error } from '../../shared/errors.ts';

export const PKCS11_SCHEME = 'pkcs11:';

/** The object classes RFC 7512 names in `type=`. */
export type Pkcs11ObjectType = 'public' | 'private' | 'cert' | 'secret-key' | 'data';

/** The path attributes of a PKCS#11 URI; absent means "any". String values are decoded. */
export interface Pkcs11Uri {
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  /** CKA_LABEL of the object. */
  object?: string;
  /** CKA_ID of the object, raw bytes. */
  id?: Uint8Array;
  type?: Pkcs11ObjectType;
  'library-manufacturer'?: string;
  'library-description'?: string;
  'library-version'?: string;
  'slot-description'?: string;
  'slot-manufacturer'?: string;
  'slot-id'?: string;
  /** Vendor-specific attributes (`x-…`), decoded. */
  vendor?: Record<string, string>;
}

/** The order the relay writes attributes in. */
const STRING_ATTRIBUTES = [
  'token',
  'manufacturer',
  'serial',
  'model',
  'object',
  'library-manufacturer',
  'library-description',
  'library-version',
  'slot-description',
  'slot-manufacturer',
  'slot-id',
] as const;
type StringAttribute = (typeof STRING_ATTRIBUTES)[number];

const TYPES: readonly Pkcs11ObjectType[] = ['public', 'private', 'cert', 'secret-key', 'data'];

/** Longest URI the parser looks at: token fields are at most 32 bytes, labels are short. */
export const MAX_URI_LENGTH = 4096;

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const HEX = '0123456789ABCDEF';

function pctEncodeBytes(bytes: Uint8Array, keepUnreserved: boolean): string {
  let out = '';
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    out += keepUnreserved && b < 0x80 && UNRESERVED.test(ch) ? ch : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/** Percent-encodes a UTF-8 string, leaving only unreserved characters as they are. */
export function pctEncode(text: string): string {
  return pctEncodeBytes(new TextEncoder().encode(text), true);
}

function invalid(message: string): Pkcs11Error {
  return new Pkcs11Error('PKCS11_URI_INVALID', message, 422);
}

/** Characters a path attribute value may hold unencoded (RFC 7512 pk11-pchar, less pct-encoded). */
const PCHAR = /^[A-Za-z0-9\-._~:[\]@!$'()*+,=&]$/;

function pctDecode(value: string, attribute: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw invalid(`The URI's ${attribute} holds a malformed %-escape.`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (PCHAR.test(ch)) {
      out.push(ch.charCodeAt(0));
    } else {
      throw invalid(`The URI's ${attribute} holds "${ch}", which must be percent-encoded.`);
    }
  }
  return new Uint8Array(out);
}

function utf8Decode(bytes: Uint8Array, attribute: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid(`The URI's ${attribute} is not UTF-8 text.`);
  }
}

/**
 * Writes a PKCS#11 URI with the attributes that are set, in a fixed order.
 */
export function formatPkcs11Uri(uri: Pkcs11Uri): string {
  const parts: string[] = [];
  for (const name of STRING_ATTRIBUTES) {
    const v = uri[name];
    if (v !== undefined) parts.push(`${name}=${pctEncode(v)}`);
    // id follows object, as in RFC 7512's examples.
    if (name === 'object' && uri.id !== undefined) parts.push(`id=${pctEncodeBytes(uri.id, false)}`);
  }
  if (uri.type !== undefined) parts.push(`type=${uri.type}`);
  for (const [k, v] of Object.entries(uri.vendor ?? {})) parts.push(`${k}=${pctEncode(v)}`);
  return PKCS11_SCHEME + parts.join(';');
}

/**
 * Parses a PKCS#11 URI's path attributes.
 * @throws Pkcs11Error PKCS11_URI_INVALID (422) for anything that is not a well-formed RFC 7512 URI,
 *   a repeated or unknown attribute, or any query attribute (PIN, module)
 */
export function parsePkcs11Uri(text: string): Pkcs11Uri {
  if (typeof text !== 'string' || text.length > MAX_URI_LENGTH) throw invalid('The key URI is missing or too long.');
  if (text.slice(0, PKCS11_SCHEME.length).toLowerCase() !== PKCS11_SCHEME) {
    throw invalid('A key URI starts with "pkcs11:" (RFC 7512).');
  }
  const rest = text.slice(PKCS11_SCHEME.length);
  const q = rest.indexOf('?');
  if (q >= 0) {
    throw invalid(
      'The key URI carries query attributes (a PIN or a module): send the PIN in the request, the module is the server’s.',
    );
  }
  const uri: Pkcs11Uri = {};
  const seen = new Set<string>();
  if (rest === '') return uri;
  for (const attr of rest.split(';')) {
    const eq = attr.indexOf('=');
    if (eq <= 0) throw invalid(`"${attr.slice(0, 40)}" in the key URI is not an attribute=value pair.`);
    const name = attr.slice(0, eq);
    const value = attr.slice(eq + 1);
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw invalid(`"${name.slice(0, 40)}" is not an attribute name.`);
    if (seen.has(name)) throw invalid(`The key URI gives ${name} twice.`);
    seen.add(name);
    if (name === 'id') {
      uri.id = pctDecode(value, name);
    } else if (name === 'type') {
      const t = utf8Decode(pctDecode(value, name), name);
      if (!(TYPES as readonly string[]).includes(t))
        throw invalid(`type=${t.slice(0, 20)} is not a PKCS#11 object type.`);
      uri.type = t as Pkcs11ObjectType;
    } else if ((STRING_ATTRIBUTES as readonly string[]).includes(name)) {
      uri[name as StringAttribute] = utf8Decode(pctDecode(value, name), name);
    } else if (name.startsWith('x-')) {
      uri.vendor = { ...uri.vendor, [name]: utf8Decode(pctDecode(value, name), name) };
    } else {
      throw invalid(`The key URI names an attribute RFC 7512 does not define: ${name}.`);
    }
  }
  return uri;
}

/** What signing selects by; the other attributes are parsed (and listed) but choose nothing. */
const SELECTING = new Set(['token', 'manufacturer', 'serial', 'model', 'object', 'id', 'type']);

/**
 * Checks that a signing URI has no attribute signing would ignore (slot-*, library-*, x-…).
 * @throws Pkcs11Error PKCS11_URI_INVALID (422) naming the first such attribute
 */
export function requireSelectingAttributes(uri: Pkcs11Uri): void {
  const ignored = [
    ...Object.keys(uri).filter((k) => k !== 'vendor' && !SELECTING.has(k)),
    ...Object.keys(uri.vendor ?? {}),
  ];
  if (ignored.length > 0) {
    throw invalid(
      `The key URI gives ${ignored[0]!.slice(0, 40)}, which the server does not select a key by: name the key with token, manufacturer, serial, model, object, id and type only, as GET /pkcs11/keys lists them.`,
    );
  }
}
