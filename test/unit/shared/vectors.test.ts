/**
 * Our key code against files made by the real cosign 2.5, cosign 3.1 and openssl (see
 * test/vectors/README.md): every cosign key decrypts to the public key cosign printed, every
 * openssl key imports to the public key openssl printed, what cosign refuses we refuse, and
 * cosign's blob signatures verify. Runs in Node and in Chromium.
 */
import { describe, expect, it } from 'vitest';
import index from '../../vectors/index.json';
import { KeyError } from '../../../shared/errors.ts';
import { fromBase64, utf8 } from '../../../shared/encoding/base64.ts';
import { decryptCosignKey, parseEncryptedKey } from '../../../shared/crypto/envelope.ts';
import { parsePlainPrivateKeyPem, parsePublicKey, publicKeyPem } from '../../../shared/crypto/keys.ts';
import type { KeyAlgorithm } from '../../../shared/crypto/pkcs.ts';
import { scrypt } from '../../../shared/crypto/scrypt.ts';
import {
  fingerprint,
  importPrivateKey,
  importPublicKey,
  verifyWithCryptoKey,
} from '../../../shared/crypto/webcrypto.ts';

const files = import.meta.glob<string>(['../../vectors/keys/*.{key,pub,pem}', '../../vectors/signatures/*'], {
  query: '?raw',
  import: 'default',
  eager: true,
});
function read(file: string): string {
  const text = files[`../../vectors/${file}`];
  if (text === undefined) throw new Error(`vector ${file} is not loaded`);
  return text;
}

interface Vector {
  file: string;
  kind: string;
  password?: string;
  algorithm?: string;
  curve?: string;
  bits?: number;
  spkiSha256?: string;
  publicKey?: string;
  signs?: string;
  accepts?: Record<string, { accepted: boolean; command?: string; message?: string }>;
}
const vectors = (index as { vectors: Vector[] }).vectors;
const derive = (pw: Uint8Array, salt: Uint8Array, p: { N: number; r: number; p: number }) =>
  scrypt(pw, salt, p, { impl: 'wasm' });

function expectedAlgorithm(v: Vector): KeyAlgorithm {
  if (v.algorithm === 'ecdsa') return { kind: 'ecdsa', curve: v.curve as 'P-256' };
  if (v.algorithm === 'rsa') return { kind: 'rsa', bits: Number(/rsa-(\d+)/.exec(v.file)?.[1] ?? v.bits) };
  return { kind: 'ed25519' };
}
const cosignAccepts = (v: Vector): boolean =>
  Object.entries(v.accepts ?? {}).some(([k, a]) => k.startsWith('cosign') && a.accepted);

describe('cosign private keys made by the real cosign', () => {
  const keys = vectors.filter((v) => v.kind === 'cosign-private-key');
  it('there are vectors from both cosign versions and the older format', () => {
    expect(keys.some((v) => v.file.includes('cosign2-'))).toBe(true);
    expect(keys.some((v) => v.file.includes('cosign3-'))).toBe(true);
    expect(keys.some((v) => read(v.file).includes('ENCRYPTED COSIGN PRIVATE KEY'))).toBe(true);
  });
  for (const v of keys) {
    it(`${v.file} ${cosignAccepts(v) ? 'decrypts to the key cosign printed' : 'is refused as cosign refuses it'}`, async () => {
      const pem = read(v.file);
      const enc = parseEncryptedKey(pem);
      expect([32768, 65536]).toContain(enc.scrypt.N);
      if (!cosignAccepts(v)) {
        await expect(decryptCosignKey(pem, v.password ?? '', derive)).rejects.toMatchObject({ code: 'KEY_NOT_PKCS8' });
        return;
      }
      const info = await decryptCosignKey(pem, v.password ?? '', derive);
      expect(fingerprint(info.spki).hex).toBe(v.spkiSha256);
      expect(info.algorithm).toEqual(expectedAlgorithm(v));
      if (v.publicKey) expect(publicKeyPem(info.spki)).toBe(read(v.publicKey));
      await importPrivateKey(info);
      if (v.password) {
        await expect(decryptCosignKey(pem, v.password + 'x', derive)).rejects.toMatchObject({
          code: 'KEY_PASSWORD_WRONG',
        });
      }
    });
  }
});

describe('plain private keys made by openssl, as cosign import-key-pair reads them', () => {
  for (const v of vectors.filter((x) => x.kind === 'openssl-private-key' && x.file.endsWith('.pem'))) {
    const accepted = v.accepts?.cosign3?.accepted ?? true;
    it(`${v.file}: ${accepted ? 'imports' : 'refused as cosign 3.1 refuses it'}`, async () => {
      const pem = read(v.file);
      if (!accepted) {
        expect(() => parsePlainPrivateKeyPem(pem)).toThrow(KeyError);
        expect(() => parsePlainPrivateKeyPem(pem)).toThrow(expect.objectContaining({ code: 'KEY_RSA_TOO_SMALL' }));
        return;
      }
      const info = parsePlainPrivateKeyPem(pem);
      expect(fingerprint(info.spki).hex).toBe(v.spkiSha256);
      expect(info.algorithm).toEqual(expectedAlgorithm(v));
      await importPrivateKey(info);
    });
  }
});

describe('public keys written by cosign', () => {
  for (const v of vectors.filter((x) => x.kind === 'public-key')) {
    it(`${v.file} parses to its fingerprint and re-encodes byte for byte`, () => {
      const text = read(v.file);
      const pub = parsePublicKey(text);
      expect(fingerprint(pub.spki).hex).toBe(v.spkiSha256);
      expect(publicKeyPem(pub.spki)).toBe(text);
    });
  }
});

describe('blob signatures made by cosign sign-blob', () => {
  for (const v of vectors.filter((x) => x.kind === 'blob-signature')) {
    it(`${v.file} verifies over SHA-256 with our verifier, and not over other bytes`, async () => {
      const sig = fromBase64(read(v.file).trim());
      expect(sig).not.toBeNull();
      const pub = await importPublicKey(parsePublicKey(read(v.publicKey!)).spki);
      const blob = utf8(read(v.signs!));
      expect(await verifyWithCryptoKey(pub.key, pub.algorithm, blob, sig!)).toBe(true);
      expect(await verifyWithCryptoKey(pub.key, pub.algorithm, utf8(read(v.signs!) + ' '), sig!)).toBe(false);
    });
  }
});
