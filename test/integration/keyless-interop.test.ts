/**
 * Proves the keyless fixtures (test/rig/keyless-images.ts, test/rig/sigstore-pki.ts) mean what
 * their names say, by asking the REAL verifiers: cosign 2.5 (SIGSTORE_ROOT_FILE,
 * SIGSTORE_REKOR_PUBLIC_KEY, --offline), cosign 3.1 (--trusted-root made by `cosign trusted-root
 * create`), skopeo 1.18 (containers-policy.json `sigstoreSigned` with `fulcio` + rekorPublicKeyPath,
 * and with `pki`). The good variants are accepted by each tool that can see and express them, every
 * bad one is refused by all of them, and where a tool cannot (bundles for cosign 2.5 and skopeo, URI
 * identities for skopeo, RFC 3161 timestamps for skopeo, `pki` without a log) the fixture says so.
 * Then the signed objects themselves: the `.sig` layer's annotations, the bundle cosign 3.1 wrote,
 * and the trust material. The page's own verdicts on the same images can be compared with these.
 *
 * Spec: https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md,
 * https://github.com/containers/image/blob/main/docs/containers-policy.json.5.md
 */
import { X509Certificate, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { referrersTag, sigTag } from '../../shared/cosign/manifests.ts';
import type { RepoRef } from '../../shared/registry/client.ts';
import type { Descriptor } from '../../shared/registry/mediatypes.ts';
import {
  JUDGES,
  VARIANT_SPECS,
  makeKeylessFixtures,
  type KeylessFixtures,
  type VariantName,
  type VariantVerdicts,
} from '../rig/keyless-images.ts';
import { GITHUB_CLAIMS, canonicalSetPayload, type RekorBundle } from '../rig/sigstore-pki.ts';
import { useRig } from './rig-context.ts';
import { verifyImage } from '../../shared/ops/verify.ts';
import { policySnippets } from '../../shared/ops/verify-snippets.ts';
import { cosignEnv, run } from '../rig/tools.ts';
import { buildTrust, type SigstoreTrust } from '../../shared/ops/verify-sigstore.ts';
import type { IdentityPolicy } from '../../shared/sigstore/policy.ts';

const rig = useRig({ prefix: 'cosign-web-keyless-' });

let fx: Omit<KeylessFixtures, 'variants'> & { variants: VariantVerdicts[] };
const variant = (name: VariantName): VariantVerdicts => fx.variants.find((v) => v.name === name)!;
const repoOf = (v: VariantVerdicts): RepoRef => ({
  registry: rig.tls.host,
  repository: v.image.repository.slice(rig.tls.host.length + 1),
});

beforeAll(async () => {
  fx = await makeKeylessFixtures({
    home: rig.home,
    registry: rig.tls,
    dir: await rig.tempDir('cosign-web-keyless-fx-'),
  });
  // The table the report and the page's comparison tests read.
  const rows = fx.variants.map(
    (v) =>
      `| ${v.name} | ${v.valid ? 'valid' : 'invalid'} | ${JUDGES.map((j) => (v.verdicts[j].accepted ? 'accept' : `refuse (${v.verdicts[j].code})`)).join(' | ')} |`,
  );
  console.log(['| variant | means | cosign 2.5 | cosign 3.1 | skopeo fulcio | skopeo pki |', ...rows].join('\n'));
}, 240_000);

describe.each(Object.keys(VARIANT_SPECS) as VariantName[])('%s', (name) => {
  it.each(JUDGES)('%s gives the verdict the variant means', (judge) => {
    const v = variant(name);
    const got = v.verdicts[judge];
    const want = v.expected[judge];
    expect(got.accepted, `${judge} on ${name} (${v.description}): ${got.summary}\n${got.argv.join(' ')}`).toBe(
      want.accepted,
    );
    if (!got.accepted) expect(got.code).not.toBe(0);
  });
});

describe('the refusals are for the reason the variant is about', () => {
  const reasons: [VariantName, 'cosign2' | 'cosign3' | 'skopeoFulcio', RegExp][] = [
    ['otherIdentity', 'cosign2', /none of the expected identities matched.*mallory@rig\.test/],
    ['otherIdentity', 'skopeoFulcio', /Required email \\?"alice@rig\.test\\?" not found/],
    ['otherIssuer', 'cosign3', /with issuer https:\/\/other-oidc\.rig\.test/],
    ['otherIssuer', 'skopeoFulcio', /Unexpected Fulcio OIDC issuer/],
    ['notYetValid', 'cosign2', /certificate was issued after signatures were entered in log/],
    ['notYetValid', 'cosign3', /certificate was issued after observed time/],
    ['expired', 'cosign2', /certificate expired before signatures were entered in log/],
    ['expired', 'skopeoFulcio', /certificate has expired or is not yet valid/],
    ['untrustedCa', 'cosign2', /certificate signed by unknown authority/],
    ['untrustedCa', 'cosign3', /leaf certificate verification failed/],
    ['untrustedCa', 'skopeoFulcio', /certificate signed by unknown authority/],
    ['setByOtherKey', 'cosign2', /unable to verify SET/],
    ['setByOtherKey', 'cosign3', /unable to verify SET/],
    ['setByOtherKey', 'skopeoFulcio', /signature verification of Rekor SET failed/],
    ['bodyMismatch', 'cosign2', /invalid signature when validating ASN\.1 encoded signature/],
    ['bodyMismatch', 'skopeoFulcio', /payload in Rekor SET does not match/],
    ['bodyOtherSignature', 'cosign3', /signature in bundle does not match signature being verified/],
    ['bodyOtherSignature', 'skopeoFulcio', /signature in Rekor SET does not match/],
    ['bodyOtherCertificate', 'skopeoFulcio', /publicKey in Rekor SET does not match/],
    ['timestampOverOtherData', 'cosign2', /unable to verify RFC3161 timestamp/],
    ['timestampOverOtherData', 'cosign3', /unable to verify RFC3161 timestamp/],
    ['bundleWrongIdentity', 'cosign3', /expected SAN value "mallory@rig\.test", got "alice@rig\.test"/],
    ['bundleUntrustedCa', 'cosign3', /leaf certificate verification failed/],
    ['bundleLogTimestampOverOtherData', 'cosign3', /unable to verify signed timestamps: hashed messages don't match/],
    ['bundleLogExpired', 'cosign3', /integrated time outside certificate validity/],
    ['bundleLogSetByOtherKey', 'cosign3', /not enough verified log entries from transparency log/],
  ];
  it.each(reasons)('%s: %s says %s', (name, judge, pattern) => {
    expect(variant(name).verdicts[judge].summary).toMatch(pattern);
  });
});

describe('what was signed and attached', () => {
  it('legacy: one cosign 2.5 layer per image with the certificate, chain, Rekor bundle (and timestamp) annotations', async () => {
    const legacy = fx.variants.filter((x) => x.format === 'legacy');
    expect(legacy.length).toBeGreaterThan(0);
    for (const v of legacy) {
      const sig = await rig.client.getManifest(repoOf(v), sigTag(v.image.digest));
      const layers = sig.json['layers'] as Descriptor[];
      expect(layers, v.name).toHaveLength(1);
      const a = layers[0]!.annotations!;
      expect(a['dev.cosignproject.cosign/signature'], v.name).toBe(v.signature!.toString('base64'));
      expect(a['dev.sigstore.cosign/certificate'], v.name).toBe(v.leaf.certPem);
      expect(a['dev.sigstore.cosign/chain'], v.name).toBe(v.leaf.ca.intermediatePem + v.leaf.ca.rootPem);
      const bundle = JSON.parse(a['dev.sigstore.cosign/bundle']!) as RekorBundle;
      expect(bundle.Payload.logID).toBe(fx.pki.logKey.logId);
      expect(bundle.Payload.integratedTime).toBe(v.integratedTime);
      const payload = await rig.client.getBlob(repoOf(v), layers[0]!.digest);
      expect(Buffer.from(payload).equals(v.payload!), v.name).toBe(true);
      expect(JSON.parse(Buffer.from(payload).toString('utf8'))).toMatchObject({
        critical: { image: { 'docker-manifest-digest': v.image.digest }, type: 'cosign container image signature' },
      });
      // The SET verifies with the log key exactly when the variant says it was signed by it.
      const setOk = nodeVerify(
        'sha256',
        Buffer.from(canonicalSetPayload(bundle.Payload)),
        fx.pki.logKey.publicKey,
        Buffer.from(bundle.SignedEntryTimestamp, 'base64'),
      );
      expect(setOk, v.name).toBe(v.name !== 'setByOtherKey');
      const ts = a['dev.sigstore.cosign/rfc3161timestamp'];
      expect(ts !== undefined, v.name).toBe(VARIANT_SPECS[v.name].timestamp !== undefined);
      if (ts !== undefined) expect(JSON.parse(ts)).toHaveProperty('SignedRFC3161Timestamp');
    }
  });

  it('bundle: cosign 3.1 wrote a v0.3 bundle holding the leaf certificate and no log entry', async () => {
    const v = variant('bundleGood');
    const index = await rig.client.getManifest(repoOf(v), referrersTag(v.image.digest));
    const refs = index.json['manifests'] as Descriptor[];
    expect(refs).toHaveLength(1);
    const m = await rig.client.getManifest(repoOf(v), refs[0]!.digest);
    const layer = (m.json['layers'] as Descriptor[])[0]!;
    expect(layer.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    const bundle = JSON.parse(Buffer.from(await rig.client.getBlob(repoOf(v), layer.digest)).toString('utf8')) as {
      mediaType: string;
      verificationMaterial: { certificate?: { rawBytes: string }; tlogEntries?: unknown[] };
      dsseEnvelope?: unknown;
    };
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(bundle.verificationMaterial.certificate?.rawBytes).toBe(
      Buffer.from(new X509Certificate(v.leaf.certPem).raw).toString('base64'),
    );
    expect(bundle.verificationMaterial.tlogEntries ?? []).toHaveLength(0);
    expect(bundle.dsseEnvelope).toBeDefined();

    // The bundle built here and attached with `cosign3 attach signature --payload` lands the same way.
    const logged = variant('bundleLogGood');
    const lindex = await rig.client.getManifest(repoOf(logged), referrersTag(logged.image.digest));
    const lm = await rig.client.getManifest(repoOf(logged), (lindex.json['manifests'] as Descriptor[])[0]!.digest);
    expect(lm.json['artifactType']).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect((lm.json['subject'] as Descriptor).digest).toBe(logged.image.digest);
    expect(lm.json['annotations']).toMatchObject({
      'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1',
    });

    // Each logged bundle carries an RFC 3161 timestamp exactly when its variant says so.
    for (const lv of fx.variants.filter((x) => x.format === 'bundle' && VARIANT_SPECS[x.name].log)) {
      const li = await rig.client.getManifest(repoOf(lv), referrersTag(lv.image.digest));
      const ref = await rig.client.getManifest(repoOf(lv), (li.json['manifests'] as Descriptor[])[0]!.digest);
      const blob = await rig.client.getBlob(repoOf(lv), (ref.json['layers'] as Descriptor[])[0]!.digest);
      const b = JSON.parse(Buffer.from(blob).toString('utf8')) as {
        verificationMaterial: { timestampVerificationData?: { rfc3161Timestamps: { signedTimestamp: string }[] } };
      };
      const stamps = b.verificationMaterial.timestampVerificationData?.rfc3161Timestamps ?? [];
      expect(stamps.length, lv.name).toBe(VARIANT_SPECS[lv.name].timestamp === undefined ? 0 : 1);
    }
  });

  it('the leaves are Fulcio-shaped; the trusted root names our CA chain and log', () => {
    const good = new X509Certificate(variant('good').leaf.certPem);
    expect(good.subject ?? '').toBe(''); // node gives undefined for an empty subject
    expect(good.subjectAltName).toBe('email:alice@rig.test');
    expect(good.verify(createPublicKey(fx.pki.ca.intermediatePem))).toBe(true);
    const raw = Buffer.from(good.raw);
    // .1.1 holds the issuer raw; .1.8 as a UTF8String (tag 0x0c, length).
    expect(raw.includes(Buffer.from('https://oidc.rig.test'))).toBe(true);
    expect(raw.includes(Buffer.concat([Buffer.from([0x0c, 21]), Buffer.from('https://oidc.rig.test')]))).toBe(true);
    const gh = Buffer.from(new X509Certificate(variant('github').leaf.certPem).raw);
    for (const claim of Object.values(GITHUB_CLAIMS)) expect(gh.includes(Buffer.from(claim)), claim).toBe(true);

    const tr = JSON.parse(readFileSync(fx.trust.trustedRoot, 'utf8')) as {
      tlogs: { logId: { keyId: string } }[];
      certificateAuthorities: { certChain: { certificates: { rawBytes: string }[] } }[];
    };
    expect(Buffer.from(tr.tlogs[0]!.logId.keyId, 'base64').toString('hex')).toBe(fx.pki.logKey.logId);
    expect(tr.certificateAuthorities[0]!.certChain.certificates.map((c) => c.rawBytes)).toEqual(
      [fx.pki.ca.intermediatePem, fx.pki.ca.rootPem].map((p) =>
        Buffer.from(new X509Certificate(p).raw).toString('base64'),
      ),
    );
  });
});

/**
 * The page's verifier (shared/ops/verify.ts, the code #/verify runs) on the same images with the
 * same trust: the verdict is what each variant means — cosign 3.1's wherever cosign 3.1 can judge
 * it, and also where skopeo cannot (a URI identity) or checks less (a timestamp over other data).
 */
const TEST_ISSUER_TEXT = (issuer: string): string => `"oidcIssuer": ${JSON.stringify(issuer)}`;

describe("the page's verifier on the same images", () => {
  const policyFor = (v: VariantVerdicts): IdentityPolicy => ({
    certificateIdentity: v.identity,
    certificateOidcIssuer: v.issuer,
    ...(v.name === 'github'
      ? {
          githubWorkflowRepository: GITHUB_CLAIMS.repository,
          githubWorkflowRef: GITHUB_CLAIMS.ref,
          githubWorkflowSha: GITHUB_CLAIMS.sha,
          githubWorkflowTrigger: GITHUB_CLAIMS.trigger,
          githubWorkflowName: GITHUB_CLAIMS.name,
        }
      : {}),
  });
  // Bundles cosign 3.1 signed with no log verify there only with --insecure-ignore-tlog.
  const tlogOf = (v: VariantVerdicts) => (v.format === 'bundle' && !VARIANT_SPECS[v.name].log ? 'ignore' : undefined);
  const ours = (v: VariantVerdicts, trust: () => SigstoreTrust) =>
    verifyImage(rig.client, {
      image: v.ref,
      certificate: policyFor(v),
      tlog: tlogOf(v),
      trust: async () => trust(),
    });

  // cosign 3.1's trust: the trusted_root.json `cosign trusted-root create` made (CA, log, TSA; no CT log).
  const rootTrust = (): SigstoreTrust =>
    buildTrust({ root: { json: readFileSync(fx.trust.trustedRoot), name: 'rig trusted root' } });
  // skopeo's fulcio + rekorPublicKeyPath, cosign 2.5's SIGSTORE_ROOT_FILE + SIGSTORE_REKOR_PUBLIC_KEY.
  const pkiTrust = (): SigstoreTrust =>
    buildTrust({
      root: 'public-good',
      caRootsPem: readFileSync(fx.trust.caRoots, 'utf8'),
      caIntermediatesPem: readFileSync(fx.trust.caIntermediates, 'utf8'),
      rekorPublicKey: readFileSync(fx.trust.rekorPublicKey, 'utf8'),
    });

  it.each(Object.keys(VARIANT_SPECS) as VariantName[])('%s, with the trusted root', async (name) => {
    const v = variant(name);
    const r = await ours(v, rootTrust);
    expect(r.verified, `${v.description}: ${r.summary}`).toBe(v.valid);
    if (!v.expected.cosign3.why) expect(r.verified).toBe(v.verdicts.cosign3.accepted);
    const s = r.manifests[0]!.signatures[0]!;
    if (v.valid) {
      expect(s.sigstore?.signer).toMatchObject({ kind: 'certificate', identity: v.identity, issuer: v.issuer });
      // A timestamped variant's timestamp is verified and reported, by the rig's TSA.
      expect(s.sigstore?.timestamps.length, name).toBe(VARIANT_SPECS[name].timestamp === undefined ? 0 : 1);
      expect(r.trustedRoot?.name).toBe('rig trusted root');
    } else expect(r.error?.code).toMatch(/^VERIFY_/);
  });

  const legacyNoTimestamp = (Object.keys(VARIANT_SPECS) as VariantName[]).filter(
    (n) => VARIANT_SPECS[n].format === 'legacy' && !VARIANT_SPECS[n].timestamp,
  );
  it.each(legacyNoTimestamp)('%s, with the private PKI and the Rekor key', async (name) => {
    const v = variant(name);
    const r = await ours(v, pkiTrust);
    expect(r.verified, `${v.description}: ${r.summary}`).toBe(v.valid);
    expect(r.verified).toBe(v.verdicts.cosign2.accepted);
    if (!v.expected.skopeoFulcio.why) expect(r.verified).toBe(v.verdicts.skopeoFulcio.accepted);
  });

  it('each refusal has its own code', async () => {
    const codes: Partial<Record<VariantName, string>> = {
      otherIdentity: 'VERIFY_IDENTITY_MISMATCH',
      otherIssuer: 'VERIFY_ISSUER_MISMATCH',
      notYetValid: 'VERIFY_CERTIFICATE_EXPIRED',
      expired: 'VERIFY_CERTIFICATE_EXPIRED',
      untrustedCa: 'VERIFY_CERTIFICATE_UNTRUSTED',
      setByOtherKey: 'VERIFY_SET_INVALID',
      bodyOtherSignature: 'VERIFY_TLOG_BODY_MISMATCH',
      bodyOtherCertificate: 'VERIFY_TLOG_BODY_MISMATCH',
      timestampOverOtherData: 'VERIFY_TIMESTAMP_INVALID',
      bundleWrongIdentity: 'VERIFY_IDENTITY_MISMATCH',
      bundleUntrustedCa: 'VERIFY_CERTIFICATE_UNTRUSTED',
      bundleLogTimestampOverOtherData: 'VERIFY_TIMESTAMP_INVALID',
    };
    for (const [name, code] of Object.entries(codes)) {
      const r = await ours(variant(name as VariantName), rootTrust);
      expect(r.manifests[0]!.signatures[0]!.error?.code, name).toBe(code);
    }
  });

  it('the cosign command the page offers for a keyless verdict is accepted by the real cosign 3.1', async () => {
    const v = variant('good');
    const r = await ours(v, rootTrust);
    const { cosign, containersPolicy } = policySnippets(r);
    expect(containersPolicy.text).toContain(TEST_ISSUER_TEXT(v.issuer));
    const argv = cosign.argv[0]!.slice(1).map((a) => (a === 'trusted_root.json' ? fx.trust.trustedRoot : a));
    expect(argv).toEqual(expect.arrayContaining(['--certificate-identity', v.identity, '--insecure-ignore-sct']));
    const res = await run('cosign3', argv, { env: cosignEnv(rig.home, { caFile: rig.tls.caFile }) });
    expect(res.code, res.stderr).toBe(0);
    // With a private PKI, the containers requirement is `pki` (skopeo takes no Rekor key with it).
    const pki = policySnippets(await ours(v, pkiTrust));
    const req = (
      JSON.parse(pki.containersPolicy.text) as { transports: { docker: Record<string, [Record<string, unknown>]> } }
    ).transports.docker;
    expect(Object.values(req)[0]![0]).toMatchObject({ type: 'sigstoreSigned', pki: { subjectEmail: v.identity } });
    expect(pki.cosign.argv[0]).toEqual(expect.arrayContaining(['--ca-roots', '--ca-intermediates']));
  });

  it('a regular expression that does not match, and one RE2 cannot read', async () => {
    const v = variant('good');
    const miss = await verifyImage(rig.client, {
      image: v.ref,
      certificate: { certificateIdentityRegexp: '^bob@', certificateOidcIssuer: v.issuer },
      trust: async () => rootTrust(),
    });
    expect(miss.error?.code).toBe('VERIFY_IDENTITY_MISMATCH');
    const bad = await verifyImage(rig.client, {
      image: v.ref,
      certificate: { certificateIdentityRegexp: '(?=alice)', certificateOidcIssuer: v.issuer },
      trust: async () => rootTrust(),
    });
    expect(bad.error?.code).toBe('VERIFY_REGEXP_INVALID');
  });
});
