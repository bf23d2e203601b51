/**
 * Hash routing: `#/keys`, `#/sign?image=…`. Everything after `#` stays in the browser, so a
 * verification link's contents never reach a server log.
 */
export class Router {
  path = $state('/');
  params = $state.raw<URLSearchParams>(new URLSearchParams());

  constructor() {
    this.#read();
    window.addEventListener('hashchange', () => this.#read());
  }

  #read(): void {
    const hash = location.hash.replace(/^#/, '') || '/';
    const q = hash.indexOf('?');
    this.path = q < 0 ? hash : hash.slice(0, q);
    this.params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
  }
}
