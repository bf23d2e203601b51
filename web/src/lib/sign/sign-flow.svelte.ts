/**
 * State of the Sign page: what the person typed, what the reference resolved to, the progress of
 * signing and the result with its verification link. The signing itself is shared/cosign/sign.ts.
 */
import { CosignWebError } from '../../../../shared/errors.ts';
import { fingerprint } from '../../../../shared/crypto/webcrypto.ts';
import {
  parseReference,
  pinned,
  formatReference,
  manifestReference,
  repositoryName,
  type ImageReference,
} from '../../../../shared/registry/reference.ts';
import { platformName } from '../../../../shared/registry/mediatypes.ts';
import {
  defaultIdentity,
  parseAnnotations,
  planSigning,
  signImage,
  type SignPlan,
  type SignResult,
  type TagLock,
} from '../../../../shared/cosign/sign.ts';
import type { KeyStore } from '../keys/keystore.svelte.ts';
import type { RegistrySession } from '../registry.svelte.ts';
import { verificationLink } from '../verify/link.ts';

export type IdentityMode = 'repository' | 'repository:tag';

export type SignStatus =
  | { state: 'idle' }
  | { state: 'working'; message: string; done: number; total: number }
  | { state: 'signed'; message: string }
  | { state: 'error'; code: string; message: string };

const SETTINGS_KEY = 'cosign-web.sign-settings';

function describe(e: unknown): { code: string; message: string } {
  if (e instanceof CosignWebError) return { code: e.code, message: e.message };
  return { code: 'UNEXPECTED', message: `Something went wrong: ${(e as Error)?.message ?? String(e)}` };
}

export class SignFlow {
  imageText = $state('');
  keyId = $state('');
  username = $state('');
  password = $state('');
  /** null: the default (repository:tag when a tag was typed, else repository). */
  identityChoice = $state<IdentityMode | null>(null);
  annotationsText = $state('');
  legacy = $state(true);
  bundle = $state(true);
  status = $state<SignStatus>({ state: 'idle' });
  plan = $state.raw<SignPlan | null>(null);
  /** The reference the plan was made for (normalised). */
  planned = $state.raw<ImageReference | null>(null);
  result = $state.raw<SignResult | null>(null);
  /** The tags of the looked-up repository (null while unknown or when listing is not allowed). */
  tags = $state.raw<string[] | null>(null);
  link = $state('');

  readonly #keys: KeyStore;
  readonly #registry: RegistrySession;
  readonly #lock: TagLock | undefined;

  constructor(keys: KeyStore, registry: RegistrySession, lock?: TagLock) {
    this.#keys = keys;
    this.#registry = registry;
    this.#lock = lock;
    try {
      const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? '{}') as { legacy?: unknown; bundle?: unknown };
      if (typeof saved.legacy === 'boolean') this.legacy = saved.legacy;
      if (typeof saved.bundle === 'boolean') this.bundle = saved.bundle;
    } catch {
      localStorage.removeItem(SETTINGS_KEY);
    }
  }

  saveSettings(): void {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ legacy: this.legacy, bundle: this.bundle }));
  }

  /** The parsed reference, or null while the text is not one. */
  readonly reference = $derived.by((): ImageReference | null => {
    try {
      return this.imageText.trim() ? parseReference(this.imageText) : null;
    } catch {
      return null;
    }
  });

  /** The identity mode in force. */
  readonly identityMode = $derived<IdentityMode>(
    this.identityChoice ?? (this.reference?.tag ? 'repository:tag' : 'repository'),
  );

  /** What `docker-reference` will say. */
  readonly dockerReference = $derived.by(() => {
    const ref = this.reference;
    if (!ref) return '';
    return this.identityMode === 'repository:tag' && ref.tag
      ? defaultIdentity(repositoryName(ref), ref.tag)
      : repositoryName(ref);
  });

  #credentials(ref: ImageReference): void {
    this.#registry.setCredentials(ref.registry, this.username.trim(), this.password);
  }

  async #lookUp(ref: ImageReference): Promise<SignPlan> {
    this.status = { state: 'working', message: `Looking up ${formatReference(ref)}…`, done: 0, total: 0 };
    this.plan = await planSigning(this.#registry.client, ref, manifestReference(ref));
    this.planned = ref;
    return this.plan;
  }

  /** Resolves the reference and shows what will be signed. */
  async check(): Promise<boolean> {
    this.result = null;
    this.link = '';
    try {
      const ref = parseReference(this.imageText);
      this.#credentials(ref);
      await this.#lookUp(ref);
      this.status = { state: 'idle' };
      // The repository's tags, to pick another one; a registry may refuse listing, which is fine.
      this.tags = null;
      this.#registry.client.listTags(ref).then(
        (tags) => {
          if (this.planned === ref) this.tags = tags.filter((t) => !/^sha256-[0-9a-f]{64}(\.\w+)?$/.test(t));
        },
        () => undefined,
      );
      return true;
    } catch (e) {
      this.plan = null;
      this.status = { state: 'error', ...describe(e) };
      return false;
    }
  }

  /** Signs what the reference resolves to now, in the chosen formats. */
  async sign(): Promise<void> {
    this.result = null;
    this.link = '';
    try {
      const ref = parseReference(this.imageText);
      const annotations = parseAnnotations(this.annotationsText);
      const signer = this.#keys.signer(this.keyId);
      this.#credentials(ref);
      const same = this.planned && formatReference(this.planned) === formatReference(ref);
      const plan = this.plan && same ? this.plan : await this.#lookUp(ref);
      const total = plan.targets.length;
      this.status = { state: 'working', message: 'Signing…', done: 0, total };
      const result = await signImage({
        client: this.#registry.client,
        signer,
        plan,
        dockerReference: this.dockerReference,
        annotations,
        formats: { legacy: this.legacy, bundle: this.bundle },
        ...(this.#lock ? { lock: this.#lock } : {}),
        onProgress: (done, n, message) => (this.status = { state: 'working', message, done, total: n }),
      });
      this.result = result;
      this.link = verificationLink(location.origin, {
        image: formatReference(pinned(ref, result.digest)),
        spki: signer.spki,
        ...(Object.keys(annotations).length ? { annotations } : {}),
      });
      this.#keys.lastUsedId = this.keyId;
      const what = total > 1 ? `the index and its ${total - 1} platform manifests` : 'the image';
      const formats = [this.legacy && 'legacy .sig', this.bundle && 'Sigstore bundle'].filter(Boolean).join(' and ');
      this.status = {
        state: 'signed',
        message: `Signed ${result.digest} (${what}, ${formats}) with key sha256:${fingerprint(signer.spki).hex.slice(0, 16)}….`,
      };
    } catch (e) {
      this.status = { state: 'error', ...describe(e) };
    }
  }

  /** Platform names of the plan, for display. */
  get platforms(): string[] {
    return (this.plan?.targets ?? []).flatMap((t) => (t.platform ? [platformName(t.platform)] : []));
  }
}
