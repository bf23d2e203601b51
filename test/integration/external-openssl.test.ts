/**
 * The external signer against the real tools, on the real registry:
 * - the bytes listBytesToSign lists are exactly, and in order, what signImage asks its signer for
 *   (a recording signer), for an image and a 2-platform index, both formats, annotations, both
 *   identities, recursion off;
 * - the openssl command lines the page shows are run as they are (sh -c, in a folder holding the
 *   downloaded files and key.pem) with the real openssl, for ECDSA P-256 and P-384, RSA 2048 and
 *   Ed25519 keys, both the direct form and the digest (KMS-style) form; the signatures they make
 *   pass checkExternalSignature, are pushed with preparedSigner, and cosign 2.5 (legacy), cosign
 *   3.1 (bundle) and skopeo 1.18 (sigstoreSigned policy, copy --all) accept them;
 * - the downloadable signing script (signingScript) runs with sh and the real openssl and prints
 *   signatures that check, and stops on damaged bytes.
 */
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePlainPrivateKeyPem, publicKeyPem } from '../../shared/crypto/keys.ts';
import { algorithmName } from '../../shared/crypto/pkcs.ts';
import { importPrivateKey, signWithCryptoKey } from '../../shared/crypto/webcrypto.ts';
import { planSigning, signImage, type Signer, type SigningInput } from '../../shared/ops/sign.ts';
import { prepareKey } from '../../shared/cosign/verify-signature.ts';
import {
  checkExternalSignature,
  listBytesToSign,
  opensslCommands,
  parseSignatureLines,
  preparedSigner,
  signingScript,
  type PreparedSignature,
} from '../../shared/ops/external.ts';
import { pushSampleImage, skopeoAccess } from '../rig/images.ts';
import { cosignVerifyArgs, run, skopeoPolicyPull } from '../rig/tools.ts';
import { useRig, VECTORS } from './rig-context.ts';

const rig = useRig({ offlineCosign3: true });
const { regs, client, env } = rig;

/** Wraps a signer and records every byte string it is asked to sign. */
function recording(inner: Signer): Signer & { seen: Uint8Array[] } {
  const seen: Uint8Array[] = [];
  return {
    algorithm: inner.algorithm,
    spki: inner.spki,
    seen,
    sign: (data) => {
      seen.push(data.slice());
      return inner.sign(data);
    },
  };
}

async function keySigner(file: string): Promise<Signer> {
  const info = parsePlainPrivateKeyPem(readFileSync(join(VECTORS, file), 'utf8'));
  const key = await importPrivateKey(info);
  return { algorithm: info.algorithm, spki: info.spki, sign: (d) => signWithCryptoKey(key, info.algorithm, d) };
}

describe('listBytesToSign is what signImage signs', () => {
  const cases: [string, boolean, (repo: string) => Omit<SigningInput, 'plan'>][] = [
    [
      'an index, both formats, annotations, repository:tag',
      true,
      (repo) => ({
        dockerReference: `${regs.tls.host}/${repo}:v1`,
        annotations: { team: 'web', 'build.id': '42', z: 'a=b,c' },
        formats: { legacy: true, bundle: true },
      }),
    ],
    [
      'an index, bundle only, not recursive',
      true,
      (repo) => ({
        dockerReference: `${regs.tls.host}/${repo}`,
        formats: { legacy: false, bundle: true },
        recursive: false,
      }),
    ],
    [
      'an image, legacy only, repository identity',
      false,
      (repo) => ({ dockerReference: `${regs.tls.host}/${repo}`, formats: { legacy: true, bundle: false } }),
    ],
    [
      'an image, both formats',
      false,
      (repo) => ({ dockerReference: `${regs.tls.host}/${repo}:v1`, formats: { legacy: true, bundle: true } }),
    ],
  ];
  for (const [name, index, options] of cases) {
    it(name, async () => {
      const repo = `external/same-${name.replace(/\W+/g, '-')}`;
      await pushSampleImage(rig.tls, repo, 'v1', { index });
      const plan = await planSigning(client, { registry: regs.tls.host, repository: repo }, 'v1');
      const o: SigningInput = { plan, ...options(repo) };
      const items = listBytesToSign(o);
      const signer = recording(await keySigner('ec-p256-pkcs8.pem'));
      await signImage({ client, signer, ...o });
      expect(signer.seen.length).toBe(items.length);
      expect(signer.seen).toEqual(items.map((i) => i.bytes));
    });
  }
});

/** Runs one command line the page shows, as a person would paste it into a shell. */
async function shell(command: string, cwd: string): Promise<string> {
  const r = await run('/bin/sh', ['-c', command], { cwd });
  expect(r.code, `${command}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe.each(['ec-p256-pkcs8.pem', 'ec-p384-sec1.pem', 'rsa-2048-pkcs1.pem', 'ed25519-pkcs8.pem'])(
  'openssl with %s, as the page tells',
  (file) => {
    it('signs every listed item of a 2-platform index; the page accepts them; cosign 2.5, 3.1 and skopeo verify', async () => {
      const info = parsePlainPrivateKeyPem(readFileSync(join(VECTORS, file), 'utf8'));
      const pub = join(rig.home.dir, `${file}.pub`);
      writeFileSync(pub, publicKeyPem(info.spki));
      const key = await prepareKey(info.spki);
      const repo = `external/openssl-${file.replace(/\W+/g, '-')}`;
      const image = await pushSampleImage(rig.tls, repo, 'v1', {
        index: true,
      });
      const plan = await planSigning(client, { registry: regs.tls.host, repository: repo }, 'v1');
      const o: SigningInput = {
        plan,
        dockerReference: `${regs.tls.host}/${repo}:v1`,
        annotations: { signedBy: 'openssl' },
        formats: { legacy: true, bundle: true },
      };
      const items = listBytesToSign(o);
      expect(items).toHaveLength(6);

      // The "offline machine": a folder with key.pem and the files the page lets one download.
      const dir = mkdtempSync(join(rig.home.dir, 'offline-'));
      copyFileSync(join(VECTORS, file), join(dir, 'key.pem'));
      const prepared: PreparedSignature[] = [];
      for (const item of items) {
        writeFileSync(join(dir, item.files.bytes), item.bytes);
        const cmd = opensslCommands(info.algorithm, item.files);
        // Alternate the direct form and the digest form (what a KMS that signs digests does).
        if (cmd.signDigest && item.n % 2 === 0) {
          await shell(cmd.digest!, dir);
          expect(new Uint8Array(readFileSync(join(dir, item.files.sha256)))).toEqual(item.sha256);
          // The page's own .sha256 download holds the same 32 bytes; sign that one.
          writeFileSync(join(dir, item.files.sha256), item.sha256);
          await shell(cmd.signDigest, dir);
        } else {
          expect(cmd.signDigest === null).toBe(info.algorithm.kind === 'ed25519');
          await shell(cmd.sign, dir);
        }
        const b64 = await shell(cmd.base64, dir);
        expect(b64).toMatch(/^[A-Za-z0-9+/]+=*$/);
        const signature = await checkExternalSignature(key, item, { kind: 'text', text: b64 });
        // The raw file works as well as its base64.
        const raw = new Uint8Array(readFileSync(join(dir, item.files.signature)));
        expect(
          await checkExternalSignature(key, item, { kind: 'file', name: item.files.signature, bytes: raw }),
        ).toEqual(signature);
        prepared.push({ bytes: item.bytes, signature });
      }

      const signer = recording(preparedSigner(info.algorithm, info.spki, prepared));
      const result = await signImage({ client, signer, ...o });
      expect(signer.seen).toEqual(items.map((i) => i.bytes));
      expect(result.targets.map((t) => t.digest)).toEqual([image.digest, ...image.platforms.map((p) => p.digest)]);

      const name = algorithmName(info.algorithm);
      for (const ref of [image.ref, ...image.platforms.map((p) => p.ref)]) {
        const v2 = await run('cosign2', cosignVerifyArgs(pub, ref, ['-a', 'signedBy=openssl']), { env: env() });
        expect(v2.code, `cosign 2.5 (${name}) ${ref}: ${v2.stderr}`).toBe(0);
        const v3 = await run('cosign3', cosignVerifyArgs(pub, ref, ['--trusted-root', rig.offline.trustedRoot]), {
          env: env(),
        });
        expect(v3.code, `cosign 3.1 (${name}) ${ref}: ${v3.stderr}`).toBe(0);
      }
      const access = await skopeoAccess(rig.tls, rig.home.dir);
      const s = await skopeoPolicyPull(rig.home, access, pub, image.tagRef, {
        identity: { type: 'matchRepoDigestOrExact' },
        all: true,
      });
      expect(s.code, `skopeo (${name}): ${s.stderr}`).toBe(0);
    });

    it('the downloadable signing script signs every item; its output, pasted whole, checks item by item', async () => {
      const info = parsePlainPrivateKeyPem(readFileSync(join(VECTORS, file), 'utf8'));
      const key = await prepareKey(info.spki);
      const repo = `external/script-${file.replace(/\W+/g, '-')}`;
      await pushSampleImage(rig.tls, repo, 'v1', { index: true });
      const plan = await planSigning(client, { registry: regs.tls.host, repository: repo }, 'v1');
      const items = listBytesToSign({
        plan,
        dockerReference: `${regs.tls.host}/${repo}:v1`,
        formats: { legacy: true, bundle: true },
      });
      const dir = mkdtempSync(join(rig.home.dir, 'script-'));
      // The key in another folder, named on the command line, as someone with a key elsewhere runs it.
      const keyDir = mkdtempSync(join(rig.home.dir, 'keys-'));
      copyFileSync(join(VECTORS, file), join(keyDir, 'signer.pem'));
      writeFileSync(join(dir, 'sign-all.sh'), signingScript(items, info.algorithm, `${regs.tls.host}/${repo}:v1`));
      const r = await run('/bin/sh', ['sign-all.sh', join(keyDir, 'signer.pem')], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      const lines = parseSignatureLines(r.stdout);
      expect(lines.map((l) => l.n)).toEqual(items.map((i) => i.n));
      for (const item of items) {
        const text = lines.find((l) => l.n === item.n)!.base64;
        await checkExternalSignature(key, item, { kind: 'text', text });
      }
      // It cleans up after itself: nothing but the script is left where it ran.
      expect(readdirSync(dir)).toEqual(['sign-all.sh']);
      // A damaged byte in the embedded bytes stops it before signing anything.
      const damaged = signingScript(items, info.algorithm, 'x').replace(
        /^(base64 -d > \S+ <<'EOF'\n)(.)/m,
        (_, a, c) => a + (c === 'A' ? 'B' : 'A'),
      );
      writeFileSync(join(dir, 'damaged.sh'), damaged);
      const d = await run('/bin/sh', ['damaged.sh', join(keyDir, 'signer.pem')], { cwd: dir });
      expect(d.code).not.toBe(0);
      expect(d.stderr).toMatch(/is damaged/);
      expect(d.stdout).toBe('');
    });
  },
);

it('a P-384 signature over SHA-384 (openssl dgst -sha384) is refused by name, as no verifier accepts it', async () => {
  const info = parsePlainPrivateKeyPem(readFileSync(join(VECTORS, 'ec-p384-pkcs8.pem'), 'utf8'));
  const key = await prepareKey(info.spki);
  const plan = {
    repo: { registry: regs.tls.host, repository: 'external/none' },
    root: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 1 },
    targets: [],
  };
  const items = listBytesToSign({
    plan: { ...plan, targets: [{ descriptor: plan.root }] },
    dockerReference: 'x/y',
    formats: { legacy: true, bundle: false },
  });
  const dir = mkdtempSync(join(rig.home.dir, 'p384-'));
  copyFileSync(join(VECTORS, 'ec-p384-pkcs8.pem'), join(dir, 'key.pem'));
  writeFileSync(join(dir, 'p.bin'), items[0]!.bytes);
  await shell('openssl dgst -sha384 -sign key.pem -out p.sig p.bin', dir);
  const sig = new Uint8Array(readFileSync(join(dir, 'p.sig')));
  await expect(checkExternalSignature(key, items[0]!, { kind: 'file', name: 'p.sig', bytes: sig })).rejects.toThrow(
    /valid for this key only as ECDSA over SHA-384.*does not count/,
  );
});
