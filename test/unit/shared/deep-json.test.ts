/**
 * Regression for what `npm run fuzz` found: JSON from outside nested thousands of levels deep.
 * JSON.parse takes any depth, but what then walks the value (JSON.stringify in an error sentence,
 * String() of an array, Inspect's pretty print) recurses and threw RangeError ("Maximum call stack
 * size exceeded") instead of the reader's typed error, and verifyImage and inspectImage ended in
 * UNEXPECTED. Every reader of outside JSON now refuses more than 64 levels (as the strict reader
 * does) before parsing, with its own code. Node and Chromium.
 */
import { describe, expect, it } from 'vitest';
import { BUNDLE_ANNOTATION, buildSigManifest, sigLayer } from '../../../shared/cosign/manifests.ts';
import { legacySigstoreBundle } from '../../../shared/cosign/legacy-sigstore.ts';
import { parseEncryptedKey } from '../../../shared/crypto/envelope.ts';
import { parsePublicKey } from '../../../shared/crypto/keys.ts';
import { sha256Digest } from '../../../shared/crypto/digest.ts';
import { toBase64, utf8 } from '../../../shared/encoding/base64.ts';
import { jsonDepthWithin, MAX_JSON_DEPTH } from '../../../shared/encoding/json-depth.ts';
import { encodePem } from '../../../shared/encoding/pem.ts';
import { CosignWebError } from '../../../shared/errors.ts';
import { inspectImage } from '../../../shared/ops/inspect.ts';
import { verifyImage } from '../../../shared/ops/verify.ts';
import { RegistryClient } from '../../../shared/registry/client.ts';
import { MT } from '../../../shared/registry/mediatypes.ts';
import { parseSigstoreBundle } from '../../../shared/sigstore/bundle.ts';
import { readRekorBody } from '../../../shared/sigstore/rekor-body.ts';
import { parseTrustedRoot } from '../../../shared/sigstore/trusted-root.ts';
import { parseMetadata } from '../../../shared/tuf/metadata.ts';

const DEPTH = 50_000;
// test/vectors/keys/cosign3-empty.pub
const SPKI = parsePublicKey(`-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9RSU3+/FVt7WOUTxAp257eaVyYrh
R1eu9n6Qamhmg62VUJEXxUN6BVTG1sidC6GiBFCQQWl8sFGWTGm3OkqYXg==
-----END PUBLIC KEY-----`).spki;
const deep = (depth = DEPTH): string => '['.repeat(depth) + ']'.repeat(depth);

/** The code of what `f` throws; fails on anything but a project error. */
function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof CosignWebError) return e.code;
    throw e;
  }
  return 'ok';
}

describe('JSON nested deeper than 64 levels', () => {
  it('jsonDepthWithin counts brackets outside strings, escapes included', () => {
    expect(jsonDepthWithin(deep(MAX_JSON_DEPTH))).toBe(true);
    expect(jsonDepthWithin(deep(MAX_JSON_DEPTH + 1))).toBe(false);
    expect(jsonDepthWithin(`{"a":"${'['.repeat(1000)}"}`)).toBe(true);
    expect(jsonDepthWithin(`{"a\\"${'['.repeat(100)}":1}`)).toBe(true);
    expect(jsonDepthWithin(`{"a":"\\\\"${'['.repeat(100)}}`)).toBe(false);
  });

  it('Sigstore bundles, trusted roots and Rekor bodies: their own code, not RangeError', () => {
    expect(code(() => parseSigstoreBundle(`{"mediaType":${deep()}}`))).toBe('SIGNATURE_BUNDLE_INVALID');
    expect(code(() => parseTrustedRoot(`{"mediaType":${deep()}}`))).toBe('VERIFY_TRUSTED_ROOT_INVALID');
    const entry = {
      logIndex: 1,
      logId: new Uint8Array(32),
      kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
      integratedTime: 1,
      canonicalizedBody: utf8(`{"kind":${deep()}}`),
    };
    expect(code(() => readRekorBody(entry))).toBe('VERIFY_TLOG_ENTRY_INVALID');
  });

  it("TUF metadata, cosign key envelopes and cosign 2's Rekor annotation: their own code", () => {
    expect(code(() => parseMetadata(utf8(`{"signed":{"_type":${deep()}},"signatures":[]}`), 'root', 'root.json'))).toBe(
      'TUF_METADATA_INVALID',
    );
    expect(code(() => parseEncryptedKey(encodePem('ENCRYPTED SIGSTORE PRIVATE KEY', utf8(`{"kdf":${deep()}}`))))).toBe(
      'KEY_ENVELOPE_INVALID',
    );
    const rekor = JSON.stringify({
      SignedEntryTimestamp: 'AAAA',
      Payload: { body: toBase64(utf8(`{"kind":${deep()}}`)), integratedTime: 1, logIndex: 2, logID: 'abcd' },
    });
    expect(code(() => legacySigstoreBundle({ [BUNDLE_ANNOTATION]: rekor }, utf8('{}'), new Uint8Array(64)))).toBe(
      'SIGNATURE_ANNOTATION_INVALID',
    );
  });

  it('a registry serving a deeply nested manifest: verifyImage says REGISTRY_BAD_RESPONSE, Inspect shows the text', async () => {
    const image = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: {}, layers: [] }));
    const sig = buildSigManifest([sigLayer(utf8('{}'), 'MEUCIQ==')]).manifest;
    const nested = utf8(new TextDecoder().decode(sig).replace(`"${MT.cosignSimpleSigning}"`, deep()));
    const fetch = async (input: RequestInfo | URL): Promise<Response> => {
      const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
      const body = path.endsWith('.sig') ? nested : path.endsWith('/v1') ? image : null;
      if (!body) return new Response('{}', { status: 404 });
      return new Response(body as BodyInit, {
        headers: { 'content-type': MT.ociManifest, 'docker-content-digest': sha256Digest(body) },
      });
    };
    const client = new RegistryClient({ fetch, scheme: () => 'http' });
    const v = await verifyImage(client, { image: 'registry.test/app:v1', spki: SPKI });
    expect(JSON.stringify(v)).not.toContain('UNEXPECTED');
    expect(JSON.stringify(v)).toContain('REGISTRY_BAD_RESPONSE');
    // Inspect shows what is served without judging it: the manifest's text, with no pretty print.
    const sigTag = `sha256-${sha256Digest(image).slice(7)}.sig`;
    const inspected = await inspectImage(client, { image: `registry.test/app:${sigTag}` });
    expect(inspected.top.pretty).toBeNull();
    expect(inspected.top.text).toBe(new TextDecoder().decode(nested));
  });
});
