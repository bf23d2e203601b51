/**
 * State of the Keys page (#/keys): the fields of its forms (files, passwords, the relay access
 * token) and what each form does with them through the page's KeyStore, whose status line the page
 * shows. A password field is cleared once its key is made; a file that is missing or too large is
 * said on the status line.
 */
import { describeError } from '../../lib/errors.ts';
import { readKeyFile } from '../../lib/small-file.ts';
import type { KeyStore } from './keystore.svelte.ts';

export class KeysPage {
  /** The form's fields, bound by the page. */
  cosignFile = $state<FileList | null>(null);
  keyPassword = $state('');
  newPassword = $state('');
  pemFile = $state<FileList | null>(null);
  importPassword = $state('');
  relayToken = $state('');

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

  /** "Unlock key": the chosen cosign.key with its password. */
  async unlock(): Promise<void> {
    const text = await this.#read(this.cosignFile, 'Choose a cosign.key file first.');
    if (text !== null && (await this.#store.unlockCosignKey(text, this.keyPassword))) this.keyPassword = '';
  }

  /** "Generate key pair" with the new password. */
  async generate(): Promise<void> {
    if (await this.#store.generateCosignKey(this.newPassword)) this.newPassword = '';
  }

  /** "Import key": the chosen PEM private key, re-encrypted with the password given. */
  async importPem(): Promise<void> {
    const text = await this.#read(this.pemFile, 'Choose a PEM private key file first.');
    if (text !== null && (await this.#store.importPemKey(text, this.importPassword))) this.importPassword = '';
  }

  /** "Connect": the relay's hardware keys; the token then lives in the key store, not in the field. */
  async connect(): Promise<void> {
    if (await this.#store.connectHardware(this.relayToken)) this.relayToken = '';
  }
}
