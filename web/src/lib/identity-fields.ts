/**
 * The identity fields of a form as strings (empty when not given), and the IdentityPolicy and
 * link parameters they make. One shape for #/verify and #/verify-file.
 */
import { IDENTITY_PARAMS } from '../../../shared/cosign/sigstore-params.ts';
import type { IdentityPolicy } from '../../../shared/sigstore/policy.ts';

export type IdentityFieldValues = Record<(typeof IDENTITY_PARAMS)[number], string>;

export function emptyIdentityFields(): IdentityFieldValues {
  return Object.fromEntries(IDENTITY_PARAMS.map((k) => [k, ''])) as IdentityFieldValues;
}

/** The policy the fields name: trimmed, empty ones left out. */
export function identityPolicy(values: IdentityFieldValues): IdentityPolicy {
  const out: IdentityPolicy = {};
  for (const k of IDENTITY_PARAMS) if (values[k].trim()) out[k] = values[k].trim();
  return out;
}

/** Fields filled from a policy. */
export function identityFields(policy: IdentityPolicy): IdentityFieldValues {
  const out = emptyIdentityFields();
  for (const k of IDENTITY_PARAMS) out[k] = policy[k] ?? '';
  return out;
}

/** Who a certificate must name under `policy`, in a few words (for a verdict's "what was checked"). */
export function policyWords(policy: IdentityPolicy): string {
  const who = policy.certificateIdentity || policy.certificateIdentityRegexp || 'any identity';
  return `${who} (OIDC issuer ${policy.certificateOidcIssuer || policy.certificateOidcIssuerRegexp || 'any'})`;
}
