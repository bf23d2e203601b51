/**
 * containers-policy subjects (shared/sigstore/subject.ts) as containers/image judges them:
 * fulcio_cert.go's issuer rule (the two extensions must agree) and e-mail SAN, pki_cert.go's
 * e-mail and Go's VerifyHostname over DNS SANs (case, trailing dot, a `*` first label). The
 * chain and the rest are proven against skopeo in test/integration/containers-policy-interop.test.ts.
 * Node and Chromium.
 */
import { describe, expect, it } from 'vitest';
import { checkSubject } from '../../../../shared/sigstore/subject.ts';
import type { Certificate } from '../../../../shared/sigstore/certificate.ts';

const cert = (c: { emails?: string[]; dns?: string[]; v1?: string; v2?: string }): Certificate =>
  ({
    sanEmails: c.emails ?? [],
    sanDns: c.dns ?? [],
    fulcio: { ...(c.v1 ? { issuerV1: c.v1 } : {}), ...(c.v2 ? { issuerV2: c.v2 } : {}) },
  }) as unknown as Certificate;

describe('checkSubject', () => {
  it('fulcio: issuer from either extension, which must agree; then the e-mail SAN', () => {
    const want = { issuer: 'https://i', email: 'a@b' };
    expect(checkSubject(cert({ emails: ['a@b'], v1: 'https://i' }), want)).toBeNull();
    expect(checkSubject(cert({ emails: ['a@b'], v2: 'https://i' }), want)).toBeNull();
    expect(checkSubject(cert({ emails: ['a@b'], v1: 'https://x', v2: 'https://i' }), want)?.code).toBe(
      'VERIFY_ISSUER_MISMATCH',
    );
    expect(checkSubject(cert({ emails: ['a@b'] }), want)?.code).toBe('VERIFY_ISSUER_MISMATCH');
    expect(checkSubject(cert({ emails: ['c@b'], v2: 'https://i' }), want)?.code).toBe('VERIFY_IDENTITY_MISMATCH');
  });

  it.each([
    ['host.example.com', ['host.example.com'], true],
    ['HOST.example.com', ['host.EXAMPLE.com'], true],
    ['host.example.com.', ['host.example.com'], true],
    ['host.example.com', ['*.example.com'], true],
    ['a.host.example.com', ['*.example.com'], false],
    ['example.com', ['*.example.com'], false],
    ['host.example.com', ['other.example.com'], false],
    ['host.example.com', [], false],
  ])('pki: host name %s against DNS SANs %j: %s', (host, dns, ok) => {
    expect(checkSubject(cert({ dns }), { hostname: host }) === null).toBe(ok);
  });

  it('pki: e-mail and host name both asked, both needed', () => {
    const c = cert({ emails: ['a@b'], dns: ['h.example'] });
    expect(checkSubject(c, { email: 'a@b', hostname: 'h.example' })).toBeNull();
    expect(checkSubject(c, { email: 'x@b', hostname: 'h.example' })?.code).toBe('VERIFY_IDENTITY_MISMATCH');
    expect(checkSubject(c, { email: 'a@b', hostname: 'x.example' })?.code).toBe('VERIFY_IDENTITY_MISMATCH');
  });
});
