/**
 * The PKCS#11 module behind the relay's /pkcs11 endpoint, through pkcs11js (PKCS#11 2.40,
 * https://docs.oasis-open.org/pkcs11/pkcs11-base/v2.40/os/pkcs11-base-v2.40-os.html): lists the
 * signing keys of every token present and signs with one of them.
 *
 * Keys are found through their public key objects (visible without a login: private key objects
 * are CKA_PRIVATE), so a key is listed and used only when the token also holds its public key,
 * which is what the signature is checked against before it is returned. Only ECDSA P-256/P-384 and
 * RSA of at least 2048 bits are offered: what cosign signs with.
 *
 * Sessions: the login state of a token is shared by every session this process has with it
 * (PKCS#11 2.40 section 5.6: a login applies to all sessions of the application), so one request's
 * C_Logout would log out another's signature, and a second C_Login answers
 * CKR_USER_ALREADY_LOGGED_IN whatever PIN it carries. Each operation on a token therefore runs under
 * that token's own lock: open a session, log in with the PIN, sign, log out, close. Different tokens
 * work in parallel. The PIN is passed to C_Login and not kept. ModuleProvider has one method per
 * step (slot, session, key, login, sign and logout), so `sign` reads as that sequence.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import type * as Pkcs11js from 'pkcs11js';
import { Pkcs11Error } from '../../shared/errors.ts';
import { publicKeyPem } from '../../shared/crypto/keys.ts';
import { algorithmName, CURVE_BYTES, parseSpki, type KeyAlgorithm } from '../../shared/crypto/pkcs.ts';
import { rawToDer } from '../../shared/crypto/signature.ts';
import { der } from '../../shared/encoding/der.ts';
import { KeyedLock } from '../keyed-lock.ts';
import { formatPkcs11Uri, type Pkcs11Uri } from './uri.ts';

type Lib = typeof Pkcs11js;

export interface Pkcs11TokenInfo {
  label: string;
  manufacturer: string;
  model: string;
  serial: string;
}

/** One signing key as GET /pkcs11/keys lists it. */
export interface Pkcs11KeyInfo {
  uri: string;
  label: string;
  token: Pkcs11TokenInfo;
  /** "ECDSA P-256", "ECDSA P-384" or "RSA 2048" (shared/crypto/pkcs.ts algorithmName). */
  algorithm: string;
  publicKeyPem: string;
  /** SHA-256 of the SubjectPublicKeyInfo DER, hex. */
  fingerprint: string;
}

/** What signing needs to know about the key that signed. */
export interface Pkcs11Signed {
  signature: Uint8Array;
  key: Pkcs11KeyInfo;
}

/** The token operations the endpoint needs (the real one is `loadPkcs11Module`). */
export interface Pkcs11Provider {
  listKeys(): Promise<Pkcs11KeyInfo[]>;
  /**
   * Signs `data` as cosign does with the key `uri` names, after logging in with `pin`.
   * `mayLogin` runs once the token is known, before anything is asked of it, and again right
   * before C_Login; it may throw to refuse (the endpoint's back-off). `loginFailed` and `loggedIn`
   * report the PIN's fate.
   * @throws Pkcs11Error PKCS11_TOKEN_NOT_PRESENT, PKCS11_KEY_NOT_FOUND, PKCS11_URI_INVALID,
   *   PKCS11_PIN_INCORRECT, PKCS11_PIN_LOCKED, PKCS11_SIGN_FAILED, PKCS11_MODULE_FAILED
   */
  sign(uri: Pkcs11Uri, pin: string, data: Uint8Array, hooks?: SignHooks): Promise<Pkcs11Signed>;
  /** C_Finalize; the provider cannot be used afterwards. */
  close(): void;
}

export interface SignHooks {
  mayLogin?(token: Pkcs11TokenInfo): void;
  loginFailed?(token: Pkcs11TokenInfo): void;
  loggedIn?(token: Pkcs11TokenInfo): void;
}

/** What a slot's token looked like when it was read. */
interface Slot {
  handle: Buffer;
  /** Stable name for the lock and the back-off: serial and label. */
  key: string;
  token: Pkcs11TokenInfo;
}

interface FoundKey {
  info: Pkcs11KeyInfo;
  algorithm: KeyAlgorithm;
  spki: Uint8Array;
  id: Buffer | undefined;
  label: string | undefined;
}

/** CKR_* codes (PKCS#11 2.40 section 3.6), as pkcs11js reports them in `code`. */
const CKR = {
  PIN_INCORRECT: 0xa0,
  PIN_INVALID: 0xa1,
  PIN_LEN_RANGE: 0xa2,
  PIN_EXPIRED: 0xa3,
  PIN_LOCKED: 0xa4,
  DEVICE_REMOVED: 0x32,
  DEVICE_ERROR: 0x30,
  SESSION_HANDLE_INVALID: 0xb3,
  SESSION_CLOSED: 0xb0,
  SLOT_ID_INVALID: 0x03,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_NOT_RECOGNIZED: 0xe1,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

const GONE: readonly number[] = [
  CKR.DEVICE_REMOVED,
  CKR.SESSION_HANDLE_INVALID,
  CKR.SESSION_CLOSED,
  CKR.SLOT_ID_INVALID,
  CKR.TOKEN_NOT_PRESENT,
  CKR.TOKEN_NOT_RECOGNIZED,
];

/** The CKR_ code of a pkcs11js error, or undefined for anything else. */
function ckr(e: unknown): number | undefined {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'number' && /^CKR_/.test(e.message)
    ? (e as unknown as { code: number }).code
    : undefined;
}

function ckrName(e: unknown): string {
  return e instanceof Error && /^CKR_[A-Z_]+$/.test(e.message) ? e.message : 'an error';
}

function trim(s: string): string {
  // CK_TOKEN_INFO strings are blank-padded (and some modules leave NULs).
  return s.replace(/[\s\0]+$/, '');
}

function notPresent(status: number): Pkcs11Error {
  return new Pkcs11Error(
    'PKCS11_TOKEN_NOT_PRESENT',
    'The token holding this key is not present any more (removed, or its slot is gone). Plug it in and list the keys again.',
    status,
  );
}

/** The SubjectPublicKeyInfo of an EC public key from CKA_EC_PARAMS and CKA_EC_POINT (RFC 5480). */
function ecSpki(params: Buffer, point: Buffer): Uint8Array {
  // CKA_EC_POINT is the DER OCTET STRING around the point (PKCS#11 2.40 section 2.3.3); some
  // modules give the bare point.
  let raw: Uint8Array = point;
  if (point[0] === 0x04 && point.length > 2) {
    const lenByte = point[1]!;
    const headerLen = lenByte < 0x80 ? 2 : 2 + (lenByte & 0x7f);
    const len = lenByte < 0x80 ? lenByte : point.subarray(2, headerLen).reduce((n, b) => n * 256 + b, 0);
    if (headerLen + len === point.length && point[headerLen] === 0x04) raw = point.subarray(headerLen);
  }
  return der.seq(der.seq(der.oid('1.2.840.10045.2.1'), params), der.bits(raw));
}

function rsaSpki(modulus: Buffer, exponent: Buffer): Uint8Array {
  return der.seq(
    der.seq(der.oid('1.2.840.113549.1.1.1'), der.null()),
    der.bits(der.seq(der.uint(modulus), der.uint(exponent))),
  );
}

function supported(a: KeyAlgorithm): boolean {
  return (a.kind === 'ecdsa' && (a.curve === 'P-256' || a.curve === 'P-384')) || (a.kind === 'rsa' && a.bits >= 2048);
}

function matches(wanted: string | undefined, actual: string): boolean {
  return wanted === undefined || wanted === actual;
}

/**
 * The one thing a key URI selects among `found`.
 * @throws `none()` when it selects nothing, Pkcs11Error PKCS11_URI_INVALID (422) with `many` when it selects several
 */
function selectedOne<T>(found: readonly T[], none: () => Pkcs11Error, many: string): T {
  if (found.length === 0) throw none();
  if (found.length > 1) throw new Pkcs11Error('PKCS11_URI_INVALID', many, 422);
  return found[0]!;
}

/** What a client is told when the module is missing: the reason (paths, loader text) is for the server log only. */
export const MODULE_NOT_LOADED = 'The PKCS#11 module could not be loaded.';

function notLoaded(detail: string): Pkcs11Error {
  return new Pkcs11Error('PKCS11_MODULE_FAILED', MODULE_NOT_LOADED, 502, { cause: new Error(detail) });
}

/**
 * Loads a PKCS#11 module (C_Initialize with OS locking) through pkcs11js, imported only now so a
 * server without PKCS#11 never needs the native addon.
 * @throws Pkcs11Error PKCS11_MODULE_FAILED (502) when pkcs11js or the module cannot be loaded or
 *   initialised; its message is MODULE_NOT_LOADED (it reaches HTTP clients), and its `cause` an
 *   Error whose message says why, with the module path, for the server's log.
 */
export async function loadPkcs11Module(path: string): Promise<Pkcs11Provider> {
  let lib: Lib;
  try {
    const mod = (await import('pkcs11js')) as unknown as Lib & { default?: Lib };
    lib = mod.default ?? mod;
  } catch (e) {
    throw notLoaded(`pkcs11js (the PKCS#11 binding) is not installed or not built: ${(e as Error).message}`);
  }
  const p11 = new lib.PKCS11();
  try {
    p11.load(path);
  } catch (e) {
    throw notLoaded(`The PKCS#11 module ${path} could not be loaded: ${(e as Error).message}`);
  }
  try {
    p11.C_Initialize({ flags: lib.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (ckr(e) !== CKR.CRYPTOKI_ALREADY_INITIALIZED) {
      try {
        p11.close();
      } catch {
        // already failing
      }
      throw notLoaded(`The PKCS#11 module ${path} failed to initialise (${ckrName(e)}).`);
    }
  }
  return new ModuleProvider(lib, p11);
}

function pinLocked(): Pkcs11Error {
  return new Pkcs11Error(
    'PKCS11_PIN_LOCKED',
    'The token’s PIN is locked after too many wrong tries; its security officer must unlock it.',
    423,
  );
}

/** The refusal of a login the token would count against a PIN that is locked or on its last try. */
function riskyLogin(lib: Lib, flags: number): Pkcs11Error | undefined {
  if ((flags & lib.CKF_USER_PIN_LOCKED) !== 0) {
    return pinLocked();
  }
  if ((flags & lib.CKF_USER_PIN_FINAL_TRY) !== 0) {
    return new Pkcs11Error(
      'PKCS11_PIN_FINAL_TRY',
      'One more wrong PIN would lock this token, so the server does not try one; log in once with the right PIN using the token’s own tools (or have its security officer reset the counter), then sign again.',
      423,
    );
  }
  return undefined;
}

/**
 * What a failed C_Login means to the client. A token that is gone keeps its CKR_ error (the
 * session turns it into PKCS11_TOKEN_NOT_PRESENT); `wrongPin` runs for a PIN the token refused.
 */
function loginFailure(e: unknown, wrongPin: () => void): unknown {
  const code = ckr(e);
  if (code === CKR.PIN_LOCKED) {
    return pinLocked();
  }
  if (code === CKR.PIN_INCORRECT || code === CKR.PIN_INVALID || code === CKR.PIN_LEN_RANGE) {
    wrongPin();
    return new Pkcs11Error('PKCS11_PIN_INCORRECT', 'The token refused the PIN.', 401);
  }
  if (code === CKR.PIN_EXPIRED) {
    return new Pkcs11Error('PKCS11_PIN_LOCKED', 'The token’s PIN has expired and must be changed first.', 423);
  }
  if (code !== undefined && GONE.includes(code)) return e;
  return new Pkcs11Error('PKCS11_MODULE_FAILED', `The token refused the login (${ckrName(e)}).`, 502);
}

/**
 * A broken token (or a key pair whose halves do not match) must not produce a signature that
 * verifies nowhere. @throws Pkcs11Error PKCS11_SIGN_FAILED (502) when it does not verify
 */
function checkSignature(key: FoundKey, data: Uint8Array, signature: Uint8Array): void {
  const publicKey = createPublicKey({ key: Buffer.from(key.spki), format: 'der', type: 'spki' });
  const ok = verify(
    'sha256',
    data,
    key.algorithm.kind === 'ecdsa' ? { key: publicKey, dsaEncoding: 'der' } : publicKey,
    signature,
  );
  if (!ok) {
    throw new Pkcs11Error(
      'PKCS11_SIGN_FAILED',
      'The token’s signature does not verify with the key’s public key; it was not returned.',
      502,
    );
  }
}

/** @throws Pkcs11Error PKCS11_URI_INVALID (422) unless the URI names a private key by id or label */
function checkKeyUri(uri: Pkcs11Uri): void {
  if (uri.type !== undefined && uri.type !== 'private') {
    throw new Pkcs11Error('PKCS11_URI_INVALID', 'The key URI must name a private key (type=private).', 422);
  }
  if (uri.id === undefined && uri.object === undefined) {
    throw new Pkcs11Error('PKCS11_URI_INVALID', 'The key URI must name the key by id or object (its label).', 422);
  }
}

/** The provider over a loaded module: each token operation is a method, run under the token's lock. */
class ModuleProvider implements Pkcs11Provider {
  readonly #lib: Lib;
  readonly #p11: Pkcs11js.PKCS11;
  /** One operation per token at a time. */
  readonly #locks = new KeyedLock();

  constructor(lib: Lib, p11: Pkcs11js.PKCS11) {
    this.#lib = lib;
    this.#p11 = p11;
  }

  /** The initialised tokens present now. @throws Pkcs11Error PKCS11_MODULE_FAILED (502) */
  #slots(): Slot[] {
    let handles: Buffer[];
    try {
      handles = this.#p11.C_GetSlotList(true);
    } catch (e) {
      throw new Pkcs11Error(
        'PKCS11_MODULE_FAILED',
        `The PKCS#11 module could not list its slots (${ckrName(e)}).`,
        502,
      );
    }
    const out: Slot[] = [];
    for (const handle of handles) {
      let info: Pkcs11js.TokenInfo;
      try {
        info = this.#p11.C_GetTokenInfo(handle);
      } catch {
        continue; // removed since the list was made
      }
      if ((info.flags & this.#lib.CKF_TOKEN_INITIALIZED) === 0) continue;
      const token = {
        label: trim(info.label),
        manufacturer: trim(info.manufacturerID),
        model: trim(info.model),
        serial: trim(info.serialNumber),
      };
      out.push({ handle, key: `${token.manufacturer}\u0000${token.serial}\u0000${token.label}`, token });
    }
    return out;
  }

  /**
   * The one token the URI's token attributes select.
   * @throws Pkcs11Error PKCS11_TOKEN_NOT_PRESENT (404), PKCS11_URI_INVALID (422) when several match
   */
  #slotFor(uri: Pkcs11Uri): Slot {
    const candidates = this.#slots().filter(
      (s) =>
        matches(uri.token, s.token.label) &&
        matches(uri.manufacturer, s.token.manufacturer) &&
        matches(uri.serial, s.token.serial) &&
        matches(uri.model, s.token.model),
    );
    return selectedOne(
      candidates,
      () => notPresent(404),
      'The key URI matches more than one token: give the token label and serial, as GET /pkcs11/keys lists them.',
    );
  }

  /**
   * The back-off counts wrong PINs per server, but a card may lock after 3 tries counted on the
   * card itself (other hosts, earlier runs): when the token says one more wrong PIN locks it, the
   * server does not risk that try, and a locked PIN is not tried at all.
   * @throws Pkcs11Error PKCS11_PIN_LOCKED, PKCS11_PIN_FINAL_TRY (423), PKCS11_MODULE_FAILED (502)
   */
  #refuseRiskyLogin(slot: Slot): void {
    let flags: number;
    try {
      flags = this.#p11.C_GetTokenInfo(slot.handle).flags;
    } catch (e) {
      const code = ckr(e);
      if (code !== undefined && GONE.includes(code)) throw e;
      throw new Pkcs11Error('PKCS11_MODULE_FAILED', `The token did not describe itself (${ckrName(e)}).`, 502);
    }
    const refusal = riskyLogin(this.#lib, flags);
    if (refusal !== undefined) throw refusal;
  }

  /**
   * Runs `fn` in a session of its own, closed afterwards whatever happens.
   * @throws Pkcs11Error PKCS11_TOKEN_NOT_PRESENT (404 before the session opens, 503 after)
   */
  async #withSession<T>(slot: Slot, fn: (session: Buffer) => Promise<T>): Promise<T> {
    let session: Buffer;
    try {
      session = this.#p11.C_OpenSession(slot.handle, this.#lib.CKF_SERIAL_SESSION);
    } catch (e) {
      const code = ckr(e);
      if (code !== undefined && GONE.includes(code)) throw notPresent(404);
      throw new Pkcs11Error('PKCS11_MODULE_FAILED', `The token did not open a session (${ckrName(e)}).`, 502);
    }
    try {
      return await fn(session);
    } catch (e) {
      const code = ckr(e);
      if (code !== undefined && GONE.includes(code)) throw notPresent(503);
      throw e;
    } finally {
      try {
        this.#p11.C_CloseSession(session);
      } catch {
        // the token may be gone; nothing is left open on our side
      }
    }
  }

  #findObjects(session: Buffer, template: Pkcs11js.Template): Buffer[] {
    const p11 = this.#p11;
    p11.C_FindObjectsInit(session, template);
    try {
      const found: Buffer[] = [];
      for (;;) {
        const batch = p11.C_FindObjects(session, 64);
        found.push(...batch);
        if (batch.length < 64 || found.length > 4096) return found;
      }
    } finally {
      p11.C_FindObjectsFinal(session);
    }
  }

  #attr(session: Buffer, obj: Buffer, type: number): Buffer | undefined {
    try {
      const [a] = this.#p11.C_GetAttributeValue(session, obj, [{ type }]);
      return Buffer.isBuffer(a?.value) ? a.value : undefined;
    } catch {
      return undefined;
    }
  }

  /** The SubjectPublicKeyInfo of an EC or RSA public key object; undefined for anything else. */
  #spkiOf(session: Buffer, obj: Buffer): Uint8Array | undefined {
    const lib = this.#lib;
    const keyType = this.#attr(session, obj, lib.CKA_KEY_TYPE);
    const kt = keyType === undefined ? -1 : keyType.readUIntLE(0, Math.min(keyType.length, 6));
    if (kt === lib.CKK_EC) {
      const params = this.#attr(session, obj, lib.CKA_EC_PARAMS);
      const point = this.#attr(session, obj, lib.CKA_EC_POINT);
      return params === undefined || point === undefined ? undefined : ecSpki(params, point);
    }
    if (kt === lib.CKK_RSA) {
      const modulus = this.#attr(session, obj, lib.CKA_MODULUS);
      const exponent = this.#attr(session, obj, lib.CKA_PUBLIC_EXPONENT);
      return modulus === undefined || exponent === undefined ? undefined : rsaSpki(modulus, exponent);
    }
    return undefined;
  }

  /** A public key object as a key cosign signs with, or undefined when it is not one. */
  #keyOf(session: Buffer, slot: Slot, obj: Buffer): FoundKey | undefined {
    const spki = this.#spkiOf(session, obj);
    if (spki === undefined) return undefined;
    let algorithm: KeyAlgorithm;
    try {
      algorithm = parseSpki(spki).algorithm;
    } catch {
      return undefined; // a curve cosign does not sign with, or a malformed key
    }
    if (!supported(algorithm)) return undefined;
    const id = this.#attr(session, obj, this.#lib.CKA_ID);
    const labelBytes = this.#attr(session, obj, this.#lib.CKA_LABEL);
    const label = labelBytes === undefined ? undefined : labelBytes.toString('utf8');
    const uri = formatPkcs11Uri({
      token: slot.token.label,
      manufacturer: slot.token.manufacturer,
      serial: slot.token.serial,
      model: slot.token.model,
      ...(label !== undefined && label !== '' ? { object: label } : {}),
      ...(id !== undefined && id.length > 0 ? { id } : {}),
      type: 'private',
    });
    return {
      info: {
        uri,
        label: label ?? '',
        token: slot.token,
        algorithm: algorithmName(algorithm),
        publicKeyPem: publicKeyPem(spki),
        fingerprint: createHash('sha256').update(spki).digest('hex'),
      },
      algorithm,
      spki,
      id: id !== undefined && id.length > 0 ? id : undefined,
      label,
    };
  }

  /** The signing keys of one token, from its public key objects. */
  #keysOf(session: Buffer, slot: Slot, filter: Pkcs11Uri = {}): FoundKey[] {
    const lib = this.#lib;
    const template: Pkcs11js.Template = [{ type: lib.CKA_CLASS, value: lib.CKO_PUBLIC_KEY }];
    if (filter.id !== undefined) template.push({ type: lib.CKA_ID, value: Buffer.from(filter.id) });
    if (filter.object !== undefined) template.push({ type: lib.CKA_LABEL, value: filter.object });
    const out: FoundKey[] = [];
    for (const obj of this.#findObjects(session, template)) {
      const key = this.#keyOf(session, slot, obj);
      if (key !== undefined) out.push(key);
    }
    return out;
  }

  /** The one key on the token the URI names. @throws Pkcs11Error PKCS11_KEY_NOT_FOUND, PKCS11_URI_INVALID */
  #keyFor(session: Buffer, slot: Slot, uri: Pkcs11Uri): FoundKey {
    return selectedOne(
      this.#keysOf(session, slot, uri),
      () =>
        new Pkcs11Error(
          'PKCS11_KEY_NOT_FOUND',
          'The token has no ECDSA P-256/P-384 or RSA signing key that this URI names.',
          404,
        ),
      'The key URI names more than one key on the token: give its id.',
    );
  }

  /**
   * C_Login with the PIN, reporting its fate to the hooks.
   * @throws Pkcs11Error PKCS11_PIN_INCORRECT (401), PKCS11_PIN_LOCKED (423), PKCS11_MODULE_FAILED (502)
   */
  #login(session: Buffer, slot: Slot, pin: string, hooks: SignHooks): void {
    const p11 = this.#p11;
    const user = this.#lib.CKU_USER;
    try {
      try {
        p11.C_Login(session, user, pin);
      } catch (e) {
        if (ckr(e) !== CKR.USER_ALREADY_LOGGED_IN) throw e;
        // A login left over (another library user, or a logout that failed): log out and log in
        // again, so this PIN is still checked.
        p11.C_Logout(session);
        p11.C_Login(session, user, pin);
      }
      hooks.loggedIn?.(slot.token);
    } catch (e) {
      throw loginFailure(e, () => hooks.loginFailed?.(slot.token));
    }
  }

  /**
   * Signs with the private key matching `key` (logged in), as cosign does: ECDSA over SHA-256 with
   * the DER signature built from r‖s, or RSA PKCS#1 v1.5 over SHA-256.
   * @throws Pkcs11Error PKCS11_KEY_NOT_FOUND (404) unless exactly one private key matches
   */
  async #signWith(session: Buffer, key: FoundKey, data: Uint8Array): Promise<Uint8Array> {
    const lib = this.#lib;
    const p11 = this.#p11;
    const template: Pkcs11js.Template = [
      { type: lib.CKA_CLASS, value: lib.CKO_PRIVATE_KEY },
      { type: lib.CKA_SIGN, value: true },
    ];
    if (key.id !== undefined) template.push({ type: lib.CKA_ID, value: key.id });
    else if (key.label !== undefined) template.push({ type: lib.CKA_LABEL, value: key.label });
    const privates = this.#findObjects(session, template);
    if (privates.length !== 1) {
      throw new Pkcs11Error(
        'PKCS11_KEY_NOT_FOUND',
        privates.length === 0
          ? 'The token has the public key but no private key that may sign with the same id.'
          : 'The token holds several private keys with this id; give the key a unique id.',
        404,
      );
    }
    if (key.algorithm.kind === 'ecdsa') {
      const size = CURVE_BYTES[key.algorithm.curve];
      p11.C_SignInit(session, { mechanism: lib.CKM_ECDSA }, privates[0]!);
      const hash = createHash('sha256').update(data).digest();
      const raw = await p11.C_SignAsync(session, hash, Buffer.alloc(2 * size));
      if (raw.length !== 2 * size) throw new Error(`CKM_ECDSA gave ${raw.length} bytes`);
      return rawToDer(raw, size);
    }
    p11.C_SignInit(session, { mechanism: lib.CKM_SHA256_RSA_PKCS }, privates[0]!);
    return new Uint8Array(await p11.C_SignAsync(session, Buffer.from(data), Buffer.alloc(1024)));
  }

  /**
   * Signs while logged in, then logs out whatever happened.
   * @throws Pkcs11Error PKCS11_SIGN_FAILED (502) for a failure of the token, and #signWith's codes
   */
  async #signThenLogout(session: Buffer, key: FoundKey, data: Uint8Array): Promise<Uint8Array> {
    try {
      return await this.#signWith(session, key, data);
    } catch (e) {
      if (e instanceof Pkcs11Error) throw e;
      const code = ckr(e);
      if (code !== undefined && GONE.includes(code)) throw e;
      throw new Pkcs11Error('PKCS11_SIGN_FAILED', `The token failed to sign (${ckrName(e)}).`, 502);
    } finally {
      try {
        this.#p11.C_Logout(session);
      } catch {
        // closing the session below ends the login in any case
      }
    }
  }

  async listKeys(): Promise<Pkcs11KeyInfo[]> {
    const out: Pkcs11KeyInfo[] = [];
    for (const slot of this.#slots()) {
      try {
        const keys = await this.#locks.run(slot.key, () => this.#withSession(slot, async (s) => this.#keysOf(s, slot)));
        out.push(
          ...keys.map((k) => k.info).sort((a, b) => a.label.localeCompare(b.label) || a.uri.localeCompare(b.uri)),
        );
      } catch (e) {
        // A token removed while being listed is simply not listed.
        if (!(e instanceof Pkcs11Error && e.code === 'PKCS11_TOKEN_NOT_PRESENT')) throw e;
      }
    }
    return out;
  }

  async sign(uri: Pkcs11Uri, pin: string, data: Uint8Array, hooks: SignHooks = {}): Promise<Pkcs11Signed> {
    checkKeyUri(uri);
    const slot = this.#slotFor(uri);
    hooks.mayLogin?.(slot.token);
    return this.#locks.run(slot.key, () =>
      this.#withSession(slot, async (session) => {
        const key = this.#keyFor(session, slot, uri);
        // Again: wrong PINs may have been counted while this request waited for the lock.
        hooks.mayLogin?.(slot.token);
        this.#refuseRiskyLogin(slot);
        this.#login(session, slot, pin, hooks);
        const signature = await this.#signThenLogout(session, key, data);
        checkSignature(key, data, signature);
        return { signature, key: key.info };
      }),
    );
  }

  close(): void {
    try {
      this.#p11.C_Finalize();
    } finally {
      this.#p11.close();
    }
  }
}
