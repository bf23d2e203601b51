/**
 * Hash routing: `#/keys`, `#/sign?image=…`. Everything after `#` stays in the browser, so a
 * verification link's contents never reach a server log. The router is the page's one reader of
 * the fragment and its one `hashchange` listener: it reads the fragment with the same functions
 * verification links are read with (shared/cosign/route.ts), and pages react to its `route`.
 */
import { getContext, setContext, untrack } from 'svelte';
import { parseRoute, type Route } from '../../../shared/cosign/route.ts';

/** The route table: each page's path and its title in the top navigation, in that order. */
export const PAGES = [
  { path: '/welcome', title: 'Start' },
  { path: '/keys', title: 'Keys' },
  { path: '/sign', title: 'Sign' },
  { path: '/verify', title: 'Verify' },
  { path: '/verify-file', title: 'Verify file' },
  { path: '/inspect', title: 'Inspect' },
  { path: '/tree', title: 'Tree' },
  { path: '/copy', title: 'Copy' },
] as const;

export class Router {
  // Replaced whole on every hashchange, even when it reads the same, so a page whose form moved
  // away from the fragment (see replace) still opens a link to what the fragment says.
  #route = $state.raw<Route>(parseRoute(location.hash));
  #hash = location.hash;

  constructor() {
    window.addEventListener('hashchange', () => {
      this.#hash = location.hash;
      this.#route = parseRoute(this.#hash);
    });
  }

  /** The fragment as the address bar had it when last opened (`#/keys`), for a link to this page elsewhere. */
  get hash(): string {
    return this.#hash;
  }

  /** The fragment, read: path, raw query, decoded parameters. */
  get route(): Route {
    return this.#route;
  }

  get path(): string {
    return this.#route.path;
  }

  /**
   * Opens the route in a page: calls `open` now and after each navigation while the calling
   * component lives (call it while the component initialises), once `ready` says so. What `open`
   * reads does not make it run again (a run it starts must not restart it).
   */
  follow(open: (route: Route) => void, ready: () => boolean = () => true): void {
    $effect(() => {
      if (!ready()) return;
      const route = this.#route;
      untrack(() => open(route));
    });
  }

  /**
   * Shows `hash` in the address bar for what a page's form says (to bookmark or share) without
   * navigating: no history entry, and the page is not opened again.
   */
  replace(hash: string): void {
    history.replaceState(null, '', hash);
  }

  /** Opens `hash` in place of the current entry (the bare URL's first page). */
  redirect(hash: string): void {
    location.replace(hash);
  }
}

const KEY = Symbol('router');
export function setRouter(r: Router): Router {
  return setContext(KEY, r);
}
export function getRouter(): Router {
  return getContext<Router>(KEY);
}
