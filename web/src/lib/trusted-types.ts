/**
 * The page runs under Trusted Types (the server's CSP says `require-trusted-types-for 'script'`):
 * a string reaches a script sink only through a policy. Svelte makes its own for its templates
 * (`svelte-trusted-html`); this is the `default` policy, for the one sink the page itself uses —
 * `new Worker(new URL('./….worker.ts', import.meta.url))` — and it lets through only script URLs
 * of this page's origin. HTML and script strings get no default: they stay refused.
 * https://w3c.github.io/trusted-types/dist/spec/#default-policy-hdr
 */

interface TrustedTypesFactory {
  createPolicy(name: string, rules: { createScriptURL: (url: string) => string }): unknown;
}

const factory = (globalThis as { trustedTypes?: TrustedTypesFactory }).trustedTypes;
factory?.createPolicy('default', {
  createScriptURL: (url) => {
    if (new URL(url, document.baseURI).origin === location.origin) return url;
    throw new TypeError(`Only this page's own scripts may run as workers, not ${url}.`);
  },
});
