/**
 * findSignatureVariant (shared/crypto/variants.ts): cosign 3.1's P-384-over-SHA-384 signature is
 * recognised by name, and a runtime whose `crypto.subtle.verify` throws (as WebCrypto does for
 * some inputs it refuses to judge) makes it answer "no variant", never a crash that would break
 * verifyImage's promise never to throw. Node and Chromium.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { utf8 } from '../../../../shared/encoding/base64.ts';
import { importPublicKey } from '../../../../shared/crypto/webcrypto.ts';
import { findSignatureVariant } from '../../../../shared/crypto/variants.ts';
import { rawToDer } from '../../../../shared/crypto/signature.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('findSignatureVariant', () => {
  it('names a P-384 signature over SHA-384, and answers null when subtle.verify throws', async () => {
    const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify']);
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
    const { key, algorithm } = await importPublicKey(spki);
    const data = utf8('payload');
    const raw = new Uint8Array(
      await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, pair.privateKey, data as BufferSource),
    );
    const der = rawToDer(raw, 48);
    expect(await findSignatureVariant(key, algorithm, spki, data, der)).toBe('ecdsa-sha384');
    vi.spyOn(crypto.subtle, 'verify').mockRejectedValue(new DOMException('refused', 'OperationError'));
    await expect(findSignatureVariant(key, algorithm, spki, data, der)).resolves.toBeNull();
  });
});
