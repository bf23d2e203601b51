/**
 * State of the Keys page (#/keys): the fields of its forms (files, passwords, the relay access
 * token, a key's new name), what each form does with them through the page's KeyStore, and where
 * the outcome is shown: the status line sits beside the card or key list whose button ran last
 * (`at`), so on a phone the answer is next to the button pressed. A password field is cleared once
 * its key is made; a file that is missing or too large is said on the status line.
 */
import { describeError } from '../../lib/errors.ts';
import { readKeyFile } from '../../lib/small-file.ts';
import type { KeyStore } from './keystore.svelte.ts';

/** Where the page shows the status line: beside the key list or the card whose button ran last. */
export type FeedbackPlace = 'keys' | 'generate' | 'unlock' | 'import' | 'device' | 'hardware';

export class KeysPage {
  /** The form's fields, bound by the page. */
  cosignFile = $state<FileList | null>(null);
  keyPassword = $state('');
  newPassword = $state('');
  pemFile = $state<FileList | null>(null);
  importPassword = $state('');
  relayToken = $state('');
  /** The password typed for each stored cosign key, by id ("Unlock" on the key). */
  passwords = $state<Record<string, string>>({});
  /** The key being renamed, and the name typed. */
  renaming = $state<string | null>(null);
  newName = $state('');
  /** The key "Remove" asks about (the dialog is open while set). */
  removing = $state<{ id: string; name: string } | null>(null);
  /** Where the status line is shown. */
  at = $state<FeedbackPlace>('keys');

  readonly #store: KeyStore;

  constructor(store: KeyStore) {
    this.#store = store;
  }

  /**
   * The text of the first file chosen, or null after saying why not: `missing` when none is
   * chosen (unless the line already shows an error), or that the file is too large.
   */
  async #read(files: FileList | null, missing: string): Promise<string | null> {
    const f = files?.[0];
    if (!f) {
      if (this.#store.status.state !== 'error') this.#store.fail({ code: 'KEY_PEM_INVALID', message: missing });
      return null;
    }
    try {
      return await readKeyFile(f, 'a key file');
    } catch (e) {
      this.#store.fail(describeError(e));
      return null;
    }
  }

  /** Runs a store action with the status line shown at `place`. */
  #at<T>(place: FeedbackPlace, action: () => Promise<T>): Promise<T> {
    this.at = place;
    return action();
  }

  /** "Unlock" on a stored cosign key: its stored cosign.key with the password typed beside it. */
  async unlockStored(id: string): Promise<void> {
    if (await this.#at('keys', () => this.#store.unlockStored(id, this.passwords[id] ?? ''))) {
      delete this.passwords[id];
    }
  }

  /** "Save" of a rename. */
  async rename(): Promise<void> {
    const id = this.renaming;
    if (id !== null && (await this.#at('keys', () => this.#store.rename(id, this.newName)))) this.renaming = null;
  }

  /** "Remove" in the dialog. */
  async confirmRemove(): Promise<void> {
    const r = this.removing;
    this.removing = null;
    if (r) await this.#at('keys', () => this.#store.remove(r.id));
  }

  /** "Check" and "Lock" on a key; the device-key buttons. */
  check(id: string): Promise<boolean> {
    return this.#at('keys', () => this.#store.check(id));
  }
  lock(id: string): void {
    this.at = 'keys';
    this.#store.lock(id);
  }
  browserKey(): Promise<boolean> {
    return this.#at('device', () => this.#store.generateBrowserKey());
  }
  passkeyKey(): Promise<boolean> {
    return this.#at('device', () => this.#store.createPasskeyKey());
  }

  /** "Unlock key": the chosen cosign.key with its password. */
  async unlock(): Promise<void> {
    this.at = 'unlock';
    const text = await this.#read(this.cosignFile, 'Choose a cosign.key file first.');
    if (text !== null && (await this.#store.unlockCosignKey(text, this.keyPassword))) this.keyPassword = '';
  }

  /** "Generate key pair" with the new password. */
  async generate(): Promise<void> {
    this.at = 'generate';
    if (await this.#store.generateCosignKey(this.newPassword)) this.newPassword = '';
  }

  /** "Import key": the chosen PEM private key, re-encrypted with the password given. */
  async importPem(): Promise<void> {
    this.at = 'import';
    const text = await this.#read(this.pemFile, 'Choose a PEM private key file first.');
    if (text !== null && (await this.#store.importPemKey(text, this.importPassword))) this.importPassword = '';
  }

  /** "Connect": the relay's hardware keys; the token then lives in the key store, not in the field. */
  async connect(): Promise<void> {
    this.at = 'hardware';
    if (await this.#store.connectHardware(this.relayToken)) this.relayToken = '';
  }
}
