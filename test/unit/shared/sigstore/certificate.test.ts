/**
 * parseCertificate and parsePemCertificates (shared/sigstore/certificate.ts) on the certificate
 * authorities of the public-good trusted root shipped with the page: Fulcio's root and
 * intermediate (names as Go prints them, CA flags, path length, key usages); then fuzzing —
 * arbitrary bytes, and real certificates with bytes changed, cut or added — gives only
 * VERIFY_CERTIFICATE_INVALID, never another error. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { encodePem } from '../../../../shared/encoding/pem.ts';
import { parseCertificate, parsePemCertificates } from '../../../../shared/sigstore/certificate.ts';
import { parseTrustedRoot } from '../../../../shared/sigstore/trusted-root.ts';
import { PUBLIC_GOOD_ROOT } from '../../../../shared/sigstore/shipped-roots.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const root = parseTrustedRoot(PUBLIC_GOOD_ROOT.json);
const fulcio = root.certificateAuthorities[root.certificateAuthorities.length - 1]!;
const ALL = [...root.certificateAuthorities, ...root.timestampAuthorities].flatMap((a) => a.certChain);

function outcome(bytes: Uint8Array): string {
  try {
    parseCertificate(bytes);
    return 'ok';
  } catch (e) {
    if (!(e instanceof VerificationError)) throw e;
    expect(e.code).toBe('VERIFY_CERTIFICATE_INVALID');
    expect(e.message).toMatch(/^The certificate is not valid: .+\.$/);
    return e.code;
  }
}

describe('public-good certificate authorities', () => {
  it("Fulcio's current intermediate and root", () => {
    const [intermediate, top] = fulcio.certChain.map(parseCertificate);
    expect(top!.subject).toBe('CN=sigstore,O=sigstore.dev');
    expect(top!.issuer).toBe(top!.subject);
    expect(top!.subjectDer).toEqual(top!.issuerDer);
    expect(top!.isCA).toBe(true);
    expect(top!.pathLenConstraint).toBeUndefined();
    expect(intermediate!.subject).toBe('CN=sigstore-intermediate,O=sigstore.dev');
    expect(intermediate!.issuerDer).toEqual(top!.subjectDer);
    expect(intermediate!.isCA).toBe(true);
    expect(intermediate!.pathLenConstraint).toBe(0);
    expect(intermediate!.keyUsage?.keyCertSign).toBe(true);
    expect(intermediate!.extKeyUsage).toEqual(['1.3.6.1.5.5.7.3.3']);
    expect(intermediate!.signatureAlgorithm).toBe('1.2.840.10045.4.3.3'); // ecdsa-with-SHA384
    expect(intermediate!.notBefore < intermediate!.notAfter).toBe(true);
    expect(intermediate!.unknownCritical).toEqual([]);
  });

  it('every certificate of the root reads', () => {
    expect(ALL.length).toBeGreaterThan(3);
    for (const der of ALL) expect(outcome(der)).toBe('ok');
  });
});

describe('parsePemCertificates', () => {
  it('reads every CERTIFICATE block in order, ignoring text around', () => {
    const text = `roots\n${encodePem('CERTIFICATE', ALL[0]!)}between\n${encodePem('CERTIFICATE', ALL[1]!)}`;
    expect(parsePemCertificates(text)).toEqual([ALL[0], ALL[1]]);
  });

  it('refuses text without certificates and damaged blocks', () => {
    expect(() => parsePemCertificates('nothing here')).toThrow(
      expect.objectContaining({ code: 'VERIFY_CERTIFICATE_INVALID' }),
    );
    const damaged = '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n';
    expect(() => parsePemCertificates(damaged)).toThrow(
      expect.objectContaining({ code: 'VERIFY_CERTIFICATE_INVALID' }),
    );
  });
});

type Edit = [number, number, 'set' | 'cut' | 'add'];

/** One byte set, the bytes from a position cut, or one byte added (never down to nothing). */
function edit(bytes: Uint8Array, [pos, value, op]: Edit): Uint8Array {
  const at = pos % bytes.length;
  const head = bytes.subarray(0, at);
  const out = op === 'cut' ? head : new Uint8Array([...head, value, ...bytes.subarray(op === 'set' ? at + 1 : at)]);
  return out.length ? out : new Uint8Array([0]);
}

describe('refusals and fuzzing', () => {
  it('refuses trailing bytes, BER lengths and a truncated certificate', () => {
    const der = ALL[0]!;
    expect(outcome(new Uint8Array([...der, 0]))).toBe('VERIFY_CERTIFICATE_INVALID');
    expect(outcome(der.subarray(0, der.length - 1))).toBe('VERIFY_CERTIFICATE_INVALID');
    // The outer length in long form with a leading zero byte: valid BER, not DER.
    const len = der.length - 4;
    const ber = new Uint8Array([0x30, 0x83, 0, len >> 8, len & 255, ...der.subarray(4)]);
    expect(outcome(ber)).toBe('VERIFY_CERTIFICATE_INVALID');
  });

  it('arbitrary bytes give only VERIFY_CERTIFICATE_INVALID', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => void outcome(b)),
      { numRuns: fuzzRuns(500) },
    );
  });

  it('real certificates with bytes changed, cut or inserted give only VERIFY_CERTIFICATE_INVALID or parse', () => {
    const mutation = fc.record({
      which: fc.nat({ max: ALL.length - 1 }),
      edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'add')), {
        minLength: 1,
        maxLength: 4,
      }),
    });
    fc.assert(
      fc.property(mutation, ({ which, edits }) => void outcome(edits.reduce(edit, ALL[which]!))),
      { numRuns: fuzzRuns(1500) },
    );
  });
});

describe('a certificate read again', () => {
  it('is the same object, read from a copy of its bytes; a damaged one is refused every time', () => {
    const der = new Uint8Array(fulcio.certChain[0]!);
    const first = parseCertificate(der);
    expect(parseCertificate(new Uint8Array(der))).toBe(first);
    const subject = first.subject;
    der.fill(0);
    expect(first.der).toEqual(fulcio.certChain[0]);
    expect(first.subject).toBe(subject);
    for (let i = 0; i < 2; i++) expect(() => parseCertificate(der)).toThrow(VerificationError);
  });
});
