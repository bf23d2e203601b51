/**
 * Our verifier against what the REAL Sigstore services emit: cosign 3.1 signs a file and an image
 * with a key, logging to a real Rekor v2 (rekor-tiles v2.3.0) and timestamping with the real
 * timestamp authority (v2.1.3), both started on loopback by test/rig/sigstore-services.ts. cosign
 * 3.1 verifies each with `--trusted-root`, and so do `npx cosign-web verify-bundle` (the file) and
 * shared/ops/verify.ts (the image, the code #/verify runs). Then the same real output, altered —
 * another log's key in the root, a timestamp authority the root does not name, a tampered entry
 * body, inclusion proof or checkpoint, the entry of another file — is refused by cosign and by us.
 *
 * Specs: https://github.com/sigstore/rekor-tiles/blob/main/CLIENTS.md,
 * https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto,
 * https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_trustroot.proto
 */
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../shared/crypto/keys.ts';
import { verifyImage } from '../../shared/ops/verify.ts';
import { buildTrust } from '../../shared/ops/verify-sigstore.ts';
import { pushSampleImage } from '../rig/images.ts';
import {
  cosign3SignBlobArgs,
  startSigstoreServices,
  type SigstoreServices,
  type TrustedRootJson,
} from '../rig/sigstore-services.ts';
import { run, runOk, type RunResult } from '../rig/tools.ts';
import { useRig } from './rig-context.ts';

const rig = useRig({ prefix: 'cosign-web-stack-', password: '' });
const REPO_ROOT = join(import.meta.dirname, '..', '..');

let main: SigstoreServices;
/** A second log (ECDSA key) and TSA nobody's root names. */
let other: SigstoreServices;
let dir: string;
let key: { key: string; pub: string };

/** A bundle cosign 3.1 wrote, with the file it is about. */
interface Signed {
  file: string;
  bundleFile: string;
  bundle: BundleJson;
}
interface BundleJson {
  verificationMaterial: {
    tlogEntries: {
      logIndex?: string;
      logId: { keyId: string };
      kindVersion: { kind: string; version: string };
      inclusionProof: {
        logIndex?: string;
        treeSize: string;
        rootHash: string;
        hashes?: string[];
        checkpoint: { envelope: string };
      };
      canonicalizedBody: string;
      integratedTime?: string;
    }[];
    timestampVerificationData: { rfc3161Timestamps: { signedTimestamp: string }[] };
  };
  messageSignature?: { signature: string };
}
let blob: Signed;
let otherBlob: Signed;

async function signBlob(name: string, content: string, services = main): Promise<Signed> {
  const file = join(dir, name);
  const bundleFile = `${file}.sigstore.json`;
  await writeFile(file, content);
  await runOk('cosign3', cosign3SignBlobArgs(services, key.key, file, bundleFile), { env: rig.env() });
  return { file, bundleFile, bundle: JSON.parse(await readFile(bundleFile, 'utf8')) as BundleJson };
}

const cosignVerifyBlob = (bundleFile: string, root: string, file: string): Promise<RunResult> =>
  run('cosign3', ['verify-blob', '--key', key.pub, '--bundle', bundleFile, '--trusted-root', root, file], {
    env: rig.env(),
  });

/** `npx cosign-web verify-bundle`, the real command line in its own process. */
const oursVerifyBlob = (bundleFile: string, root: string, file: string): Promise<RunResult> =>
  run('npx', ['cosign-web', 'verify-bundle', '--bundle', bundleFile, '--key', key.pub, '--trusted-root', root, file], {
    cwd: REPO_ROOT,
    timeoutMs: 120_000,
  });

let serial = 0;
async function writeJson(prefix: string, value: unknown): Promise<string> {
  const path = join(dir, `${prefix}-${++serial}.json`);
  await writeFile(path, JSON.stringify(value));
  return path;
}

const rootOf = (s: SigstoreServices): TrustedRootJson => structuredClone(s.trustedRoot);
const flipBase64 = (b64: string): string => {
  const bytes = Buffer.from(b64, 'base64');
  bytes[bytes.length - 1]! ^= 0x01;
  return bytes.toString('base64');
};

beforeAll(async () => {
  dir = await rig.tempDir('cosign-web-stack-files-');
  [main, other] = await Promise.all([
    startSigstoreServices({ dir: join(dir, 'main') }),
    startSigstoreServices({ dir: join(dir, 'other'), logKeyType: 'ecdsa-p256' }),
  ]);
  await runOk('cosign3', ['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], { env: rig.env() });
  key = { key: join(dir, 'cosign.key'), pub: join(dir, 'cosign.pub') };
  // Entries before the one under test, so its inclusion proof has hashes to check.
  for (const n of [1, 2, 3, 4, 5]) await signBlob(`filler-${n}.txt`, `filler ${n}\n`);
  blob = await signBlob('artifact.txt', 'the artifact the tests verify\n');
  otherBlob = await signBlob('other-artifact.txt', 'another artifact\n');
}, 240_000);

afterAll(async () => {
  await Promise.all([main?.stop(), other?.stop()]);
});

describe('the real services', () => {
  /** Listening TCP sockets of this network namespace, as `ip:port` (IPv4 and IPv6 tables). */
  const listeners = (): string[] =>
    ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/))
        .filter((c) => c[3] === '0A')
        .map((c) => {
          const [ip, port] = c[1]!.split(':') as [string, string];
          const v4 = ip.length === 8 ? Buffer.from(ip, 'hex').reverse().join('.') : `[${ip}]`;
          return `${v4}:${parseInt(port, 16)}`;
        }),
    );

  /** The process serving this TSA's socket (found by its command line; the watchdog's sh is its parent). */
  const tsaPid = (s: SigstoreServices): string => {
    const want = `--socket-path=${s.tsa.socketPath}`;
    const pids = readdirSync('/proc').filter((p) => {
      if (!/^\d+$/.test(p)) return false;
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return argv.includes(want) && argv[0]!.endsWith('/timestamp-server');
      } catch {
        return false; // gone meanwhile
      }
    });
    expect(pids).toHaveLength(1);
    return pids[0]!;
  };

  it('listen on 127.0.0.1 only, metrics included, and stop() leaves nothing listening or on disk', async () => {
    const s = await startSigstoreServices({ logKeyType: 'ecdsa-p256' });
    const ports = [new URL(s.rekor.url).port, s.rekor.grpcPort, s.rekor.metricsPort, new URL(s.tsa.baseUrl).port].map(
      Number,
    );
    const open = listeners();
    for (const port of ports) expect(open.filter((a) => a.endsWith(`:${port}`))).toEqual([`127.0.0.1:${port}`]);
    // The TSA's fixed ":2112" metrics listener lives in the TSA's own network namespace.
    const tsaNs = await readlink(`/proc/${tsaPid(s)}/ns/net`);
    expect(tsaNs).not.toBe(await readlink('/proc/self/ns/net'));
    await s.stop();
    const after = listeners();
    for (const port of ports)
      expect(
        after.some((a) => a.endsWith(`:${port}`)),
        String(port),
      ).toBe(false);
    expect(existsSync(s.dir)).toBe(false);
  });

  it('Rekor v2 logged the file as a hashedrekord 0.0.2 entry with a proof in a tree of 6, under the log ID we computed', () => {
    const [entry, ...more] = blob.bundle.verificationMaterial.tlogEntries;
    expect(more).toHaveLength(0);
    expect(entry!.kindVersion).toEqual({ kind: 'hashedrekord', version: '0.0.2' });
    expect(entry!.logId.keyId).toBe(main.rekor.logId);
    expect(entry!.integratedTime ?? '0').toBe('0'); // Rekor v2 gives no time: the TSA does.
    expect(entry!.logIndex).toBe('5');
    expect(entry!.inclusionProof.treeSize).toBe('6');
    expect(entry!.inclusionProof.hashes).toHaveLength(2);
    // The checkpoint is signed under the origin 127.0.0.1 (the host of the log's baseUrl).
    expect(entry!.inclusionProof.checkpoint.envelope).toMatch(
      /^127\.0\.0\.1\n6\n[A-Za-z0-9+/=]{44}\n\n\u2014 127\.0\.0\.1 /,
    );
    const body = JSON.parse(Buffer.from(entry!.canonicalizedBody, 'base64').toString('utf8')) as {
      spec: { hashedRekordV002: { data: { digest: string }; signature: { content: string } } };
    };
    const sha = createHash('sha256').update(readFileSync(blob.file)).digest('base64');
    expect(body.spec.hashedRekordV002.data.digest).toBe(sha);
    expect(body.spec.hashedRekordV002.signature.content).toBe(blob.bundle.messageSignature!.signature);
    expect(blob.bundle.verificationMaterial.timestampVerificationData.rfc3161Timestamps).toHaveLength(1);
  });

  it('the trusted root we write is the one `cosign trusted-root create` writes for the same log and TSA', async () => {
    const out = join(dir, 'cosign-made-root.json');
    const start = main.validFrom.toISOString().replace(/\.\d+Z$/, 'Z');
    await runOk(
      'cosign3',
      [
        'trusted-root',
        'create',
        '--no-default-ctfe',
        '--no-default-fulcio',
        '--no-default-rekor',
        '--no-default-tsa',
        `--rekor=url=${main.rekor.url},public-key=${main.rekor.publicKeyFile},start-time=${start},origin=${main.rekor.origin}`,
        `--tsa=url=${main.tsa.url},certificate-chain=${main.tsa.chainFile},start-time=${start}`,
        '--out',
        out,
      ],
      { env: rig.env() },
    );
    const theirs = JSON.parse(await readFile(out, 'utf8')) as TrustedRootJson;
    expect(theirs.tlogs).toEqual(main.trustedRoot.tlogs);
    expect(theirs.timestampAuthorities).toEqual(main.trustedRoot.timestampAuthorities);
  });

  it('the TSA chain is leaf, intermediate, root, and the leaf is for time stamping', () => {
    const certs = main.tsa.chainPem.map((p) => new X509Certificate(p));
    expect(certs).toHaveLength(3);
    expect(certs[0]!.verify(certs[1]!.publicKey)).toBe(true);
    expect(certs[1]!.verify(certs[2]!.publicKey)).toBe(true);
    expect(certs[0]!.keyUsage).toContain('1.3.6.1.5.5.7.3.8');
  });
});

describe('a file signed by cosign 3.1 against the real Rekor v2 and TSA', () => {
  it('cosign 3.1 and `npx cosign-web verify-bundle` both verify it with the trusted root', async () => {
    const theirs = await cosignVerifyBlob(blob.bundleFile, main.trustedRootFile, blob.file);
    expect(theirs.code, theirs.stderr).toBe(0);
    const ours = await oursVerifyBlob(blob.bundleFile, main.trustedRootFile, blob.file);
    expect(ours.code, ours.stderr).toBe(0);
    expect(ours.stdout).toContain(`log ${main.rekor.url} #5 (inclusion proof, signed checkpoint)`);
    expect(ours.stdout).toMatch(/timestamp \d{4}-\d\d-\d\dT[\d:.]+Z by local, Test TSA Root/);
    // And by its digest alone.
    const sha = createHash('sha256').update(readFileSync(blob.file)).digest('hex');
    const byDigest = await oursVerifyBlob(blob.bundleFile, main.trustedRootFile, `sha256:${sha}`);
    expect(byDigest.code, byDigest.stderr).toBe(0);
  });

  /**
   * Each alteration: what it changes, what cosign 3.1 says (`accepts` where it does not look — the
   * test pins that down too, so a change in cosign shows), and the code our verifier refuses with.
   */
  type Case = { bundle: string; root: string; file: string };
  const refusals: [string, () => Promise<Case>, RegExp, ('accepts' | 'refuses')?][] = [
    [
      "a root naming another real log's key (ECDSA) instead of this log's",
      async () => {
        const root = rootOf(main);
        root.tlogs = rootOf(other).tlogs;
        return { bundle: blob.bundleFile, root: await writeJson('root-other-log', root), file: blob.file };
      },
      /VERIFY_TLOG_UNTRUSTED/,
    ],
    [
      "a root naming this log's URL and ID with another real log's key",
      async () => {
        const root = rootOf(main);
        root.tlogs[0]!.publicKey = rootOf(other).tlogs[0]!.publicKey;
        return { bundle: blob.bundleFile, root: await writeJson('root-other-key', root), file: blob.file };
      },
      /VERIFY_(CHECKPOINT_INVALID|TLOG_UNTRUSTED)/,
    ],
    [
      'a root naming another real TSA instead of this one',
      async () => {
        const root = rootOf(main);
        root.timestampAuthorities = rootOf(other).timestampAuthorities;
        return { bundle: blob.bundleFile, root: await writeJson('root-other-tsa', root), file: blob.file };
      },
      /VERIFY_TIMESTAMP_UNTRUSTED/,
      // With --key, cosign 3.1 needs no verified time and does not hold the timestamp against the root.
      'accepts',
    ],
    [
      "a tampered entry body (the log's digest of the file changed)",
      async () => {
        const b = structuredClone(blob.bundle);
        const entry = b.verificationMaterial.tlogEntries[0]!;
        const body = JSON.parse(Buffer.from(entry.canonicalizedBody, 'base64').toString('utf8')) as {
          spec: { hashedRekordV002: { data: { digest: string } } };
        };
        body.spec.hashedRekordV002.data.digest = flipBase64(body.spec.hashedRekordV002.data.digest);
        entry.canonicalizedBody = Buffer.from(JSON.stringify(body)).toString('base64');
        return { bundle: await writeJson('bundle-body', b), root: main.trustedRootFile, file: blob.file };
      },
      /VERIFY_INCLUSION_PROOF_INVALID/,
      // For a Rekor v2 entry sigstore-go never reads canonicalizedBody: it rebuilds the entry from
      // the bundle's signature, digest and key and proves that (pkg/verify/tlog.go
      // reconstructV2EntryHash). We prove the body the bundle carries and check that it matches.
      'accepts',
    ],
    [
      'a tampered inclusion proof (one sibling hash changed)',
      async () => {
        const b = structuredClone(blob.bundle);
        const proof = b.verificationMaterial.tlogEntries[0]!.inclusionProof;
        proof.hashes![0] = flipBase64(proof.hashes![0]!);
        return { bundle: await writeJson('bundle-proof', b), root: main.trustedRootFile, file: blob.file };
      },
      /VERIFY_INCLUSION_PROOF_INVALID/,
    ],
    [
      "a tampered checkpoint (the log's signature changed)",
      async () => {
        const b = structuredClone(blob.bundle);
        const cp = b.verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint;
        cp.envelope = cp.envelope.replace(/ (\S+)\n$/, (_m, sig: string) => ` ${flipBase64(sig)}\n`);
        return { bundle: await writeJson('bundle-checkpoint', b), root: main.trustedRootFile, file: blob.file };
      },
      /VERIFY_CHECKPOINT_INVALID/,
    ],
    [
      'the log entry of another file signed by the same key',
      async () => {
        const b = structuredClone(blob.bundle);
        b.verificationMaterial.tlogEntries = structuredClone(otherBlob.bundle.verificationMaterial.tlogEntries);
        return { bundle: await writeJson('bundle-other-entry', b), root: main.trustedRootFile, file: blob.file };
      },
      /VERIFY_TLOG_BODY_MISMATCH/,
    ],
    [
      'the bundle checked against another file',
      async () => ({ bundle: blob.bundleFile, root: main.trustedRootFile, file: otherBlob.file }),
      /VERIFY_(DIGEST_MISMATCH|BAD_SIGNATURE|TLOG_BODY_MISMATCH)/,
    ],
  ];

  it.each(refusals)(
    '%s: we refuse it, and cosign 3.1 gives the verdict pinned here',
    async (_what, make, code, cosign = 'refuses') => {
      const c = await make();
      const theirs = await cosignVerifyBlob(c.bundle, c.root, c.file);
      expect(theirs.code === 0 ? 'accepts' : 'refuses', theirs.stderr).toBe(cosign);
      const ours = await oursVerifyBlob(c.bundle, c.root, c.file);
      expect(ours.code, ours.stdout).toBe(1);
      expect(ours.stderr).toMatch(/^Not verified: /);
      expect(ours.stderr).toMatch(code);
    },
  );
});

describe('an image signed by cosign 3.1 against the real Rekor v2 and TSA', () => {
  let ref: string;
  let image: Awaited<ReturnType<typeof pushSampleImage>>;
  let bundleKind: string;
  let imageBundle: BundleJson & {
    dsseEnvelope?: { payload: string; payloadType: string; signatures: { sig: string }[] };
  };

  beforeAll(async () => {
    image = await pushSampleImage(rig.tls, 'stack/signed', 'v1');
    ref = `${image.repository}@${image.digest}`;
    await runOk(
      'cosign3',
      [
        'sign',
        '--key',
        key.key,
        '--signing-config',
        main.signingConfigFile,
        '--trusted-root',
        main.trustedRootFile,
        '--new-bundle-format',
        '--yes',
        ref,
      ],
      { env: rig.env() },
    );
  }, 180_000);

  const cosignVerify = (root: string) =>
    run('cosign3', ['verify', '--key', key.pub, '--trusted-root', root, ref], { env: rig.env() });
  const ours = (root: string) =>
    verifyImage(rig.client, {
      image: ref,
      spki: parsePublicKey(readFileSync(key.pub, 'utf8')).spki,
      trust: async () => buildTrust({ root: { json: readFileSync(root), name: 'rig services root' } }),
    });

  it('cosign 3.1 verifies it with the trusted root, and so does the page’s verifier, through the log and the TSA', async () => {
    const theirs = await cosignVerify(main.trustedRootFile);
    expect(theirs.code, theirs.stderr).toBe(0);
    const r = await ours(main.trustedRootFile);
    expect(r.verified, r.summary).toBe(true);
    const sig = r.manifests[0]!.signatures.find((s) => s.verified)!;
    expect(sig.format).toBe('bundle');
    expect(sig.tlogEntry).toBe(true);
    expect(sig.sigstore?.tlog).toHaveLength(1);
    expect(sig.sigstore!.tlog[0]!).toMatchObject({ log: main.rekor.url, proof: 'inclusion proof, signed checkpoint' });
    bundleKind = sig.sigstore!.tlog[0]!.kind;
    const repository = image.repository.slice(rig.tls.host.length + 1);
    imageBundle = JSON.parse(
      Buffer.from(await rig.client.getBlob({ registry: rig.tls.host, repository }, sig.source.blob!)).toString('utf8'),
    ) as BundleJson & { dsseEnvelope?: { payload: string; payloadType: string; signatures: { sig: string }[] } };
    expect(sig.sigstore?.timestamps).toHaveLength(1);
    expect(sig.sigstore!.timestamps[0]!.authority).toBe('local, Test TSA Root');
    expect(r.trustedRoot?.name).toBe('rig services root');
  });

  it('the image signature is a DSSE envelope, logged to Rekor v2 as a hashedrekord 0.0.2 over SHA-256 of its PAE', () => {
    expect(bundleKind).toBe('hashedrekord 0.0.2');
    const env = imageBundle.dsseEnvelope!;
    expect(env.payloadType).toBe('application/vnd.in-toto+json');
    const entry = imageBundle.verificationMaterial.tlogEntries[0]!;
    const body = JSON.parse(Buffer.from(entry.canonicalizedBody, 'base64').toString('utf8')) as {
      spec: { hashedRekordV002: { data: { digest: string }; signature: { content: string } } };
    };
    const payload = Buffer.from(env.payload, 'base64');
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${env.payloadType.length} ${env.payloadType} ${payload.length} `),
      payload,
    ]);
    expect(body.spec.hashedRekordV002.data.digest).toBe(createHash('sha256').update(pae).digest('base64'));
    expect(body.spec.hashedRekordV002.signature.content).toBe(env.signatures[0]!.sig);
  });

  it("with another real log's key in the root cosign 3.1 refuses and so do we; with another real TSA only we do", async () => {
    const otherLog = rootOf(main);
    otherLog.tlogs = rootOf(other).tlogs;
    const otherTsa = rootOf(main);
    otherTsa.timestampAuthorities = rootOf(other).timestampAuthorities;
    for (const [root, code, cosign] of [
      [await writeJson('image-root-other-log', otherLog), 'VERIFY_TLOG_UNTRUSTED', 'refuses'],
      // As for files: with --key cosign 3.1 does not hold the timestamp against the root.
      [await writeJson('image-root-other-tsa', otherTsa), 'VERIFY_TIMESTAMP_UNTRUSTED', 'accepts'],
    ] as const) {
      const theirs = await cosignVerify(root);
      expect(theirs.code === 0 ? 'accepts' : 'refuses', theirs.stderr).toBe(cosign);
      const r = await ours(root);
      expect(r.verified, r.summary).toBe(false);
      const sig = r.manifests[0]!.signatures[0]!;
      expect(sig.error?.code, r.summary).toBe(code);
    }
  });
});
