/**
 * Reading a URL fragment's query the way verification links are read (link.ts), for the page's
 * router (route.ts) and the file links (file-link.ts): split, percent-decode ("+" stays a plus
 * sign), and undo a PEM key encoded as a form. Kept apart from link.ts, which parses keys and
 * identities, so the router that every page loads does not carry the key parsers with it.
 */
import { VerificationError } from '../errors.ts';

/** Splits a query into raw (still encoded) values; a repeated name keeps its first value. */
export function rawParams(query: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    if (!out.has(name)) out.set(name, eq < 0 ? '' : part.slice(eq + 1));
  }
  return out;
}

/**
 * One raw query value, percent-decoded ("+" stays a plus sign).
 * @throws VerificationError VERIFY_LINK_INVALID when it is not properly percent-encoded.
 */
export function decode(raw: string, name: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new VerificationError(
      'VERIFY_LINK_INVALID',
      `This verification link is not valid: "${name}" is not properly percent-encoded.`,
    );
  }
}

/** A raw key value: a PEM encoded as a form (spaces as "+") shows "BEGIN+PUBLIC+KEY", so that encoding is undone. */
export function unformKey(raw: string): string {
  return /-----BEGIN\+/.test(raw) ? raw.replace(/\+/g, ' ') : raw;
}
