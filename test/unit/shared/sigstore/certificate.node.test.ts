/**
 * parseCertificate (shared/sigstore/certificate.ts) on certificates made by others: the Fulcio
 * leaves of the Sigstore conformance suite (read from ../shared/conformance) and leaves openssl
 * writes at test time with Fulcio's extensions — .1.1–.1.6 hold the raw string (what sigstore-go
 * reads), .1.8 on a DER UTF8String, the username as otherName .1.7; the identity is picked as
 * cosign does (email, else URI, else username); the issuer is .1.8, else .1.1. Node only (files,
 * openssl).
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  certificateFacts,
  certificateIdentity,
  certificateIssuer,
  parseCertificate,
} from '../../../../shared/sigstore/certificate.ts';
import { CA_EXT, FULCIO_LEAF_EXT, OpensslPki, rawHex } from './openssl-pki.ts';
import { conformanceLeaf } from './real-certificates.ts';

describe('Fulcio leaves of the conformance suite', () => {
  it('happy-path-v0.3: GitHub Actions identity, issuer v1 and v2, workflow claims, an SCT list', () => {
    const c = parseCertificate(conformanceLeaf('happy-path-v0.3'));
    const workflow =
      'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
    expect(certificateIdentity(c)).toBe(workflow);
    expect(c.sanUris).toEqual([workflow]);
    expect(certificateIssuer(c)).toBe('https://token.actions.githubusercontent.com');
    expect(c.fulcio.issuerV1).toBe('https://token.actions.githubusercontent.com');
    expect(c.fulcio.issuerV2).toBe('https://token.actions.githubusercontent.com');
    expect(c.fulcio.githubWorkflowRepository).toBe('sigstore-conformance/extremely-dangerous-public-oidc-beacon');
    expect(c.fulcio.sourceRepositoryUri).toBe(
      'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon',
    );
    expect(c.fulcio.buildSignerUri).toBe(workflow);
    expect(c.fulcio.runnerEnvironment).toBe('github-hosted');
    expect(c.issuer).toBe('CN=sigstore-intermediate,O=sigstore.dev');
    expect(c.subject).toBe('');
    expect(c.isCA).toBe(false);
    expect(c.keyUsage).toEqual({ digitalSignature: true, keyCertSign: false });
    expect(c.extKeyUsage).toEqual(['1.3.6.1.5.5.7.3.3']);
    expect(c.sctList?.length).toBeGreaterThan(100);
    expect(c.notAfter.getTime() - c.notBefore.getTime()).toBe(10 * 60 * 1000); // Fulcio: ten minutes
    expect(certificateFacts(c).claims.githubWorkflowRepository).toBe(c.fulcio.githubWorkflowRepository);
  });

  it('bundle-with-root-cert_fail: an email identity from GitHub login', () => {
    const c = parseCertificate(conformanceLeaf('bundle-with-root-cert_fail'));
    expect(certificateIdentity(c)).toBe('a@tny.town');
    expect(certificateIssuer(c)).toBe('https://github.com/login/oauth');
  });

  it('the tbs is the exact signed bytes inside the DER', () => {
    const c = parseCertificate(conformanceLeaf('happy-path-v0.2'));
    const at = Buffer.from(c.der).indexOf(Buffer.from(c.tbs));
    expect(at).toBe(4); // SEQUENCE header of the certificate, then the tbsCertificate
  });
});

describe('leaves openssl writes', () => {
  const pki = new OpensslPki();
  afterAll(() => pki.close());
  const root = pki.issue('root', { key: 'p256', subject: '/O=Example, Inc./CN=Root CA', ext: CA_EXT });

  it('reads SAN email and username, issuer v1 (raw) and v2 (DER), claims, key ids, serial', () => {
    const leaf = parseCertificate(
      pki.issue('leaf', { key: 'p384', subject: '/CN=leaf', ext: FULCIO_LEAF_EXT, issuer: root }).der,
    );
    expect(leaf.sanEmails).toEqual(['alice@example.com']);
    expect(leaf.sanOtherNames).toEqual(['alice-user']);
    expect(certificateIdentity(leaf)).toBe('alice@example.com');
    expect(leaf.fulcio).toMatchObject({
      issuerV1: 'https://issuer.example',
      issuerV2: 'https://issuer.example',
      githubWorkflowTrigger: 'push',
      githubWorkflowRepository: 'octo/repo',
      buildSignerUri: 'https://github.com/octo/repo/.github/workflows/w.yml@refs/heads/main',
      sourceRepositoryVisibilityAtSigning: 'public',
    });
    expect(certificateFacts(leaf)).toEqual({
      identities: ['alice@example.com', 'alice-user'],
      issuer: 'https://issuer.example',
      claims: { githubWorkflowTrigger: 'push', githubWorkflowRepository: 'octo/repo' },
    });
    expect(leaf.issuer).toBe('CN=Root CA,O=Example\\, Inc.');
    expect(leaf.issuerDer).toEqual(parseCertificate(root.der).subjectDer);
    expect(leaf.authorityKeyId).toEqual(parseCertificate(root.der).subjectKeyId);
    expect(leaf.serialNumber).toBe('02');
  });

  it('a URI beats the username, and .1.1 written as DER is read raw, as sigstore-go reads it', () => {
    const ext = [
      'extendedKeyUsage = codeSigning',
      'subjectAltName = otherName:1.3.6.1.4.1.57264.1.7;UTF8:bob,URI:https://ci.example/job',
      '1.3.6.1.4.1.57264.1.1 = ASN1:UTF8String:https://issuer.example',
    ];
    const leaf = parseCertificate(pki.issue('uri', { key: 'ed25519', subject: '/CN=uri', ext, issuer: root }).der);
    expect(certificateIdentity(leaf)).toBe('https://ci.example/job');
    expect(certificateIssuer(leaf)).toBe(`\x0c\x16https://issuer.example`);
  });

  it('only the username otherName counts, and only the username when no other SAN', () => {
    const ext = ['subjectAltName = otherName:1.2.3.4;UTF8:other,otherName:1.3.6.1.4.1.57264.1.7;UTF8:carol'];
    const leaf = parseCertificate(pki.issue('user', { key: 'rsa', subject: '/CN=user', ext, issuer: root }).der);
    expect(leaf.sanOtherNames).toEqual(['carol']);
    expect(certificateIdentity(leaf)).toBe('carol');
    expect(certificateIssuer(leaf)).toBeUndefined();
  });

  it('refuses a Fulcio v2 extension that is not a DER string, and a username that is not UTF8', () => {
    const notDer = [`1.3.6.1.4.1.57264.1.8 = DER:${rawHex('https://issuer.example')}`];
    expect(() =>
      parseCertificate(pki.issue('v2raw', { key: 'p256', subject: '/CN=x', ext: notDer, issuer: root }).der),
    ).toThrow(
      expect.objectContaining({ code: 'VERIFY_CERTIFICATE_INVALID', message: expect.stringContaining('57264.1.8') }),
    );
    const ia5 = ['subjectAltName = otherName:1.3.6.1.4.1.57264.1.7;IA5STRING:dave'];
    expect(() =>
      parseCertificate(pki.issue('ia5', { key: 'p256', subject: '/CN=x', ext: ia5, issuer: root }).der),
    ).toThrow(expect.objectContaining({ code: 'VERIFY_CERTIFICATE_INVALID' }));
  });

  it('CA flags, path length and key usage of a CA; unknown critical extensions are listed', () => {
    const ext = [...CA_EXT.slice(1), 'basicConstraints = critical,CA:TRUE,pathlen:1', '1.2.3.4.5 = critical,ASN1:NULL'];
    const ca = parseCertificate(pki.issue('ca', { key: 'p256', subject: '/CN=ca', ext, issuer: root }).der);
    expect(ca.isCA).toBe(true);
    expect(ca.pathLenConstraint).toBe(1);
    expect(ca.keyUsage).toEqual({ digitalSignature: false, keyCertSign: true });
    expect(ca.unknownCritical).toEqual(['1.2.3.4.5']);
  });
});
