/**
 * Rekor v1's answer to a new entry (shared/sigstore/services.ts parseRekorV1Answer) and the entries
 * proposed to it (hashedRekordV001, dsseV001): an answer shaped as rekor's openapi.yaml `LogEntry`
 * reads into the bundle form (protobuf JSON: base64 log id and hashes, decimal strings) and the
 * legacy form (cosign's RekorBundle fields), and the bundle form reads back with the bundle parser;
 * each missing or mistyped field is SIGNING_TLOG_ANSWER_INVALID; arbitrary, mutated and deeply
 * nested answers give a value or only that code (fast-check). Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CosignWebError } from '../../../../shared/errors.ts';
import { fromBase64, toBase64, toHex, utf8 } from '../../../../shared/encoding/base64.ts';
import { buildDsseBundle } from '../../../../shared/cosign/bundle.ts';
import { parseSigstoreBundle } from '../../../../shared/sigstore/bundle.ts';
import { dsseV001, hashedRekordV001, parseRekorV1Answer } from '../../../../shared/sigstore/services.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';
import { outsideBytes } from '../../../fuzz/mutate.ts';

const URL_ = 'http://127.0.0.1:3000';
const hex = (byte: number) => toHex(new Uint8Array(32).fill(byte));
const BODY = {
  apiVersion: '0.0.1',
  kind: 'hashedrekord',
  spec: { data: { hash: { algorithm: 'sha256', value: hex(1) } }, signature: { content: 'MEUC' } },
};

function entry(over: Record<string, unknown> = {}, proof: Record<string, unknown> = {}) {
  return {
    body: toBase64(utf8(JSON.stringify(BODY))),
    integratedTime: 1_760_000_000,
    logID: hex(0xab).toUpperCase(),
    logIndex: 41,
    verification: {
      inclusionProof: {
        checkpoint: '127.0.0.1 - 1\n42\nAAAA\n\n— 127.0.0.1 AAAA\n',
        hashes: [hex(2), hex(3)],
        logIndex: 41,
        rootHash: hex(4),
        treeSize: 42,
        ...proof,
      },
      signedEntryTimestamp: 'MEUCIQ==',
    },
    ...over,
  };
}

const answer = (e: unknown = entry()) => utf8(JSON.stringify({ '24296fb24b8ad77a': e }));

function codeOf(bytes: Uint8Array): string {
  try {
    parseRekorV1Answer(bytes, URL_);
    return 'ok';
  } catch (e) {
    return e instanceof CosignWebError ? e.code : `threw ${String(e)}`;
  }
}

describe('parseRekorV1Answer', () => {
  it('reads the bundle form and the legacy form of one entry', () => {
    const { bundle, legacy } = parseRekorV1Answer(answer(), URL_);
    expect(bundle).toEqual({
      logIndex: '41',
      logId: { keyId: toBase64(new Uint8Array(32).fill(0xab)) },
      kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
      integratedTime: '1760000000',
      inclusionPromise: { signedEntryTimestamp: 'MEUCIQ==' },
      inclusionProof: {
        logIndex: '41',
        rootHash: toBase64(new Uint8Array(32).fill(4)),
        treeSize: '42',
        hashes: [toBase64(new Uint8Array(32).fill(2)), toBase64(new Uint8Array(32).fill(3))],
        checkpoint: { envelope: '127.0.0.1 - 1\n42\nAAAA\n\n— 127.0.0.1 AAAA\n' },
      },
      canonicalizedBody: entry().body,
    });
    expect(legacy).toEqual({
      signedEntryTimestamp: 'MEUCIQ==',
      body: entry().body,
      integratedTime: 1_760_000_000,
      logIndex: 41,
      logId: hex(0xab),
    });
  });

  it('gives a bundle form the bundle parser reads, SET and proof included', () => {
    const { bundle } = parseRekorV1Answer(answer(), URL_);
    const bytes = buildDsseBundle('aGludA==', 'application/vnd.in-toto+json', utf8('{}'), new Uint8Array([1]), {
      tlogEntries: [bundle],
    });
    const read = parseSigstoreBundle(bytes).tlogEntries[0]!;
    expect(read.integratedTime).toBe(1_760_000_000);
    expect(toHex(read.logId)).toBe(hex(0xab));
    expect(read.inclusionPromise?.signedEntryTimestamp).toEqual(fromBase64('MEUCIQ=='));
    expect(read.inclusionProof?.treeSize).toBe(42);
  });

  it.each([
    ['two entries', utf8(JSON.stringify({ a: entry(), b: entry() }))],
    ['no entry', utf8('{}')],
    ['an entry that is a list', answer([entry()])],
    ['no verification', answer(entry({ verification: undefined }))],
    ['no SET', answer(entry({ verification: { inclusionProof: entry().verification.inclusionProof } }))],
    ['no inclusion proof', answer(entry({ verification: { signedEntryTimestamp: 'MEUCIQ==' } }))],
    ['a log id that is not 64 hex digits', answer(entry({ logID: 'abcd' }))],
    ['a negative log index', answer(entry({ logIndex: -1 }))],
    ['an unsafe integrated time', answer(entry({ integratedTime: 2 ** 60 }))],
    ['a time as a string', answer(entry({ integratedTime: '1760000000' }))],
    ['a body that is not base64', answer(entry({ body: 'not base64!' }))],
    ['a body that is not JSON', answer(entry({ body: toBase64(utf8('kind')) }))],
    ['a body without a kind', answer(entry({ body: toBase64(utf8('{"apiVersion":"0.0.1"}')) }))],
    ['a tree of size 0', answer(entry({}, { treeSize: 0 }))],
    ['a proof hash that is not hex', answer(entry({}, { hashes: ['zz'] }))],
    ['proof hashes that are not a list', answer(entry({}, { hashes: hex(2) }))],
    ['no checkpoint', answer(entry({}, { checkpoint: undefined }))],
    ['not JSON', utf8('<html>')],
  ])('refuses %s with SIGNING_TLOG_ANSWER_INVALID', (_what, bytes) => {
    expect(codeOf(bytes)).toBe('SIGNING_TLOG_ANSWER_INVALID');
  });

  it('any well-formed entry reads back to the same numbers, log id and hashes', () => {
    const h = fc.uint8Array({ minLength: 32, maxLength: 32 });
    const n = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    fc.assert(
      fc.property(
        fc.record({ id: h, root: h, hashes: fc.array(h, { maxLength: 5 }), index: n, time: n, size: n }),
        ({ id, root, hashes, index, time, size }) => {
          const e = entry(
            { logID: toHex(id), logIndex: index, integratedTime: time },
            { rootHash: toHex(root), hashes: hashes.map(toHex), logIndex: index, treeSize: Math.max(1, size) },
          );
          const { bundle, legacy } = parseRekorV1Answer(answer(e), URL_);
          expect(legacy).toMatchObject({ logIndex: index, integratedTime: time, logId: toHex(id) });
          expect(bundle.logId).toEqual({ keyId: toBase64(id) });
          const proof = bundle.inclusionProof as { rootHash: string; hashes: string[]; treeSize: string };
          expect(proof.rootHash).toBe(toBase64(root));
          expect(proof.hashes).toEqual(hashes.map(toBase64));
          expect(proof.treeSize).toBe(String(Math.max(1, size)));
        },
      ),
      { numRuns: fuzzRuns(200) },
    );
  });

  it('arbitrary, mutated and deeply nested answers give an entry or only SIGNING_TLOG_ANSWER_INVALID', () => {
    fc.assert(
      fc.property(outsideBytes([answer()]), (b) => {
        expect(['ok', 'SIGNING_TLOG_ANSWER_INVALID']).toContain(codeOf(b));
      }),
      { numRuns: fuzzRuns(300) },
    );
  });
});

describe('the entries proposed to Rekor v1', () => {
  const pem = '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n';

  it('hashedrekord 0.0.1: hex SHA-256, base64 signature, base64 of the PEM', () => {
    expect(hashedRekordV001(new Uint8Array(32).fill(1), new Uint8Array([9, 9]), pem)).toEqual({
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: 'sha256', value: hex(1) } },
        signature: { content: 'CQk=', publicKey: { content: toBase64(utf8(pem)) } },
      },
    });
  });

  it('dsse 0.0.1: the envelope as Go marshals the protobuf Envelope, the PEM as its one verifier', () => {
    const e = dsseV001(
      { payload: utf8('{}'), payloadType: 'application/vnd.in-toto+json', signature: new Uint8Array([7]) },
      pem,
    );
    expect(e).toEqual({
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: {
        proposedContent: {
          envelope: '{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"Bw=="}]}',
          verifiers: [toBase64(utf8(pem))],
        },
      },
    });
  });
});
