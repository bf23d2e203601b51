/**
 * The Sigstore part of a verification form as state: what a certificate must name, the trust
 * root, the transparency-log rule and a private PKI, bound by IdentityPolicyFields and
 * TrustFields, and the link parameters they make (shared/cosign/sigstore-params.ts). Used by
 * #/verify-file; #/verify keeps the same fields (plus a Rekor key) on its page state.
 */
import type { TlogValue } from '../../../shared/cosign/sigstore-params.ts';
import type { FileSigstoreParams } from '../../../shared/cosign/file-link.ts';
import { emptyIdentityFields, identityFields, identityPolicy, type IdentityFieldValues } from './identity-fields.ts';

export class SigstoreFields {
  /** What a certificate must name (cosign's --certificate-identity etc.). */
  certificate = $state<IdentityFieldValues>(emptyIdentityFields());
  /** `public-good`, `staging` or `sha256:<hex>` of a root loaded before. */
  trustRoot = $state('public-good');
  /** '' for cosign's default. */
  tlog = $state<'' | TlogValue>('');
  caRoots = $state('');
  caIntermediates = $state('');

  /** The fields as link parameters: trimmed, empty ones and the default root left out. */
  params(): FileSigstoreParams {
    const out: FileSigstoreParams = { policy: identityPolicy(this.certificate) };
    if (this.trustRoot !== 'public-good') out.trustedRoot = this.trustRoot;
    if (this.caRoots.trim()) out.caRoots = this.caRoots.trim();
    if (this.caIntermediates.trim()) out.caIntermediates = this.caIntermediates.trim();
    if (this.tlog) out.tlog = this.tlog;
    return out;
  }

  /** Fills the fields from link parameters (absent ones emptied). */
  fill(p: FileSigstoreParams): void {
    // Through the fields' setters, so the form shows each.
    Object.assign(this, {
      certificate: identityFields(p.policy),
      trustRoot: p.trustedRoot ?? 'public-good',
      tlog: p.tlog ?? '',
      caRoots: p.caRoots ?? '',
      caIntermediates: p.caIntermediates ?? '',
    } satisfies Partial<SigstoreFields>);
  }
}
