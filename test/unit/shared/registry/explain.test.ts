/**
 * The pure parts of Inspect: media type explanations (every type the project meets is known, any
 * string gets a sentence and never an exception), the digest comparison in words, the platform
 * an index shows by default, and the view of one served object. The registry side is tested
 * against skopeo and crane in test/integration/tree-remove and test/e2e/inspect. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../../shared/encoding/base64.ts';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import type { RawResponse } from '../../../../shared/registry/client.ts';
import { explainMediaType, predicateName } from '../../../../shared/registry/explain.ts';
import { MT } from '../../../../shared/registry/mediatypes.ts';
import { checkDigests, choosePlatform, inspectObject } from '../../../../shared/ops/inspect.ts';

describe('explainMediaType', () => {
  it.each([
    [MT.ociManifest, 'manifest'],
    [MT.ociIndex, 'index'],
    [MT.dockerManifest, 'manifest'],
    [MT.dockerList, 'index'],
    [MT.ociConfig, 'config'],
    [MT.dockerConfig, 'config'],
    [MT.ociEmpty, 'empty'],
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'layer'],
    [MT.cosignSimpleSigning, 'signature'],
    [MT.sigstoreBundle, 'signature'],
    ['application/vnd.dev.sigstore.bundle+json;version=0.3', 'signature'],
    ['application/vnd.dsse.envelope.v1+json', 'attestation'],
    ['application/vnd.in-toto+json', 'attestation'],
    ['application/spdx+json', 'sbom'],
    ['application/vnd.cyclonedx+json', 'sbom'],
  ])('%s is a known %s', (mt, category) => {
    const e = explainMediaType(mt);
    expect(e).toMatchObject({ mediaType: mt, known: true, category });
    expect(e.sentence).toMatch(/^[A-Z].*\.$/);
  });

  it('ignores case and parameters other than a version', () => {
    expect(explainMediaType('Application/VND.OCI.image.manifest.v1+json; charset=utf-8').title).toBe(
      'OCI image manifest',
    );
    expect(explainMediaType('application/vnd.dev.sigstore.bundle+json; version=0.2').title).toBe(
      'Sigstore bundle v0.2',
    );
  });

  it('says what it can about an unknown type, and never throws', () => {
    expect(explainMediaType('application/vnd.acme.thing+json')).toMatchObject({
      known: false,
      title: 'acme artifact',
      category: 'other',
    });
    expect(explainMediaType('')).toMatchObject({ known: false, title: 'No media type' });
    // Found by the property below: names of Object.prototype are not known types.
    expect(explainMediaType('constructor')).toMatchObject({ known: false, category: 'other' });
    expect(explainMediaType('__proto__').sentence).toMatch(/does not know/);
    expect(predicateName('toString')).toBe('toString');
    fc.assert(
      fc.property(fc.string(), (s) => {
        const e = explainMediaType(s);
        expect(e.mediaType).toBe(s);
        expect(e.sentence.length).toBeGreaterThan(10);
      }),
    );
  });

  it('explains a missing or non-string media type (a registry descriptor without one) as no media type', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constant(undefined), fc.constant(null), fc.integer(), fc.object(), fc.array(fc.string())),
        (v) => {
          expect(explainMediaType(v)).toMatchObject({ mediaType: '', known: false, title: 'No media type' });
        },
      ),
    );
  });

  it('names the predicates cosign writes', () => {
    expect(predicateName('https://sigstore.dev/cosign/sign/v1')).toBe('a cosign image signature');
    expect(predicateName('https://example.com/p')).toBe('https://example.com/p');
  });
});

describe('checkDigests', () => {
  const hex = fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`);
  it('is ok exactly when neither the registry nor the expected digest differs', () => {
    fc.assert(
      fc.property(hex, fc.option(hex), fc.option(hex), (computed, registry, expected) => {
        const c = checkDigests(computed, registry, expected);
        const ok = (registry === null || registry === computed) && (expected === null || expected === computed);
        expect(c.ok).toBe(ok);
        expect(c.sentence.startsWith('Digest mismatch')).toBe(!ok);
      }),
    );
  });

  it('names both digests when they differ', () => {
    const a = `sha256:${'a'.repeat(64)}`;
    const b = `sha256:${'b'.repeat(64)}`;
    expect(checkDigests(a, b, null).sentence).toBe(
      `Digest mismatch: the registry says ${b} (Docker-Content-Digest), but the bytes hash to ${a}.`,
    );
    expect(checkDigests(a, null, null).sentence).toContain('the registry sent no digest');
  });
});

describe('choosePlatform', () => {
  const entries = [{ name: 'linux/arm64/v8' }, { name: 'linux/amd64' }];
  it('takes the one asked for, else linux/amd64 (what skopeo picks here), else the first', () => {
    expect(choosePlatform(entries, 'linux/arm64/v8')).toBe('linux/arm64/v8');
    expect(choosePlatform(entries)).toBe('linux/amd64');
    expect(choosePlatform(entries, 'windows/amd64')).toBe('linux/amd64');
    expect(choosePlatform([{ name: 'linux/s390x' }])).toBe('linux/s390x');
    expect(choosePlatform([])).toBeNull();
  });
});

describe('inspectObject', () => {
  function raw(bytes: Uint8Array, mediaType: string, registryDigest: string | null): RawResponse {
    return {
      bytes,
      digest: sha256Digest(bytes),
      status: 200,
      headers: [['content-type', mediaType]],
      mediaType,
      registryDigest,
      contentLength: bytes.length,
    };
  }

  it('keeps the bytes, re-indents JSON only in the pretty view, and takes the media type from the object', () => {
    const bytes = utf8(`{"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":[]}`);
    const o = inspectObject('index', 'r', raw(bytes, 'application/json', sha256Digest(bytes)), null);
    expect(o.text).toBe(new TextDecoder().decode(bytes));
    expect(o.pretty).toBe(JSON.stringify(JSON.parse(o.text!), null, 2));
    expect(o.mediaType).toBe(MT.ociIndex);
    expect(o.explanation.category).toBe('index');
    expect(o.digest.ok).toBe(true);
  });

  it('a config takes the media type its manifest gave; bytes that are not UTF-8 have no text', () => {
    const bytes = new Uint8Array([0xff, 0xfe, 0x00]);
    const o = inspectObject(
      'config',
      'blob',
      raw(bytes, 'application/octet-stream', null),
      sha256Digest(bytes),
      MT.ociConfig,
    );
    expect(o.mediaType).toBe(MT.ociConfig);
    expect(o.text).toBeNull();
    expect(o.pretty).toBeNull();
    expect(o.digest.sentence).toContain('the digest the manifest names');
  });
});
