/**
 * The REAL Rekor v1 in the rig (rekor-server v1.5.4 on Trillian v1.7.3 and Debian's MariaDB,
 * test/rig/rekor-v1.ts), proven with the real clients: cosign 2.5 signs an image with a key and
 * uploads to it (a legacy `.sig` whose layer carries the SET in `dev.sigstore.cosign/bundle`);
 * cosign 2.5 verifies it against the log's key (`SIGSTORE_REKOR_PUBLIC_KEY`, `--offline`), and so
 * does the page's verifier (shared/ops/verify.ts with that key as `rekorPublicKey`, tlog required);
 * with another log's key both refuse.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { parsePublicKey } from '../../shared/crypto/keys.ts';
import { verifyImage } from '../../shared/ops/verify.ts';
import { buildTrust } from '../../shared/ops/verify-sigstore.ts';
import { pushSampleImage } from '../rig/images.ts';
import { startRekorV1, type RekorV1 } from '../rig/rekor-v1.ts';
import { run, runOk } from '../rig/tools.ts';
import { useRig, type ToolKeyPair } from './rig-context.ts';

const rig = useRig({ prefix: 'cosign-web-rekor1-', password: '' });
let rekor: RekorV1;
let key: ToolKeyPair;
let ref: string;

beforeAll(async () => {
  rekor = await startRekorV1({ dir: await rig.tempDir('cosign-web-rekor1-stack-') });
  key = await rig.cosign2KeyPair('rekor1');
  const image = await pushSampleImage(rig.tls, 'rekor1/signed', 'v1');
  ref = `${image.repository}@${image.digest}`;
  await runOk('cosign2', ['sign', '--key', key.key, '--rekor-url', rekor.url, '--tlog-upload=true', '--yes', ref], {
    env: rig.env(),
  });
}, 240_000);
afterAll(async () => {
  await rekor?.stop();
});

const otherLogKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();

describe('Rekor v1 on Trillian and MariaDB', () => {
  it('serves an ECDSA P-256 log key and a log with the entry cosign 2.5 uploaded', async () => {
    expect(parsePublicKey(rekor.publicKeyPem).algorithm).toMatchObject({ kind: 'ecdsa', curve: 'P-256' });
    const info = (await (await fetch(`${rekor.url}/api/v1/log`)).json()) as { treeSize: number; treeID: string };
    expect(info.treeSize).toBeGreaterThanOrEqual(1);
    expect(info.treeID).toBe(rekor.treeId);
  });

  it('cosign 2.5 verifies the SET offline with the log key, and refuses another log key', async () => {
    const verify = (logKeyFile: string) =>
      run('cosign2', ['verify', '--key', key.pub, '--offline', ref], {
        env: { ...rig.env(), SIGSTORE_REKOR_PUBLIC_KEY: logKeyFile },
      });
    const good = await verify(rekor.publicKeyFile);
    expect(good.code, good.stderr).toBe(0);
    const otherFile = `${await rig.tempDir('cosign-web-rekor1-other-')}/other.pub`;
    await import('node:fs/promises').then((fs) => fs.writeFile(otherFile, otherLogKey));
    const bad = await verify(otherFile);
    expect(bad.code).not.toBe(0);
  });

  it("the page's verifier requires and checks the SET against the log key, and refuses another key", async () => {
    const spki = parsePublicKey(readFileSync(key.pub, 'utf8')).spki;
    const ours = (logKey: string) =>
      verifyImage(rig.client, {
        image: ref,
        spki,
        tlog: 'require',
        trust: async () => buildTrust({ root: 'public-good', rekorPublicKey: logKey }),
      });
    const r = await ours(rekor.publicKeyPem);
    expect(r.verified, r.summary).toBe(true);
    const sig = r.manifests[0]!.signatures.find((s) => s.verified)!;
    expect(sig.format).toBe('legacy');
    expect(sig.tlogEntry).toBe(true);
    const other = await ours(otherLogKey);
    expect(other.verified).toBe(false);
  });
});
