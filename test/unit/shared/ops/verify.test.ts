/**
 * verifyImage (shared/ops/verify.ts) on synthetic images in an in-memory registry that speaks
 * just enough of the distribution API (manifests, blobs, optionally the referrers API): every
 * reason a signature fails, both formats, indexes with the per-platform rule, the result's shape,
 * progress and the policy snippets. Signatures are made here with WebCrypto and noble, including
 * the variants cosign 3.1 writes and no tool accepts. Node and Chromium.
 */
import { ed25519, ed25519ph } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64, utf8 } from '../../../../shared/encoding/base64.ts';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import { rawToDer } from '../../../../shared/crypto/signature.ts';
import {
  exportSpki,
  fingerprint,
  generateEcdsaKeyPair,
  signWithCryptoKey,
} from '../../../../shared/crypto/webcrypto.ts';
import { RegistryClient } from '../../../../shared/registry/client.ts';
import { MT, type Descriptor } from '../../../../shared/registry/mediatypes.ts';
import { buildSimpleSigningPayload } from '../../../../shared/cosign/payload.ts';
import {
  COSIGN_SIGN_PREDICATE,
  IN_TOTO_PAYLOAD_TYPE,
  buildSignStatement,
  pae,
} from '../../../../shared/cosign/dsse.ts';
import { BUNDLE_V03, buildDsseBundle } from '../../../../shared/cosign/bundle.ts';
import {
  CERTIFICATE_ANNOTATION,
  EMPTY_CONFIG,
  SIGNATURE_ANNOTATION,
  buildBundleReferrer,
  buildReferrersIndex,
  buildSigManifest,
  referrersTag,
  sigLayer,
  sigTag,
} from '../../../../shared/cosign/manifests.ts';
import { goJson } from '../../../../shared/cosign/strict-json.ts';
import { verifyImage, type VerificationResult, type VerifyOptions } from '../../../../shared/ops/verify.ts';
import { policySnippets, shellQuote } from '../../../../shared/ops/verify-snippets.ts';

// ---------------------------------------------------------------------------------------------
// An in-memory registry
// ---------------------------------------------------------------------------------------------
const HOST = 'registry.test:5000';

class FakeRegistry {
  readonly blobs = new Map<string, Uint8Array>();
  readonly manifests = new Map<string, { bytes: Uint8Array; mediaType: string }>();
  readonly tags = new Map<string, string>();
  /** Bytes served instead of a blob's real ones (a registry or proxy that lies). */
  readonly tampered = new Map<string, Uint8Array>();
  referrersApi = false;
  requests = 0;

  blob(bytes: Uint8Array): Descriptor {
    const digest = sha256Digest(bytes);
    this.blobs.set(digest, bytes);
    return { mediaType: 'application/octet-stream', digest, size: bytes.length };
  }

  manifest(repo: string, bytes: Uint8Array, mediaType: string, tag?: string): Descriptor {
    const digest = sha256Digest(bytes);
    this.manifests.set(`${repo}@${digest}`, { bytes, mediaType });
    if (tag) this.tags.set(`${repo}:${tag}`, digest);
    return { mediaType, digest, size: bytes.length };
  }

  json(repo: string, value: unknown, mediaType: string, tag?: string): Descriptor {
    return this.manifest(repo, utf8(goJson(value)), mediaType, tag);
  }

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    this.requests++;
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const head = (init?.method ?? 'GET') === 'HEAD';
    const notFound = (): Response =>
      new Response(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'not found' }] }), { status: 404 });
    let m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const [, repo, ref] = m as unknown as [string, string, string];
      const digest = ref.startsWith('sha256:') ? ref : this.tags.get(`${repo}:${ref}`);
      const found = digest && this.manifests.get(`${repo}@${digest}`);
      if (!found) return notFound();
      return new Response(head ? null : (found.bytes as BodyInit), {
        headers: {
          'content-type': found.mediaType,
          'docker-content-digest': digest,
          'content-length': String(found.bytes.length),
        },
      });
    }
    m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const digest = m[2]!;
      const bytes = this.tampered.get(digest) ?? this.blobs.get(digest);
      if (!bytes) return notFound();
      return new Response(head ? null : (bytes as BodyInit), { headers: { 'content-length': String(bytes.length) } });
    }
    m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(url.pathname);
    if (m) {
      if (!this.referrersApi) return notFound();
      const [, repo, subject] = m as unknown as [string, string, string];
      const manifests: Descriptor[] = [];
      for (const [k, v] of this.manifests) {
        if (!k.startsWith(`${repo}@`)) continue;
        const json = JSON.parse(new TextDecoder().decode(v.bytes)) as { subject?: Descriptor; artifactType?: string };
        if (json.subject?.digest === subject)
          manifests.push({
            mediaType: v.mediaType,
            digest: k.slice(repo.length + 1),
            size: v.bytes.length,
            ...(json.artifactType ? { artifactType: json.artifactType } : {}),
          });
      }
      return new Response(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }), {
        headers: { 'content-type': MT.ociIndex },
      });
    }
    return notFound();
  };

  client(): RegistryClient {
    return new RegistryClient({ fetch: this.fetch, scheme: () => 'http' });
  }
}

// ---------------------------------------------------------------------------------------------
// Keys and images
// ---------------------------------------------------------------------------------------------
interface TestKey {
  spki: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

async function ecdsaKey(curve: 'P-256' | 'P-384' = 'P-256', hash = 'SHA-256'): Promise<TestKey> {
  const pair = await generateEcdsaKeyPair(curve, false);
  const size = curve === 'P-256' ? 32 : 48;
  return {
    spki: await exportSpki(pair.publicKey),
    sign: async (data) =>
      hash === 'SHA-256'
        ? signWithCryptoKey(pair.privateKey, { kind: 'ecdsa', curve }, data)
        : rawToDer(
            new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash }, pair.privateKey, data as BufferSource)),
            size,
          ),
  };
}

function ed25519Key(prehash: boolean): TestKey {
  const { secretKey, publicKey } = ed25519.keygen();
  const prefix = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
  const spki = new Uint8Array(44);
  spki.set(prefix);
  spki.set(publicKey, 12);
  return { spki, sign: async (data) => (prehash ? ed25519ph : ed25519).sign(data, secretKey) };
}

async function rsaKey(): Promise<TestKey> {
  const pair = await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  return {
    spki: new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey)),
    sign: async (data) =>
      new Uint8Array(await crypto.subtle.sign('RSASSA-PKCS1-v1_5', pair.privateKey, data as BufferSource)),
  };
}

interface Image {
  repo: string;
  digest: string;
  descriptor: Descriptor;
  platforms: Descriptor[];
  ref: string;
  tagRef: string;
}

let counter = 0;
function pushImage(reg: FakeRegistry, repo: string, opts: { index?: boolean; tag?: string } = {}): Image {
  const tag = opts.tag ?? 'v1';
  const one = (arch: string): Descriptor => {
    const config = reg.blob(utf8(JSON.stringify({ architecture: arch, os: 'linux', n: counter++ })));
    return reg.json(
      repo,
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        config: { ...config, mediaType: MT.ociConfig },
        layers: [],
      },
      MT.ociManifest,
    );
  };
  let descriptor: Descriptor;
  const platforms: Descriptor[] = [];
  if (opts.index) {
    for (const arch of ['amd64', 'arm64'])
      platforms.push({ ...one(arch), platform: { os: 'linux', architecture: arch } });
    descriptor = reg.json(repo, { schemaVersion: 2, mediaType: MT.ociIndex, manifests: platforms }, MT.ociIndex, tag);
  } else {
    descriptor = one('amd64');
    reg.tags.set(`${repo}:${tag}`, descriptor.digest);
  }
  return {
    repo,
    digest: descriptor.digest,
    descriptor,
    platforms,
    ref: `${HOST}/${repo}@${descriptor.digest}`,
    tagRef: `${HOST}/${repo}:${tag}`,
  };
}

interface LegacyLayer {
  payload: Uint8Array;
  signature: Uint8Array | string;
  annotations?: Record<string, string>;
  mediaType?: string;
}

/** Writes the `.sig` manifest of `digest` holding these layers. */
function putSig(reg: FakeRegistry, repo: string, digest: string, layers: LegacyLayer[]): void {
  const descs = layers.map((l) => {
    reg.blob(l.payload);
    const sig = typeof l.signature === 'string' ? l.signature : toBase64(l.signature);
    const d = sigLayer(l.payload, sig);
    d.annotations = { ...d.annotations, ...l.annotations };
    if (l.mediaType) d.mediaType = l.mediaType;
    return d;
  });
  const { manifest, config } = buildSigManifest(descs);
  reg.blob(config);
  reg.manifest(repo, manifest, MT.ociManifest, sigTag(digest));
}

async function legacy(key: TestKey, ref: string, digest: string, annotations: Record<string, string> = {}) {
  const payload = buildSimpleSigningPayload(ref, digest, annotations);
  return { payload, signature: await key.sign(payload) };
}

/** Pushes a bundle referrer of `subject`, listed in the fallback index (or found by the API). */
function putReferrer(
  reg: FakeRegistry,
  repo: string,
  subject: Descriptor,
  bundle: Uint8Array,
  predicateType = COSIGN_SIGN_PREDICATE,
  layerMediaType: string = MT.sigstoreBundle,
): Descriptor {
  reg.blob(EMPTY_CONFIG);
  const b = reg.blob(bundle);
  let manifest = buildBundleReferrer(
    subject,
    { ...b, mediaType: MT.sigstoreBundle },
    predicateType,
    '2026-01-01T00:00:00Z',
  );
  if (layerMediaType !== MT.sigstoreBundle)
    manifest = utf8(new TextDecoder().decode(manifest).replaceAll(MT.sigstoreBundle, layerMediaType));
  const d = reg.manifest(repo, manifest, MT.ociManifest);
  if (!reg.referrersApi) {
    const tag = referrersTag(subject.digest);
    const existing = reg.tags.get(`${repo}:${tag}`);
    const prior = existing
      ? (
          JSON.parse(new TextDecoder().decode(reg.manifests.get(`${repo}@${existing}`)!.bytes)) as {
            manifests: Descriptor[];
          }
        ).manifests
      : [];
    // cosign 3.1 writes the empty type here: the verifier must not filter on it.
    reg.manifest(repo, buildReferrersIndex([...prior, { ...d, artifactType: MT.ociEmpty }]), MT.ociIndex, tag);
  }
  return d;
}

async function bundleFor(
  key: TestKey,
  digest: string,
  opts: { annotations?: Record<string, string>; predicateType?: string; statement?: Uint8Array } = {},
): Promise<Uint8Array> {
  let statement = opts.statement ?? buildSignStatement(digest, opts.annotations);
  if (opts.predicateType)
    statement = utf8(new TextDecoder().decode(statement).replace(COSIGN_SIGN_PREDICATE, opts.predicateType));
  const sig = await key.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement));
  return buildDsseBundle(fingerprint(key.spki).hint, IN_TOTO_PAYLOAD_TYPE, statement, sig);
}

async function verify(
  reg: FakeRegistry,
  opts: Omit<VerifyOptions, 'spki'> & { key: TestKey },
): Promise<VerificationResult> {
  const { key, ...rest } = opts;
  return verifyImage(reg.client(), { ...rest, spki: key.spki });
}

/**
 * Holds a fake registry's answer until `seen()` (a request it waits for went out), up to 30 s, which
 * a loaded machine never needs; returns whether it did.
 */
async function holdUntil(seen: () => boolean): Promise<boolean> {
  for (let i = 0; i < 3000 && !seen(); i++) await new Promise((r) => setTimeout(r, 10));
  return seen();
}

const sigOf = (r: VerificationResult, i = 0) => r.manifests[0]!.signatures[i]!;
const check = (r: VerificationResult, id: string, i = 0) => sigOf(r, i).checks.find((c) => c.id === id)!;

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------
const key = await ecdsaKey();
const otherKey = await ecdsaKey();

describe('verifyImage: signatures that count', () => {
  it('a legacy .sig signature (cosign 2.5 form) verifies, every check said', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/legacy');
    putSig(reg, img.repo, img.digest, [await legacy(key, `${HOST}/app/legacy`, img.digest)]);
    const r = await verify(reg, { image: img.tagRef, key });
    expect(r.verified).toBe(true);
    expect(r.summary).toMatch(/^Verified: 1 signature by this key on registry\.test:5000\/app\/legacy@sha256:/);
    expect(r.error).toBeNull();
    expect(r.image).toMatchObject({ digest: img.digest, intended: `${HOST}/app/legacy:v1`, isIndex: false });
    const s = sigOf(r);
    expect(s).toMatchObject({
      format: 'legacy',
      kind: 'signature',
      verified: true,
      algorithm: 'ECDSA P-256 over SHA-256',
    });
    expect(s.claims.dockerReference).toBe(`${HOST}/app/legacy`);
    expect(s.checks.map((c) => [c.id, c.outcome])).toEqual([
      ['blob', 'pass'],
      ['signature', 'pass'],
      ['certificate', 'not-applicable'],
      ['tlog', 'skipped'],
      ['payload', 'pass'],
      ['digest', 'pass'],
      ['identity', 'skipped'],
      ['annotations', 'skipped'],
    ]);
    expect(r.manifests[0]!.lookups).toMatchObject({ legacy: 'found', referrers: 'tag-schema' });
  });

  it('a bundle referrer (cosign 3.1 form) verifies from the fallback index despite its empty artifactType', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/bundle');
    putReferrer(reg, img.repo, img.descriptor, await bundleFor(key, img.digest, { annotations: { team: 'blue' } }));
    const r = await verify(reg, { image: img.ref, key, annotations: { team: 'blue' } });
    expect(r.verified).toBe(true);
    const s = sigOf(r);
    expect(s).toMatchObject({ format: 'bundle', kind: 'signature', verified: true });
    expect(s.claims).toMatchObject({ predicateType: COSIGN_SIGN_PREDICATE, annotations: { team: 'blue' } });
    expect(check(r, 'identity').outcome).toBe('not-applicable');
    expect(check(r, 'annotations').outcome).toBe('pass');
  });

  it('through the OCI referrers API too, skipping referrers that are not bundles', async () => {
    const reg = new FakeRegistry();
    reg.referrersApi = true;
    const img = pushImage(reg, 'app/api');
    putReferrer(reg, img.repo, img.descriptor, await bundleFor(key, img.digest));
    putReferrer(reg, img.repo, img.descriptor, utf8('{"spdxVersion":"SPDX-2.3"}'), 'x', 'application/spdx+json');
    const r = await verify(reg, { image: img.ref, key, identity: { type: 'matchExact' } });
    expect(r.verified).toBe(true);
    expect(r.manifests[0]!.lookups).toMatchObject({ referrers: 'api', otherReferrers: 1 });
  });

  it('identity rules apply to the legacy payload', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/identity');
    putSig(reg, img.repo, img.digest, [await legacy(key, `${HOST}/app/identity:v1`, img.digest)]);
    for (const [identity, ok] of [
      [{ type: 'matchExact' }, true],
      [{ type: 'matchRepoDigestOrExact' }, true],
      [{ type: 'matchRepository' }, true],
      [{ type: 'exactReference', dockerReference: `${HOST}/app/identity:v1` }, true],
      [{ type: 'exactRepository', dockerRepository: `${HOST}/elsewhere` }, false],
    ] as const) {
      const r = await verify(reg, { image: img.tagRef, key, identity });
      expect(r.verified, identity.type).toBe(ok);
      expect(check(r, 'identity').outcome, identity.type).toBe(ok ? 'pass' : 'fail');
      if (!ok) expect(r.error?.code).toBe('VERIFY_IDENTITY_MISMATCH');
    }
    const v2 = await verify(reg, { image: `${HOST}/app/identity:v2`, key, identity: { type: 'matchExact' } });
    expect(v2.error?.code).toBe('REGISTRY_NOT_FOUND');
  });

  it('Ed25519 (pure), RSA-2048 and P-384 over SHA-256 verify', async () => {
    for (const k of [ed25519Key(false), await rsaKey(), await ecdsaKey('P-384')]) {
      const reg = new FakeRegistry();
      const img = pushImage(reg, 'app/algs');
      putSig(reg, img.repo, img.digest, [await legacy(k, `${HOST}/app/algs`, img.digest)]);
      putReferrer(reg, img.repo, img.descriptor, await bundleFor(k, img.digest));
      const r = await verify(reg, { image: img.ref, key: k });
      expect(r.verified, r.summary).toBe(true);
      expect(r.manifests[0]!.signatures.map((s) => s.verified)).toEqual([true, true]);
    }
  });

  it('several signatures in one .sig: each by its own key', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/many');
    const third = ed25519Key(false);
    putSig(reg, img.repo, img.digest, [
      await legacy(key, `${HOST}/app/many`, img.digest),
      await legacy(otherKey, `${HOST}/app/many:v1`, img.digest),
      await legacy(third, `${HOST}/app/many`, img.digest, { by: 'third' }),
    ]);
    for (const [k, i] of [
      [key, 0],
      [otherKey, 1],
      [third, 2],
    ] as const) {
      const r = await verify(reg, { image: img.ref, key: k });
      expect(r.verified).toBe(true);
      expect(r.manifests[0]!.signatures.map((s) => s.verified)).toEqual([0, 1, 2].map((n) => n === i));
    }
  });
});

describe('verifyImage: rejected, with the reason', () => {
  it('an unsigned image', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/unsigned');
    const r = await verify(reg, { image: img.ref, key });
    expect(r.verified).toBe(false);
    expect(r.error?.code).toBe('VERIFY_NO_SIGNATURES');
    expect(r.summary).toMatch(/^Not verified: This image has no signatures/);
    expect(r.manifests[0]!.lookups).toMatchObject({ legacy: 'absent', referrers: 'tag-schema' });
  });

  it('a payload with one digit of the digest changed, an extra space, a flipped signature bit', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/tampered');
    const good = await legacy(key, `${HOST}/app/tampered`, img.digest);
    const text = new TextDecoder().decode(good.payload);
    const hex = img.digest.slice(7);
    const digit = utf8(text.replace(hex, (hex[0] === '0' ? '1' : '0') + hex.slice(1)));
    const spaced = utf8(text.replace('"critical":', '"critical": '));
    const flipped = good.signature.slice();
    flipped[flipped.length - 5]! ^= 0x01;
    for (const [name, layer] of [
      ['digit', { payload: digit, signature: good.signature }],
      ['space', { payload: spaced, signature: good.signature }],
      ['bit', { payload: good.payload, signature: flipped }],
    ] as const) {
      putSig(reg, img.repo, img.digest, [layer]);
      const r = await verify(reg, { image: img.ref, key });
      expect(r.verified, name).toBe(false);
      expect(r.error?.code, name).toBe('VERIFY_BAD_SIGNATURE');
      expect(check(r, 'signature').outcome).toBe('fail');
      expect(check(r, 'payload').outcome).toBe('skipped');
    }
    const broken = good.signature.slice();
    broken[0] = 0x31; // no longer a DER SEQUENCE
    putSig(reg, img.repo, img.digest, [{ payload: good.payload, signature: broken }]);
    expect((await verify(reg, { image: img.ref, key })).error?.code).toBe('VERIFY_SIGNATURE_MALFORMED');
    putSig(reg, img.repo, img.digest, [{ payload: good.payload, signature: 'not base64!' }]);
    expect((await verify(reg, { image: img.ref, key })).error?.code).toBe('VERIFY_SIGNATURE_MALFORMED');
  });

  it('a registry that serves other bytes for the payload blob', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/lying');
    const good = await legacy(key, `${HOST}/app/lying`, img.digest);
    putSig(reg, img.repo, img.digest, [good]);
    reg.tampered.set(sha256Digest(good.payload), utf8(new TextDecoder().decode(good.payload).replace('}', ' }')));
    const r = await verify(reg, { image: img.ref, key });
    expect(r.error?.code).toBe('VERIFY_LAYER_MISMATCH');
    expect(check(r, 'blob').outcome).toBe('fail');
  });

  it('the wrong key: named when a key the viewer trusts made it, or a bundle hint names another key', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/wrongkey');
    putSig(reg, img.repo, img.digest, [await legacy(otherKey, `${HOST}/app/wrongkey`, img.digest)]);
    expect((await verify(reg, { image: img.ref, key })).error?.code).toBe('VERIFY_BAD_SIGNATURE');
    const named = await verify(reg, { image: img.ref, key, knownKeys: [{ name: 'Alice', spki: otherKey.spki }] });
    expect(named.error?.code).toBe('VERIFY_WRONG_KEY');
    expect(named.error?.message).toContain('Alice');
    expect(sigOf(named).otherKey).toEqual({ fingerprint: fingerprint(otherKey.spki).hex, name: 'Alice' });

    const reg2 = new FakeRegistry();
    const img2 = pushImage(reg2, 'app/wrongkey');
    putReferrer(reg2, img2.repo, img2.descriptor, await bundleFor(otherKey, img2.digest));
    const b = await verify(reg2, { image: img2.ref, key });
    expect(b.error?.code).toBe('VERIFY_WRONG_KEY');
    expect(b.error?.message).toContain(fingerprint(otherKey.spki).hex);
  });

  it('a valid signature over another image, a malformed payload, an unwanted identity or annotation', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/claims');
    const elsewhere = pushImage(reg, 'app/claims', { tag: 'v2' });
    putSig(reg, img.repo, img.digest, [await legacy(key, `${HOST}/app/claims`, elsewhere.digest)]);
    let r = await verify(reg, { image: img.ref, key });
    expect(r.error?.code).toBe('VERIFY_DIGEST_MISMATCH');

    const extraField = utf8(
      goJson({
        critical: {
          identity: { 'docker-reference': `${HOST}/app/claims` },
          image: { 'docker-manifest-digest': img.digest },
          type: 'cosign container image signature',
          extra: 1,
        },
        optional: null,
      }),
    );
    putSig(reg, img.repo, img.digest, [{ payload: extraField, signature: await key.sign(extraField) }]);
    r = await verify(reg, { image: img.ref, key });
    expect(r.error?.code).toBe('VERIFY_PAYLOAD_MALFORMED');
    expect(r.error?.message).toContain('extra');

    putSig(reg, img.repo, img.digest, [await legacy(key, `${HOST}/other/repo`, img.digest, { env: 'dev' })]);
    r = await verify(reg, { image: img.ref, key, identity: { type: 'matchRepository' } });
    expect(r.error?.code).toBe('VERIFY_IDENTITY_MISMATCH');
    r = await verify(reg, { image: img.ref, key, annotations: { env: 'prod' } });
    expect(r.error?.code).toBe('VERIFY_ANNOTATION_MISMATCH');
    expect(r.error?.message).toContain('env=dev is not the required env=prod');
    r = await verify(reg, { image: img.ref, key, annotations: { env: 'dev' } });
    expect(r.verified).toBe(true);
  });

  it('a bundle whose statement names another digest; an attestation; a keyless bundle', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/bundles');
    const other = pushImage(reg, 'app/bundles', { tag: 'other' });
    putReferrer(reg, img.repo, img.descriptor, await bundleFor(key, other.digest));
    let r = await verify(reg, { image: img.ref, key });
    expect(r.error?.code).toBe('VERIFY_DIGEST_MISMATCH');

    const reg2 = new FakeRegistry();
    const img2 = pushImage(reg2, 'app/bundles');
    putReferrer(
      reg2,
      img2.repo,
      img2.descriptor,
      await bundleFor(key, img2.digest, { predicateType: 'https://slsa.dev/provenance/v1' }),
    );
    r = await verify(reg2, { image: img2.ref, key });
    expect(r.verified).toBe(false);
    expect(r.error?.code).toBe('VERIFY_NO_SIGNATURES');
    expect(r.error?.message).toContain('attestation');
    expect(sigOf(r)).toMatchObject({ kind: 'attestation', verified: false });
    expect(check(r, 'signature').outcome).toBe('pass'); // signed by this key, still not a signature

    const keyless = JSON.parse(new TextDecoder().decode(await bundleFor(key, img2.digest))) as Record<
      string,
      Record<string, unknown>
    >;
    keyless.verificationMaterial = { certificate: { rawBytes: 'AAAA' } };
    putReferrer(reg2, img2.repo, img2.descriptor, utf8(JSON.stringify(keyless)));
    r = await verify(reg2, { image: img2.ref, key });
    expect(r.manifests[0]!.signatures.map((s) => s.kind).sort()).toEqual(['attestation', 'keyless']);
    expect(r.error?.code).toBe('VERIFY_KEYLESS');
    expect(r.error?.message).toContain('identity and OIDC issuer');
  });

  it('a keyless legacy layer and a layer that is no signature', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/odd');
    const l = await legacy(key, `${HOST}/app/odd`, img.digest);
    putSig(reg, img.repo, img.digest, [
      { ...l, annotations: { [CERTIFICATE_ANNOTATION]: '-----BEGIN CERTIFICATE-----' } },
      { ...l, mediaType: 'application/vnd.example.other' },
    ]);
    const r = await verify(reg, { image: img.ref, key });
    expect(r.manifests[0]!.signatures.map((s) => s.kind)).toEqual(['keyless', 'other']);
    expect(r.error?.code).toBe('VERIFY_KEYLESS');
  });

  it('what cosign 3.1 writes and no tool accepts: P-384 over SHA-384, Ed25519ph', async () => {
    for (const [k, variant] of [
      [await ecdsaKey('P-384', 'SHA-384'), 'SHA-384'],
      [ed25519Key(true), 'Ed25519ph'],
    ] as const) {
      const reg = new FakeRegistry();
      const img = pushImage(reg, 'app/variants');
      putSig(reg, img.repo, img.digest, [await legacy(k, `${HOST}/app/variants`, img.digest)]);
      const r = await verify(reg, { image: img.ref, key: k });
      expect(r.error?.code).toBe('VERIFY_ALGORITHM_REFUSED');
      expect(r.error?.message).toContain(variant);
    }
  });
});

describe('verifyImage: indexes', () => {
  it('the index and each platform are checked; unsigned platforms fail only under the per-platform rule', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/index', { index: true });
    putSig(reg, img.repo, img.digest, [await legacy(key, `${HOST}/app/index`, img.digest)]);
    const loose = await verify(reg, { image: img.tagRef, key });
    expect(loose.verified).toBe(true);
    expect(loose.summary).toContain('0 of 2 platforms signed (not required)');
    expect(loose.manifests.map((m) => [m.role, m.platform, m.required, m.verified])).toEqual([
      ['index', null, true, true],
      ['platform', 'linux/amd64', false, false],
      ['platform', 'linux/arm64', false, false],
    ]);
    const strict = await verify(reg, { image: img.tagRef, key, requireEveryPlatform: true });
    expect(strict.verified).toBe(false);
    expect(strict.error?.code).toBe('VERIFY_PLATFORM_UNSIGNED');
    expect(strict.error?.message).toContain('2 of 2 platform manifests are not signed');

    for (const p of img.platforms) putSig(reg, img.repo, p.digest, [await legacy(key, `${HOST}/app/index`, p.digest)]);
    const all = await verify(reg, { image: img.tagRef, key, requireEveryPlatform: true });
    expect(all.verified).toBe(true);
    expect(all.summary).toContain('and on both platforms');
  });

  it('platforms signed but not the index: not verified', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/index2', { index: true });
    for (const p of img.platforms) putSig(reg, img.repo, p.digest, [await legacy(key, `${HOST}/app/index2`, p.digest)]);
    const r = await verify(reg, { image: img.ref, key, requireEveryPlatform: true });
    expect(r.error?.code).toBe('VERIFY_NO_SIGNATURES');
    expect(r.error?.message).toContain('This index has no signatures');
  });
});

describe('verifyImage: the result', () => {
  const FREE_FORM = new Set(['annotations', 'identity']);
  /** The shape of a JSON value: types for leaves, objects by key, arrays by all their elements merged. */
  function shape(v: unknown, key = ''): unknown {
    if (FREE_FORM.has(key)) return 'map';
    if (Array.isArray(v)) return [v.map((x) => shape(x)).reduce((a, b) => merge(a, b), 'nullable')];
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x, k)]));
    return v === null ? 'nullable' : typeof v;
  }
  function merge(a: unknown, b: unknown): unknown {
    if (a === 'nullable') return b;
    if (b === 'nullable') return a;
    if (Array.isArray(a) && Array.isArray(b)) return [merge(a[0] ?? 'nullable', b[0] ?? 'nullable')];
    if (a && b && typeof a === 'object' && typeof b === 'object') {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
      return Object.fromEntries(
        keys.map((k) => [k, merge((a as never)[k] ?? 'nullable', (b as never)[k] ?? 'nullable')]),
      );
    }
    expect(a, 'one field, two types').toBe(b);
    return a;
  }
  /** Every object of `v` has exactly the keys of the shape `s`; null stands for any object. */
  function conforms(v: unknown, s: unknown, path: string): void {
    if (v === null || s === 'nullable' || s === 'map') return;
    if (Array.isArray(s)) {
      expect(Array.isArray(v), path).toBe(true);
      for (const [i, x] of (v as unknown[]).entries()) conforms(x, s[0], `${path}[${i}]`);
    } else if (typeof s === 'object') {
      expect(Object.keys(v as object).sort(), path).toEqual(Object.keys(s as object).sort());
      for (const [k, x] of Object.entries(v as object)) conforms(x, (s as never)[k], `${path}.${k}`);
    } else expect(typeof v, path).toBe(s);
  }

  it('has the same shape every run, verified or not', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/shape', { index: true });
    putSig(reg, img.repo, img.digest, [await legacy(key, `${HOST}/app/shape`, img.digest)]);
    putReferrer(reg, img.repo, img.descriptor, await bundleFor(otherKey, img.digest));
    const results = [
      await verify(reg, { image: img.ref, key }),
      await verify(reg, { image: img.ref, key: otherKey, requireEveryPlatform: true }),
      await verify(reg, { image: `${HOST}/app/missing:v1`, key }),
      await verify(reg, { image: 'NOT A REFERENCE', key }),
    ];
    const json = results.map((r) => JSON.parse(JSON.stringify(r)) as unknown);
    const all = json.map((j) => shape(j)).reduce((a, b) => merge(a, b));
    for (const [i, j] of json.entries()) conforms(j, all, `result ${i}`);
    for (const r of results) expect(r.summary).toMatch(/^(Verified|Not verified)/);
    expect(results[3]!.error?.code).toBe('REGISTRY_REFERENCE_INVALID');
  });

  it('reports progress up to done = total, and stops when aborted', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/progress', { index: true });
    putSig(reg, img.repo, img.digest, [await legacy(key, `${HOST}/app/progress`, img.digest)]);
    const seen: [number, number][] = [];
    await verify(reg, { image: img.ref, key, onProgress: (p) => seen.push([p.done, p.total]) });
    expect(seen.length).toBeGreaterThan(4);
    expect(seen.at(-1)![0]).toBe(seen.at(-1)![1]);
    for (const [d, t] of seen) expect(d).toBeLessThanOrEqual(t);
    const ac = new AbortController();
    ac.abort(new Error('stopped'));
    await expect(verify(reg, { image: img.ref, key, signal: ac.signal })).rejects.toThrow('stopped');
  });

  it('with a reference by digest, looks up the signatures while the manifest is being read', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/early');
    putSig(reg, img.repo, img.digest, [await legacy(key, `${HOST}/app/early`, img.digest)]);
    let sigAsked = false;
    let sigBeforeManifest = false;
    // The image manifest's answer waits for the `.sig` lookup to be asked for.
    const fetch: typeof reg.fetch = async (input, init) => {
      const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
      if (path.endsWith('.sig')) sigAsked = true;
      if (path.endsWith(`/manifests/${img.digest}`)) {
        sigBeforeManifest = await holdUntil(() => sigAsked);
      }
      return reg.fetch(input, init);
    };
    const seen: [number, number][] = [];
    const r = await verifyImage(new RegistryClient({ fetch, scheme: () => 'http' }), {
      image: img.ref,
      spki: key.spki,
      onProgress: (p) => seen.push([p.done, p.total]),
    });
    expect(r.verified).toBe(true);
    expect(sigBeforeManifest).toBe(true);
    expect(seen.at(-1)![0]).toBe(seen.at(-1)![1]);
    for (const [d, t] of seen) expect(d).toBeLessThanOrEqual(t);
  });

  it("with a reference by digest, reads a bundle referrer's manifest and bundle while the image's own manifest is still answering", async () => {
    const reg = new FakeRegistry();
    reg.referrersApi = true;
    const img = pushImage(reg, 'app/ahead');
    const bundle = await bundleFor(key, img.digest);
    putReferrer(reg, img.repo, img.descriptor, bundle);
    let bundleAsked = false;
    let bundleBeforeImage = false;
    // The image manifest's answer waits for the bundle blob to be asked for.
    const fetch: typeof reg.fetch = async (input, init) => {
      const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
      if (path.endsWith(`/blobs/${sha256Digest(bundle)}`)) bundleAsked = true;
      if (path.endsWith(`/manifests/${img.digest}`)) {
        bundleBeforeImage = await holdUntil(() => bundleAsked);
      }
      return reg.fetch(input, init);
    };
    const r = await verifyImage(new RegistryClient({ fetch, scheme: () => 'http' }), {
      image: img.ref,
      spki: key.spki,
    });
    expect(r.verified).toBe(true);
    expect(bundleBeforeImage).toBe(true);
    expect(r.manifests[0]!.lookups).toMatchObject({ legacy: 'absent', referrers: 'api' });
  });

  it('reads the .sig payload while the referrers are still being looked up', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/apart');
    const signed = await legacy(key, `${HOST}/app/apart`, img.digest);
    putSig(reg, img.repo, img.digest, [signed]);
    const payload = sha256Digest(signed.payload);
    let payloadAsked = false;
    let payloadBeforeReferrers = false;
    // The referrers' answers wait for the payload blob to be asked for.
    const fetch: typeof reg.fetch = async (input, init) => {
      const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
      if (path.endsWith(`/blobs/${payload}`)) payloadAsked = true;
      if (path.includes('/referrers/') || path.endsWith(`/manifests/${img.digest.replace(':', '-')}`)) {
        payloadBeforeReferrers = await holdUntil(() => payloadAsked);
      }
      return reg.fetch(input, init);
    };
    const r = await verifyImage(new RegistryClient({ fetch, scheme: () => 'http' }), {
      image: img.ref,
      spki: key.spki,
    });
    expect(r.verified).toBe(true);
    expect(payloadBeforeReferrers).toBe(true);
    expect(r.manifests[0]!.lookups).toMatchObject({ legacy: 'found', referrers: 'tag-schema' });
  });

  it('reads the bundle referrers while the .sig tag is still answering; its failure is still named first', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/sig-slow');
    const bundle = await bundleFor(key, img.digest);
    putReferrer(reg, img.repo, img.descriptor, bundle);
    const sigTagPath = `/manifests/${sigTag(img.digest)}`;
    let bundleAsked = false;
    let bundleBeforeSig = false;
    let failing = false;
    let referrersFailed = false;
    // The `.sig` tag's answer waits for the bundle blob to be asked for, or when failing
    // for the referrers' failure.
    const fetch: typeof reg.fetch = async (input, init) => {
      const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
      if (path.endsWith(`/blobs/${sha256Digest(bundle)}`)) bundleAsked = true;
      if (path.endsWith(sigTagPath)) {
        bundleBeforeSig = await holdUntil(() => bundleAsked);
        await holdUntil(() => !failing || referrersFailed);
      }
      if (failing && path.endsWith(`/manifests/${referrersTag(img.digest)}`)) referrersFailed = true;
      if (failing && (path.endsWith(sigTagPath) || path.endsWith(`/manifests/${referrersTag(img.digest)}`)))
        return new Response('{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}', { status: 500 });
      return reg.fetch(input, init);
    };
    const client = new RegistryClient({ fetch, scheme: () => 'http' });
    const r = await verifyImage(client, { image: img.ref, spki: key.spki });
    expect(r.verified).toBe(true);
    expect(bundleBeforeSig).toBe(true);
    // Both lookups failing, the referrers' first: the `.sig` tag's failure is the one named.
    failing = true;
    const failed = await verifyImage(client, { image: img.ref, spki: key.spki });
    expect(failed.verified).toBe(false);
    expect(failed.manifests[0]!.lookups.errors).toHaveLength(2);
    expect(failed.manifests[0]!.lookups.errors[0]!.message).toContain(sigTag(img.digest));
    expect(failed.manifests[0]!.lookups.errors[1]!.message).toContain(referrersTag(img.digest));
  });

  it('says what is wrong with the key or the rule before fetching anything', async () => {
    const reg = new FakeRegistry();
    const bad = await verifyImage(reg.client(), { image: `${HOST}/a:b`, spki: utf8('nope') });
    expect(bad.error?.code).toBe('KEY_DER_INVALID');
    const rule = await verify(reg, {
      image: `${HOST}/a:b`,
      key,
      identity: { type: 'exactReference', dockerReference: `${HOST}/a` },
    });
    expect(rule.error?.code).toBe('VERIFY_POLICY_INVALID');
    expect(reg.requests).toBe(0);
  });

  it('starts reading the registry before preparing keys, policy or trust', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/early');
    putSig(reg, img.repo, img.digest, [await legacy(key, `${HOST}/app/early`, img.digest)]);
    const others = await Promise.all(
      [1, 2, 3].map(async (i) => ({ name: `other ${i}`, spki: (await ecdsaKey()).spki })),
    );
    // By digest: the manifest, the `.sig` tag and the referrers are asked for before the first await
    // (importing the viewer's keys into WebCrypto), not after it.
    const pending = verify(reg, { image: `${HOST}/app/early@${img.digest}`, key, knownKeys: others });
    expect(reg.requests).toBeGreaterThanOrEqual(2);
    const r = await pending;
    expect(r.verified, r.summary).toBe(true);
    // A bad regular expression is still the verdict, with no progress reported after it.
    const steps: string[] = [];
    const bad = await verifyImage(reg.client(), {
      image: `${HOST}/app/early@${img.digest}`,
      certificate: { certificateIdentityRegexp: '(', certificateOidcIssuer: 'https://issuer.test' },
      onProgress: (p) => steps.push(p.message),
    });
    expect(bad.error?.code).toBe('VERIFY_REGEXP_INVALID');
    const heard = steps.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(steps.length).toBe(heard);
  });

  it('makes the cosign command, containers policy, Kyverno and policy-controller snippets', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/snippets', { index: true });
    for (const d of [img.digest, ...img.platforms.map((p) => p.digest)])
      putSig(reg, img.repo, d, [await legacy(key, `${HOST}/app/snippets`, d, { 'team name': "o'neil" })]);
    const r = await verify(reg, {
      image: img.tagRef,
      key,
      annotations: { 'team name': "o'neil" },
      requireEveryPlatform: true,
    });
    expect(r.verified).toBe(true);
    const s = policySnippets(r);
    expect(s.cosign.argv).toHaveLength(3);
    expect(s.cosign.argv[0]).toEqual([
      'cosign',
      'verify',
      '--key',
      'cosign.pub',
      '--insecure-ignore-tlog=true',
      '-a',
      "team name=o'neil",
      `${HOST}/app/snippets@${img.digest}`,
    ]);
    expect(s.cosign.text).toContain(`-a 'team name=o'\\''neil'`);
    const policy = JSON.parse(s.containersPolicy.text) as {
      transports: { docker: Record<string, { keyData: string; signedIdentity: unknown }[]> };
    };
    const entry = policy.transports.docker[`${HOST}/app/snippets`]![0]!;
    expect(new TextDecoder().decode(fromBase64(entry.keyData)!)).toBe(r.key.pem);
    expect(entry.signedIdentity).toEqual({ type: 'matchRepository' });
    expect(s.kyverno.text).toContain('                      -----BEGIN PUBLIC KEY-----');
    expect(s.kyverno.text).toContain('"team name": "o\'neil"');
    expect(s.policyController.text).toContain('kind: ClusterImagePolicy');
    expect(s.kyverno.text).toContain('name: verify-registry-test-5000-app-snippets');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(() => policySnippets({ ...r, verified: false })).toThrow();
  });

  it('counts nothing but a cosign bundle as a bundle', async () => {
    const reg = new FakeRegistry();
    const img = pushImage(reg, 'app/mt');
    putReferrer(
      reg,
      img.repo,
      img.descriptor,
      buildDsseBundle(fingerprint(key.spki).hint, 'application/vnd.example', utf8('{}'), utf8('x')),
    );
    const r = await verify(reg, { image: img.ref, key });
    expect(sigOf(r)).toMatchObject({ kind: 'other', verified: false });
    expect(BUNDLE_V03).toBe(MT.sigstoreBundle);
    expect(SIGNATURE_ANNOTATION).toBe('dev.cosignproject.cosign/signature');
  });
});
