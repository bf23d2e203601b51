/**
 * State of the Copy page (#/copy): source and destination, registry credentials for each, the key
 * to verify the copy with (one of the Keys page's keys, or a pasted PEM), a run of
 * shared/ops/copy.ts through the page's RegistrySession (the relay), its progress over bytes,
 * and the result. `#/copy?source=…&destination=…` prefills the form.
 */
import { KeyError, ManageError } from '../../../../shared/errors.ts';
import type { Fingerprint } from '../../../../shared/crypto/webcrypto.ts';
import type { IdentityRule } from '../../../../shared/cosign/identity.ts';
import type { TagLock } from '../../../../shared/ops/sign.ts';
import { copyImage, type CopyProgress, type CopyResult } from '../../../../shared/ops/copy.ts';
import { parseReference, repositoryName } from '../../../../shared/registry/reference.ts';
import type { KeyStore } from '../keys/keystore.svelte.ts';
import type { RegistrySession } from '../../app/registry.svelte.ts';
import { verificationLink } from '../../../../shared/cosign/link.ts';
import { describeError } from '../../lib/errors.ts';
import { readPublicKeyText } from '../../lib/public-key.ts';

type CopyStatus =
  | { state: 'idle' }
  | { state: 'working'; progress: CopyProgress }
  /** `verifiedWith`: the key and identity rule the copy was verified with, for its link. */
  | { state: 'done'; result: CopyResult; verifiedWith: { spki: Uint8Array; identity?: IdentityRule } | null }
  | { state: 'error'; code: string; message: string };

/** '' : the pasted "Public key" field (empty: no verification); otherwise a Keys page key id. */
type KeyChoice = string;

type IdentityChoice = 'source' | 'ignore';

type VerifyKey =
  | { ok: true; spki: Uint8Array; fingerprint: Fingerprint; algorithm: string; from: string }
  | { ok: false; message: string }
  | null;

export class CopyPage {
  /** The form's fields, bound by the page. */
  source = $state('');
  destination = $state('');
  sourceUsername = $state('');
  sourcePassword = $state('');
  destinationUsername = $state('');
  destinationPassword = $state('');
  keyChoice = $state<KeyChoice>('');
  keyText = $state('');
  identityChoice = $state<IdentityChoice>('source');
  #status = $state.raw<CopyStatus>({ state: 'idle' });
  #startedAt = $state(0);

  readonly #session: RegistrySession;
  readonly #keys: KeyStore;
  readonly #lock: TagLock | undefined;
  readonly #origin: string;
  #abort: AbortController | null = null;

  constructor(session: RegistrySession, keys: KeyStore, lock?: TagLock, origin: string = location.origin) {
    this.#session = session;
    this.#keys = keys;
    this.#lock = lock;
    this.#origin = origin;
  }

  get status(): CopyStatus {
    return this.#status;
  }

  /** When the copy started (performance.now()), for the speed shown. */
  get startedAt(): number {
    return this.#startedAt;
  }

  /** Fills the form from `#/copy?source=…&destination=…`. */
  prefill(params: ReadonlyMap<string, string>): void {
    const s = params.get('source');
    const d = params.get('destination');
    if (s !== undefined) this.source = s;
    if (d !== undefined) this.destination = d;
  }

  /** The key the copy will be verified with, or null for none. */
  readonly key = $derived.by((): VerifyKey => {
    if (this.keyChoice) {
      const view = this.#keys.views.find((k) => k.id === this.keyChoice);
      if (!view) return { ok: false, message: 'That key is no longer on the Keys page.' };
      return { ok: true, spki: view.spki, fingerprint: view.fingerprint, algorithm: view.algorithm, from: view.name };
    }
    const read = readPublicKeyText(this.keyText);
    return read?.ok ? { ...read, from: 'the pasted public key' } : read;
  });

  /** The identity rule the copy is verified with: the source repository, or none (cosign's rule). */
  identityRule(): IdentityRule | undefined {
    if (this.identityChoice === 'ignore') return { type: 'ignore' };
    try {
      return { type: 'exactRepository', dockerRepository: repositoryName(parseReference(this.source)) };
    } catch {
      return undefined;
    }
  }

  readonly result = $derived(this.status.state === 'done' ? this.status.result : null);

  /**
   * A verification link for the copy (pinned to its digest), with the key and identity it was
   * verified with: editing the form afterwards does not change what the link checks.
   */
  readonly link = $derived.by((): string | null => {
    if (this.status.state !== 'done') return null;
    const { result: r, verifiedWith: v } = this.status;
    if (!r.verification || !v) return null;
    try {
      return verificationLink(this.#origin, {
        image: `${repositoryName(parseReference(r.destination))}@${r.digest}`,
        spki: v.spki,
        ...(v.identity ? { identity: v.identity } : {}),
      });
    } catch {
      return null;
    }
  });

  readonly busy = $derived(this.status.state === 'working');

  /** Copies the source to the destination, then verifies the copy when a key is given. */
  async copy(): Promise<void> {
    this.#abort?.abort();
    const abort = new AbortController();
    this.#abort = abort;
    try {
      const key = this.key;
      if (key && !key.ok) throw new KeyError('KEY_PEM_INVALID', `The public key cannot be used: ${key.message}`);
      const src = parseReference(this.source);
      const dst = parseReference(this.destination);
      if (this.sourceUsername.trim())
        this.#session.setCredentials(src.registry, this.sourceUsername.trim(), this.sourcePassword);
      if (this.destinationUsername.trim())
        this.#session.setCredentials(dst.registry, this.destinationUsername.trim(), this.destinationPassword);
      this.#startedAt = performance.now();
      this.#status = {
        state: 'working',
        progress: { bytesDone: 0, bytesTotal: 0, step: 'planning', item: 'Reading the source' },
      };
      const identity = this.identityRule();
      const verify = key?.ok ? { spki: key.spki, ...(identity ? { identity } : {}) } : null;
      const result = await copyImage({
        client: this.#session.client,
        source: this.source,
        destination: this.destination,
        ...(this.#lock ? { lock: this.#lock } : {}),
        ...(verify ? { verify } : {}),
        signal: abort.signal,
        onProgress: (progress) => {
          if (this.#abort === abort) this.#status = { state: 'working', progress };
        },
      });
      if (this.#abort === abort) this.#status = { state: 'done', result, verifiedWith: verify };
    } catch (e) {
      if (this.#abort === abort) this.#status = { state: 'error', ...describeError(e) };
    }
  }

  /** Stops a copy in progress (what is on the destination stays; running again resumes). */
  cancel(): void {
    this.#abort?.abort(new ManageError('MANAGE_COPY_INCOMPLETE', 'Stopped. Run the copy again to resume.'));
    this.#abort = null;
    this.#status = {
      state: 'error',
      code: 'MANAGE_COPY_INCOMPLETE',
      message: 'Stopped. What was copied stays on the destination; run the copy again to resume.',
    };
  }
}
