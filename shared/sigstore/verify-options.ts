/**
 * What a bundle's verification is asked (verify-bundle.ts): the trust, the artifact, a key or an
 * identity policy, the transparency-log rule. A module of its own so the verifier's parts share it
 * without importing one another.
 */
import type { TrustedAuthority, TrustedRoot } from './types.ts';
import type { IdentityPolicy } from './policy.ts';

/** cosign's words: require an entry (its default), check one when present, or ignore the log. */
export type TlogRule = 'require' | 'check' | 'ignore';
export const TLOG_RULES: readonly TlogRule[] = ['require', 'check', 'ignore'];

export interface VerifyBundleOptions {
  root: TrustedRoot;
  /** The artifact: its SHA-256 always; its bytes when the file itself is at hand. */
  artifact: { sha256: Uint8Array; bytes?: Uint8Array };
  /** A key the viewer trusts (DER SPKI): for bundles signed with a key. */
  key?: Uint8Array;
  /** For bundles signed with a certificate. */
  policy?: IdentityPolicy;
  /** Default: `require` for certificates, `check` for keys, as cosign does. */
  tlog?: TlogRule;
  /** A private PKI (cosign's --ca-roots/--ca-intermediates): used instead of the root's CAs, no SCT. */
  privateCAs?: TrustedAuthority[];
  /**
   * The signature's own chain is offered as untrusted intermediates toward `privateCAs`, as
   * containers/image does for `fulcio` and `pki` (a chain is still rooted in `privateCAs`).
   */
  chainIntermediates?: boolean;
  now?: Date;
}
