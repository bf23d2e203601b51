/**
 * The Inspect and Tree routes' query, read and written the way verification links are
 * (lib/verify/link.ts): each value percent-encoded on its own and read back with
 * decodeURIComponent, so "+" stays a plus sign; a key is a url-encoded PEM public key or the
 * base64url of its SPKI DER, and a PEM encoded as a form ("BEGIN+PUBLIC+KEY") is read too.
 *
 *   #/inspect?image=<reference>[&platform=<os/arch[/variant]>]
 *   #/tree?image=<reference>[&key=<PEM or base64url SPKI DER>]
 */
import { toBase64Url } from '../../../../shared/encoding/base64.ts';

export const INSPECT_ROUTE = '/inspect';
export const TREE_ROUTE = '/tree';

/** The raw-decoded parameters of a fragment whose path is `route`, or null for another path. */
export function readRoute(hash: string, route: string): Map<string, string> | null {
  const h = hash.replace(/^#/, '');
  const q = h.indexOf('?');
  if ((q < 0 ? h : h.slice(0, q)) !== route) return null;
  const out = new Map<string, string>();
  for (const part of (q < 0 ? '' : h.slice(q + 1)).split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    let raw = eq < 0 ? '' : part.slice(eq + 1);
    if (name === 'key' && /-----BEGIN\+/.test(raw)) raw = raw.replace(/\+/g, ' ');
    if (out.has(name)) continue;
    try {
      out.set(name, decodeURIComponent(raw));
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
