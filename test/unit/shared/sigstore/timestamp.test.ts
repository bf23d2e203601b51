/**
 * verifyRfc3161Timestamp and parseTimestampToken (shared/sigstore/timestamp.ts) on the real
 * timestamps of the Sigstore conformance suite (read from ../shared/conformance, never copied in):
 * each bundle's timestamp over its signature, against the case's trusted root (else public good's).
 * Sigstore's TSA with and without its certificate in the token, a chain expired now but valid at the
 * token's time, and a time exactly at the authority's validity end verify; an authority not trusted
 * at the token's time, a certificate not valid then, FreeTSA (not in the root) with and without its
 * certificate, and a timestamp of another signature are refused with their codes. Then fuzzing —
 * arbitrary bytes, real tokens with bytes changed, cut or inserted — gives only VerificationError.
 * Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { fromBase64 } from '../../../../shared/encoding/base64.ts';
import { parseCertificate } from '../../../../shared/sigstore/certificate.ts';
import { parseTimestampToken, verifyRfc3161Timestamp } from '../../../../shared/sigstore/timestamp.ts';
import { parseTrustedRoot } from '../../../../shared/sigstore/trusted-root.ts';
import type { TrustedAuthority, TrustedRoot } from '../../../../shared/sigstore/types.ts';
import { fuzzTokenEdits } from './token-fuzz.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const PREFIX = '../../../../../shared/conformance/';
const files = import.meta.glob<string>(
  [
    '../../../../../shared/conformance/public-good-trusted_root.json',
    '../../../../../shared/conformance/bundle-verify/*/bundle.sigstore.json',
    '../../../../../shared/conformance/bundle-verify/*/trusted_root.json',
  ],
  { query: '?raw', import: 'default', eager: true },
);

interface BundleJson {
  messageSignature?: { signature: string };
  dsseEnvelope?: { signatures: { sig: string }[] };
  verificationMaterial: {
    certificate?: { rawBytes: string };
    x509CertificateChain?: { certificates: { rawBytes: string }[] };
    timestampVerificationData?: { rfc3161Timestamps?: { signedTimestamp: string }[] };
  };
}

/** Base64 as the bundles hold it (one case's token is wrapped at 76 columns, as `base64` writes). */
const b64 = (text: string): Uint8Array => fromBase64(text.replace(/\s/g, ''))!;

interface Case {
  bundle: BundleJson;
  token: Uint8Array;
  signature: Uint8Array;
  root: TrustedRoot;
}

function conformanceCase(name: string): Case {
  const text = files[`${PREFIX}bundle-verify/${name}/bundle.sigstore.json`];
  if (!text) throw new Error(`no conformance case ${name}`);
  const bundle = JSON.parse(text) as BundleJson;
  const sig = bundle.messageSignature?.signature ?? bundle.dsseEnvelope!.signatures[0]!.sig;
  const ts = bundle.verificationMaterial.timestampVerificationData!.rfc3161Timestamps![0]!.signedTimestamp;
  const rootText =
    files[`${PREFIX}bundle-verify/${name}/trusted_root.json`] ?? files[`${PREFIX}public-good-trusted_root.json`]!;
  return { bundle, token: b64(ts), signature: b64(sig), root: parseTrustedRoot(rootText) };
}

async function outcome(token: Uint8Array, signature: Uint8Array, tsas: TrustedAuthority[]) {
  try {
    const r = await verifyRfc3161Timestamp(token, signature, tsas);
    return { code: 'ok', time: r.time.toISOString(), authority: r.authority, message: '' };
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return { code: (e as VerificationError).code, time: '', authority: undefined, message: (e as Error).message };
  }
}

const run = (c: Case) => outcome(c.token, c.signature, c.root.timestampAuthorities);

describe('conformance timestamps that verify', () => {
  it.each([
    ['rekor2-happy-path', '2025-06-12T12:02:20.000Z'],
    ['rekor2-dsse-happy-path', undefined],
    ['rekor2-timestamp-with-embedded-cert', '2025-08-06T18:51:36.000Z'],
    ['rekor2-timestamp-without-embedded-cert', '2025-08-06T19:03:51.000Z'],
  ])('%s verifies with the root of its case', async (name, time) => {
    const c = conformanceCase(name);
    const r = await run(c);
    expect(r.code).toBe('ok');
    if (time) expect(r.time).toBe(time);
    expect(r.authority).toBe(c.root.timestampAuthorities.find((a) => a === r.authority));
  });

  it('with and without the certificate: what parseTimestampToken shows', () => {
    const withCert = parseTimestampToken(conformanceCase('rekor2-timestamp-with-embedded-cert').token);
    const without = parseTimestampToken(conformanceCase('rekor2-timestamp-without-embedded-cert').token);
    expect(withCert.embeddedCertificates.map((c) => c.subject)).toContain('CN=sigstore-tsa,O=sigstore.dev');
    expect(without.embeddedCertificates).toEqual([]);
    expect(without).toMatchObject({
      genTime: new Date('2025-08-06T19:03:51Z'),
      hashAlgorithm: 'SHA-256',
      serial: '9971770552ef81b0346175e5931e5c5ab64a8ac9' /* without DER's sign octet */,
      policy: '1.3.6.1.4.1.57264.2',
      tsaName: 'CN=sigstore-tsa,O=sigstore.dev',
    });
    expect(without.messageImprint.length).toBe(32);
  });

  it('a chain expired now verifies at the time of the token', async () => {
    const c = conformanceCase('rekor2-timestamp-with-expired-cert-chain');
    const r = await run(c);
    expect(r.code).toBe('ok');
    const leaf = parseCertificate(r.authority!.certChain[0]!);
    expect(leaf.notAfter.getTime()).toBeLessThan(Date.now());
    expect(new Date(r.time).getTime()).toBeLessThanOrEqual(leaf.notAfter.getTime());
  });

  it("a time equal to the end of the authority's validity verifies (the end is inclusive)", async () => {
    const c = conformanceCase('trust-root-tsa-validity-end-inclusive');
    const r = await run(c);
    expect(r.code).toBe('ok');
    expect(r.time).toBe(r.authority!.validFor.end!.toISOString());
  });

  it.each(['rekor2-timestamp-with-incorrect-time_fail', 'intoto-tsa-timestamp-outside-cert-validity_fail'])(
    '%s: the timestamp verifies; its time is outside the signing certificate (the bundle check fails)',
    async (name) => {
      const c = conformanceCase(name);
      const r = await run(c);
      expect(r.code).toBe('ok');
      const vm = c.bundle.verificationMaterial;
      const cert = parseCertificate(b64((vm.certificate ?? vm.x509CertificateChain!.certificates[0]!).rawBytes));
      const t = new Date(r.time);
      expect(t < cert.notBefore || t > cert.notAfter).toBe(true);
    },
  );
});

describe('a token read again', () => {
  it('is the same reading, from a copy of its bytes, and verifies again; a damaged one is refused every time', async () => {
    const c = conformanceCase('rekor2-timestamp-with-embedded-cert');
    const token = new Uint8Array(c.token);
    const first = parseTimestampToken(token);
    expect(parseTimestampToken(new Uint8Array(c.token))).toBe(first);
    token.fill(0);
    expect(first.embeddedCertificates.map((x) => x.subject)).toContain('CN=sigstore-tsa,O=sigstore.dev');
    for (let i = 0; i < 2; i++) expect((await run(c)).code).toBe('ok');
    for (let i = 0; i < 2; i++) expect(() => parseTimestampToken(token)).toThrow(VerificationError);
  });
});

describe('conformance timestamps that are refused', () => {
  it.each([
    ['rekor2-timestamp-outside-trust-root-tsa-validity_fail', 'VERIFY_TIMESTAMP_UNTRUSTED', 'is not trusted at'],
    ['rekor2-timestamp-outside-tsa-cert-validity_fail', 'VERIFY_TIMESTAMP_UNTRUSTED', 'is valid from'],
    ['rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail', 'VERIFY_TIMESTAMP_UNTRUSTED', 'is not'],
    ['rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail', 'VERIFY_TIMESTAMP_UNTRUSTED', 'another signer'],
    ['rekor2-timestamp-payload-mismatch_fail', 'VERIFY_TIMESTAMP_INVALID', 'the timestamp is of other bytes'],
  ])('%s: %s', async (name, code, words) => {
    const r = await run(conformanceCase(name));
    expect(r.code).toBe(code);
    expect(r.message).toContain(words);
  });

  it('the certificate FreeTSA embeds is shown, and is not trusted by the root', async () => {
    const c = conformanceCase('rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail');
    const t = parseTimestampToken(c.token);
    expect(t.embeddedCertificates.some((x) => x.subject.includes('CN=www.freetsa.org'))).toBe(true);
    expect(t.tsaName).toContain('CN=www.freetsa.org');
    expect(t.hashAlgorithm).toBe('SHA-256');
  });

  it('a valid timestamp against a root without timestamp authorities is untrusted', async () => {
    const c = conformanceCase('rekor2-happy-path');
    expect((await outcome(c.token, c.signature, [])).code).toBe('VERIFY_TIMESTAMP_UNTRUSTED');
  });

  it("another case's signature is refused as other bytes", async () => {
    const a = conformanceCase('rekor2-happy-path');
    const b = conformanceCase('rekor2-timestamp-with-embedded-cert');
    expect((await outcome(a.token, b.signature, a.root.timestampAuthorities)).code).toBe('VERIFY_TIMESTAMP_INVALID');
  });
});

describe('fuzzing', () => {
  const real = [
    conformanceCase('rekor2-timestamp-with-embedded-cert'),
    conformanceCase('rekor2-timestamp-without-embedded-cert'),
    conformanceCase('rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail'),
  ];

  it('arbitrary bytes give only VERIFY_TIMESTAMP_INVALID', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 1500 }), async (b) => {
        expect(() => parseTimestampToken(b)).toThrow(VerificationError);
        expect((await outcome(b, b, real[0]!.root.timestampAuthorities)).code).toBe('VERIFY_TIMESTAMP_INVALID');
      }),
      { numRuns: fuzzRuns(300) },
    );
  });

  it('real tokens with bytes changed, cut or inserted give only VerificationError, or verify', async () => {
    await fuzzTokenEdits(
      real.map((c) => c.token),
      (bytes, which) => outcome(bytes, real[which]!.signature, real[which]!.root.timestampAuthorities),
      fuzzRuns(300),
    );
  });
});
