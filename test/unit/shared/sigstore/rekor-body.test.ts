/**
 * Rekor entry bodies (shared/sigstore/rekor-body.ts) of every kind it reads, written here as Rekor
 * v1 (rekor pkg/types) and v2 (rekor-tiles) write them, including the two the conformance suite
 * has no sample of (dsse 0.0.2, intoto 0.0.1): each matches the signature it logs, and a change to
 * any field it records is refused naming that field. Unreadable bodies are VERIFY_TLOG_ENTRY_INVALID;
 * arbitrary bytes and arbitrary JSON give only VerificationError. Node and Chromium.
 */
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { toBase64, toHex, utf8 } from '../../../../shared/encoding/base64.ts';
import { pae } from '../../../../shared/encoding/pae.ts';
import { encodePem } from '../../../../shared/encoding/pem.ts';
import { checkBodyMatches, readRekorBody, type BodyExpectation } from '../../../../shared/sigstore/rekor-body.ts';
import type { SignedContent, TlogEntry } from '../../../../shared/sigstore/types.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

type Json = Record<string, unknown>;

const CERT = Uint8Array.from({ length: 40 }, (_, i) => i);
const SPKI = Uint8Array.from({ length: 30 }, (_, i) => 100 + i);
const SIG = Uint8Array.from({ length: 70 }, (_, i) => 200 - i);
const ARTIFACT_DIGEST = sha256(utf8('artifact'));
const PAYLOAD = utf8('{"_type":"https://in-toto.io/Statement/v1"}');
const PAYLOAD_TYPE = 'application/vnd.in-toto+json';

const pem = (label: string, der: Uint8Array) => toBase64(utf8(encodePem(label, der)));
const certPem = pem('CERTIFICATE', CERT);
const keyPem = pem('PUBLIC KEY', SPKI);

const message: SignedContent = {
  kind: 'messageSignature',
  signature: SIG,
  digest: { algorithm: 'SHA2_256', digest: ARTIFACT_DIGEST },
};
const dsse: SignedContent = {
  kind: 'dsse',
  payloadType: PAYLOAD_TYPE,
  payload: PAYLOAD,
  signatures: [{ sig: SIG, keyid: '' }],
};
const byCert = (content: SignedContent, more: Partial<BodyExpectation> = {}): BodyExpectation => ({
  content,
  signerDer: CERT,
  signerIsCertificate: true,
  ...more,
});
const byKey = (content: SignedContent): BodyExpectation => ({ content, signerDer: SPKI, signerIsCertificate: false });

const envelopeHash = { algorithm: 'sha256', value: toHex(sha256(utf8('the envelope as sent'))) };
const payloadHashV1 = { algorithm: 'sha256', value: toHex(sha256(PAYLOAD)) };

/** Bodies of each kind, logging SIG by CERT (SPKI for the v2 DSSE one) over the content. */
const BODIES: Record<string, Json> = {
  'hashedrekord 0.0.1': {
    data: { hash: { algorithm: 'sha256', value: toHex(ARTIFACT_DIGEST) } },
    signature: { content: toBase64(SIG), publicKey: { content: certPem } },
  },
  'hashedrekord 0.0.2': {
    hashedRekordV002: {
      data: { algorithm: 'SHA2_256', digest: toBase64(ARTIFACT_DIGEST) },
      signature: {
        content: toBase64(SIG),
        verifier: { keyDetails: 'PKIX_ECDSA_P256_SHA_256', x509Certificate: { rawBytes: toBase64(CERT) } },
      },
    },
  },
  'dsse 0.0.1': {
    envelopeHash,
    payloadHash: payloadHashV1,
    signatures: [{ signature: toBase64(SIG), verifier: certPem }],
  },
  'dsse 0.0.2': {
    dsseV002: {
      payloadHash: { algorithm: 'SHA2_256', digest: toBase64(sha256(PAYLOAD)) },
      signatures: [
        {
          content: toBase64(SIG),
          verifier: { keyDetails: 'PKIX_ECDSA_P256_SHA_256', publicKey: { rawBytes: toBase64(SPKI) } },
        },
      ],
    },
  },
  'intoto 0.0.1': { content: { hash: envelopeHash, payloadHash: payloadHashV1 }, publicKey: certPem },
  'intoto 0.0.2': {
    content: {
      envelope: {
        payloadType: PAYLOAD_TYPE,
        signatures: [{ sig: toBase64(utf8(toBase64(SIG))), publicKey: certPem }],
      },
      hash: envelopeHash,
      payloadHash: payloadHashV1,
    },
  },
};

/** What each body logs. */
const EXPECT: Record<string, BodyExpectation> = {
  'hashedrekord 0.0.1': byCert(message, { artifactDigest: ARTIFACT_DIGEST }),
  'hashedrekord 0.0.2': byCert(message, { artifactDigest: ARTIFACT_DIGEST }),
  'dsse 0.0.1': byCert(dsse),
  'dsse 0.0.2': byKey(dsse),
  'intoto 0.0.1': byCert(dsse),
  'intoto 0.0.2': byCert(dsse),
};

function entry(kindVersion: string, spec: unknown, raw?: Uint8Array): TlogEntry {
  const [kind, version] = kindVersion.split(' ') as [string, string];
  return {
    logIndex: 1,
    logId: new Uint8Array(32),
    kindVersion: { kind, version },
    integratedTime: 1,
    canonicalizedBody: raw ?? utf8(JSON.stringify({ apiVersion: version, kind, spec })),
  };
}

/** A copy of `o` with the value at `path` replaced (or removed, for undefined). */
function edit(o: Json, path: string, value: unknown): Json {
  const copy = structuredClone(o);
  const keys = path.split('.');
  let at: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  if (value === undefined) delete at[keys.at(-1)!];
  else at[keys.at(-1)!] = value;
  return copy;
}

function outcome(e: TlogEntry, exp: BodyExpectation): string {
  try {
    checkBodyMatches(e, exp);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(VerificationError);
    return `${(err as VerificationError).code}: ${(err as Error).message}`;
  }
}

describe('checkBodyMatches', () => {
  it.each(Object.keys(BODIES))('a %s body matches the signature it logs', (kv) => {
    expect(outcome(entry(kv, BODIES[kv]), EXPECT[kv]!)).toBe('ok');
    expect(readRekorBody(entry(kv, BODIES[kv])).kind).toBe(kv.split(' ')[0]);
  });

  it('a hashedrekord 0.0.2 body logs a DSSE envelope as SHA-256 of its PAE (Rekor v2)', () => {
    const body = edit(
      BODIES['hashedrekord 0.0.2']!,
      'hashedRekordV002.data.digest',
      toBase64(sha256(pae(PAYLOAD_TYPE, PAYLOAD))),
    );
    expect(outcome(entry('hashedrekord 0.0.2', body), byCert(dsse))).toBe('ok');
    const other: SignedContent = { ...dsse, payload: utf8('{}') };
    expect(outcome(entry('hashedrekord 0.0.2', body), byCert(other))).toMatch(
      /its digest of the DSSE envelope differs/,
    );
    expect(outcome(entry('hashedrekord 0.0.1', BODIES['hashedrekord 0.0.1']), byCert(dsse))).toMatch(
      /its kind \(a hashedrekord 0.0.1 entry logs a message signature, and this is a DSSE envelope\) differs/,
    );
  });

  it('compares a message digest with the artifact and with the bundle, whichever are given', () => {
    const e = entry('hashedrekord 0.0.1', BODIES['hashedrekord 0.0.1']);
    expect(outcome(e, byCert(message))).toBe('ok');
    expect(outcome(e, byCert({ kind: 'messageSignature', signature: SIG }, { artifactDigest: ARTIFACT_DIGEST }))).toBe(
      'ok',
    );
    expect(outcome(e, byCert({ kind: 'messageSignature', signature: SIG }))).toMatch(/its digest algorithm \(sha256/);
    expect(outcome(e, byCert(message, { artifactDigest: sha256(utf8('other')) }))).toMatch(
      /its digest of the artifact differs/,
    );
    const sha384 = edit(BODIES['hashedrekord 0.0.1']!, 'data.hash', { algorithm: 'sha384', value: 'ab'.repeat(48) });
    const content384: SignedContent = {
      kind: 'messageSignature',
      signature: SIG,
      digest: { algorithm: 'SHA2_384', digest: new Uint8Array(48).fill(0xab) },
    };
    expect(outcome(entry('hashedrekord 0.0.1', sha384), byCert(content384, { artifactDigest: ARTIFACT_DIGEST }))).toBe(
      'ok',
    );
    expect(outcome(entry('hashedrekord 0.0.1', sha384), byCert(message))).toMatch(/its digest algorithm \(sha384/);
  });

  const otherPem = pem('CERTIFICATE', new Uint8Array(40).fill(7));
  const otherSig = toBase64(new Uint8Array(70).fill(1));
  it.each([
    ['hashedrekord 0.0.1', 'signature.content', otherSig, 'signature'],
    ['hashedrekord 0.0.1', 'signature.publicKey.content', otherPem, 'certificate'],
    ['hashedrekord 0.0.1', 'signature.publicKey.content', keyPem, 'certificate \\(it names a public key\\)'],
    ['hashedrekord 0.0.1', 'data.hash.value', '00'.repeat(32), 'digest of the artifact'],
    ['hashedrekord 0.0.2', 'hashedRekordV002.signature.content', otherSig, 'signature'],
    [
      'hashedrekord 0.0.2',
      'hashedRekordV002.signature.verifier.x509Certificate.rawBytes',
      toBase64(SPKI),
      'certificate',
    ],
    ['hashedrekord 0.0.2', 'hashedRekordV002.data.digest', toBase64(new Uint8Array(32)), 'digest of the artifact'],
    ['hashedrekord 0.0.2', 'hashedRekordV002.data.algorithm', 'SHA2_512', 'digest algorithm'],
    ['dsse 0.0.1', 'payloadHash.value', '00'.repeat(32), 'payload hash'],
    ['dsse 0.0.1', 'signatures', [{ signature: otherSig, verifier: certPem }], 'signature'],
    ['dsse 0.0.1', 'signatures', [{ signature: toBase64(SIG), verifier: otherPem }], 'certificate'],
    ['dsse 0.0.1', 'signatures', [], 'signature count'],
    ['dsse 0.0.2', 'dsseV002.payloadHash.digest', toBase64(new Uint8Array(32)), 'payload hash'],
    [
      'dsse 0.0.2',
      'dsseV002.signatures',
      [{ content: otherSig, verifier: { publicKey: { rawBytes: toBase64(SPKI) } } }],
      'signature',
    ],
    [
      'dsse 0.0.2',
      'dsseV002.signatures',
      [{ content: toBase64(SIG), verifier: { publicKey: { rawBytes: toBase64(CERT) } } }],
      'public key',
    ],
    ['intoto 0.0.1', 'content.payloadHash.value', '11'.repeat(32), 'payload hash'],
    ['intoto 0.0.1', 'publicKey', otherPem, 'certificate'],
    ['intoto 0.0.2', 'content.payloadHash.value', '11'.repeat(32), 'payload hash'],
    ['intoto 0.0.2', 'content.envelope.payloadType', 'text/plain', 'payload type'],
    [
      'intoto 0.0.2',
      'content.envelope.signatures',
      [{ sig: toBase64(utf8(otherSig)), publicKey: certPem }],
      'signature',
    ],
    // A signature base64-encoded once, not twice, names no signature (sigstore-go reads it so).
    ['intoto 0.0.2', 'content.envelope.signatures', [{ sig: toBase64(SIG), publicKey: certPem }], 'signature'],
    [
      'intoto 0.0.2',
      'content.envelope.signatures',
      [{ sig: toBase64(utf8(toBase64(SIG))), publicKey: keyPem }],
      'certificate',
    ],
  ])('%s with another %s: its %s differs', (kv, path, value, field) => {
    expect(outcome(entry(kv, edit(BODIES[kv]!, path, value)), EXPECT[kv]!)).toMatch(
      new RegExp(`^VERIFY_TLOG_BODY_MISMATCH: The log entry is not about this signature: its ${field}`),
    );
  });

  it('refuses a DSSE or in-toto entry for a message signature, and an envelope of two signatures', () => {
    for (const kv of ['dsse 0.0.1', 'dsse 0.0.2', 'intoto 0.0.1', 'intoto 0.0.2'])
      expect(outcome(entry(kv, BODIES[kv]), { ...EXPECT[kv]!, content: message })).toMatch(
        /its kind \(a \w+ entry logs a DSSE envelope/,
      );
    const two: SignedContent = {
      ...dsse,
      signatures: [...(dsse.kind === 'dsse' ? dsse.signatures : []), { sig: SIG, keyid: 'x' }],
    };
    expect(outcome(entry('dsse 0.0.1', BODIES['dsse 0.0.1']), byCert(two))).toMatch(
      /signature count \(one in the entry, 2 in the envelope\)/,
    );
  });

  it.each([
    [
      'a kind other than the entry says',
      entry(
        'dsse 0.0.1',
        BODIES['hashedrekord 0.0.1'],
        utf8(JSON.stringify({ apiVersion: '0.0.1', kind: 'hashedrekord', spec: {} })),
      ),
      /it is a "hashedrekord" "0.0.1" entry, the bundle says dsse 0.0.1/,
    ],
    ['an unknown kind', entry('rekord 0.0.1', {}), /entries of kind rekord 0.0.1 are not read here/],
    ['an unknown version', entry('hashedrekord 0.0.3', {}), /hashedrekord 0.0.3 are not read here/],
    ['no spec', entry('dsse 0.0.1', 'x'), /it has no spec/],
    ['not JSON', entry('dsse 0.0.1', {}, utf8('{"kind":')), /it is not JSON/],
    ['not UTF-8', entry('dsse 0.0.1', {}, new Uint8Array([0xff])), /not UTF-8/],
    [
      'a missing field',
      entry('hashedrekord 0.0.1', edit(BODIES['hashedrekord 0.0.1']!, 'data.hash', undefined)),
      /it has no data.hash.algorithm/,
    ],
    [
      'a digest that is not hex',
      entry('hashedrekord 0.0.1', edit(BODIES['hashedrekord 0.0.1']!, 'data.hash.value', 'xyz')),
      /data.hash.value is not hex/,
    ],
    [
      'an unknown digest',
      entry('hashedrekord 0.0.1', edit(BODIES['hashedrekord 0.0.1']!, 'data.hash.algorithm', 'md5')),
      /"md5" is not a digest Rekor writes/,
    ],
    [
      'a signature that is not base64',
      entry('dsse 0.0.1', edit(BODIES['dsse 0.0.1']!, 'signatures', [{ signature: '!', verifier: certPem }])),
      /signature is not base64/,
    ],
    [
      'a verifier that is not PEM',
      entry(
        'dsse 0.0.1',
        edit(BODIES['dsse 0.0.1']!, 'signatures', [{ signature: toBase64(SIG), verifier: toBase64(utf8('x')) }]),
      ),
      /verifier is not PEM/,
    ],
    [
      'a PEM private key',
      entry('intoto 0.0.1', edit(BODIES['intoto 0.0.1']!, 'publicKey', pem('PRIVATE KEY', SPKI))),
      /a PEM PRIVATE KEY, not a certificate or public key/,
    ],
    [
      'an old intoto 0.0.1 without payload hash',
      entry('intoto 0.0.1', edit(BODIES['intoto 0.0.1']!, 'content.payloadHash', undefined)),
      /no content.payloadHash.algorithm/,
    ],
    [
      'a payload hash of SHA-512',
      entry('dsse 0.0.1', edit(BODIES['dsse 0.0.1']!, 'payloadHash.algorithm', 'sha512')),
      /payloadHash.algorithm is not SHA-256/,
    ],
  ])('refuses %s as VERIFY_TLOG_ENTRY_INVALID', (_what, e, why) => {
    const f = outcome(e, EXPECT['dsse 0.0.1']!);
    expect(f).toMatch(/^VERIFY_TLOG_ENTRY_INVALID: The log entry's body is not valid: /);
    expect(f).toMatch(why);
  });

  it('gives only VerificationError for arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...Object.keys(BODIES)), (bytes, kv) => {
        expect(outcome(entry(kv, null, bytes), EXPECT[kv]!)).not.toBe('ok');
      }),
    );
  });

  it('gives only VerificationError for arbitrary JSON and for bodies with any field replaced', () => {
    const leaves = (o: unknown, prefix = ''): string[] =>
      o && typeof o === 'object' && !Array.isArray(o)
        ? Object.entries(o).flatMap(([k, v]) => [`${prefix}${k}`, ...leaves(v, `${prefix}${k}.`)])
        : [];
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(BODIES)),
        fc.jsonValue(),
        fc.nat(),
        fc.boolean(),
        (kv, value, which, whole) => {
          const paths = leaves(BODIES[kv]);
          const spec = whole ? value : edit(BODIES[kv]!, paths[which % paths.length]!, value);
          outcome(entry(kv, spec), EXPECT[kv]!);
        },
      ),
      { numRuns: fuzzRuns(1000) },
    );
  });
});
