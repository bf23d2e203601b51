/**
 * Identity policy for certificates, in cosign's words and with cosign's meaning:
 * `--certificate-identity[-regexp]`, `--certificate-oidc-issuer[-regexp]` and the GitHub workflow
 * claims. Regular expressions are Go's RE2 (re2js is a port of RE2/J), matched anywhere in the
 * value unless anchored, exactly as Go's `regexp.MatchString` does; what RE2 cannot express
 * (look-arounds, back-references) is refused, and an unanchored one is reported as a warning.
 * https://github.com/sigstore/cosign/blob/main/pkg/cosign/verify.go (CheckCertificatePolicy)
 */
import { RE2JS } from 're2js';
import { VerificationError, type Reason } from '../errors.ts';

/** The GitHub workflow claims cosign checks, by the name of their flag and link parameter. */
export const GITHUB_CLAIMS = [
  'githubWorkflowTrigger',
  'githubWorkflowSha',
  'githubWorkflowName',
  'githubWorkflowRepository',
  'githubWorkflowRef',
] as const;
export type GithubClaim = (typeof GITHUB_CLAIMS)[number];

/** What a person asks of a certificate. Empty strings count as absent. */
export interface IdentityPolicy extends Partial<Record<GithubClaim, string>> {
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  certificateOidcIssuerRegexp?: string;
  /**
   * containers-policy.json's `subjectEmail` (its `fulcio` and `pki`): an e-mail SAN equal to it,
   * checked instead of cosign's identity (subject.ts). Not a link parameter.
   */
  subjectEmail?: string;
  /** containers-policy.json's `pki.subjectHostname`: a DNS SAN valid for this host name. Not a link parameter. */
  subjectHostname?: string;
}

/** What a certificate says of its subject (shared/sigstore/certificate.ts reads it). */
export interface CertificateFacts {
  /** Every subject alternative name (emails, URIs, Fulcio usernames), in the certificate's order. */
  identities: string[];
  /** The OIDC issuer (Fulcio extension .1.8, else .1.1). */
  issuer?: string;
  claims: Partial<Record<GithubClaim, string>>;
}

type Matcher = { describe: string; test(value: string): boolean };

export interface CompiledPolicy {
  identity: Matcher;
  issuer: Matcher;
  claims: [GithubClaim, string][];
  /** Sentences about the policy that do not stop it (an unanchored regular expression). */
  warnings: string[];
  /** A containers-policy subject (subject.ts) to check instead of `identity`, `issuer` and `claims`. */
  subject?: { email?: string; hostname?: string; issuer?: string };
}

const given = (v: string | undefined): v is string => typeof v === 'string' && v !== '';

function regexp(source: string, what: string, warnings: string[]): Matcher {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (e) {
    throw new VerificationError(
      'VERIFY_REGEXP_INVALID',
      `The ${what} regular expression ${JSON.stringify(source)} is not one Go's RE2 accepts (as cosign reads it): ${(e as Error).message}.`,
    );
  }
  if (!source.startsWith('^') || !source.endsWith('$'))
    warnings.push(
      `The ${what} regular expression ${JSON.stringify(source)} is not anchored with ^…$: it matches anywhere in the value, as it does for cosign.`,
    );
  return { describe: `matching ${JSON.stringify(source)}`, test: (v) => re.test(v) };
}

function matcher(exact: string | undefined, re: string | undefined, what: string, warnings: string[]): Matcher | null {
  if (given(exact) && given(re))
    throw new VerificationError('VERIFY_POLICY_INVALID', `Give the ${what} or its regular expression, not both.`);
  if (given(exact)) return { describe: JSON.stringify(exact), test: (v) => v === exact };
  if (given(re)) return regexp(re, what, warnings);
  return null;
}

/** True when the policy names any certificate expectation at all. */
export function hasIdentityPolicy(p: IdentityPolicy): boolean {
  return (
    [p.certificateIdentity, p.certificateIdentityRegexp, p.certificateOidcIssuer, p.certificateOidcIssuerRegexp].some(
      given,
    ) ||
    GITHUB_CLAIMS.some((c) => given(p[c])) ||
    given(p.subjectEmail) ||
    given(p.subjectHostname)
  );
}

/**
 * A containers-policy subject: an e-mail and/or host name, with an exact OIDC issuer or none (as
 * its `fulcio` and `pki` take them), and none of cosign's identity fields.
 * @throws VerificationError VERIFY_POLICY_INVALID when cosign's identity fields are given too.
 */
function compileSubject(p: IdentityPolicy): CompiledPolicy {
  if (
    [p.certificateIdentity, p.certificateIdentityRegexp, p.certificateOidcIssuerRegexp].some(given) ||
    GITHUB_CLAIMS.some((c) => given(p[c]))
  )
    throw new VerificationError(
      'VERIFY_POLICY_INVALID',
      "A containers-policy subject (subjectEmail, subjectHostname) cannot be combined with cosign's identity fields.",
    );
  const email = given(p.subjectEmail) ? p.subjectEmail : undefined;
  const hostname = given(p.subjectHostname) ? p.subjectHostname : undefined;
  const issuer = given(p.certificateOidcIssuer) ? p.certificateOidcIssuer : undefined;
  return {
    identity: { describe: JSON.stringify(email ?? hostname), test: (v) => v === email },
    issuer: {
      describe: issuer === undefined ? 'any' : JSON.stringify(issuer),
      test: (v) => issuer === undefined || v === issuer,
    },
    claims: [],
    warnings: [],
    subject: {
      ...(email !== undefined ? { email } : {}),
      ...(hostname !== undefined ? { hostname } : {}),
      ...(issuer !== undefined ? { issuer } : {}),
    },
  };
}

/**
 * Checks and compiles a policy. Like cosign, a certificate is judged only with both an identity
 * and an issuer expectation: a certificate alone proves nothing.
 * @throws VerificationError VERIFY_POLICY_INVALID (an expectation missing or given twice),
 *   VERIFY_REGEXP_INVALID.
 */
export function compileIdentityPolicy(p: IdentityPolicy): CompiledPolicy {
  if (given(p.subjectEmail) || given(p.subjectHostname)) return compileSubject(p);
  const warnings: string[] = [];
  const identity = matcher(p.certificateIdentity, p.certificateIdentityRegexp, 'certificate identity', warnings);
  const issuer = matcher(p.certificateOidcIssuer, p.certificateOidcIssuerRegexp, 'certificate OIDC issuer', warnings);
  if (!identity || !issuer)
    throw new VerificationError(
      'VERIFY_POLICY_INVALID',
      'A certificate is checked against an identity and an OIDC issuer: give both (exactly or as a regular expression), as cosign asks.',
    );
  const claims = GITHUB_CLAIMS.filter((c) => given(p[c])).map((c): [GithubClaim, string] => [c, p[c] as string]);
  return { identity, issuer, claims, warnings };
}

/**
 * Judges a certificate's facts against a compiled policy.
 * @returns null when they match, else the reason (VERIFY_IDENTITY_MISMATCH, VERIFY_ISSUER_MISMATCH,
 *   VERIFY_CLAIM_MISMATCH) with what was expected and what the certificate says.
 */
export function checkIdentity(facts: CertificateFacts, policy: CompiledPolicy): Reason | null {
  if (!facts.identities.some((id) => policy.identity.test(id)))
    return {
      code: 'VERIFY_IDENTITY_MISMATCH',
      message: `The certificate's identity ${facts.identities.map((i) => JSON.stringify(i)).join(', ') || '(none)'} is not ${policy.identity.describe}.`,
    };
  if (facts.issuer === undefined || !policy.issuer.test(facts.issuer))
    return {
      code: 'VERIFY_ISSUER_MISMATCH',
      message: `The certificate's OIDC issuer ${facts.issuer === undefined ? '(none)' : JSON.stringify(facts.issuer)} is not ${policy.issuer.describe}.`,
    };
  for (const [claim, want] of policy.claims) {
    const got = facts.claims[claim];
    if (got !== want)
      return {
        code: 'VERIFY_CLAIM_MISMATCH',
        message: `The certificate's ${claim} is ${got === undefined ? 'absent' : JSON.stringify(got)}, not ${JSON.stringify(want)}.`,
      };
  }
  return null;
}
