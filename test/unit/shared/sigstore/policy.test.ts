/**
 * Identity policy (shared/sigstore/policy.ts): cosign's meaning — exact values, RE2 regular
 * expressions matched anywhere unless anchored (Go's regexp.MatchString), what RE2 cannot express
 * refused, unanchored ones warned about, and each mismatch told by its own code. Node and Chromium.
 */
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { checkIdentity, compileIdentityPolicy, hasIdentityPolicy } from '../../../../shared/sigstore/policy.ts';

const facts = {
  identities: ['https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.2.3'],
  issuer: 'https://token.actions.githubusercontent.com',
  claims: { githubWorkflowRepository: 'org/repo', githubWorkflowTrigger: 'push' },
};

const judge = (p: Parameters<typeof compileIdentityPolicy>[0]) =>
  checkIdentity(facts, compileIdentityPolicy(p))?.code ?? 'ok';

describe('identity policy', () => {
  it('exact identity and issuer', () => {
    expect(judge({ certificateIdentity: facts.identities[0], certificateOidcIssuer: facts.issuer })).toBe('ok');
    expect(judge({ certificateIdentity: 'someone@example.com', certificateOidcIssuer: facts.issuer })).toBe(
      'VERIFY_IDENTITY_MISMATCH',
    );
    expect(
      judge({ certificateIdentity: facts.identities[0], certificateOidcIssuer: 'https://accounts.google.com' }),
    ).toBe('VERIFY_ISSUER_MISMATCH');
  });

  it('regular expressions match anywhere unless anchored, as Go does', () => {
    expect(judge({ certificateIdentityRegexp: 'org/repo', certificateOidcIssuer: facts.issuer })).toBe('ok');
    expect(judge({ certificateIdentityRegexp: '^org/repo', certificateOidcIssuer: facts.issuer })).toBe(
      'VERIFY_IDENTITY_MISMATCH',
    );
    expect(
      judge({
        certificateIdentityRegexp:
          '^https://github\\.com/org/repo/\\.github/workflows/release\\.yml@refs/tags/v\\d+\\.\\d+\\.\\d+$',
        certificateOidcIssuerRegexp: '^https://token\\.actions\\.githubusercontent\\.com$',
      }),
    ).toBe('ok');
  });

  it('warns about unanchored expressions only', () => {
    expect(
      compileIdentityPolicy({ certificateIdentityRegexp: 'org', certificateOidcIssuer: 'x' }).warnings,
    ).toHaveLength(1);
    expect(
      compileIdentityPolicy({ certificateIdentityRegexp: '^org$', certificateOidcIssuer: 'x' }).warnings,
    ).toHaveLength(0);
  });

  it('refuses what RE2 cannot express', () => {
    for (const re of ['(?=x)', '(a)\\1', '(?<!a)b'])
      expect(() => compileIdentityPolicy({ certificateIdentityRegexp: re, certificateOidcIssuer: 'x' })).toThrow(
        expect.objectContaining({ code: 'VERIFY_REGEXP_INVALID' }),
      );
  });

  it('needs an identity and an issuer, not both forms of one', () => {
    for (const p of [
      { certificateIdentity: 'a' },
      { certificateOidcIssuer: 'b' },
      { certificateIdentity: 'a', certificateIdentityRegexp: 'a', certificateOidcIssuer: 'b' },
    ]) {
      expect(() => compileIdentityPolicy(p)).toThrow(VerificationError);
    }
    expect(hasIdentityPolicy({})).toBe(false);
    expect(hasIdentityPolicy({ githubWorkflowRef: 'refs/heads/main' })).toBe(true);
  });

  it('GitHub claims compare exactly', () => {
    const base = { certificateIdentityRegexp: 'org/repo', certificateOidcIssuer: facts.issuer };
    expect(judge({ ...base, githubWorkflowRepository: 'org/repo', githubWorkflowTrigger: 'push' })).toBe('ok');
    expect(judge({ ...base, githubWorkflowRepository: 'org/other' })).toBe('VERIFY_CLAIM_MISMATCH');
    expect(judge({ ...base, githubWorkflowSha: 'abc' })).toBe('VERIFY_CLAIM_MISMATCH');
  });
});
