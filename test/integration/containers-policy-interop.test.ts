/**
 * A pasted containers-policy.json applied by the page (shared/ops/containers-policy/apply.ts, the
 * code #/verify runs) gives the verdict the REAL skopeo 1.18 gives with the same policy file, on
 * the same images: keyless images signed by test/rig/keyless-images.ts (certificate from the rig's
 * CA, Rekor v1 SET by the rig's log key, cosign 2.5 `attach signature`) under `fulcio` +
 * `rekorPublicKeyData` and under `pki`, and a keyed image signed by cosign 2.5 under `keyData(s)`;
 * the refusals included: another e-mail, another issuer, an untrusted CA, an expired certificate,
 * another Rekor key, a SET by another key, a signedIdentity that does not match, `reject`, and
 * `insecureAcceptAnything`. Every policy uses the *Data forms (base64 of the PEM), the only ones
 * a browser can read; skopeo reads the very same file.
 * Spec: https://github.com/containers/image/blob/main/docs/containers-policy.json.5.md
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyWithContainersPolicy } from '../../shared/ops/containers-policy/apply.ts';
import type { VerificationResult } from '../../shared/ops/verify.ts';
import { pushSampleImage, skopeoAccess, type PushedImage } from '../rig/images.ts';
import { signKeylessImages, type KeylessFixtures, type VariantName } from '../rig/keyless-images.ts';
import { OTHER_EMAIL, OTHER_ISSUER, TEST_EMAIL, TEST_ISSUER } from '../rig/sigstore-pki.ts';
import { cosign2SignArgs, run, runOk, skopeoEnv, skopeoRegistryFlags } from '../rig/tools.ts';
import { useRig, VECTORS } from './rig-context.ts';

const PASSWORD = 'correct horse';
const rig = useRig({ prefix: 'cosign-web-policy-', password: PASSWORD });

const VARIANTS: VariantName[] = [
  'good',
  'otherIdentity',
  'otherIssuer',
  'untrustedCa',
  'expired',
  'setByOtherKey',
  'timestamped',
  'timestampOverOtherData',
];

let fx: KeylessFixtures;
let keyed: PushedImage;
let dir: string;
const b64 = (file: string): string => readFileSync(file).toString('base64');
const keyPub = (name: string): string => join(VECTORS, `${name}.pub`);

beforeAll(async () => {
  dir = await rig.tempDir('cosign-web-policy-fx-');
  fx = await signKeylessImages({ home: rig.home, registry: rig.tls, dir, repoPrefix: 'policy', only: VARIANTS });
  keyed = await pushSampleImage(rig.tls, 'policy/keyed', 'v1', { label: 'keyed' });
  await runOk('cosign2', cosign2SignArgs(join(VECTORS, 'cosign2-pw.key'), keyed.ref), { env: rig.env() });
}, 300_000);

const image = (name: VariantName): PushedImage => fx.variants.find((v) => v.name === name)!.image;
const repoOf = (img: PushedImage): string => img.repository;

type Req = Record<string, unknown>;
const fulcio = (opts: { email?: string; issuer?: string; rekor?: string } = {}): Req => ({
  type: 'sigstoreSigned',
  fulcio: {
    caData: b64(fx.trust.caRoots),
    oidcIssuer: opts.issuer ?? TEST_ISSUER,
    subjectEmail: opts.email ?? TEST_EMAIL,
  },
  rekorPublicKeyData: b64(opts.rekor ?? fx.trust.rekorPublicKey),
  signedIdentity: { type: 'matchRepository' },
});
const pki = (email = TEST_EMAIL): Req => ({
  type: 'sigstoreSigned',
  pki: {
    caRootsData: b64(fx.trust.caRoots),
    caIntermediatesData: b64(fx.trust.caIntermediates),
    subjectEmail: email,
  },
  signedIdentity: { type: 'matchRepository' },
});
const keyData = (...names: string[]): Req => ({
  type: 'sigstoreSigned',
  ...(names.length === 1 ? { keyData: b64(keyPub(names[0]!)) } : { keyDatas: names.map((n) => b64(keyPub(n))) }),
  signedIdentity: { type: 'matchRepository' },
});
/** A whole policy: `reqs` for the image's repository, reject by default, oci: accepted (skopeo's destination). */
const policyFor = (img: PushedImage, reqs: Req[], scope = repoOf(img)): string =>
  JSON.stringify({
    default: [{ type: 'reject' }],
    transports: { docker: { [scope]: reqs }, oci: { '': [{ type: 'insecureAcceptAnything' }] } },
  });

async function skopeo(policyText: string, img: PushedImage, label: string): Promise<{ ok: boolean; stderr: string }> {
  const scratch = join(dir, 'skopeo', label);
  await mkdir(scratch, { recursive: true });
  const policy = join(scratch, 'policy.json');
  await writeFile(policy, policyText);
  const access = await skopeoAccess(rig.tls, scratch);
  const argv = ['--policy', policy, 'copy', '--remove-signatures', ...skopeoRegistryFlags(access, 'src')];
  const r = await run('skopeo', [...argv, `docker://${img.ref}`, `oci:${join(scratch, 'layout')}:pulled`], {
    env: skopeoEnv(rig.home),
  });
  return { ok: r.code === 0, stderr: r.stderr };
}

const ours = (policyText: string, img: PushedImage): Promise<VerificationResult> =>
  verifyWithContainersPolicy(rig.client, policyText, { image: img.ref });

interface Case {
  label: string;
  image: () => PushedImage;
  policy: () => string;
  /** What both must say (the fixture's meaning). */
  accepted: boolean;
  /** The page's code when refused. */
  code?: string;
}

const CASES: Case[] = [
  {
    label: 'fulcio: good',
    image: () => image('good'),
    policy: () => policyFor(image('good'), [fulcio()]),
    accepted: true,
  },
  {
    label: 'fulcio: certificate for another e-mail',
    image: () => image('otherIdentity'),
    policy: () => policyFor(image('otherIdentity'), [fulcio()]),
    accepted: false,
    code: 'VERIFY_IDENTITY_MISMATCH',
  },
  {
    label: 'fulcio: the policy asks another e-mail',
    image: () => image('good'),
    policy: () => policyFor(image('good'), [fulcio({ email: OTHER_EMAIL })]),
    accepted: false,
    code: 'VERIFY_IDENTITY_MISMATCH',
  },
  {
    label: 'fulcio: another OIDC issuer',
    image: () => image('otherIssuer'),
    policy: () => policyFor(image('otherIssuer'), [fulcio()]),
    accepted: false,
    code: 'VERIFY_ISSUER_MISMATCH',
  },
  {
    label: 'fulcio: the policy asks another issuer',
    image: () => image('good'),
    policy: () => policyFor(image('good'), [fulcio({ issuer: OTHER_ISSUER })]),
    accepted: false,
    code: 'VERIFY_ISSUER_MISMATCH',
  },
  {
    label: 'fulcio: untrusted CA',
    image: () => image('untrustedCa'),
    policy: () => policyFor(image('untrustedCa'), [fulcio()]),
    accepted: false,
    code: 'VERIFY_CERTIFICATE_UNTRUSTED',
  },
  {
    label: 'fulcio: certificate expired at the log time',
    image: () => image('expired'),
    policy: () => policyFor(image('expired'), [fulcio()]),
    accepted: false,
    code: 'VERIFY_CERTIFICATE_EXPIRED',
  },
  {
    label: 'fulcio: SET by another key',
    image: () => image('setByOtherKey'),
    policy: () => policyFor(image('setByOtherKey'), [fulcio()]),
    accepted: false,
    code: 'VERIFY_SET_INVALID',
  },
  {
    label: 'fulcio: the policy names another Rekor key',
    image: () => image('good'),
    policy: () => policyFor(image('good'), [fulcio({ rekor: fx.pki.otherLogKey.pubFile })]),
    accepted: false,
    code: 'VERIFY_TLOG_UNTRUSTED',
  },
  {
    label: 'fulcio: a bad RFC 3161 timestamp is ignored, as containers/image ignores timestamps',
    image: () => image('timestampOverOtherData'),
    policy: () => policyFor(image('timestampOverOtherData'), [fulcio()]),
    accepted: true,
  },
  {
    label: 'fulcio: signedIdentity matchRepoDigestOrExact (the default) refuses cosign’s repository-only identity',
    image: () => image('good'),
    policy: () => policyFor(image('good'), [{ ...fulcio(), signedIdentity: undefined }]),
    accepted: false,
    code: 'VERIFY_IDENTITY_MISMATCH',
  },
  {
    label: 'fulcio: signedIdentity exactRepository of another repository',
    image: () => image('good'),
    policy: () =>
      policyFor(image('good'), [
        { ...fulcio(), signedIdentity: { type: 'exactRepository', dockerRepository: `${rig.tls.host}/elsewhere` } },
      ]),
    accepted: false,
    code: 'VERIFY_IDENTITY_MISMATCH',
  },
  {
    label: 'pki: certificate valid now',
    image: () => image('timestamped'),
    policy: () => policyFor(image('timestamped'), [pki()]),
    accepted: true,
  },
  {
    label: 'pki: certificate expired now (pki has no log time)',
    image: () => image('good'),
    policy: () => policyFor(image('good'), [pki()]),
    accepted: false,
    code: 'VERIFY_CERTIFICATE_EXPIRED',
  },
  {
    label: 'pki: another e-mail',
    image: () => image('timestamped'),
    policy: () => policyFor(image('timestamped'), [pki(OTHER_EMAIL)]),
    accepted: false,
    code: 'VERIFY_IDENTITY_MISMATCH',
  },
  {
    label: 'keyData: the signing key',
    image: () => keyed,
    policy: () => policyFor(keyed, [keyData('cosign2-pw')]),
    accepted: true,
  },
  {
    label: 'keyData: another key',
    image: () => keyed,
    policy: () => policyFor(keyed, [keyData('cosign3-pw')]),
    accepted: false,
    code: 'VERIFY_BAD_SIGNATURE',
  },
  {
    label: 'keyDatas: another key, then the signing key',
    image: () => keyed,
    policy: () => policyFor(keyed, [keyData('cosign3-pw', 'cosign2-pw')]),
    accepted: true,
  },
  {
    label: 'keyData with a Rekor key: the signature has no SET',
    image: () => keyed,
    policy: () => policyFor(keyed, [{ ...keyData('cosign2-pw'), rekorPublicKeyData: b64(fx.trust.rekorPublicKey) }]),
    accepted: false,
    code: 'VERIFY_TLOG_MISSING',
  },
  {
    label: 'reject',
    image: () => keyed,
    policy: () => policyFor(keyed, [{ type: 'reject' }]),
    accepted: false,
    code: 'POLICY_REJECTED',
  },
  {
    label: 'insecureAcceptAnything',
    image: () => keyed,
    policy: () => policyFor(keyed, [{ type: 'insecureAcceptAnything' }]),
    accepted: true,
  },
  {
    label: 'signedBy (GPG): skopeo finds no GPG signature; the page says it cannot check GPG',
    image: () => keyed,
    policy: () => policyFor(keyed, [{ type: 'signedBy', keyType: 'GPGKeys', keyData: b64(keyPub('cosign2-pw')) }]),
    accepted: false,
    code: 'POLICY_UNSUPPORTED',
  },
  {
    label: 'insecureAcceptAnything AND reject',
    image: () => keyed,
    policy: () => policyFor(keyed, [{ type: 'insecureAcceptAnything' }, { type: 'reject' }]),
    accepted: false,
    code: 'POLICY_REJECTED',
  },
  {
    label: 'scope: the registry host applies, the default (reject) does not',
    image: () => keyed,
    policy: () => policyFor(keyed, [keyData('cosign2-pw')], rig.tls.host),
    accepted: true,
  },
  {
    label: 'scope: another repository’s requirement does not apply, the default rejects',
    image: () => keyed,
    policy: () => policyFor(keyed, [{ type: 'insecureAcceptAnything' }], `${rig.tls.host}/policy/other`),
    accepted: false,
    code: 'POLICY_REJECTED',
  },
];

describe('the page applies a containers-policy.json as skopeo 1.18 does', () => {
  it.each(CASES.map((c) => [c.label, c] as const))('%s', async (_label, c) => {
    const text = c.policy();
    const img = c.image();
    const [theirs, mine] = await Promise.all([skopeo(text, img, c.label.replace(/\W+/g, '-')), ours(text, img)]);
    expect(theirs.ok, `skopeo: ${theirs.stderr}`).toBe(c.accepted);
    expect(mine.verified, mine.summary).toBe(theirs.ok);
    if (c.code) expect(mine.error?.code).toBe(c.code);
    expect(mine.policy.containersPolicy?.scope).toMatch(/^(default|transports\.docker\[".*"\])$/);
    expect(mine.summary).toMatch(mine.verified ? /^Verified/ : /^Not verified/);
  });

  it('records the scope and each requirement in the result', async () => {
    const text = policyFor(keyed, [{ type: 'insecureAcceptAnything' }, keyData('cosign2-pw')]);
    const r = await ours(text, keyed);
    expect(r.verified, r.summary).toBe(true);
    expect(r.policy.containersPolicy).toEqual({
      scope: `transports.docker[${JSON.stringify(keyed.repository)}]`,
      identity: keyed.ref,
      requirements: [
        { type: 'insecureAcceptAnything', trust: null, outcome: 'accepted' },
        { type: 'sigstoreSigned', trust: 'keyData', outcome: 'accepted' },
      ],
    });
    expect(r.policy.identity).toEqual({ type: 'matchRepository' });
    expect(r.manifests[0]!.lookups.referrers).toBe('not-read');
  });

  it('refuses *Path forms with a sentence naming the *Data form, where skopeo reads the file', async () => {
    const text = policyFor(keyed, [
      { type: 'sigstoreSigned', keyPath: keyPub('cosign2-pw'), signedIdentity: { type: 'matchRepository' } },
    ]);
    expect((await skopeo(text, keyed, 'keypath')).ok).toBe(true);
    const r = await ours(text, keyed);
    expect(r.error?.code).toBe('POLICY_UNSUPPORTED');
    expect(r.error?.message).toMatch(/keyData/);
  });
});
