/**
 * What this tab knows about its server and its own progress: the embedded registry's sample image
 * (from /config.json) and the last verification link made, which the walkthrough offers (and
 * whether the walkthrough made it, so that its verification page leads back to the walkthrough).
 */
import { getContext, setContext } from 'svelte';

export class Session {
  #sampleImage = $state('');
  #lastLink = $state('');
  #walkthroughLink = $state('');
  #loaded = $state(false);

  /** The sample image's reference, or '' when the server has no embedded registry. */
  get sampleImage(): string {
    return this.#sampleImage;
  }

  /** The verification link of the last signature made in this tab. */
  get lastLink(): string {
    return this.#lastLink;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  async load(): Promise<void> {
    try {
      const res = await fetch('/config.json', { cache: 'no-store' });
      const config = (await res.json()) as { sampleImage?: unknown };
      if (typeof config.sampleImage === 'string') this.#sampleImage = config.sampleImage;
    } catch {
      // a server without /config.json: no sample image
    }
    this.#loaded = true;
  }

  /**
   * Keeps the verification link of a signature just made, for the walkthrough; `walkthrough`:
   * made on the walkthrough's Sign step (its step 2), so opening it is the walkthrough's step 3.
   */
  rememberLink(link: string, walkthrough = false): void {
    if (!link) return;
    this.#lastLink = link;
    this.#walkthroughLink = walkthrough ? link : '';
  }

  /** Whether the fragment `hash` (`#/verify?…`) is the verification link the walkthrough made. */
  isWalkthroughLink(hash: string): boolean {
    const at = this.#walkthroughLink.indexOf('#');
    return at >= 0 && hash !== '' && this.#walkthroughLink.slice(at) === hash;
  }
}

const KEY = Symbol('session');
export function setSession(s: Session): Session {
  return setContext(KEY, s);
}
export function getSession(): Session {
  return getContext<Session>(KEY);
}
