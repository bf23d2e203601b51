/**
 * The Sigstore part of verification links (a public interface; keep the names exactly), shared by
 * image links (`#/verify?…`) and file links (`#/verify-file?…`):
 *
 *   certificateIdentity, certificateIdentityRegexp, certificateOidcIssuer,
 *   certificateOidcIssuerRegexp, githubWorkflowRepository, githubWorkflowRef, githubWorkflowSha,
 *   githubWorkflowTrigger, githubWorkflowName   — what a certificate must name (cosign's flags)
 *   trustedRoot   public-good | staging | sha256:<hex> (a root the viewer must hold)
 *   caRoots, caIntermediates   PEM, url-encoded: a private PKI (cosign's --ca-roots/--ca-intermediates)
 *   rekorPublicKey   PEM or base64url SPKI: a log key as containers-policy.json's rekorPublicKeyData
 *   tlog   require | check | ignore
 */
import { VerificationError } from '../errors.ts';
import type { IdentityPolicy } from '../sigstore/policy.ts';

/** The identity parameters, in the order links write them. */
export const IDENTITY_PARAMS = [
  'certificateIdentity',
  'certificateIdentityRegexp',
  'certificateOidcIssuer',
  'certificateOidcIssuerRegexp',
  'githubWorkflowRepository',
  'githubWorkflowRef',
  'githubWorkflowSha',
  'githubWorkflowTrigger',
  'githubWorkflowName',
] as const satisfies readonly (keyof IdentityPolicy)[];

export const TLOG_VALUES = ['require', 'check', 'ignore'] as const;
export type TlogValue = (typeof TLOG_VALUES)[number];

export interface SigstoreParams {
  policy: IdentityPolicy;
  /** `public-good`, `staging` or `sha256:<hex>`; absent: public good. */
  trustedRoot?: string;
  caRoots?: string;
  caIntermediates?: string;
  rekorPublicKey?: string;
  tlog?: TlogValue;
}

function invalid(why: string): VerificationError {
  return new VerificationError('VERIFY_LINK_INVALID', `This verification link is not valid: ${why}.`);
}

/** True when the parameters name any certificate expectation. */
export function hasCertificatePolicy(p: SigstoreParams): boolean {
  return IDENTITY_PARAMS.some((k) => !!p.policy[k]);
}

/** The parameters as `name=value` query parts (values percent-encoded), empty ones left out. */
export function sigstoreQuery(p: SigstoreParams): string[] {
  const parts: [string, string | undefined][] = [
    ...IDENTITY_PARAMS.map((k): [string, string | undefined] => [k, p.policy[k]]),
    ['trustedRoot', p.trustedRoot === 'public-good' ? undefined : p.trustedRoot],
    ['caRoots', p.caRoots],
    ['caIntermediates', p.caIntermediates],
    ['rekorPublicKey', p.rekorPublicKey],
    ['tlog', p.tlog],
  ];
  return parts.filter((e): e is [string, string] => !!e[1]).map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
}

/**
 * Reads the parameters from a link's decoded values.
 * @throws VerificationError VERIFY_LINK_INVALID for a trust root or log rule it does not know.
 */
export function readSigstoreParams(get: (name: string) => string | undefined): SigstoreParams {
  const policy: IdentityPolicy = {};
  for (const k of IDENTITY_PARAMS) {
    const v = get(k)?.trim();
    if (v) policy[k] = v;
  }
  const out: SigstoreParams = { policy };
  const root = get('trustedRoot')?.trim();
  if (root) {
    if (!/^(public-good|staging|sha256:[0-9a-f]{64})$/.test(root))
      throw invalid(`trustedRoot must be public-good, staging or sha256:<hex>, not "${root}"`);
    out.trustedRoot = root;
  }
  const tlog = get('tlog')?.trim();
  if (tlog) {
    if (!(TLOG_VALUES as readonly string[]).includes(tlog))
      throw invalid(`tlog must be ${TLOG_VALUES.join(', ')}, not "${tlog}"`);
    out.tlog = tlog as TlogValue;
  }
  for (const k of ['caRoots', 'caIntermediates', 'rekorPublicKey'] as const) {
    const v = get(k)?.trim();
    if (v) out[k] = v;
  }
  return out;
}
