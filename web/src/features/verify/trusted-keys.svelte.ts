/**
 * Public keys the viewer trusts, by fingerprint (SHA-256 of the SPKI DER) with a name of their
 * choosing, kept in this browser's localStorage ("cosign-web.trusted-keys"). A verification link
 * carries its own key, chosen by whoever made the link: this list is how a later link with a
 * known key says whose it is, and how an unknown one is called unknown. Only public keys are
 * stored; nothing here is secret.
 */
import { KeyError } from '../../../../shared/errors.ts';
import { fromBase64Url, toBase64Url } from '../../../../shared/encoding/base64.ts';
import { publicKeyPem } from '../../../../shared/crypto/keys.ts';
import { algorithmName, parseSpki } from '../../../../shared/crypto/pkcs.ts';
import { fingerprint } from '../../../../shared/crypto/webcrypto.ts';

const STORAGE_KEY = 'cosign-web.trusted-keys';

export interface TrustedKey {
  /** Hex SHA-256 of the SPKI DER. */
  fingerprint: string;
  name: string;
  /** base64url of the SPKI DER. */
  spki: string;
  /** "ECDSA P-256", "RSA 3072", "Ed25519". */
  algorithm: string;
  /** ISO 8601 time it was added. */
  added: string;
}

export class TrustedKeys {
  #list = $state.raw<TrustedKey[]>([]);
  readonly #storage: Storage | null;

  constructor(storage: Storage | null = globalThis.localStorage ?? null) {
    this.#storage = storage;
    this.#list = this.#load();
  }

  /** The trusted keys, oldest first. */
  get list(): TrustedKey[] {
    return this.#list;
  }

  #load(): TrustedKey[] {
    try {
      const raw = JSON.parse(this.#storage?.getItem(STORAGE_KEY) ?? '[]') as unknown;
      if (!Array.isArray(raw)) return [];
      const out: TrustedKey[] = [];
      for (const k of raw as Partial<TrustedKey>[]) {
        const der = typeof k?.spki === 'string' ? fromBase64Url(k.spki) : null;
        if (!der || typeof k.name !== 'string') continue;
        try {
          const info = parseSpki(der);
          out.push({
            fingerprint: fingerprint(der).hex,
            name: k.name,
            spki: k.spki!,
            algorithm: algorithmName(info.algorithm),
            added: typeof k.added === 'string' ? k.added : '',
          });
        } catch {
          // a damaged entry is dropped, the rest kept
        }
      }
      return out;
    } catch {
      return [];
    }
  }

  #save(): void {
    try {
      this.#storage?.setItem(STORAGE_KEY, JSON.stringify(this.#list));
    } catch (e) {
      throw new KeyError('KEY_STORAGE_FAILED', 'This browser refused to store the trusted key list.', { cause: e });
    }
  }

  /**
   * Trusts a key under a name (renaming it when already trusted).
   * @throws KeyError for a key that is not a usable public key, or when storage fails.
   */
  add(name: string, spki: Uint8Array): TrustedKey {
    const info = parseSpki(spki);
    const clean = name.trim();
    if (!clean) throw new KeyError('KEY_NOT_FOUND', 'Give the key a name, e.g. whose it is.');
    const entry: TrustedKey = {
      fingerprint: fingerprint(spki).hex,
      name: clean.slice(0, 100),
      spki: toBase64Url(spki),
      algorithm: algorithmName(info.algorithm),
      // A timestamp string, not reactive state.
      // eslint-disable-next-line svelte/prefer-svelte-reactivity
      added: new Date().toISOString(),
    };
    this.#list = [...this.list.filter((k) => k.fingerprint !== entry.fingerprint), entry];
    this.#save();
    return entry;
  }

  remove(fp: string): void {
    this.#list = this.list.filter((k) => k.fingerprint !== fp);
    this.#save();
  }

  byFingerprint(fp: string): TrustedKey | undefined {
    return this.list.find((k) => k.fingerprint === fp);
  }

  /** The trusted keys as the verifier takes them, to name who made a signature. */
  known(): { name: string; spki: Uint8Array }[] {
    return this.list.flatMap((k) => {
      const spki = fromBase64Url(k.spki);
      return spki ? [{ name: k.name, spki }] : [];
    });
  }

  pem(k: TrustedKey): string {
    return publicKeyPem(fromBase64Url(k.spki)!);
  }
}
