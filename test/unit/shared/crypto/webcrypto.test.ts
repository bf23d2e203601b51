/**
 * verifyWithCryptoKey (shared/crypto/webcrypto.ts) when the runtime's `crypto.subtle.verify`
 * throws instead of answering false, as WebCrypto implementations do for some inputs they cannot
 * use: the signature does not verify, nothing escapes, and verifyImage (shared/ops/verify.ts), which
 * promises never to throw for a verification failure, gives a result with a reason. Node and
 * Chromium.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import { toBase64, utf8 } from '../../../../shared/encoding/base64.ts';
import { KeyError } from '../../../../shared/errors.ts';
import { importPublicKey, verifyWithCryptoKey } from '../../../../shared/crypto/webcrypto.ts';
import { buildSigManifest, sigLayer, sigTag } from '../../../../shared/cosign/manifests.ts';
import { buildSimpleSigningPayload } from '../../../../shared/cosign/payload.ts';
import { verifyImage } from '../../../../shared/ops/verify.ts';
import { RegistryClient } from '../../../../shared/registry/client.ts';
import { MT } from '../../../../shared/registry/mediatypes.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

async function rsaPair(): Promise<CryptoKeyPair & { spki: Uint8Array }> {
  const pair = await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  return { ...pair, spki: new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey)) };
}

/** Makes `crypto.subtle.verify` reject as a runtime does for an input it refuses to judge. */
function subtleVerifyThrows(): void {
  vi.spyOn(crypto.subtle, 'verify').mockRejectedValue(
    new DOMException('The signature could not be used', 'OperationError'),
  );
}

describe('verifyWithCryptoKey', () => {
  const data = utf8('payload');

  it('a signature subtle.verify throws on does not verify: false, never a crash', async () => {
    const { spki, privateKey } = await rsaPair();
    const { key, algorithm } = await importPublicKey(spki);
    const good = new Uint8Array(await crypto.subtle.sign('RSASSA-PKCS1-v1_5', privateKey, data as BufferSource));
    expect(await verifyWithCryptoKey(key, algorithm, data, good)).toBe(true);
    subtleVerifyThrows();
    await expect(verifyWithCryptoKey(key, algorithm, data, good)).resolves.toBe(false);
    await expect(verifyWithCryptoKey(key, algorithm, data, new Uint8Array(3))).resolves.toBe(false);
  });

  it('RSA signatures of impossible lengths are false', async () => {
    const { spki } = await rsaPair();
    const { key, algorithm } = await importPublicKey(spki);
    for (const n of [0, 1, 255, 257, 4096]) {
      expect(await verifyWithCryptoKey(key, algorithm, data, new Uint8Array(n).fill(0xff))).toBe(false);
    }
  });

  it('a key used for another algorithm is still the caller’s error: KeyError KEY_MISMATCH', async () => {
    const { spki } = await rsaPair();
    const { key } = await importPublicKey(spki);
    const e = await verifyWithCryptoKey(key, { kind: 'ecdsa', curve: 'P-256' }, data, new Uint8Array(64)).catch(
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(KeyError);
    expect((e as KeyError).code).toBe('KEY_MISMATCH');
  });
});

describe('verifyImage when subtle.verify throws', () => {
  it('returns a result whose signature has a reason, instead of throwing', async () => {
    const { spki, privateKey } = await rsaPair();
    const host = 'registry.test';
    const manifest = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, layers: [] }));
    const digest = sha256Digest(manifest);
    const payload = buildSimpleSigningPayload(`${host}/app`, digest);
    const signature = new Uint8Array(
      await crypto.subtle.sign('RSASSA-PKCS1-v1_5', privateKey, payload as BufferSource),
    );
    const sig = buildSigManifest([sigLayer(payload, toBase64(signature))]);
    const manifests = new Map([
      ['v1', manifest],
      [sigTag(digest), sig.manifest],
    ]);
    const blobs = new Map([[sha256Digest(payload), payload]]);
    const fetch = async (input: RequestInfo | URL): Promise<Response> => {
      const path = new URL(String(input)).pathname;
      const m = /^\/v2\/app\/(manifests|blobs)\/(.+)$/.exec(path);
      const bytes = m?.[1] === 'manifests' ? manifests.get(m[2]!) : m ? blobs.get(m[2]!) : undefined;
      if (!bytes) return new Response('{"errors":[{"code":"NOT_FOUND"}]}', { status: 404 });
      return new Response(bytes as Uint8Array<ArrayBuffer>, {
        headers: { 'content-type': m![1] === 'manifests' ? MT.ociManifest : 'application/octet-stream' },
      });
    };
    const client = new RegistryClient({ fetch, scheme: () => 'http' });

    const ok = await verifyImage(client, { image: `${host}/app:v1`, spki });
    expect(ok.verified).toBe(true);

    subtleVerifyThrows();
    const result = await verifyImage(client, { image: `${host}/app:v1`, spki });
    expect(result.verified).toBe(false);
    const judged = result.manifests[0]!.signatures[0]!;
    expect(judged.verified).toBe(false);
    expect(judged.error?.code).toBe('VERIFY_BAD_SIGNATURE');
    expect(result.error?.code).toBe('VERIFY_BAD_SIGNATURE');
  });
});
