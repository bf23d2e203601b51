/**
 * The external-signer building blocks (shared/ops/external.ts): the list of bytes to sign, the
 * openssl command lines shown with them, reading a signature handed back (property-tested), the
 * check against the public key, and the signer that only hands out prepared signatures. That the
 * list is exactly what signImage signs, and that the commands work with the real openssl, is
 * proven against a real registry in test/integration/external-openssl.test.ts. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toBase64, toHex } from '../../../../shared/encoding/base64.ts';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import type { KeyAlgorithm } from '../../../../shared/crypto/pkcs.ts';
import { exportSpki, generateEcdsaKeyPair, signWithCryptoKey } from '../../../../shared/crypto/webcrypto.ts';
import { SignatureError } from '../../../../shared/errors.ts';
import { MT } from '../../../../shared/registry/mediatypes.ts';
import { buildSimpleSigningPayload } from '../../../../shared/cosign/payload.ts';
import { IN_TOTO_PAYLOAD_TYPE, buildSignStatement, pae } from '../../../../shared/cosign/dsse.ts';
import type { SignPlan, SigningInput } from '../../../../shared/ops/sign.ts';
import { prepareKey, type PreparedKey } from '../../../../shared/cosign/verify-signature.ts';
import {
  checkExternalSignature,
  listBytesToSign,
  missingSignatures,
  opensslCommands,
  parseSignatureLines,
  preparedSigner,
  signatureCandidates,
  signingScript,
  type BytesToSign,
} from '../../../../shared/ops/external.ts';

const repo = { registry: 'registry.test:5000', repository: 'team/app' };
const digestOf = (s: string): string => sha256Digest(new TextEncoder().encode(s));
const IMAGE = digestOf('image');
const INDEX = digestOf('index');
const AMD64 = digestOf('amd64');
const ARM64 = digestOf('arm64');

const imagePlan: SignPlan = { repo, root: { mediaType: MT.ociManifest, digest: IMAGE, size: 500 }, targets: [] };
imagePlan.targets.push({ descriptor: imagePlan.root });
const indexPlan: SignPlan = {
  repo,
  root: { mediaType: MT.ociIndex, digest: INDEX, size: 700 },
  targets: [
    { descriptor: { mediaType: MT.ociIndex, digest: INDEX, size: 700 } },
    {
      descriptor: { mediaType: MT.ociManifest, digest: AMD64, size: 400 },
      platform: { os: 'linux', architecture: 'amd64' },
    },
    {
      descriptor: { mediaType: MT.ociManifest, digest: ARM64, size: 400 },
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    },
  ],
};
const input = (plan: SignPlan, more: Partial<SigningInput> = {}): SigningInput => ({
  plan,
  dockerReference: 'registry.test:5000/team/app:v1',
  formats: { legacy: true, bundle: true },
  ...more,
});

describe('listBytesToSign', () => {
  it('a single image: the legacy payload, then the DSSE PAE of the statement, with their SHA-256 and file names', () => {
    const items = listBytesToSign(input(imagePlan, { annotations: { team: 'x', a: 'b' } }));
    expect(items).toHaveLength(2);
    const [legacy, bundle] = items as [BytesToSign, BytesToSign];
    const payload = buildSimpleSigningPayload('registry.test:5000/team/app:v1', IMAGE, { a: 'b', team: 'x' });
    expect(legacy.bytes).toEqual(payload);
    expect(legacy.description).toBe(`legacy signature payload for ${IMAGE}`);
    expect(legacy.role).toBe('image');
    expect(legacy.sha256Hex).toBe(sha256Digest(payload).slice(7));
    expect(toHex(legacy.sha256)).toBe(legacy.sha256Hex);
    const statement = buildSignStatement(IMAGE, { a: 'b', team: 'x' });
    expect(bundle.bytes).toEqual(pae(IN_TOTO_PAYLOAD_TYPE, statement));
    expect(new TextDecoder().decode(bundle.bytes)).toMatch(/^DSSEv1 28 application\/vnd\.in-toto\+json \d+ \{/);
    expect(bundle.description).toBe(`DSSE PAE for the bundle of ${IMAGE}`);
    expect(items.map((i) => i.files)).toEqual([
      {
        bytes: `01-legacy-${IMAGE.slice(7, 19)}.bin`,
        sha256: `01-legacy-${IMAGE.slice(7, 19)}.sha256`,
        signature: `01-legacy-${IMAGE.slice(7, 19)}.sig`,
      },
      {
        bytes: `02-bundle-${IMAGE.slice(7, 19)}.bin`,
        sha256: `02-bundle-${IMAGE.slice(7, 19)}.sha256`,
        signature: `02-bundle-${IMAGE.slice(7, 19)}.sig`,
      },
    ]);
  });

  it('an index: the index and every platform manifest, in signImage’s order, each named by its platform', () => {
    const items = listBytesToSign(input(indexPlan));
    expect(items.map((i) => [i.n, i.format, i.digest, i.role])).toEqual([
      [1, 'legacy', INDEX, 'index'],
      [2, 'bundle', INDEX, 'index'],
      [3, 'legacy', AMD64, 'platform'],
      [4, 'bundle', AMD64, 'platform'],
      [5, 'legacy', ARM64, 'platform'],
      [6, 'bundle', ARM64, 'platform'],
    ]);
    expect(items[0]!.description).toBe(`legacy signature payload for ${INDEX} (the index)`);
    expect(items[2]!.description).toBe(`legacy signature payload for ${AMD64} (linux/amd64)`);
    expect(items[5]!.description).toBe(`DSSE PAE for the bundle of ${ARM64} (linux/arm64/v8)`);
    expect(new Set(items.map((i) => i.files.bytes)).size).toBe(6);
  });

  it('formats and recursion decide what is listed', () => {
    expect(
      listBytesToSign(input(indexPlan, { formats: { legacy: true, bundle: false } })).map((i) => i.format),
    ).toEqual(['legacy', 'legacy', 'legacy']);
    expect(listBytesToSign(input(indexPlan, { recursive: false })).map((i) => i.digest)).toEqual([INDEX, INDEX]);
  });

  it('a manifest the index names twice is listed once', () => {
    const twice: SignPlan = { ...indexPlan, targets: [...indexPlan.targets, indexPlan.targets[1]!] };
    expect(listBytesToSign(input(twice))).toHaveLength(6);
  });

  it('refuses what signImage refuses, with the same codes', () => {
    const codeOf = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return e instanceof SignatureError ? e.code : 'other';
      }
      return 'none';
    };
    expect(codeOf(() => listBytesToSign(input(imagePlan, { formats: { legacy: false, bundle: false } })))).toBe(
      'SIGNATURE_NOTHING_TO_WRITE',
    );
    expect(codeOf(() => listBytesToSign(input(imagePlan, { annotations: { '': 'x' } })))).toBe(
      'SIGNATURE_ANNOTATION_INVALID',
    );
  });
});

describe('opensslCommands', () => {
  const files = { bytes: '01-legacy-abc.bin', sha256: '01-legacy-abc.sha256', signature: '01-legacy-abc.sig' };
  it('ECDSA and RSA: dgst -sha256 -sign, or pkeyutl over the SHA-256 digest', () => {
    for (const a of [
      { kind: 'ecdsa', curve: 'P-384' },
      { kind: 'rsa', bits: 2048 },
    ] as KeyAlgorithm[]) {
      expect(opensslCommands(a, files)).toEqual({
        sign: 'openssl dgst -sha256 -sign key.pem -out 01-legacy-abc.sig 01-legacy-abc.bin',
        digest: 'openssl dgst -sha256 -binary -out 01-legacy-abc.sha256 01-legacy-abc.bin',
        signDigest:
          'openssl pkeyutl -sign -inkey key.pem -pkeyopt digest:sha256 -in 01-legacy-abc.sha256 -out 01-legacy-abc.sig',
        base64: 'base64 -w0 01-legacy-abc.sig',
      });
    }
  });
  it('Ed25519: pure Ed25519 over the bytes, no digest form', () => {
    expect(opensslCommands({ kind: 'ed25519' }, files)).toEqual({
      sign: 'openssl pkeyutl -sign -inkey key.pem -rawin -in 01-legacy-abc.bin -out 01-legacy-abc.sig',
      digest: null,
      signDigest: null,
      base64: 'base64 -w0 01-legacy-abc.sig',
    });
  });
});

describe('registry data never escapes into the shell lines', () => {
  it('a platform name with a newline and a command stays inside its comment line in sign-all.sh', () => {
    const hostile: SignPlan = {
      ...indexPlan,
      targets: [
        indexPlan.targets[0]!,
        {
          descriptor: { mediaType: MT.ociManifest, digest: AMD64, size: 400 },
          platform: { os: 'linux\ntouch /tmp/pwned #', architecture: 'amd64$(id)' },
        },
      ],
    };
    const items = listBytesToSign(input(hostile));
    const script = signingScript(items, { kind: 'ecdsa', curve: 'P-256' }, 'title');
    expect(script).not.toMatch(/^touch /m);
    const line = script.split('\n').find((l) => l.includes('touch /tmp/pwned'))!;
    expect(line.startsWith('# ')).toBe(true);
  });
  it('a target whose digest is not sha256:<64 hex> is refused before any file name or command is made', () => {
    const hostile: SignPlan = {
      ...imagePlan,
      targets: [{ descriptor: { mediaType: MT.ociManifest, digest: 'sha256:$(id>&2)', size: 400 } }],
    };
    expect(() => listBytesToSign(input(hostile))).toThrow(
      expect.objectContaining({ code: 'SIGNATURE_IMAGE_UNSUPPORTED' }),
    );
  });
});

describe('signingScript and parseSignatureLines', () => {
  it('the script embeds every item, checks its SHA-256, and runs the shown openssl line with the key given', () => {
    const items = listBytesToSign(input(indexPlan));
    const script = signingScript(items, { kind: 'ecdsa', curve: 'P-256' }, 'registry.test:5000/team/app:v1\nrm -rf /');
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    // A title cannot break out of its comment line.
    expect(script).toContain(
      '# cosign-web: sign the 6 byte strings prepared for registry.test:5000/team/app:v1?rm -rf /\n',
    );
    for (const i of items) {
      expect(script).toContain(`base64 -d > ${i.files.bytes} <<'EOF'\n${toBase64(i.bytes).slice(0, 76)}\n`);
      expect(script).toContain(i.sha256Hex);
      expect(script).toContain(`${opensslCommands({ kind: 'ecdsa', curve: 'P-256' }, i.files, '"$key"').sign} >&2`);
      expect(script).toContain(`printf '%s %s\\n' ${i.n} "$(base64 -w0 ${i.files.signature})"`);
    }
  });

  it('reads "<n> <base64>" lines back, whatever the spacing, blank lines and comments', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 9999 }), { minLength: 1, maxLength: 30 }),
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.constantFrom(' ', '  ', '\t'),
        (ns, bytes, gap) => {
          const text = ns.map((n) => `${n}${gap}${toBase64(bytes)}`).join('\n\n# note\r\n');
          expect(parseSignatureLines(text)).toEqual(ns.map((n) => ({ n, base64: toBase64(bytes) })));
        },
      ),
    );
  });

  it('refuses anything else with PKCS11_EXTERNAL_SIGNATURE_INVALID, naming the line', () => {
    const refusal = (text: string): string => {
      try {
        parseSignatureLines(text);
      } catch (e) {
        return e instanceof SignatureError ? `${e.code}: ${e.message}` : 'other';
      }
      return 'none';
    };
    expect(refusal('')).toMatch(/^PKCS11_EXTERNAL_SIGNATURE_INVALID: Paste the lines/);
    expect(refusal('1 AAAA\n2 not base64!')).toMatch(/^PKCS11_EXTERNAL_SIGNATURE_INVALID: Line 2 is not/);
    expect(refusal('AAAA')).toMatch(/Line 1 is not/);
    expect(refusal('1 AAAA\n1 BBBB')).toMatch(/Line 2 gives signature 1 a second time/);
  });
});

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    return e instanceof SignatureError ? `${e.code}: ${e.message}` : `other: ${String(e)}`;
  }
  return 'none';
};

describe('signatureCandidates', () => {
  it('pasted base64, with any line breaks, gives the bytes back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.integer({ min: 1, max: 80 }), (bytes, width) => {
        const b64 = toBase64(bytes);
        const wrapped = b64.replace(new RegExp(`(.{${width}})`, 'g'), '$1\n');
        expect(signatureCandidates({ kind: 'text', text: `  ${wrapped}\n` })).toEqual([bytes]);
      }),
    );
  });
  it('a file: base64 text is decoded first, raw bytes are tried as they are', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), (bytes) => {
        const asText = new TextEncoder().encode(toBase64(bytes) + '\n');
        expect(signatureCandidates({ kind: 'file', name: 'x.b64', bytes: asText })).toEqual([bytes, asText]);
        const raw = signatureCandidates({ kind: 'file', name: 'x.sig', bytes });
        expect(raw.at(-1)).toEqual(bytes);
      }),
    );
  });
  it('anything else that is not base64 is refused with PKCS11_EXTERNAL_SIGNATURE_INVALID', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 200 }).filter((s) => /[^A-Za-z0-9+/=\s]/.test(s)),
        (text) => {
          expect(() => signatureCandidates({ kind: 'text', text })).toThrow(SignatureError);
        },
      ),
    );
    for (const text of ['', '   ', 'abc', 'not base64!', 'MEUCIQ==x', '=AAA']) {
      let code = 'none';
      try {
        signatureCandidates({ kind: 'text', text });
      } catch (e) {
        code = (e as SignatureError).code;
      }
      expect(code, text).toBe('PKCS11_EXTERNAL_SIGNATURE_INVALID');
    }
    expect(() => signatureCandidates({ kind: 'file', name: 'e', bytes: new Uint8Array() })).toThrow(/is empty/);
    expect(() => signatureCandidates({ kind: 'file', name: 'big', bytes: new Uint8Array(70_000) })).toThrow(
      /far too large/,
    );
  });
});

interface Made {
  key: PreparedKey;
  sign(d: Uint8Array): Promise<Uint8Array>;
}
async function ecdsa(): Promise<Made> {
  const pair = await generateEcdsaKeyPair('P-256', false);
  const algorithm = { kind: 'ecdsa', curve: 'P-256' } as const;
  return {
    key: await prepareKey(await exportSpki(pair.publicKey)),
    sign: (d) => signWithCryptoKey(pair.privateKey, algorithm, d),
  };
}
async function rsa(): Promise<Made> {
  const pair = (await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    false,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
  return {
    key: await prepareKey(await exportSpki(pair.publicKey)),
    sign: (d) => signWithCryptoKey(pair.privateKey, { kind: 'rsa', bits: 2048 }, d),
  };
}
async function ed25519(): Promise<Made> {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  return {
    key: await prepareKey(await exportSpki(pair.publicKey)),
    sign: (d) => signWithCryptoKey(pair.privateKey, { kind: 'ed25519' }, d),
  };
}

describe('checkExternalSignature', () => {
  for (const [name, make] of [
    ['ECDSA P-256', ecdsa],
    ['RSA 2048', rsa],
    ['Ed25519', ed25519],
  ] as const) {
    it(`${name}: the right signature passes as base64 or as a file; others are refused with the reason`, async () => {
      const me = await make();
      const other = await make();
      const [legacy, bundle] = listBytesToSign(input(imagePlan)) as [BytesToSign, BytesToSign];
      const sig = await me.sign(legacy.bytes);
      expect(await checkExternalSignature(me.key, legacy, { kind: 'text', text: toBase64(sig) })).toEqual(sig);
      expect(await checkExternalSignature(me.key, legacy, { kind: 'file', name: 'a.sig', bytes: sig })).toEqual(sig);
      const b64File = new TextEncoder().encode(toBase64(sig) + '\n');
      expect(await checkExternalSignature(me.key, legacy, { kind: 'file', name: 'a.b64', bytes: b64File })).toEqual(
        sig,
      );

      // Signed with the right key but over the other item's bytes.
      expect(await codeOf(checkExternalSignature(me.key, bundle, { kind: 'text', text: toBase64(sig) }))).toMatch(
        /^PKCS11_EXTERNAL_SIGNATURE_INVALID: The signature for item 2 does not verify with this key/,
      );
      // Another key.
      const theirs = await other.sign(legacy.bytes);
      expect(await codeOf(checkExternalSignature(me.key, legacy, { kind: 'text', text: toBase64(theirs) }))).toMatch(
        /^PKCS11_EXTERNAL_SIGNATURE_INVALID: .*does not verify with this key over these exact bytes: another key made it/,
      );
      // One bit flipped in the last byte (in the middle of s / the RSA block / S of Ed25519).
      const flipped = sig.slice();
      flipped[flipped.length - 1]! ^= 1;
      expect(await codeOf(checkExternalSignature(me.key, legacy, { kind: 'file', name: 'f', bytes: flipped }))).toMatch(
        /^PKCS11_EXTERNAL_SIGNATURE_INVALID: .*(does not verify|malformed)/,
      );
      // The wrong length for the key.
      expect(
        await codeOf(checkExternalSignature(me.key, legacy, { kind: 'text', text: toBase64(sig.subarray(0, 20)) })),
      ).toMatch(/^PKCS11_EXTERNAL_SIGNATURE_INVALID: The signature for item 1 is malformed/);
      // Not base64.
      expect(await codeOf(checkExternalSignature(me.key, legacy, { kind: 'text', text: 'garbage!!' }))).toMatch(
        /^PKCS11_EXTERNAL_SIGNATURE_INVALID: This is not base64/,
      );
    });
  }
});

describe('preparedSigner and missingSignatures', () => {
  it('hands out each prepared signature for exactly its bytes and refuses anything else', async () => {
    const me = await ecdsa();
    const items = listBytesToSign(input(indexPlan));
    const prepared = await Promise.all(
      items.map(async (i) => ({ bytes: i.bytes.slice(), signature: await me.sign(i.bytes) })),
    );
    const signer = preparedSigner(me.key.algorithm, me.key.spki, prepared);
    expect(signer.spki).toEqual(me.key.spki);
    for (const [n, i] of items.entries()) expect(await signer.sign(i.bytes)).toEqual(prepared[n]!.signature);
    const changed = items[0]!.bytes.slice();
    changed[changed.length - 2]! ^= 1;
    expect(await codeOf(signer.sign(changed))).toMatch(
      /^PKCS11_EXTERNAL_SIGNATURE_INVALID: No signature was prepared for these \d+ bytes \(SHA-256 [0-9a-f]{64}\)/,
    );
    expect(await codeOf(signer.sign(new Uint8Array()))).toMatch(/^PKCS11_EXTERNAL_SIGNATURE_INVALID/);
    // The signer keeps its own copies: changing the caller's arrays afterwards changes nothing.
    const before = prepared[0]!.signature.slice();
    prepared[0]!.signature.fill(0);
    prepared[1]!.bytes.fill(0);
    expect(await signer.sign(items[0]!.bytes)).toEqual(before);
    expect(await signer.sign(items[1]!.bytes)).toBeInstanceOf(Uint8Array);
  });

  it('says which items lack a signature when the options changed since preparing', async () => {
    const me = await ecdsa();
    const o = input(indexPlan);
    const prepared = await Promise.all(
      listBytesToSign(o).map(async (i) => ({ bytes: i.bytes, signature: await me.sign(i.bytes) })),
    );
    expect(missingSignatures(o, prepared)).toEqual([]);
    expect(missingSignatures({ ...o, formats: { legacy: true, bundle: false } }, prepared)).toEqual([]);
    expect(missingSignatures({ ...o, annotations: { k: 'v' } }, prepared)).toHaveLength(6);
    expect(missingSignatures({ ...o, dockerReference: 'registry.test:5000/team/app' }, prepared)).toHaveLength(3);
    expect(missingSignatures(o, prepared.slice(1)).map((i) => i.n)).toEqual([1]);
  });
});
