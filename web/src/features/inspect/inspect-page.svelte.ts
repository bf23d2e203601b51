/**
 * State of the Inspect page (#/inspect?image=…[&platform=…]): the form, a run of
 * shared/ops/inspect.ts through the page's RegistrySession (so through the relay), and the
 * download links of the bytes exactly as served.
 */
import { inspectImage, type InspectResult, type InspectedObject } from '../../../../shared/ops/inspect.ts';
import { parseReference } from '../../../../shared/registry/reference.ts';
import type { RegistrySession } from '../../app/registry.svelte.ts';
import { INSPECT_ROUTE, inspectHash, type Route } from '../../../../shared/cosign/route.ts';
import { describeError } from '../../lib/errors.ts';

type InspectStatus =
  | { state: 'idle' }
  | { state: 'working'; message: string }
  | { state: 'done'; message: string }
  | { state: 'error'; code: string; message: string };

export class InspectPage {
  /** The form's fields, bound by the page. */
  image = $state('');
  username = $state('');
  password = $state('');
  /** The platform of an index to show ('' = the default choice). */
  #platform = $state('');
  #status = $state.raw<InspectStatus>({ state: 'idle' });
  #result = $state.raw<InspectResult | null>(null);
  readonly #session: RegistrySession;
  readonly #showHash: (hash: string) => void;
  #run = 0;

  /** `showHash` puts the fragment for what the form says in the address bar (to bookmark and share). */
  constructor(session: RegistrySession, showHash: (hash: string) => void) {
    this.#session = session;
    this.#showHash = showHash;
  }

  get status(): InspectStatus {
    return this.#status;
  }

  get result(): InspectResult | null {
    return this.#result;
  }

  /** Fills the form from `#/inspect?…`; true when it named an image. */
  loadRoute({ path, params }: Route): boolean {
    const image = params.get('image')?.trim();
    if (path !== INSPECT_ROUTE || !image) return false;
    if (image === this.image && (params.get('platform') ?? '') === this.#platform && this.result) return false;
    this.image = image;
    this.#platform = params.get('platform') ?? '';
    return true;
  }

  /** Reads the image. Never throws: the status says how it went. */
  async run(): Promise<void> {
    const run = ++this.#run;
    const image = this.image.trim();
    if (!image) {
      this.#status = {
        state: 'error',
        code: 'REGISTRY_REFERENCE_INVALID',
        message: 'Type the image reference to inspect.',
      };
      return;
    }
    try {
      const ref = parseReference(image);
      if (this.username.trim()) this.#session.setCredentials(ref.registry, this.username.trim(), this.password);
    } catch (e) {
      this.#status = { state: 'error', ...describeError(e) };
      return;
    }
    this.#status = { state: 'working', message: `Reading ${image}…` };
    try {
      const result = await inspectImage(this.#session.client, {
        image,
        ...(this.#platform ? { platform: this.#platform } : {}),
      });
      if (run !== this.#run) return;
      this.#result = result;
      const bad = [result.top, result.manifest, result.config].filter((o) => o && !o.digest.ok).length;
      this.#status = {
        state: 'done',
        message: bad
          ? `Read ${result.reference}: ${bad} digest mismatch${bad === 1 ? '' : 'es'}, see below.`
          : `Read ${result.reference}: every digest matches.`,
      };
    } catch (e) {
      if (run !== this.#run) return;
      this.#result = null;
      this.#status = { state: 'error', ...describeError(e) };
    }
  }

  /** Reads the image the form names, its default platform first. */
  async submit(): Promise<void> {
    await this.#show('');
  }

  /** Shows another platform of the index. */
  async choosePlatform(name: string): Promise<void> {
    await this.#show(name);
  }

  async #show(platform: string): Promise<void> {
    this.#platform = platform;
    this.#showHash(inspectHash(this.image.trim(), platform || null));
    await this.run();
  }
}

/** A file name for downloading an object's bytes. */
export function downloadName(o: InspectedObject): string {
  const hex = o.digest.computed.slice(7, 19);
  return `${o.role}-${hex}.json`;
}
