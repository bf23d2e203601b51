/**
 * The Sigstore part of a verification form as state: what a certificate must name, the trust
 * root, the transparency-log rule and a private PKI, bound by IdentityPolicyFields and
 * TrustFields, and the link parameters they make (shared/cosign/sigstore-params.ts). Used by
 * #/verify and #/verify-file (whose form leaves the Rekor key empty: a bundle's logs come from
 * the trust root).
 */
import type { SigstoreParams, TlogValue } from '../../../shared/cosign/sigstore-params.ts';
import { VerificationError } from '../../../shared/errors.ts';
import type { ChosenRoot } from '../app/sigstore-root.svelte.ts';
import { emptyIdentityFields, identityFields, identityPolicy, type IdentityFieldValues } from './identity-fields.ts';

/** Where a page finds a trusted root the viewer loaded before, by `sha256:<hex>`. */
export interface RootSource {
  get(id: string): Promise<{ json: Uint8Array; name: string } | null>;
}

/**
 * The root loaded before that `id` names.
 * @throws VerificationError VERIFY_TRUSTED_ROOT_UNKNOWN when this browser does not hold it.
 */
export async function heldRoot(roots: RootSource | null, id: string): Promise<{ json: Uint8Array; name: string }> {
  const held = await roots?.get(id);
  if (!held)
    throw new VerificationError(
      'VERIFY_TRUSTED_ROOT_UNKNOWN',
      `This verification uses the trusted root ${id}, which this browser does not hold: load it with "Trusted root file".`,
    );
  return held;
}

/** Where a page gets the freshest public-good root (TUF-refreshed, cached, or shipped). */
export interface PublicGoodSource {
  current(): Promise<ChosenRoot>;
}

export class SigstoreFields {
  /** What a certificate must name (cosign's --certificate-identity etc.). */
  certificate = $state<IdentityFieldValues>(emptyIdentityFields());
  /** `public-good`, `staging` or `sha256:<hex>` of a root loaded before. */
  trustRoot = $state('public-good');
  /** '' for cosign's default. */
  tlog = $state<'' | TlogValue>('');
  caRoots = $state('');
  caIntermediates = $state('');
  /** containers-policy's rekorPublicKeyData (#/verify only). */
  rekorPublicKey = $state('');

  /** The fields as link parameters: trimmed, empty ones and the default root left out. */
  params(): SigstoreParams {
    const out: SigstoreParams = { policy: identityPolicy(this.certificate) };
    if (this.trustRoot !== 'public-good') out.trustedRoot = this.trustRoot;
    if (this.caRoots.trim()) out.caRoots = this.caRoots.trim();
    if (this.caIntermediates.trim()) out.caIntermediates = this.caIntermediates.trim();
    if (this.rekorPublicKey.trim()) out.rekorPublicKey = this.rekorPublicKey.trim();
    if (this.tlog) out.tlog = this.tlog;
    return out;
  }

  /** Fills the fields from link parameters (absent ones emptied). */
  fill(p: SigstoreParams): void {
    // Through the fields' setters, so the form shows each.
    Object.assign(this, {
      certificate: identityFields(p.policy),
      trustRoot: p.trustedRoot ?? 'public-good',
      tlog: p.tlog ?? '',
      caRoots: p.caRoots ?? '',
      caIntermediates: p.caIntermediates ?? '',
      rekorPublicKey: p.rekorPublicKey ?? '',
    } satisfies Partial<SigstoreFields>);
  }
}
