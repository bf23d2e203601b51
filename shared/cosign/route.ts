/**
 * The Inspect and Tree routes' query, read and written the way verification links are
 * (lib/verify/link.ts): each value percent-encoded on its own and read back with
 * decodeURIComponent, so "+" stays a plus sign; a key is a url-encoded PEM public key or the
 * base64url of its SPKI DER, and a PEM encoded as a form ("BEGIN+PUBLIC+KEY") is read too.
 *
 *   #/inspect?image=<reference>[&platform=<os/arch[/variant]>]
 *   #/tree?image=<reference>[&key=<PEM or base64url SPKI DER>]
 */
import { toBase64Url } from '../encoding/base64.ts';
import { decode, rawParams, unformKey } from './link.ts';

export const INSPECT_ROUTE = '/inspect';
export const TREE_ROUTE = '/tree';

/**
 * The decoded parameters of a fragment whose path is `route`, or null for another path; a value
 * that is not properly percent-encoded is kept as it is.
 */
export function readRoute(hash: string, route: string): Map<string, string> | null {
  const h = hash.replace(/^#/, '');
  const q = h.indexOf('?');
  if ((q < 0 ? h : h.slice(0, q)) !== route) return null;
  const out = new Map<string, string>();
  for (const [name, value] of rawParams(q < 0 ? '' : h.slice(q + 1))) {
    const raw = name === 'key' ? unformKey(value) : value;
    try {
      out.set(name, decode(raw, name));
    } catch {
      out.set(name, raw);
    }
  }
  return out;
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
