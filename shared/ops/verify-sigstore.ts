/**
 * The Sigstore part of verifying an image's signature — certificate, transparency-log entry,
 * timestamps — for ops/verify.ts, which imports this module only when a signature carries such
 * material (so the page's first load carries no certificate code). Both formats meet here as one
 * SigstoreBundle: a legacy layer's annotations (cosign/legacy-sigstore.ts) or a bundle referrer.
 */
import { reasonOf, type Reason } from '../errors.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { parseSigstoreBundle } from '../sigstore/bundle.ts';
import { parseTrustedRoot } from '../sigstore/trusted-root.ts';
import { PUBLIC_GOOD_ROOT } from '../sigstore/shipped-roots.ts';
import { hasIdentityPolicy, type IdentityPolicy } from '../sigstore/policy.ts';
import { verifyBundle, type BundleVerification, type TlogRule } from '../sigstore/verify-bundle.ts';
import type { SigstoreBundle, TrustedAuthority, TrustedRoot } from '../sigstore/types.ts';

/** What a verification trusts for Sigstore material. */
export interface SigstoreTrust {
  root: TrustedRoot;
  /** For people: "Sigstore public good", a loaded root's name. */
  name: string;
  /** SHA-256 of the root's bytes, hex. */
  sha256: string;
  /** A private PKI (cosign's --ca-roots / containers' pki) instead of the root's CAs. */
  privateCAs?: TrustedAuthority[];
}

/** The facts a verified signature's Sigstore material proved. */
export type SigstoreFacts = Omit<BundleVerification, 'content' | 'artifact'>;

/** The public-good root shipped with the page: the trust when the viewer names none. */
export function shippedTrust(): SigstoreTrust {
  return { root: parseTrustedRoot(PUBLIC_GOOD_ROOT.json), name: PUBLIC_GOOD_ROOT.name, sha256: PUBLIC_GOOD_ROOT.sha256 };
}

export { parseSigstoreBundle, hasIdentityPolicy, sha256Bytes };

/**
 * Judges a signature's Sigstore material for `artifact` (the payload bytes of a legacy layer; the
 * image digest a DSSE statement must name).
 * @returns the facts, or the reason it fails. Never throws for a verification failure.
 */
export async function judgeSigstore(
  bundle: SigstoreBundle,
  trust: SigstoreTrust,
  artifact: { sha256: Uint8Array; bytes?: Uint8Array },
  opts: { key?: Uint8Array; policy?: IdentityPolicy; tlog?: TlogRule },
): Promise<{ ok: true; facts: SigstoreFacts } | { ok: false; reason: Reason }> {
  try {
    const r = await verifyBundle(bundle, {
      root: trust.root,
      artifact,
      ...(opts.key ? { key: opts.key } : {}),
      ...(opts.policy ? { policy: opts.policy } : {}),
      ...(opts.tlog ? { tlog: opts.tlog } : {}),
      ...(trust.privateCAs ? { privateCAs: trust.privateCAs } : {}),
    });
    const { content: _c, artifact: _a, ...facts } = r;
    return { ok: true, facts };
  } catch (e) {
    return { ok: false, reason: reasonOf(e) };
  }
}
