/**
 * Sigstore bundles (shared/sigstore/bundle.ts): each version's demands (v0.1 a SET, v0.2+ an
 * inclusion proof with its checkpoint, v0.3 one certificate), both media-type spellings, base64
 * with line breaks as Go reads it, negative or huge numbers refused; arbitrary input gives only
 * SIGNATURE_BUNDLE_INVALID. Node and Chromium (bundles are built here).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SignatureError } from '../../../../shared/errors.ts';
import { utf8 } from '../../../../shared/encoding/base64.ts';
import { parseSigstoreBundle } from '../../../../shared/sigstore/bundle.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const entry = {
  logIndex: '7',
  logId: { keyId: 'AAEC' },
  kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
  integratedTime: '1700000000',
  inclusionPromise: { signedEntryTimestamp: 'MEUC' },
  inclusionProof: {
    logIndex: '7',
    rootHash: 'AAEC',
    treeSize: '8',
    hashes: ['AAEC'],
    checkpoint: { envelope: 'origin\n8\nAAEC\n' },
  },
  canonicalizedBody: 'e30=',
};
const bundle = (over: Record<string, unknown> = {}, vm: Record<string, unknown> = {}) =>
  JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: { certificate: { rawBytes: 'MIIB' }, tlogEntries: [entry], ...vm },
    messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: 'AAEC' }, signature: 'MEUC' },
    ...over,
  });
const code = (text: string | Uint8Array) => {
  try {
    parseSigstoreBundle(text);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(SignatureError);
    return (e as SignatureError).code;
  }
};

describe('Sigstore bundles', () => {
  it('reads a v0.3 message-signature bundle into the model', () => {
    const b = parseSigstoreBundle(bundle());
    expect(b.version).toBe(3);
    expect(b.signer.kind).toBe('certificate');
    expect(b.tlogEntries[0]).toMatchObject({ logIndex: 7, integratedTime: 1700000000 });
    expect(b.tlogEntries[0]!.inclusionProof).toMatchObject({ treeSize: 8, checkpoint: 'origin\n8\nAAEC\n' });
    expect(b.content.kind).toBe('messageSignature');
  });

  it('reads every media-type spelling', () => {
    expect(
      parseSigstoreBundle(bundle({ mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.3' })).version,
    ).toBe(3);
    const chain = { certificate: undefined, x509CertificateChain: { certificates: [{ rawBytes: 'MIIB' }] } };
    const v02 = parseSigstoreBundle(
      bundle({ mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.2' }, chain),
    );
    expect(v02.version).toBe(2);
    expect(code(bundle({ mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.4' }))).toBe(
      'SIGNATURE_BUNDLE_INVALID',
    );
  });

  it('holds each version to its demands', () => {
    const noProof = { ...entry, inclusionProof: undefined };
    expect(code(bundle({}, { tlogEntries: [noProof] }))).toBe('SIGNATURE_BUNDLE_INVALID');
    const v01 = { mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1' };
    const chain = { certificate: undefined, x509CertificateChain: { certificates: [{ rawBytes: 'MIIB' }] } };
    expect(code(bundle(v01, { ...chain, tlogEntries: [noProof] }))).toBe('ok');
    expect(code(bundle(v01, { ...chain, tlogEntries: [{ ...entry, inclusionPromise: undefined }] }))).toBe(
      'SIGNATURE_BUNDLE_INVALID',
    );
    expect(code(bundle({}, chain))).toBe('SIGNATURE_BUNDLE_INVALID');
    expect(code(bundle(v01, { certificate: undefined, x509CertificateChain: { certificates: [] } }))).toBe(
      'SIGNATURE_BUNDLE_INVALID',
    );
  });

  it('refuses negative and unsafe numbers, and reads base64 with line breaks', () => {
    expect(code(bundle({}, { tlogEntries: [{ ...entry, logIndex: '-1' }] }))).toBe('SIGNATURE_BUNDLE_INVALID');
    expect(code(bundle({}, { tlogEntries: [{ ...entry, logIndex: '99999999999999999999' }] }))).toBe(
      'SIGNATURE_BUNDLE_INVALID',
    );
    const b = parseSigstoreBundle(bundle({ messageSignature: { signature: 'ME\nUC' } }));
    expect(b.content.kind === 'messageSignature' && b.content.signature.length).toBe(3);
  });

  it('arbitrary bytes and JSON give only SIGNATURE_BUNDLE_INVALID', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.json().map((j) => utf8(j)),
        ),
        (b) => {
          expect(['SIGNATURE_BUNDLE_INVALID']).toContain(code(b));
        },
      ),
      { numRuns: fuzzRuns(100) },
    );
  });

  it('mutated bundles read or are refused with the code', () => {
    const bytes = utf8(bundle());
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 }), (i, v) => {
        const b = bytes.slice();
        b[i] = v;
        expect(['ok', 'SIGNATURE_BUNDLE_INVALID']).toContain(code(b));
      }),
      { numRuns: fuzzRuns(500) },
    );
  });
});
