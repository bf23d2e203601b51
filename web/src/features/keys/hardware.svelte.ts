/**
 * Hardware keys: the keys of the server's PKCS#11 tokens, reached through the relay's /pkcs11
 * endpoint. Nothing here is stored: the relay access token, the key list and the connection live
 * in this tab's memory only, and the PIN is never held at all (the signer is given it for one
 * signing run by the Sign page, which clears its field afterwards).
 */
import { Pkcs11Error } from '../../../../shared/errors.ts';
import { parsePublicKey, publicKeyPem } from '../../../../shared/crypto/keys.ts';
import { algorithmName, type KeyAlgorithm } from '../../../../shared/crypto/pkcs.ts';
import {
  fingerprint,
  importPublicKey,
  verifyWithCryptoKey,
  type Fingerprint,
} from '../../../../shared/crypto/webcrypto.ts';
import type { Signer } from '../../../../shared/ops/sign.ts';
import { listHardwareKeys, signWithHardwareKey, type HardwareKeyInfo } from './pkcs11-client.ts';

/** The prefix of a hardware key's id among the page's keys (the rest is its pkcs11: URI). */
export const HARDWARE_ID_PREFIX = 'hw:';

export const HARDWARE_KIND_NAME = 'hardware key (PKCS#11)';

interface HardwareKeyView {
  id: string;
  uri: string;
  label: string;
  /** "label of the token (manufacturer model, serial …)". */
  tokenName: string;
  /** e.g. "ECDSA P-256", computed from the public key (the relay's own word is not trusted). */
  algorithm: string;
  keyAlgorithm: KeyAlgorithm;
  spki: Uint8Array;
  publicKeyPem: string;
  fingerprint: Fingerprint;
  /** An object URL of the public key, for "Download public key". */
  pubUrl: string;
}

function tokenName(t: HardwareKeyInfo['token']): string {
  const text = (v: unknown): string => (typeof v === 'string' ? v.trim() : '');
  const make = [text(t.manufacturer), text(t.model)].filter(Boolean).join(' ');
  const serial = text(t.serial) ? `serial ${text(t.serial)}` : '';
  const detail = [make, serial].filter(Boolean).join(', ');
  const label = text(t.label) || 'unnamed token';
  return detail ? `${label} (${detail})` : label;
}

export class HardwareKeys {
  #keys = $state.raw<HardwareKeyView[]>([]);
  #pinConfigured = $state(false);
  #connected = $state(false);
  #skipped = $state(0);
  #available = $state<boolean | null>(null);
  /** The relay access token: memory only, sent only to /pkcs11/*. */
  #token = '';
  readonly #origin: string;

  constructor(origin: string = location.origin) {
    this.#origin = origin;
  }

  get keys(): HardwareKeyView[] {
    return this.#keys;
  }

  /** The server signs with its own configured PIN (PKCS11_PIN): the page asks for none. */
  get pinConfigured(): boolean {
    return this.#pinConfigured;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Keys the relay listed whose public key this page cannot read (so cannot check or verify): left out. */
  get skipped(): number {
    return this.#skipped;
  }

  /** Whether the server offers PKCS#11 at all: null until asked (see probe). */
  get available(): boolean | null {
    return this.#available;
  }

  /**
   * Lists the relay's keys with this access token and keeps both for the tab.
   * @throws Pkcs11Error PKCS11_UNAUTHORIZED, PKCS11_NOT_CONFIGURED, PKCS11_MODULE_FAILED
   */
  async connect(accessToken: string): Promise<HardwareKeyView[]> {
    const token = accessToken.trim();
    if (!token) throw new Pkcs11Error('PKCS11_UNAUTHORIZED', 'Type the relay access token first.', 401);
    let list;
    try {
      list = await listHardwareKeys(this.#origin, token);
    } catch (e) {
      if (e instanceof Pkcs11Error && e.code === 'PKCS11_NOT_CONFIGURED') this.#available = false;
      throw e;
    }
    this.#available = true;
    const views: HardwareKeyView[] = [];
    let skipped = 0;
    for (const k of list.keys) {
      let info;
      try {
        info = parsePublicKey(k.publicKeyPem);
      } catch {
        skipped++;
        continue;
      }
      const pem = publicKeyPem(info.spki);
      views.push({
        id: HARDWARE_ID_PREFIX + k.uri,
        uri: k.uri,
        label: k.label,
        tokenName: tokenName(k.token),
        algorithm: algorithmName(info.algorithm),
        keyAlgorithm: info.algorithm,
        spki: info.spki,
        publicKeyPem: pem,
        fingerprint: fingerprint(info.spki),
        pubUrl: URL.createObjectURL(new Blob([pem], { type: 'application/x-pem-file' })),
      });
    }
    this.#revoke();
    this.#token = token;
    this.#keys = views;
    this.#skipped = skipped;
    this.#pinConfigured = list.pinConfigured;
    this.#connected = true;
    return views;
  }

  /**
   * Asks, without any token, whether the server has PKCS#11 configured: it answers 404
   * PKCS11_NOT_CONFIGURED when not, 401 when it has (and wants the access token).
   */
  async probe(): Promise<void> {
    if (this.available !== null) return;
    try {
      const res = await fetch(`${this.#origin}/pkcs11/keys`, { cache: 'no-store', credentials: 'omit' });
      const body = (await res.json().catch(() => null)) as { code?: unknown } | null;
      this.#available = !(res.status === 404 && body?.code === 'PKCS11_NOT_CONFIGURED');
    } catch {
      // unknown: the Connect button will say
    }
  }

  /** Forgets the access token and the key list. */
  disconnect(): void {
    this.#revoke();
    this.#token = '';
    this.#keys = [];
    this.#skipped = 0;
    this.#pinConfigured = false;
    this.#connected = false;
  }

  #revoke(): void {
    for (const k of this.keys) URL.revokeObjectURL(k.pubUrl);
  }

  #find(id: string): HardwareKeyView | undefined {
    return this.keys.find((k) => k.id === id);
  }

  /** True when signing with this key needs the person's PIN. */
  needsPin(id: string): boolean {
    return this.connected && !this.pinConfigured && this.#find(id) !== undefined;
  }

  /**
   * A signer that has the relay sign with the token's key. `pin` is used for this signer's
   * requests only and sent only to /pkcs11/sign (not at all when the server has its own). Each
   * signature is checked against the key's public key before it is returned, so nothing the token
   * did not really sign is ever pushed.
   * @throws Pkcs11Error PKCS11_KEY_NOT_FOUND; PKCS11_PIN_REQUIRED (from sign) without a PIN;
   *   the relay's refusals (from sign); PKCS11_SIGN_FAILED (from sign) for a signature that does not verify.
   */
  signer(id: string, pin: string): Signer {
    const key = this.#find(id);
    if (!key || !this.connected) {
      throw new Pkcs11Error(
        'PKCS11_KEY_NOT_FOUND',
        'That hardware key is not connected: press "Connect" on the Keys page.',
        404,
      );
    }
    const token = this.#token;
    const origin = this.#origin;
    const sendPin = this.pinConfigured ? undefined : pin;
    let publicKey: Promise<{ key: CryptoKey; algorithm: KeyAlgorithm }> | null = null;
    return {
      algorithm: key.keyAlgorithm,
      spki: key.spki,
      sign: async (data) => {
        if (sendPin === '') {
          throw new Pkcs11Error(
            'PKCS11_PIN_REQUIRED',
            'Signing with this key needs the token PIN: type it in "Token PIN".',
            401,
          );
        }
        const signature = await signWithHardwareKey(origin, token, key.uri, sendPin, data);
        publicKey ??= importPublicKey(key.spki);
        const pub = await publicKey;
        if (!(await verifyWithCryptoKey(pub.key, pub.algorithm, data, signature))) {
          throw new Pkcs11Error(
            'PKCS11_SIGN_FAILED',
            `The relay returned a signature that does not verify with the public key of "${key.label}"; it was not used.`,
            502,
          );
        }
        return signature;
      },
    };
  }
}
