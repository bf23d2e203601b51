/**
 * The page's keys: what is stored (IndexedDB records), what is unlocked for this tab (CryptoKeys in
 * memory, never written anywhere), and the status line the Keys page shows. Every operation either
 * completes and stores a whole key, or fails with a KeyError/PasskeyError and changes nothing.
 *
 * Private key bytes exist only transiently: while a key is generated, decrypted or imported they
 * are turned into a non-extractable CryptoKey and the buffer is zeroed.
 */
import { getContext, setContext } from 'svelte';
import { SvelteMap } from 'svelte/reactivity';
import { KeyError, type Reason } from '../../../../shared/errors.ts';
import { bytesEqual } from '../../../../shared/encoding/base64.ts';
import { decryptCosignKey, encryptCosignKey } from '../../../../shared/crypto/envelope.ts';
import { keyFileKind, parsePlainPrivateKeyPem, publicKeyPem } from '../../../../shared/crypto/keys.ts';
import { algorithmName, parsePkcs8, type KeyAlgorithm, type PrivateKeyInfo } from '../../../../shared/crypto/pkcs.ts';
import {
  exportPkcs8,
  exportSpki,
  fingerprint,
  generateEcdsaKeyPair,
  importPrivateKey,
  importPublicKey,
  randomBytes,
  signWithCryptoKey,
  verifyWithCryptoKey,
  type Fingerprint,
} from '../../../../shared/crypto/webcrypto.ts';
import { newPrfSalt, unwrapPrivateKey, wrapPrivateKey } from '../../../../shared/crypto/wrap.ts';
import type { Signer } from '../../../../shared/ops/sign.ts';
import { deleteRecord, listRecords, putRecord, type CosignKeyRecord, type KeyRecord } from './idb.ts';
import { HARDWARE_ID_PREFIX, HARDWARE_KIND_NAME, HardwareKeys } from './hardware.svelte.ts';
import { createPrfPasskey, evaluatePrf } from './passkey.ts';
import { workerDerive } from './scrypt-client.ts';
import { describeError } from '../../lib/errors.ts';

export type Status =
  | { state: 'idle' }
  | { state: 'working'; message: string; progress: number | null }
  | { state: 'ready'; message: string }
  | { state: 'error'; code: string; message: string };

interface KeyView {
  id: string;
  name: string;
  kind: KeyRecord['kind'] | 'hardware';
  algorithm: string;
  /** The public key, SubjectPublicKeyInfo DER, and as PEM. */
  spki: Uint8Array;
  publicKeyPem: string;
  fingerprint: Fingerprint;
  /** Can sign now without asking for a password (a passkey asks for the passkey each time). */
  unlocked: boolean;
  /** A hardware key that needs the token PIN typed on the Sign page. */
  needsPin?: boolean;
  /** A cosign key's encrypted cosign.key (what "Download cosign.key" gives; never the plain key). */
  encryptedPem?: string;
}

interface JustMade {
  id: string;
  publicKeyPem: string;
  /** Object URLs of cosign.key and cosign.pub, when there is an encrypted key to download. */
  keyUrl?: string;
  pubUrl: string;
}

const KIND_NAMES: Record<KeyView['kind'], string> = {
  cosign: 'cosign key',
  browser: 'browser key',
  passkey: 'passkey key',
  hardware: HARDWARE_KIND_NAME,
};

const IMPL_NAMES: Record<string, string> = { wasm: 'WebAssembly', js: 'scrypt-js, pure JavaScript', noble: 'noble' };

function newId(): string {
  return globalThis.crypto.randomUUID();
}

export class KeyStore {
  #records = $state.raw<KeyRecord[]>([]);
  #status = $state<Status>({ state: 'idle' });
  #justMade = $state.raw<JustMade | null>(null);
  #lastUsedId = $state<string | null>(null);
  #loaded = $state(false);
  /** Unlocked CryptoKeys of this tab, by record id: memory only. */
  #unlocked = new SvelteMap<string, CryptoKey>();
  /** The relay's PKCS#11 keys: never stored, memory only. */
  readonly hardware = new HardwareKeys();

  /** The stored keys, oldest first. */
  get records(): KeyRecord[] {
    return this.#records;
  }

  /** What the Keys page's status line says. */
  get status(): Status {
    return this.#status;
  }

  /** The key just generated, unlocked or imported, with its downloads. */
  get justMade(): JustMade | null {
    return this.#justMade;
  }

  /** The key most recently unlocked, generated, connected or signed with: the Sign page preselects it. */
  get lastUsedId(): string | null {
    return this.#lastUsedId;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  readonly views = $derived<KeyView[]>(
    this.records.map((r) => ({
      id: r.id,
      name: r.name,
      kind: r.kind,
      algorithm: algorithmName(r.algorithm),
      spki: r.spki,
      publicKeyPem: publicKeyPem(r.spki),
      fingerprint: fingerprint(r.spki),
      unlocked: r.kind === 'passkey' || r.kind === 'browser' || this.#unlocked.has(r.id),
      ...(r.kind === 'cosign' ? { encryptedPem: r.encryptedPem } : {}),
    })),
  );

  /** The hardware keys as keys of the page (after the stored ones in {@link usable} and {@link all}). */
  readonly hardwareViews = $derived<KeyView[]>(
    this.hardware.keys.map((k) => ({
      id: k.id,
      name: `${HARDWARE_KIND_NAME} ${k.label}`,
      kind: 'hardware',
      algorithm: k.algorithm,
      spki: k.spki,
      publicKeyPem: k.publicKeyPem,
      fingerprint: k.fingerprint,
      unlocked: true,
      needsPin: !this.hardware.pinConfigured,
    })),
  );

  /** Every key that can sign now: stored keys that are unlocked, then the connected hardware keys. */
  readonly usable = $derived<KeyView[]>([...this.views.filter((k) => k.unlocked), ...this.hardwareViews]);

  /** Every key whose public key the page knows, locked or not (an external signer needs only that). */
  readonly all = $derived<KeyView[]>([...this.views, ...this.hardwareViews]);

  async load(): Promise<void> {
    try {
      this.#records = await listRecords();
      for (const r of this.records) if (r.kind === 'browser') this.#setUnlocked(r.id, r.privateKey);
    } catch (e) {
      this.#status = { state: 'error', ...describeError(e) };
    }
    this.#loaded = true;
  }

  #setUnlocked(id: string, key: CryptoKey | null): void {
    if (key) this.#unlocked.set(id, key);
    else this.#unlocked.delete(id);
  }

  async #run(message: string, work: (progress: (f: number) => void) => Promise<void>): Promise<boolean> {
    this.#status = { state: 'working', message, progress: null };
    const progress = (f: number): void => {
      if (this.status.state === 'working') this.#status = { state: 'working', message, progress: f };
    };
    try {
      await work(progress);
      return true;
    } catch (e) {
      this.#status = { state: 'error', ...describeError(e) };
      return false;
    }
  }

  /** How the last scrypt ran, for the status line ("decrypted in 180 ms with WebAssembly scrypt"). */
  #lastDerive: { impl: string; ms: number } | null = null;
  #derive(progress: (f: number) => void) {
    this.#lastDerive = null;
    return workerDerive(progress, (r) => (this.#lastDerive = r));
  }

  /** `note`: said after "Key ready" (a warning about the new key, say). */
  #showMade(record: KeyRecord, encryptedPem?: string, note = ''): void {
    const old = this.justMade;
    if (old) {
      if (old.keyUrl) URL.revokeObjectURL(old.keyUrl);
      URL.revokeObjectURL(old.pubUrl);
    }
    const pub = publicKeyPem(record.spki);
    this.#justMade = {
      id: record.id,
      publicKeyPem: pub,
      pubUrl: URL.createObjectURL(new Blob([pub], { type: 'application/x-pem-file' })),
      ...(encryptedPem
        ? { keyUrl: URL.createObjectURL(new Blob([encryptedPem], { type: 'application/x-pem-file' })) }
        : {}),
    };
    this.#lastUsedId = record.id;
    const d = this.#lastDerive;
    const how = d ? ` scrypt took ${Math.round(d.ms)} ms (${IMPL_NAMES[d.impl] ?? d.impl}).` : '';
    this.#status = {
      state: 'ready',
      message: `Key ready: ${KIND_NAMES[record.kind]}, ${algorithmName(record.algorithm)}.${how}${note}`,
    };
    this.#lastDerive = null;
  }

  async #add(record: KeyRecord, key: CryptoKey | null, encryptedPem?: string, note = ''): Promise<void> {
    await putRecord(record);
    this.#records = [...this.records, record];
    if (key) this.#setUnlocked(record.id, key);
    this.#showMade(record, encryptedPem, note);
  }

  /** The fields every new record has: a fresh id, a name saying what it is, the public key. */
  #fields(kind: KeyRecord['kind'], info: { algorithm: KeyAlgorithm; spki: Uint8Array }) {
    return {
      id: newId(),
      name: `${KIND_NAMES[kind]} ${algorithmName(info.algorithm)} ${fingerprint(info.spki).hex.slice(0, 8)}`,
      created: Date.now(),
      algorithm: info.algorithm,
      spki: info.spki,
    };
  }

  /** Encrypts a private key as cosign.key, imports it non-extractable, stores it; zeroes `info.pkcs8`. */
  async #addCosignKey(info: PrivateKeyInfo, password: string, progress: (f: number) => void): Promise<void> {
    try {
      const same = this.records.find((r) => bytesEqual(r.spki, info.spki));
      if (same) {
        throw new KeyError(
          'KEY_DUPLICATE',
          `This key is already in this browser as "${same.name}" (same fingerprint): it was not added again.`,
        );
      }
      const note =
        password === ''
          ? ' Warning: it has no password, so anyone who gets this cosign.key can sign with it; generate or import it again with a password unless that is what you want.'
          : '';
      const encryptedPem = await encryptCosignKey(info.pkcs8, password, this.#derive(progress));
      const key = await importPrivateKey(info);
      const record: KeyRecord = {
        kind: 'cosign',
        ...this.#fields('cosign', info),
        encryptedPem,
      };
      await this.#add(record, key, encryptedPem, note);
    } finally {
      info.pkcs8.fill(0);
    }
  }

  /** Item 1: a new ECDSA P-256 cosign key pair, encrypted exactly as cosign 2.5 does. */
  generateCosignKey(password: string): Promise<boolean> {
    return this.#run('Generating key pair and encrypting it (scrypt)…', async (progress) => {
      const pair = await generateEcdsaKeyPair('P-256', true);
      await this.#addCosignKey(parsePkcs8(await exportPkcs8(pair.privateKey)), password, progress);
    });
  }

  /** Item 2: unlock a cosign.key file with its password. */
  unlockCosignKey(pem: string, password: string): Promise<boolean> {
    return this.#run('Unlocking key (scrypt)…', async (progress) => {
      if (keyFileKind(pem) !== 'encrypted') {
        throw new KeyError(
          'KEY_PEM_LABEL_UNKNOWN',
          'This is not an encrypted cosign key. To use a plain PEM private key, import it under "Import a PEM private key".',
        );
      }
      await this.#unlockPem(pem, password, progress);
    });
  }

  /**
   * Decrypts a cosign.key and unlocks the stored key holding its public key (`expected`, when
   * given, must be that key), or stores it as a new key.
   * @throws KeyError KEY_MISMATCH when `expected` does not hold the decrypted key; what
   *   decryptCosignKey throws
   */
  async #unlockPem(
    pem: string,
    password: string,
    progress: (f: number) => void,
    expected?: CosignKeyRecord,
  ): Promise<void> {
    const info = await decryptCosignKey(pem, password, this.#derive(progress));
    try {
      if (expected && !bytesEqual(info.spki, expected.spki)) {
        throw new KeyError('KEY_MISMATCH', `The stored cosign.key of "${expected.name}" does not hold its public key.`);
      }
      const existing = this.records.find(
        (r): r is CosignKeyRecord => r.kind === 'cosign' && bytesEqual(r.spki, info.spki),
      );
      const key = await importPrivateKey(info);
      if (existing) {
        this.#setUnlocked(existing.id, key);
        this.#showMade(existing, existing.encryptedPem);
        return;
      }
      const record: KeyRecord = {
        kind: 'cosign',
        ...this.#fields('cosign', info),
        encryptedPem: pem.trim() + '\n',
      };
      await this.#add(record, key, record.encryptedPem);
    } finally {
      info.pkcs8.fill(0);
    }
  }

  /** Item 3: import a plain PEM private key as cosign import-key-pair does, re-encrypted as cosign.key. */
  importPemKey(pem: string, password: string): Promise<boolean> {
    return this.#run('Importing key and encrypting it (scrypt)…', async (progress) => {
      const kind = keyFileKind(pem);
      if (kind === 'encrypted') {
        throw new KeyError(
          'KEY_PEM_LABEL_UNKNOWN',
          'This is already a cosign key: unlock it with its password instead.',
        );
      }
      if (kind === 'public') {
        throw new KeyError('KEY_PEM_LABEL_UNKNOWN', 'This is a public key; importing needs the private key.');
      }
      await this.#addCosignKey(parsePlainPrivateKeyPem(pem), password, progress);
    });
  }

  /**
   * Unlocks a stored cosign key with its password: its encrypted cosign.key is already stored, so
   * no file is needed.
   */
  unlockStored(id: string, password: string): Promise<boolean> {
    return this.#run('Unlocking key (scrypt)…', async (progress) => {
      const record = this.records.find((r): r is CosignKeyRecord => r.id === id && r.kind === 'cosign');
      if (!record) throw new KeyError('KEY_NOT_FOUND', 'That key is no longer in this browser.');
      await this.#unlockPem(record.encryptedPem, password, progress, record);
    });
  }

  /** Gives a stored key a new name (trimmed, 1 to 100 characters). */
  rename(id: string, name: string): Promise<boolean> {
    return this.#run('Renaming key…', async () => {
      const record = this.records.find((r) => r.id === id);
      if (!record) throw new KeyError('KEY_NOT_FOUND', 'That key is no longer in this browser.');
      const clean = name.trim();
      if (clean === '' || clean.length > 100) {
        throw new KeyError('KEY_PEM_INVALID', 'A key name is 1 to 100 characters long.');
      }
      const renamed = { ...record, name: clean };
      await putRecord(renamed);
      this.#records = this.records.map((r) => (r.id === id ? renamed : r));
      this.#status = { state: 'ready', message: `Renamed "${record.name}" to "${clean}".` };
    });
  }

  /** Item 4: a non-extractable WebCrypto P-256 key that lives in this browser only. */
  generateBrowserKey(): Promise<boolean> {
    return this.#run('Generating browser key…', async () => {
      const pair = await generateEcdsaKeyPair('P-256', false);
      const info = { algorithm: { kind: 'ecdsa', curve: 'P-256' } as const, spki: await exportSpki(pair.publicKey) };
      const record: KeyRecord = { kind: 'browser', ...this.#fields('browser', info), privateKey: pair.privateKey };
      await this.#add(record, pair.privateKey);
    });
  }

  #passkeyAbort = $state.raw<AbortController | null>(null);

  /** True while a passkey is being created (and "Cancel" can end it). */
  get creatingPasskey(): boolean {
    return this.#passkeyAbort !== null;
  }

  /** Ends a passkey creation under way ("Cancel"). */
  cancelPasskey(): void {
    this.#passkeyAbort?.abort();
  }

  /** Item 5: a P-256 key wrapped with a new passkey's PRF output. */
  async createPasskeyKey(): Promise<boolean> {
    const abort = new AbortController();
    this.#passkeyAbort = abort;
    try {
      return await this.#createPasskeyKey(abort.signal);
    } finally {
      this.#passkeyAbort = null;
    }
  }

  #createPasskeyKey(signal: AbortSignal): Promise<boolean> {
    return this.#run('Creating a passkey…', async () => {
      const prfSalt = newPrfSalt();
      const { credentialId, rpId, prfOutput } = await createPrfPasskey('cosign-web signing key', prfSalt, signal);
      const pair = await generateEcdsaKeyPair('P-256', true);
      const pkcs8 = await exportPkcs8(pair.privateKey);
      try {
        const info = parsePkcs8(pkcs8);
        const wrapped = await wrapPrivateKey(prfOutput, prfSalt, credentialId, pkcs8);
        const record: KeyRecord = {
          kind: 'passkey',
          ...this.#fields('passkey', info),
          credentialId,
          rpId,
          ...wrapped,
        };
        info.pkcs8.fill(0);
        await this.#add(record, null);
      } finally {
        pkcs8.fill(0);
        prfOutput.fill(0);
      }
    });
  }

  /**
   * Signs a random message with a key and verifies it with the key's public key: proves the key
   * (and, for a passkey key, the passkey) works without signing anything real.
   */
  check(id: string): Promise<boolean> {
    return this.#run('Checking the key…', async () => {
      const signer = this.signer(id);
      const message = randomBytes(32);
      const signature = await signer.sign(message);
      const pub = await importPublicKey(signer.spki);
      if (!(await verifyWithCryptoKey(pub.key, pub.algorithm, message, signature))) {
        throw new KeyError('KEY_MISMATCH', 'The key signed, but the signature does not verify with its public key.');
      }
      this.#lastUsedId = id;
      const record = this.records.find((r) => r.id === id)!;
      this.#status = { state: 'ready', message: `Key ready: "${record.name}" signed a test message and it verified.` };
    });
  }

  /**
   * Connects to the relay's PKCS#11 keys with its access token (kept in memory for the tab only);
   * the first key becomes the one the Sign page preselects.
   */
  connectHardware(accessToken: string): Promise<boolean> {
    return this.#run('Connecting to the relay’s hardware keys…', async () => {
      const keys = await this.hardware.connect(accessToken);
      if (keys.length === 0) {
        this.#status = {
          state: 'ready',
          message: 'Connected to the relay, but its tokens hold no key this page can use.',
        };
        return;
      }
      this.#lastUsedId = keys[0]!.id;
      const pin = this.hardware.pinConfigured ? 'the server holds the PIN' : 'signing asks for the token PIN';
      this.#status = {
        state: 'ready',
        message: `Key ready: ${keys.length} hardware ${keys.length === 1 ? 'key' : 'keys'} (PKCS#11) from the relay (${pin}).`,
      };
    });
  }

  /** Forgets the relay access token and its keys. */
  disconnectHardware(): void {
    if (this.lastUsedId?.startsWith(HARDWARE_ID_PREFIX)) this.#lastUsedId = null;
    this.hardware.disconnect();
    this.#status = { state: 'idle' };
  }

  /** Shows why something the Keys page was asked to do cannot be done. */
  fail(reason: Reason): void {
    this.#status = { state: 'error', ...reason };
  }

  /** Remembers the key just signed with, so the Sign page preselects it next time. */
  markUsed(id: string): void {
    this.#lastUsedId = id;
  }

  /** Forgets the unlocked CryptoKey of a cosign key; the encrypted key stays stored. */
  lock(id: string): void {
    this.#setUnlocked(id, null);
    const record = this.records.find((r) => r.id === id);
    this.#status = {
      state: 'ready',
      message: `Locked "${record?.name ?? 'the key'}": unlock it with its password to sign with it again.`,
    };
  }

  /** Removes a key from this browser. */
  async remove(id: string): Promise<void> {
    await this.#run('Removing key…', async () => {
      await deleteRecord(id);
      this.#records = this.records.filter((r) => r.id !== id);
      this.#setUnlocked(id, null);
      if (this.justMade?.id === id) this.#justMade = null;
      if (this.lastUsedId === id) this.#lastUsedId = null;
      this.#status = { state: 'idle' };
    });
  }

  /**
   * True when the key signs at once, with no person or device to wait for: an unlocked cosign key
   * or a browser key (a passkey asks for a touch, a hardware key goes through its token).
   */
  signsAtOnce(id: string): boolean {
    const record = this.records.find((r) => r.id === id);
    return record !== undefined && record.kind !== 'passkey' && this.#unlocked.has(id);
  }

  /**
   * A signer for a stored key. A cosign key must be unlocked first; a passkey key asks for its
   * passkey at every signature and keeps nothing unwrapped afterwards. A hardware key signs
   * through the relay with `options.pin` (ignored when the server holds the PIN).
   * @throws KeyError KEY_NOT_FOUND, KEY_LOCKED; Pkcs11Error PKCS11_KEY_NOT_FOUND
   */
  signer(id: string, options: { pin?: string } = {}): Signer {
    if (id.startsWith(HARDWARE_ID_PREFIX)) return this.hardware.signer(id, options.pin ?? '');
    const record = this.records.find((r) => r.id === id);
    if (!record) throw new KeyError('KEY_NOT_FOUND', 'That key is no longer in this browser.');
    const { algorithm, spki } = record;
    if (record.kind === 'passkey') {
      return {
        algorithm,
        spki,
        sign: async (data) => {
          const prfOutput = await evaluatePrf(record.credentialId, record.rpId, record.prfSalt);
          const pkcs8 = await unwrapPrivateKey(prfOutput, record.credentialId, record);
          prfOutput.fill(0);
          try {
            const info = parsePkcs8(pkcs8);
            info.pkcs8.fill(0);
            const key = await importPrivateKey({ ...info, pkcs8 });
            return await signWithCryptoKey(key, algorithm, data);
          } finally {
            pkcs8.fill(0);
          }
        },
      };
    }
    const key = this.#unlocked.get(id);
    if (!key) throw new KeyError('KEY_LOCKED', 'This cosign key is locked: unlock it with its password first.');
    return { algorithm, spki, sign: (data) => signWithCryptoKey(key, algorithm, data) };
  }
}

const KEY = Symbol('keystore');
export function setKeyStore(store: KeyStore): KeyStore {
  return setContext(KEY, store);
}
export function getKeyStore(): KeyStore {
  return getContext<KeyStore>(KEY);
}
