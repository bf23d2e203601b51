/**
 * State of the Sign page's external-signer mode: the bytes prepared for signing elsewhere (with
 * their downloads), the signature handed back for each and whether it checks against the chosen
 * public key. The bytes, the commands and the checks are shared/ops/external.ts; pushing is
 * SignPage.pushExternal.
 */
import type { KeyAlgorithm } from '../../../../shared/crypto/pkcs.ts';
import type { SignPlan } from '../../../../shared/ops/sign.ts';
import type { PreparedKey } from '../../../../shared/cosign/verify-signature.ts';
import {
  checkExternalSignature,
  opensslCommands,
  parseSignatureLines,
  signingScript,
  type BytesToSign,
  type OpensslCommands,
  type PreparedSignature,
  type SignatureInput,
} from '../../../../shared/ops/external.ts';
import type { ImageReference } from '../../../../shared/registry/reference.ts';
import { SignatureError, type Reason } from '../../../../shared/errors.ts';
import { describeError } from '../../lib/errors.ts';
import { readSmallFile } from '../../lib/small-file.ts';

type ItemCheck =
  | { state: 'empty' }
  | { state: 'checking' }
  | { state: 'ok'; signature: Uint8Array; source: string }
  | { state: 'error'; code: string; message: string };

interface ExternalItem {
  item: BytesToSign;
  commands: OpensslCommands;
  /** Object URLs of the bytes and of their SHA-256 (32 raw bytes). */
  bytesUrl: string;
  sha256Url: string;
  text: string;
  check: ItemCheck;
}

/** What the bytes were prepared for: pushing re-derives the list from it and compares. */
interface PreparedFor {
  ref: ImageReference;
  plan: SignPlan;
  key: PreparedKey;
  /** The key's name as the page shows it ("pasted public key" when pasted). */
  keyName: string;
}

export class ExternalSigning {
  #items = $state<ExternalItem[]>([]);
  #preparedFor = $state.raw<PreparedFor | null>(null);
  #scriptUrl = $state('');
  #allText = $state('');
  #allError = $state<Reason | null>(null);
  /** Every item has a signature that verifies with the key. */
  readonly ready = $derived(this.items.length > 0 && this.items.every((i) => i.check.state === 'ok'));
  readonly checkedCount = $derived(this.items.filter((i) => i.check.state === 'ok').length);
  /** Bumped per item on each new input, so a slow check never overwrites a newer one. */
  #seq: number[] = [];

  /** The byte strings to sign, each with its downloads, commands, signature field and check. */
  get items(): ExternalItem[] {
    return this.#items;
  }

  get preparedFor(): PreparedFor | null {
    return this.#preparedFor;
  }

  /** Object URL of sign-all.sh (signingScript), or '' before preparing. */
  get scriptUrl(): string {
    return this.#scriptUrl;
  }

  /** What was pasted into "All signatures". */
  get allText(): string {
    return this.#allText;
  }

  /** Why what was pasted into "All signatures" could not be read. */
  get allError(): Reason | null {
    return this.#allError;
  }

  /** Shows a fresh list of bytes to sign; forgets the previous list and its signatures. */
  show(items: BytesToSign[], algorithm: KeyAlgorithm, preparedFor: PreparedFor, title: string): void {
    this.clear();
    this.#preparedFor = preparedFor;
    this.#scriptUrl = URL.createObjectURL(
      new Blob([signingScript(items, algorithm, title)], { type: 'text/x-shellscript' }),
    );
    this.#items = items.map((item) => ({
      item,
      commands: opensslCommands(algorithm, item.files),
      bytesUrl: URL.createObjectURL(new Blob([item.bytes as BlobPart], { type: 'application/octet-stream' })),
      sha256Url: URL.createObjectURL(new Blob([item.sha256 as BlobPart], { type: 'application/octet-stream' })),
      text: '',
      check: { state: 'empty' },
    }));
  }

  clear(): void {
    for (const i of this.items) {
      URL.revokeObjectURL(i.bytesUrl);
      URL.revokeObjectURL(i.sha256Url);
    }
    if (this.scriptUrl) URL.revokeObjectURL(this.scriptUrl);
    this.#scriptUrl = '';
    this.#allText = '';
    this.#allError = null;
    this.#items = [];
    this.#preparedFor = null;
    this.#seq = [];
  }

  async #check(index: number, input: SignatureInput): Promise<void> {
    const entry = this.items[index];
    const key = this.preparedFor?.key;
    if (!entry || !key) return;
    const seq = (this.#seq[index] ?? 0) + 1;
    this.#seq[index] = seq;
    if (input.kind === 'text' && !input.text.trim()) {
      entry.check = { state: 'empty' };
      return;
    }
    entry.check = { state: 'checking' };
    let check: ItemCheck;
    try {
      const signature = await checkExternalSignature(key, entry.item, input);
      check = { state: 'ok', signature, source: input.kind === 'file' ? `file ${input.name}` : 'pasted base64' };
    } catch (e) {
      check = { state: 'error', ...describeError(e) };
    }
    if (this.#seq[index] === seq && this.items[index] === entry) entry.check = check;
  }

  /** The person typed or pasted into an item's signature field: check it at once. */
  setText(index: number, text: string): Promise<void> {
    const entry = this.items[index];
    if (!entry) return Promise.resolve();
    entry.text = text;
    return this.#check(index, { kind: 'text', text });
  }

  /**
   * The person pasted what sign-all.sh printed: each `<n> <base64>` line goes to item n's field
   * and is checked there.
   */
  async setAll(text: string): Promise<void> {
    this.#allText = text;
    this.#allError = null;
    if (!text.trim()) return;
    try {
      const lines = parseSignatureLines(text);
      const unknown = lines.find((l) => !this.items.some((i) => i.item.n === l.n));
      if (unknown) {
        this.#allError = {
          code: 'PKCS11_EXTERNAL_SIGNATURE_INVALID',
          message: `There is no item ${unknown.n} here: these lines were printed for other bytes. Download the signing script again.`,
        };
        return;
      }
      await Promise.all(
        lines.map((l) =>
          this.setText(
            this.items.findIndex((i) => i.item.n === l.n),
            l.base64,
          ),
        ),
      );
    } catch (e) {
      this.#allError = describeError(e);
    }
  }

  /** The person chose a signature file for an item (raw signature or its base64): check it at once. */
  async setFile(index: number, file: File | undefined): Promise<void> {
    const entry = this.items[index];
    if (!entry || !file) return;
    let bytes: Uint8Array;
    try {
      bytes = await readSmallFile(
        file,
        'a signature',
        (sentence) => new SignatureError('PKCS11_EXTERNAL_SIGNATURE_INVALID', sentence),
      );
    } catch (e) {
      entry.check = { state: 'error', ...describeError(e) };
      return;
    }
    entry.text = '';
    await this.#check(index, { kind: 'file', name: file.name, bytes });
  }

  /** The checked signatures, for preparedSigner. */
  prepared(): PreparedSignature[] {
    return this.items.flatMap((i) =>
      i.check.state === 'ok' ? [{ bytes: i.item.bytes, signature: i.check.signature }] : [],
    );
  }
}
