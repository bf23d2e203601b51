/**
 * The page's registry access: one RegistryClient that goes through the relay that served the page,
 * and the registry credentials the person typed. Credentials stay in this tab's memory, or in
 * sessionStorage when the person asks to remember them for the tab; they are sent only to the
 * registry they belong to (through the relay, which never stores or logs them).
 */
import { getContext, setContext } from 'svelte';
import { SvelteMap } from 'svelte/reactivity';
import type { Credentials } from '../../../shared/registry/auth.ts';
import { RegistryClient, relayRouting } from '../../../shared/registry/client.ts';

const STORAGE_KEY = 'cosign-web.registry-credentials';

export class RegistrySession {
  /** Registry host → credentials. */
  readonly #credentials = new SvelteMap<string, Credentials>();
  readonly client: RegistryClient;

  constructor(origin: string = location.origin) {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? '{}') as Record<string, Credentials>;
      for (const [host, c] of Object.entries(saved)) {
        if (typeof c?.username === 'string' && typeof c?.password === 'string') this.#credentials.set(host, c);
      }
    } catch {
      sessionStorage.removeItem(STORAGE_KEY);
    }
    this.client = new RegistryClient({
      fetch: (input, init) => globalThis.fetch(input, init),
      ...relayRouting(origin),
      credentials: (registry) => this.#credentials.get(registry),
    });
  }

  /** Sets (or, with an empty username, clears) the credentials of a registry. */
  setCredentials(registry: string, username: string, password: string, remember = false): void {
    const current = this.#credentials.get(registry);
    if (!username) {
      if (current) this.#credentials.delete(registry);
    } else if (current?.username !== username || current.password !== password) {
      this.#credentials.set(registry, { username, password });
    } else {
      return;
    }
    this.client.forgetAuth(registry);
    if (remember || sessionStorage.getItem(STORAGE_KEY)) this.#save();
  }

  #save(): void {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(Object.fromEntries(this.#credentials)));
  }
}

const KEY = Symbol('registry-session');
export function setRegistrySession(s: RegistrySession): RegistrySession {
  return setContext(KEY, s);
}
export function getRegistrySession(): RegistrySession {
  return getContext<RegistrySession>(KEY);
}
