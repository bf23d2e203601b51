/**
 * verifyCertificateChain (shared/sigstore/chain.ts), as sigstore-go decides: conformance leaves
 * chain to public good's Fulcio at their log entry's time and not at 'now'; chains openssl makes at
 * test time with every key kind (ECDSA P-256/P-384, RSA PKCS#1 v1.5 and PSS, Ed25519) verify, and
 * each rule is shown refusing: another authority, a time before or after a certificate's
 * validity (which certificate, and its dates), an authority outside its validity in the root, a
 * CA-less or keyCertSign-less issuer, path lengths, a CA leaf, a leaf without code signing, EKU
 * nesting, an unknown critical extension, a broken signature, a root that is not self-signed.
 * Node only (conformance files, openssl).
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parseCertificate } from '../../../../shared/sigstore/certificate.ts';
import { verifyCertificateChain, type ChainOptions } from '../../../../shared/sigstore/chain.ts';
import type { TrustedAuthority } from '../../../../shared/sigstore/types.ts';
import { CA_EXT, FULCIO_LEAF_EXT, OpensslPki, type Issued } from './openssl-pki.ts';
import { conformanceLeaf, conformanceRoot, integratedTime } from './real-certificates.ts';

const DAY = 86_400_000;

async function outcome(leaf: Issued | Uint8Array, cas: TrustedAuthority[], at: Date, opts?: ChainOptions) {
  try {
    const r = await verifyCertificateChain(parseCertificate('der' in leaf ? leaf.der : leaf), cas, at, opts);
    return { code: 'ok', message: r.path.map((c) => c.subject).join(' < '), authority: r.authority.name };
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message, authority: '' };
  }
}

describe('conformance leaves against public good', () => {
  const root = conformanceRoot();
  for (const name of ['happy-path-v0.1', 'happy-path-v0.3', 'happy-path-v0.2', 'happy-path-intoto-in-dsse-v3'])
    it(`${name} chains at its log entry's time, and is expired now`, async () => {
      const at = integratedTime(name);
      const r = await outcome(conformanceLeaf(name), root.certificateAuthorities, at);
      expect(r).toMatchObject({
        code: 'ok',
        message: ' < CN=sigstore-intermediate,O=sigstore.dev < CN=sigstore,O=sigstore.dev',
      });
      expect((await outcome(conformanceLeaf(name), root.certificateAuthorities, new Date())).code).toBe(
        'VERIFY_CERTIFICATE_EXPIRED',
      );
    });

  it('judged again at another time (a timestamp after a log entry), no signature on the path is checked twice', async () => {
    const name = 'happy-path-v0.2';
    const leaf = conformanceLeaf(name);
    expect((await outcome(leaf, root.certificateAuthorities, integratedTime(name))).code).toBe('ok');
    const verify = vi.spyOn(globalThis.crypto.subtle, 'verify');
    try {
      const later = new Date(integratedTime(name).getTime() + 1000);
      expect((await outcome(leaf, root.certificateAuthorities, later)).code).toBe('ok');
      expect((await outcome(leaf, root.certificateAuthorities, new Date())).code).toBe('VERIFY_CERTIFICATE_EXPIRED');
      expect(verify).not.toHaveBeenCalled();
    } finally {
      verify.mockRestore();
    }
  });

  it('intoto-expired-certificate_fail is expired now, and says from when to when', async () => {
    const name = 'intoto-expired-certificate_fail';
    const r = await outcome(conformanceLeaf(name), conformanceRoot(name).certificateAuthorities, new Date());
    expect(r.code).toBe('VERIFY_CERTIFICATE_EXPIRED');
    expect(r.message).toContain(
      'the signing certificate is valid from 2030-01-01T00:00:00.000Z to 2030-01-01T00:10:00.000Z',
    );
  });

  it("a custom root's leaf is not trusted by public good", async () => {
    const name = 'intoto-with-custom-trust-root';
    const leaf = conformanceLeaf(name);
    expect((await outcome(leaf, conformanceRoot(name).certificateAuthorities, integratedTime(name))).code).toBe('ok');
    expect((await outcome(leaf, root.certificateAuthorities, integratedTime(name))).code).toBe(
      'VERIFY_CERTIFICATE_UNTRUSTED',
    );
  });
});

describe('chains openssl makes', () => {
  const pki = new OpensslPki();
  afterAll(() => pki.close());
  const now = new Date(Date.now() + 120_000); // after the notBefore of every certificate made below
  const ca = (name: string, chain: Issued[]): TrustedAuthority => ({
    name,
    uri: '',
    certChain: chain.map((c) => c.der),
    validFor: { start: new Date(0) },
  });
  const LEAF = FULCIO_LEAF_EXT;
  const INTER = [
    'basicConstraints = critical,CA:TRUE,pathlen:0',
    'keyUsage = critical,keyCertSign',
    'extendedKeyUsage = codeSigning',
  ];
  // A: P-256 root → P-384 intermediate (ecdsa-with-SHA256) → P-256 leaf (ecdsa-with-SHA384).
  const rootA = pki.issue('rootA', { key: 'p256', subject: '/O=A/CN=root', ext: CA_EXT, days: 3650 });
  const interA = pki.issue('interA', {
    key: 'p384',
    subject: '/O=A/CN=intermediate',
    ext: INTER,
    issuer: rootA,
    days: 365,
  });
  const leafA = pki.issue('leafA', { key: 'p256', subject: '/CN=leafA', ext: LEAF, issuer: interA, digest: 'sha384' });
  // B: RSA root → Ed25519 intermediate (RSA-PSS) → RSA leaf (Ed25519).
  const rootB = pki.issue('rootB', { key: 'rsa', subject: '/O=B/CN=root', ext: CA_EXT, days: 3650 });
  const interB = pki.issue('interB', {
    key: 'ed25519',
    subject: '/O=B/CN=intermediate',
    ext: INTER,
    issuer: rootB,
    pss: true,
  });
  const leafB = pki.issue('leafB', { key: 'rsa', subject: '/CN=leafB', ext: LEAF, issuer: interB });
  const A = ca('A', [interA, rootA]);
  const B = ca('B', [interB, rootB]);

  it('ECDSA P-256/P-384 and RSA/PSS/Ed25519 chains verify, leaf to root', async () => {
    expect(await outcome(leafA, [A], now)).toMatchObject({
      code: 'ok',
      message: 'CN=leafA < CN=intermediate,O=A < CN=root,O=A',
    });
    expect(parseCertificate(interB.der).signatureAlgorithm).toBe('1.2.840.113549.1.1.10');
    expect(await outcome(leafB, [A, B], now)).toMatchObject({ code: 'ok', authority: 'B' });
  });

  it('another authority is untrusted', async () => {
    expect((await outcome(leafA, [B], now)).code).toBe('VERIFY_CERTIFICATE_UNTRUSTED');
    expect((await outcome(leafA, [], now)).message).toContain('names no certificate authority');
  });

  it('before and after the leaf is valid is expired, with the dates', async () => {
    const early = await outcome(leafA, [A], new Date(now.getTime() - 2 * DAY));
    expect(early.code).toBe('VERIFY_CERTIFICATE_EXPIRED');
    expect(early.message).toMatch(/the signing certificate "CN=leafA" is valid from \S+ to \S+, not at /);
    expect((await outcome(leafA, [A], new Date(now.getTime() + 40 * DAY))).code).toBe('VERIFY_CERTIFICATE_EXPIRED');
  });

  it('an intermediate that expired before the leaf is named', async () => {
    const shortInter = pki.issue('shortInter', {
      key: 'p256',
      subject: '/CN=short',
      ext: INTER,
      issuer: rootA,
      days: 5,
    });
    const leaf = pki.issue('leafShort', { key: 'p256', subject: '/CN=l', ext: LEAF, issuer: shortInter });
    const r = await outcome(leaf, [ca('S', [shortInter, rootA])], new Date(now.getTime() + 10 * DAY));
    expect(r.code).toBe('VERIFY_CERTIFICATE_EXPIRED');
    expect(r.message).toContain('the intermediate certificate "CN=short"');
  });

  it('an authority counts only within its validity in the trusted root', async () => {
    const closed = {
      ...A,
      validFor: { start: new Date(now.getTime() - 10 * DAY), end: new Date(now.getTime() - DAY) },
    };
    const r = await outcome(leafA, [closed], now);
    expect(r.code).toBe('VERIFY_CERTIFICATE_UNTRUSTED');
    expect(r.message).toContain('A is not trusted at');
  });

  it('an issuer that is no CA, or may not sign certificates, is refused', async () => {
    const notCa = pki.issue('notCa', {
      key: 'p256',
      subject: '/CN=notca',
      ext: ['basicConstraints = critical,CA:FALSE'],
      issuer: rootA,
    });
    const under = pki.issue('underNotCa', { key: 'p256', subject: '/CN=u', ext: LEAF, issuer: notCa });
    expect(await outcome(under, [ca('N', [notCa, rootA])], now)).toMatchObject({
      code: 'VERIFY_CERTIFICATE_UNTRUSTED',
      message: expect.stringContaining('"CN=notca" is not a CA certificate'),
    });
    const noSign = pki.issue('noSign', {
      key: 'p256',
      subject: '/CN=nosign',
      ext: ['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,digitalSignature'],
      issuer: rootA,
    });
    const under2 = pki.issue('underNoSign', { key: 'p256', subject: '/CN=u2', ext: LEAF, issuer: noSign });
    expect((await outcome(under2, [ca('K', [noSign, rootA])], now)).message).toContain('may not sign certificates');
  });

  it('path lengths: a pathlen:0 root signs leaves but no intermediate; pathlen:0 intermediates no sub-CA', async () => {
    const strict = pki.issue('strictRoot', {
      key: 'p256',
      subject: '/CN=strict',
      ext: [...CA_EXT.slice(1), 'basicConstraints = critical,CA:TRUE,pathlen:0'],
    });
    const direct = pki.issue('direct', { key: 'p256', subject: '/CN=direct', ext: LEAF, issuer: strict });
    const inter = pki.issue('interStrict', { key: 'p256', subject: '/CN=i', ext: CA_EXT, issuer: strict });
    const deep = pki.issue('deep', { key: 'p256', subject: '/CN=deep', ext: LEAF, issuer: inter });
    const S = ca('strict', [inter, strict]);
    expect((await outcome(direct, [S], now)).code).toBe('ok');
    expect(await outcome(deep, [S], now)).toMatchObject({
      code: 'VERIFY_CERTIFICATE_UNTRUSTED',
      message: expect.stringContaining('allows 0 CA certificate(s) below it, not 1'),
    });
    const sub = pki.issue('subCa', { key: 'p256', subject: '/CN=sub', ext: CA_EXT, issuer: interA });
    const subLeaf = pki.issue('subLeaf', { key: 'p256', subject: '/CN=s', ext: LEAF, issuer: sub });
    expect((await outcome(subLeaf, [ca('D', [sub, interA, rootA])], now)).message).toContain(
      '"CN=intermediate,O=A" allows 0',
    );
  });

  it('a CA leaf, a leaf without code signing, an unhandled critical extension are invalid', async () => {
    expect((await outcome(interA, [A], now)).code).toBe('VERIFY_CERTIFICATE_INVALID');
    const email = pki.issue('emailEku', {
      key: 'p256',
      subject: '/CN=e',
      ext: ['extendedKeyUsage = emailProtection'],
      issuer: interA,
    });
    const none = pki.issue('noEku', {
      key: 'p256',
      subject: '/CN=n',
      ext: ['keyUsage = digitalSignature'],
      issuer: interA,
    });
    for (const leaf of [email, none]) {
      expect(await outcome(leaf, [A], now)).toMatchObject({
        code: 'VERIFY_CERTIFICATE_INVALID',
        message: expect.stringContaining('1.3.6.1.5.5.7.3.3 (code signing)'),
      });
      expect((await outcome(leaf, [A], now, { requireCodeSigning: false })).code).toBe('ok');
    }
    const critical = pki.issue('critical', {
      key: 'p256',
      subject: '/CN=c',
      ext: [...LEAF, '1.2.3.4.5 = critical,ASN1:NULL'],
      issuer: interA,
    });
    expect((await outcome(critical, [A], now)).message).toContain(
      'critical extension this verifier does not handle (1.2.3.4.5)',
    );
  });

  it("an intermediate's extended key usages must allow code signing (Go's nesting)", async () => {
    const tls = pki.issue('tlsInter', {
      key: 'p256',
      subject: '/CN=tls',
      ext: [...CA_EXT, 'extendedKeyUsage = serverAuth'],
      issuer: rootA,
    });
    const leaf = pki.issue('underTls', { key: 'p256', subject: '/CN=t', ext: LEAF, issuer: tls });
    expect((await outcome(leaf, [ca('T', [tls, rootA])], now)).message).toContain(
      'does not allow the extended key usage',
    );
    expect((await outcome(leaf, [ca('T', [tls, rootA])], now, { requireCodeSigning: false })).code).toBe('ok');
  });

  it('a leaf with a broken signature is untrusted', async () => {
    const der = new Uint8Array(leafA.der);
    der[der.length - 5] = der[der.length - 5]! ^ 1;
    expect((await outcome(der, [A], now)).code).toBe('VERIFY_CERTIFICATE_UNTRUSTED');
  });

  it("a chain must end at its authority's self-signed root", async () => {
    expect((await outcome(leafA, [ca('noRoot', [interA])], now)).message).toContain(
      'the root of noRoot is not self-signed',
    );
  });

  it('a private PKI: intermediates in any order, or a leaf signed by the root itself', async () => {
    const direct = pki.issue('byRoot', { key: 'p256', subject: '/CN=byroot', ext: LEAF, issuer: rootA });
    const pkiCa = ca('private PKI', [interB, interA, rootA]);
    expect((await outcome(leafA, [pkiCa], now)).code).toBe('ok');
    expect(await outcome(direct, [pkiCa], now)).toMatchObject({ code: 'ok', message: 'CN=byroot < CN=root,O=A' });
  });
});

it('an invalid time is refused as no verified time', async () => {
  const root = conformanceRoot();
  expect(
    (await outcome(conformanceLeaf('happy-path-v0.3'), root.certificateAuthorities, new Date(Number.NaN))).code,
  ).toBe('VERIFY_NO_VERIFIED_TIME');
});
