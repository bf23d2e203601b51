/**
 * The pure parts of shared/ops/tree.ts and remove.ts: the DSSE envelope reader cosign 2's `.att`
 * layers need (round trip and fuzz), and which tree items can be removed and how each removal is
 * named. The registry side is tested against real registries in test/integration/tree-remove.
 * Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toBase64, utf8 } from '../../../../shared/encoding/base64.ts';
import { SignatureError } from '../../../../shared/errors.ts';
import { parseDsseEnvelope, type TreeItem, type TreeNode } from '../../../../shared/ops/tree.ts';
import { allSignatureTargets, describeItem, targetOf } from '../../../../shared/ops/remove.ts';
import { explainMediaType } from '../../../../shared/registry/explain.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

function envelope(payloadType: string, payload: Uint8Array, sigs: Uint8Array[]): Uint8Array {
  return utf8(
    JSON.stringify({
      payloadType,
      payload: toBase64(payload),
      signatures: sigs.map((s) => ({ keyid: '', sig: toBase64(s) })),
    }),
  );
}

describe('parseDsseEnvelope', () => {
  it('reads back what was written, for any payload and signatures', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 80 }), { minLength: 1, maxLength: 3 }),
        (type, payload, sigs) => {
          const e = parseDsseEnvelope(envelope(type, payload, sigs));
          expect(e.payloadType).toBe(type);
          expect(e.payload).toEqual(payload);
          expect(e.signatures).toEqual(sigs);
        },
      ),
    );
  });

  it('reads the shape cosign 2.5 attest writes (empty keyid, in-toto payload type)', () => {
    const statement = utf8('{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"x","subject":[]}');
    const e = parseDsseEnvelope(envelope('application/vnd.in-toto+json', statement, [new Uint8Array([0x30, 1, 2])]));
    expect(e.payloadType).toBe('application/vnd.in-toto+json');
    expect(new TextDecoder().decode(e.payload)).toContain('Statement/v0.1');
  });

  it.each([
    ['not JSON', 'nope', /not strict JSON/],
    ['not an object', '[1]', /not an object/],
    ['no payloadType', '{"payload":"","signatures":[{"sig":"AA=="}]}', /no payloadType/],
    ['payload not base64', '{"payloadType":"t","payload":"!!","signatures":[{"sig":"AA=="}]}', /payload is not base64/],
    ['no signatures', '{"payloadType":"t","payload":"","signatures":[]}', /no signatures/],
    [
      'signature not base64',
      '{"payloadType":"t","payload":"","signatures":[{"sig":"%"}]}',
      /signature 0 is not base64/,
    ],
    [
      'duplicate keys',
      '{"payloadType":"t","payloadType":"u","payload":"","signatures":[{"sig":"AA=="}]}',
      /not strict JSON/,
    ],
  ])('refuses an envelope that is %s', (_why, text, message) => {
    expect(() => parseDsseEnvelope(utf8(text))).toThrow(message);
    try {
      parseDsseEnvelope(utf8(text));
    } catch (e) {
      expect(e).toBeInstanceOf(SignatureError);
      expect((e as SignatureError).code).toBe('SIGNATURE_BUNDLE_INVALID');
    }
  });

  it('never throws anything but a SignatureError on arbitrary bytes or JSON', () => {
    const check = (bytes: Uint8Array): void => {
      try {
        parseDsseEnvelope(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(SignatureError);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: fuzzRuns(100) });
    fc.assert(
      fc.property(fc.json(), (j) => check(utf8(j))),
      { numRuns: fuzzRuns(100) },
    );
  });
});

function item(partial: Partial<TreeItem> & Pick<TreeItem, 'id' | 'source' | 'kind'>): TreeItem {
  return {
    title: partial.kind,
    tag: null,
    manifest: `sha256:${'b'.repeat(64)}`,
    layerIndex: null,
    layer: null,
    mediaType: '',
    artifactType: null,
    explanation: explainMediaType(''),
    annotations: {},
    signedAnnotations: {},
    identity: null,
    names: null,
    predicateType: null,
    signer: null,
    keyless: false,
    verdict: { state: 'not-checked', code: null, reason: '' },
    removable: false,
    ...partial,
  };
}

describe('removal targets', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const tag = `sha256-${'a'.repeat(64)}.sig`;
  const layer = {
    mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
    digest: `sha256:${'c'.repeat(64)}`,
    size: 10,
  };
  const legacy = item({ id: `${tag}#0`, source: 'sig', kind: 'signature', tag, layerIndex: 0, layer, removable: true });
  const bundle = item({ id: 'referrer x', source: 'referrer', kind: 'signature', removable: true });
  const att = item({ id: 'referrer y', source: 'referrer', kind: 'attestation' });
  const node: TreeNode = {
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    role: 'image',
    platform: null,
    sig: { tag, state: 'found', manifest: `sha256:${'d'.repeat(64)}`, items: [legacy] },
    att: { tag: tag.replace('.sig', '.att'), state: 'absent', manifest: null, items: [] },
    sbom: { tag: tag.replace('.sig', '.sbom'), state: 'absent', manifest: null, items: [] },
    referrers: { via: 'tag-schema', fallback: null, items: [bundle, att] },
    errors: [],
    children: [],
  };

  it('a .sig layer and a bundle referrer are removable, each named exactly', () => {
    expect(targetOf(node, legacy)).toMatchObject({ kind: 'legacy', subject: digest, tag, layer });
    expect(targetOf(node, bundle)).toMatchObject({ kind: 'referrer', subject: digest, digest: bundle.manifest });
    expect(describeItem(legacy)).toBe(`legacy signature: layer 0 of ${tag} (payload sha256:cccccccccccc…)`);
    expect(describeItem(bundle)).toBe(`Sigstore bundle signature: referrer ${bundle.manifest}`);
  });

  it('an attestation is not a signature to remove', () => {
    expect(() => targetOf(node, att)).toThrow(expect.objectContaining({ code: 'MANAGE_SIGNATURE_NOT_FOUND' }));
  });

  it('"all signatures" of a node is its .sig layers and bundle signatures, nothing else', () => {
    expect(allSignatureTargets(node).map((t) => t.kind)).toEqual(['legacy', 'referrer']);
  });
});
