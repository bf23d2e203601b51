/**
 * verifyRfc3161Timestamp (shared/sigstore/timestamp.ts) on timestamps the real `openssl ts` makes
 * at test time, in a temp dir: a CA and timestamp authority certificates (critical timeStamping
 * extended key usage) made with openssl req/x509 (openssl-pki.ts), a query over the signature bytes
 * (`openssl ts -query -data sig.bin -sha256|-sha384|-sha512 [-cert]`) and the authority's reply
 * (`openssl ts -reply -config tsa.cnf -queryfile … [-token_out]`). Tokens with and without the
 * certificate, bare or in their TimeStampResp, SHA-256/384/512 imprints, ECDSA and RSA authorities
 * verify; other bytes, an authority not in the root (with and without its certificate), another
 * leaf of the same CA, an authority outside its validity in the root and a root listing only the
 * CA for a token without its certificate are refused; mutated tokens give only VerificationError.
 * Node only (openssl).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { parseTimestampToken, verifyRfc3161Timestamp } from '../../../../shared/sigstore/timestamp.ts';
import type { TrustedAuthority } from '../../../../shared/sigstore/types.ts';
import { CA_EXT, OpensslPki, type Issued, type KeyKind } from './openssl-pki.ts';
import { fuzzTokenEdits } from './token-fuzz.ts';

const OPENSSL = process.env['OPENSSL'] ?? 'openssl';
const TSA_EXT = [
  'basicConstraints = critical,CA:FALSE',
  'keyUsage = critical,digitalSignature',
  'extendedKeyUsage = critical,timeStamping',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
];

type Imprint = 'sha256' | 'sha384' | 'sha512';

interface StampOptions {
  imprint?: Imprint;
  /** Ask for the signer's certificate in the token (`-cert`). */
  cert?: boolean;
  /** A bare TimeStampToken (`-token_out`), else the whole TimeStampResp. */
  tokenOut?: boolean;
}

/** A timestamp authority run by `openssl ts -reply` with `signer`'s key and certificate. */
class OpensslTsa {
  #n = 0;
  constructor(
    private readonly pki: OpensslPki,
    readonly signer: Issued,
    signerDigest: Imprint = 'sha256',
  ) {
    const dir = pki.dir;
    writeFileSync(join(dir, `${signer.name}.serial`), '01\n');
    writeFileSync(
      join(dir, `${signer.name}-tsa.cnf`),
      [
        '[tsa]',
        'default_tsa = tsa_config',
        '[tsa_config]',
        `serial = ${join(dir, `${signer.name}.serial`)}`,
        `signer_cert = ${signer.certPath}`,
        `signer_key = ${signer.keyPath}`,
        `signer_digest = ${signerDigest}`,
        'default_policy = 1.3.6.1.4.1.57264.2',
        'digests = sha256, sha384, sha512',
        'accuracy = secs:1',
        'tsa_name = yes',
        'ess_cert_id_alg = sha256',
        '',
      ].join('\n'),
    );
  }

  #openssl(args: string[]): void {
    execFileSync(OPENSSL, args, { cwd: this.pki.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** A timestamp over `data`, made by openssl. */
  stamp(data: Uint8Array, o: StampOptions = {}): Uint8Array {
    const id = `${this.signer.name}-${this.#n++}`;
    const dir = this.pki.dir;
    writeFileSync(join(dir, `${id}.bin`), data);
    const query = ['ts', '-query', '-data', `${id}.bin`, `-${o.imprint ?? 'sha256'}`, '-out', `${id}.tsq`];
    this.#openssl(o.cert ? [...query, '-cert'] : query);
    const reply = ['ts', '-reply', '-config', `${this.signer.name}-tsa.cnf`, '-queryfile', `${id}.tsq`];
    this.#openssl([...reply, ...(o.tokenOut ? ['-token_out'] : []), '-out', `${id}.tsr`]);
    return new Uint8Array(readFileSync(join(dir, `${id}.tsr`)));
  }
}

const pki = new OpensslPki();
afterAll(() => pki.close());

const ca = pki.issue('ca', { key: 'p256', subject: '/O=cosign-web test/CN=timestamp root', ext: CA_EXT, days: 3650 });
const tsaOf = (name: string, key: KeyKind, issuer: Issued, digest?: Imprint) =>
  new OpensslTsa(pki, pki.issue(name, { key, subject: `/O=cosign-web test/CN=${name}`, ext: TSA_EXT, issuer }), digest);
const tsa = tsaOf('tsa', 'p256', ca);
const rsaTsa = tsaOf('tsa-rsa', 'rsa', ca, 'sha384');
const p384Tsa = tsaOf('tsa-p384', 'p384', ca, 'sha512');
const sibling = tsaOf('tsa-sibling', 'p256', ca);
const otherCa = pki.issue('other-ca', { key: 'p256', subject: '/O=elsewhere/CN=other root', ext: CA_EXT, days: 3650 });
const stranger = tsaOf('tsa-stranger', 'p256', otherCa);

const since = new Date(Date.now() - 3_600_000);
const authority = (t: OpensslTsa, root = ca, validFor: TrustedAuthority['validFor'] = { start: since }) => ({
  name: t.signer.name,
  uri: `https://${t.signer.name}.example`,
  certChain: [t.signer.der, root.der],
  validFor,
});
const ROOT: TrustedAuthority[] = [authority(tsa), authority(rsaTsa), authority(p384Tsa)];

const signature = new Uint8Array(Array.from({ length: 71 }, (_, i) => (i * 37 + 11) & 0xff));

async function outcome(token: Uint8Array, signed: Uint8Array, tsas: TrustedAuthority[]) {
  try {
    const r = await verifyRfc3161Timestamp(token, signed, tsas);
    return { code: 'ok', authority: r.authority.name, time: r.time, message: '' };
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return { code: (e as VerificationError).code, authority: '', time: undefined, message: (e as Error).message };
  }
}

describe('timestamps openssl makes verify', () => {
  const cases: [string, OpensslTsa, StampOptions][] = [
    ['ECDSA P-256, SHA-256 imprint, with the certificate', tsa, { cert: true, tokenOut: true }],
    ['ECDSA P-256, SHA-256 imprint, without the certificate', tsa, { tokenOut: true }],
    ['ECDSA P-256, SHA-384 imprint, with the certificate', tsa, { imprint: 'sha384', cert: true, tokenOut: true }],
    ['ECDSA P-256, SHA-384 imprint, without the certificate', tsa, { imprint: 'sha384', tokenOut: true }],
    ['ECDSA P-256, SHA-512 imprint, in a TimeStampResp', tsa, { imprint: 'sha512', cert: true }],
    ['RSA (rsaEncryption, SHA-384 digest), with the certificate', rsaTsa, { cert: true, tokenOut: true }],
    ['RSA, SHA-384 imprint, without the certificate', rsaTsa, { imprint: 'sha384' }],
    ['ECDSA P-384 (SHA-512 digest), without the certificate', p384Tsa, { tokenOut: true }],
  ];
  it.each(cases)('%s', async (_label, t, o) => {
    const before = Date.now() - 2000;
    const token = t.stamp(signature, o);
    const r = await outcome(token, signature, ROOT);
    expect(r).toMatchObject({ code: 'ok', authority: t.signer.name });
    expect(r.time!.getTime()).toBeGreaterThanOrEqual(before - (before % 1000));
    expect(r.time!.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    const shown = parseTimestampToken(token);
    expect(shown.hashAlgorithm).toBe(`SHA-${(o.imprint ?? 'sha256').slice(3)}`);
    expect(shown.policy).toBe('1.3.6.1.4.1.57264.2');
    expect(shown.tsaName).toBe(`CN=${t.signer.name},O=cosign-web test`);
    expect(shown.embeddedCertificates.map((c) => c.der)).toEqual(o.cert ? [t.signer.der] : []);
  });

  it("with the certificate, a root that lists only the authority's CA is enough", async () => {
    const token = tsa.stamp(signature, { cert: true });
    const caOnly = { ...authority(tsa), certChain: [ca.der] };
    expect((await outcome(token, signature, [caOnly])).code).toBe('ok');
  });
});

describe('timestamps that are refused', () => {
  it('of other bytes: VERIFY_TIMESTAMP_INVALID', async () => {
    for (const o of [{ cert: true }, {}, { imprint: 'sha384' as const }]) {
      const token = tsa.stamp(signature, o);
      const changed = signature.slice();
      changed[5]! ^= 1;
      const r = await outcome(token, changed, ROOT);
      expect(r.code).toBe('VERIFY_TIMESTAMP_INVALID');
      expect(r.message).toContain('the timestamp is of other bytes');
      expect((await outcome(token, signature.subarray(1), ROOT)).code).toBe('VERIFY_TIMESTAMP_INVALID');
    }
  });

  it('a changed signature: VERIFY_TIMESTAMP_INVALID with the certificate, else VERIFY_TIMESTAMP_UNTRUSTED', async () => {
    for (const [cert, code, words] of [
      [true, 'VERIFY_TIMESTAMP_INVALID', 'does not verify with its certificate'],
      [false, 'VERIFY_TIMESTAMP_UNTRUSTED', "its signature does not verify with tsa's key"],
    ] as const) {
      const token = tsa.stamp(signature, { cert, tokenOut: true });
      token[token.length - 1]! ^= 1; // the last byte of the SignerInfo's signature
      const r = await outcome(token, signature, ROOT);
      expect(r.code).toBe(code);
      expect(r.message).toContain(words);
    }
  });

  it("a changed genTime: VERIFY_TIMESTAMP_INVALID (the signed digest is not the TSTInfo's)", async () => {
    const token = tsa.stamp(signature, { cert: true, tokenOut: true });
    const text = Buffer.from(token).toString('latin1');
    const z = text.search(/20\d{12}Z/) + 14; // the TSTInfo's GeneralizedTime, the first in the token
    token[z - 1] = token[z - 1] === 0x30 ? 0x31 : 0x30;
    const r = await outcome(token, signature, ROOT);
    expect(r.code).toBe('VERIFY_TIMESTAMP_INVALID');
    expect(r.message).toContain("signed message digest is not the TSTInfo's");
  });

  it('by an authority not in the root, with or without its certificate: VERIFY_TIMESTAMP_UNTRUSTED', async () => {
    const withCert = await outcome(stranger.stamp(signature, { cert: true }), signature, ROOT);
    expect(withCert.code).toBe('VERIFY_TIMESTAMP_UNTRUSTED');
    expect(withCert.message).toContain('the certificate it carries is not tsa');
    const without = await outcome(stranger.stamp(signature), signature, ROOT);
    expect(without.code).toBe('VERIFY_TIMESTAMP_UNTRUSTED');
    expect(without.message).toContain('another signer');
    // Its own root trusts it.
    expect((await outcome(stranger.stamp(signature), signature, [authority(stranger, otherCa)])).code).toBe('ok');
  });

  it("by another leaf of the same CA than the root lists: VERIFY_TIMESTAMP_UNTRUSTED (sigstore-go's rule)", async () => {
    for (const cert of [true, false]) {
      const r = await outcome(sibling.stamp(signature, { cert }), signature, ROOT);
      expect(r.code).toBe('VERIFY_TIMESTAMP_UNTRUSTED');
    }
  });

  it('by an authority outside its validity in the root: VERIFY_TIMESTAMP_UNTRUSTED', async () => {
    const token = tsa.stamp(signature, { cert: true });
    const ended = authority(tsa, ca, { start: new Date(0), end: since });
    const later = authority(tsa, ca, { start: new Date(Date.now() + 3_600_000) });
    for (const a of [ended, later]) {
      const r = await outcome(token, signature, [a]);
      expect(r.code).toBe('VERIFY_TIMESTAMP_UNTRUSTED');
      expect(r.message).toContain('is not trusted at');
    }
  });

  it('without the certificate, a root listing only the CA: VERIFY_TIMESTAMP_UNTRUSTED', async () => {
    const caOnly = { ...authority(tsa), certChain: [ca.der] };
    const r = await outcome(tsa.stamp(signature), signature, [caOnly]);
    expect(r.code).toBe('VERIFY_TIMESTAMP_UNTRUSTED');
    expect(r.message).toContain('lists no signing certificate');
  });

  it('a root listing the leaf with the wrong CA: VERIFY_TIMESTAMP_UNTRUSTED', async () => {
    const wrong = authority(tsa, otherCa);
    expect((await outcome(tsa.stamp(signature, { cert: true }), signature, [wrong])).code).toBe(
      'VERIFY_TIMESTAMP_UNTRUSTED',
    );
  });
});

describe('fuzzing openssl tokens', () => {
  const tokens = [
    tsa.stamp(signature, { cert: true, tokenOut: true }),
    tsa.stamp(signature, { imprint: 'sha384' }),
    rsaTsa.stamp(signature, { cert: true }),
  ];

  it('bytes changed, cut or inserted give only VerificationError, or verify', async () => {
    await fuzzTokenEdits(tokens, (bytes) => outcome(bytes, signature, ROOT), 400);
  });

  it('arbitrary bytes, and arbitrary signatures for a real token, give only VerificationError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 800 }), async (b) => {
        expect((await outcome(b, signature, ROOT)).code).toBe('VERIFY_TIMESTAMP_INVALID');
        expect((await outcome(tokens[0]!, b, ROOT)).code).toBe('VERIFY_TIMESTAMP_INVALID');
      }),
      { numRuns: 200 },
    );
  });
});
