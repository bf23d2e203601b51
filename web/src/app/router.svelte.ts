/**
 * Hash routing: `#/keys`, `#/sign?image=…`. Everything after `#` stays in the browser, so a
 * verification link's contents never reach a server log.
 */
export class Router {
  path = $state('/');
  // Replaced whole on every change, never mutated, so a plain URLSearchParams is enough.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  params = $state.raw<URLSearchParams>(new URLSearchParams());

  constructor() {
    this.#read();
    window.addEventListener('hashchange', () => this.#read());
  }

  #read(): void {
    const hash = location.hash.replace(/^#/, '') || '/';
    const q = hash.indexOf('?');
    this.path = q < 0 ? hash : hash.slice(0, q);
    // eslint-disable-next-line svelte/prefer-svelte-reactivity
    this.params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
  }
}
