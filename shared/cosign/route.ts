/**
 * The page's routes, read from the URL fragment the way verification links are read (link.ts):
 * each value percent-encoded on its own and read back with decodeURIComponent, so "+" stays a plus
 * sign; a key is a url-encoded PEM public key or the base64url of its SPKI DER, and a PEM encoded
 * as a form ("BEGIN+PUBLIC+KEY") is read too. The page's router reads every fragment with
 * {@link parseRoute}, so every page gets its parameters decoded the same way.
 *
 *   #/inspect?image=<reference>[&platform=<os/arch[/variant]>]
 *   #/tree?image=<reference>[&key=<PEM or base64url SPKI DER>]
 */
import { toBase64Url } from '../encoding/base64.ts';
import { decode, rawParams, unformKey } from './fragment.ts';

export const INSPECT_ROUTE = '/inspect';
export const TREE_ROUTE = '/tree';

/** A fragment, read. */
export interface Route {
  /** The part before `?`, e.g. `/verify`; `/` for an empty fragment. */
  path: string;
  /** The part after `?`, still percent-encoded (a verification link is read from it). */
  query: string;
  /**
   * Each parameter percent-decoded ("+" stays a plus sign); a repeated name keeps its first value,
   * a value that is not properly percent-encoded is kept as written.
   */
  params: ReadonlyMap<string, string>;
}

/** Reads a fragment (`#/tree?image=…`, with or without the `#`). Never throws. */
export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#/, '') || '/';
  const q = h.indexOf('?');
  const query = q < 0 ? '' : h.slice(q + 1);
  const params = new Map<string, string>();
  for (const [name, value] of rawParams(query)) {
    const raw = name === 'key' ? unformKey(value) : value;
    try {
      params.set(name, decode(raw, name));
    } catch {
      params.set(name, raw);
    }
  }
  return { path: q < 0 ? h : h.slice(0, q), query, params };
}

/** `#/tree?image=…[&key=<base64url SPKI>]`. */
export function treeHash(image: string, spki?: Uint8Array | null): string {
  const key = spki ? `&key=${toBase64Url(spki)}` : '';
  return `#${TREE_ROUTE}?image=${encodeURIComponent(image)}${key}`;
}

/** `#/inspect?image=…[&platform=…]`. */
export function inspectHash(image: string, platform?: string | null): string {
  return `#${INSPECT_ROUTE}?image=${encodeURIComponent(image)}${platform ? `&platform=${encodeURIComponent(platform)}` : ''}`;
}
