/**
 * The Sigstore part of verifying an image's signature — certificate, transparency-log entry,
 * timestamps — for ops/verify.ts, which imports this module only when a signature carries such
 * material (so the page's first load carries no certificate code). Both formats meet here as one
 * SigstoreBundle: a legacy layer's annotations (cosign/legacy-sigstore.ts) or a bundle referrer.
 */
import { reasonOf, type Reason } from '../errors.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { parseSigstoreBundle } from '../sigstore/bundle.ts';
import { parseTrustedRootOnce } from '../sigstore/trusted-root.ts';
import { SHIPPED_ROOTS } from '../sigstore/shipped-roots.ts';
import { privatePkiAuthorities } from '../sigstore/private-pki.ts';
import { parsePublicKey } from '../crypto/keys.ts';
import { parseSpki } from '../crypto/pkcs.ts';
import { toHex } from '../encoding/base64.ts';
import { VerificationError } from '../errors.ts';
import type { IdentityPolicy } from '../sigstore/policy.ts';
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
  /** containers/image's rule: a signature's own chain offers intermediates toward `privateCAs`. */
  chainIntermediates?: boolean;
}

/** The facts a verified signature's Sigstore material proved. */
export type SigstoreFacts = Omit<BundleVerification, 'content' | 'artifact'>;

export { parseSigstoreBundle };

/** What a person may give as trust, beside (or instead of) a Sigstore root. */
export interface TrustInput {
  /** `public-good`, `staging`, or the bytes of a root the viewer holds (with its name). */
  root: 'public-good' | 'staging' | { json: Uint8Array | string; name: string };
  caRootsPem?: string | undefined;
  caIntermediatesPem?: string | undefined;
  /** Log keys as containers-policy.json's rekorPublicKeyData(s): PEM or base64url SPKI. */
  rekorPublicKey?: string | readonly string[] | undefined;
}

/** The key details protobuf-specs names for a log key. */
function keyDetails(spki: Uint8Array): string {
  const a = parseSpki(spki).algorithm;
  if (a.kind === 'ed25519') return 'PKIX_ED25519';
  if (a.kind === 'rsa') return 'PKIX_RSA_PKCS1V15_2048_SHA256';
  return a.curve === 'P-384'
    ? 'PKIX_ECDSA_P384_SHA_384'
    : a.curve === 'P-521'
      ? 'PKIX_ECDSA_P521_SHA_512'
      : 'PKIX_ECDSA_P256_SHA_256';
}

/**
 * The trust a person gave: a Sigstore root, or a private PKI and a log key as containers-policy.json
 * names them (`pki`/`fulcio` + `rekorPublicKeyData`): then the root's own CAs and logs are not used.
 * @throws VerificationError VERIFY_TRUSTED_ROOT_INVALID, VERIFY_CERTIFICATE_INVALID; KeyError for a bad log key.
 */
export function buildTrust(input: TrustInput): SigstoreTrust {
  let base: SigstoreTrust;
  if (typeof input.root === 'string') {
    const shipped = SHIPPED_ROOTS.find((r) => r.id === input.root);
    if (!shipped)
      throw new VerificationError(
        'VERIFY_TRUSTED_ROOT_UNKNOWN',
        `There is no shipped trusted root named ${input.root}.`,
      );
    base = { root: parseTrustedRootOnce(shipped.sha256, shipped.json), name: shipped.name, sha256: shipped.sha256 };
  } else {
    const bytes = typeof input.root.json === 'string' ? new TextEncoder().encode(input.root.json) : input.root.json;
    const sha256 = toHex(sha256Bytes(bytes));
    base = { root: parseTrustedRootOnce(sha256, bytes), name: input.root.name, sha256 };
  }
  if (input.caRootsPem?.trim()) base.privateCAs = privatePkiAuthorities(input.caRootsPem, input.caIntermediatesPem);
  const rekorKeys = (typeof input.rekorPublicKey === 'string' ? [input.rekorPublicKey] : (input.rekorPublicKey ?? []))
    .map((k) => k.trim())
    .filter(Boolean);
  if (rekorKeys.length) {
    base.root = {
      ...base.root,
      tlogs: rekorKeys.map((text, i) => {
        const { spki } = parsePublicKey(text);
        return {
          baseUrl: rekorKeys.length > 1 ? `rekorPublicKey ${i + 1}` : 'rekorPublicKey',
          logId: sha256Bytes(spki),
          spki,
          keyDetails: keyDetails(spki),
          validFor: { start: new Date(0) },
        };
      }),
    };
    base.name = `${base.name}, with the given Rekor key${rekorKeys.length > 1 ? 's' : ''}`;
  }
  return base;
}

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
      ...(trust.chainIntermediates ? { chainIntermediates: true } : {}),
    });
    const { content: _c, artifact: _a, ...facts } = r;
    return { ok: true, facts };
  } catch (e) {
    return { ok: false, reason: reasonOf(e) };
  }
}
