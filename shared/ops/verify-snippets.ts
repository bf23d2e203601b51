/**
 * What to run or deploy to enforce a verification the page just made, with the same key, image
 * and rule:
 *
 * - the `cosign verify` command line (https://github.com/sigstore/cosign/blob/main/doc/cosign_verify.md),
 *   with `--insecure-ignore-tlog=true` when no verified signature has a transparency-log entry;
 * - a containers-policy.json(5) `sigstoreSigned` requirement (keyData = base64 of the PEM,
 *   signedIdentity as chosen), read by skopeo, podman and CRI-O;
 * - a Kyverno ClusterPolicy `verifyImages` rule (https://kyverno.io/docs/writing-policies/verify-images/sigstore/);
 * - a Sigstore policy-controller ClusterImagePolicy (https://docs.sigstore.dev/policy-controller/overview),
 *   whose key authority without `ctlog` skips the transparency log.
 *
 * Each comes with notes where the tool checks less (or other things) than the page did. Kyverno's
 * ClusterPolicy and policy-controller read the legacy `.sig` signatures; skopeo 1.18 reads only
 * those too; cosign 2.x cannot see bundles.
 */
import { toBase64, utf8 } from '../encoding/base64.ts';
import { signedIdentityJson } from '../cosign/identity.ts';
import type { VerificationResult } from './verify.ts';
import { keylessSnippets } from './keyless-snippets.ts';

export type { PolicySnippets } from './snippet-types.ts';
export { shellQuote } from './snippet-types.ts';
import { kubernetesName, kyvernoHead, shellQuote, type PolicySnippets, type Snippet } from './snippet-types.ts';

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .trimEnd()
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

/** What every snippet is made from: the verified result, read once. */
interface Facts {
  /** `host/repo`. */
  repo: string;
  pem: string;
  fingerprint: string | null;
  policy: VerificationResult['policy'];
  isIndex: boolean;
  /** The formats of the verified signatures. */
  formats: Set<'legacy' | 'bundle'>;
  /** No verified signature has a transparency-log entry. */
  noTlog: boolean;
  annotations: [string, string][];
  /** The digests to verify: the image, and each platform when every one must be signed. */
  targets: string[];
}

/** The `cosign verify` command lines, one per target, after the key written to cosign.pub. */
function cosignSnippet(f: Facts): PolicySnippets['cosign'] {
  const argv = f.targets.map((d) => [
    'cosign',
    'verify',
    '--key',
    'cosign.pub',
    ...(f.noTlog ? ['--insecure-ignore-tlog=true'] : []),
    ...f.annotations.flatMap(([k, v]) => ['-a', `${k}=${v}`]),
    `${f.repo}@${d}`,
  ]);
  const notes: string[] = [];
  if (!f.formats.has('legacy'))
    notes.push(
      'The verified signatures are Sigstore bundles: use cosign 3.x (cosign 2.x does not read bundles and reports "no signatures found").',
    );
  else if (!f.formats.has('bundle')) notes.push('Works with cosign 2.x and 3.x.');
  if (f.policy.identity.type !== 'ignore')
    notes.push('cosign verify does not check the reference a signature names; the containers policy below does.');
  if (f.policy.requireEveryPlatform)
    notes.push('cosign verify checks only the manifest it is given: one command per platform.');
  const text = [
    `# The public key (fingerprint ${f.fingerprint}):`,
    "cat > cosign.pub <<'EOF'",
    f.pem.trimEnd(),
    'EOF',
    ...argv.map((a) => a.map(shellQuote).join(' ')),
  ].join('\n');
  return { argv, text, notes };
}

/** The containers-policy.json(5) `sigstoreSigned` requirement. */
function containersSnippet(f: Facts): Snippet {
  const identity = signedIdentityJson(f.policy.identity) ?? { type: 'matchRepository' };
  const containers = {
    default: [{ type: 'reject' }],
    transports: {
      docker: {
        [f.repo]: [{ type: 'sigstoreSigned', keyData: toBase64(utf8(f.pem)), signedIdentity: identity }],
      },
    },
  };
  const notes = ['Merge the "docker" entry into /etc/containers/policy.json (or pass the file with --policy).'];
  if (f.policy.identity.type === 'ignore')
    notes.push(
      'containers-policy has no "ignore identity": matchRepository is the loosest rule that accepts the repository-only identity cosign writes (its default, matchRepoDigestOrExact, refuses it).',
    );
  if (!f.formats.has('legacy'))
    notes.push(
      'skopeo, podman and CRI-O read only the legacy .sig signatures, and this image is signed only with Sigstore bundles: this policy will refuse it.',
    );
  if (f.annotations.length > 0) notes.push('containers-policy does not check annotations.');
  if (f.isIndex) notes.push('skopeo copy --all and podman check the index and every platform manifest.');
  return { text: JSON.stringify(containers, null, 2), notes };
}

/** The Kyverno ClusterPolicy `verifyImages` rule. */
function kyvernoSnippet(f: Facts): Snippet {
  const lines = [
    ...kyvernoHead(f.repo),
    `            - ${JSON.stringify(f.repo)}`,
    `            - ${JSON.stringify(`${f.repo}:*`)}`,
    `            - ${JSON.stringify(`${f.repo}@*`)}`,
    '          failureAction: Enforce',
    '          mutateDigest: true',
    '          verifyDigest: true',
    '          required: true',
    '          attestors:',
    '            - count: 1',
    '              entries:',
    '                - keys:',
    '                    publicKeys: |-',
    indent(f.pem, 22),
    '                    signatureAlgorithm: sha256',
    '                    rekor:',
    `                      ignoreTlog: ${f.noTlog}`,
    '                    ctlog:',
    '                      ignoreSCT: true',
    ...(f.annotations.length > 0
      ? [
          '                  annotations:',
          ...f.annotations.map(([k, v]) => `                    ${JSON.stringify(k)}: ${JSON.stringify(v)}`),
        ]
      : []),
  ];
  const notes = [
    "Kyverno's ClusterPolicy (type Cosign, the default) reads the legacy .sig signatures and does not check the reference a signature names.",
  ];
  if (!f.formats.has('legacy'))
    notes.push(
      'This image is signed only with Sigstore bundles, which this rule does not read; Kyverno\'s "SigstoreBundle" type does not take a static key (kyverno/kyverno#16267).',
    );
  return { text: lines.join('\n'), notes };
}

/** The Sigstore policy-controller ClusterImagePolicy. */
function policyControllerSnippet(f: Facts): Snippet {
  const lines = [
    'apiVersion: policy.sigstore.dev/v1beta1',
    'kind: ClusterImagePolicy',
    'metadata:',
    `  name: ${kubernetesName(f.repo)}`,
    'spec:',
    '  images:',
    `    - glob: ${JSON.stringify(`${f.repo}*`)}`,
    '  authorities:',
    '    - name: key',
    '      key:',
    '        hashAlgorithm: sha256',
    '        data: |',
    indent(f.pem, 10),
  ];
  const notes = [
    'Without a "ctlog" entry, policy-controller skips the transparency log for a key authority.',
    'policy-controller reads the legacy .sig signatures and does not check the reference a signature names or annotations.',
  ];
  if (!f.formats.has('legacy'))
    notes.push('This image is signed only with Sigstore bundles, which policy-controller does not read.');
  return { text: lines.join('\n'), notes };
}

/**
 * The snippets for a verified result.
 * @throws Error when the result is not verified (there is nothing to enforce).
 */
export function policySnippets(result: VerificationResult): PolicySnippets {
  const { image, key, policy } = result;
  if (!result.verified || !image.reference || !image.digest || (!key.pem && !policy.certificate)) {
    throw new Error('Policy snippets are made for a verified result only.');
  }
  const verifiedSigs = result.manifests.flatMap((m) => m.signatures.filter((s) => s.verified));
  const targets = [
    image.digest,
    ...(policy.requireEveryPlatform ? result.manifests.slice(1).map((m) => m.digest) : []),
  ];
  if (!key.pem)
    return keylessSnippets({
      repo: repositoryOf(image.reference),
      certificate: policy.certificate!,
      publicGood: !result.trustedRoot || result.trustedRoot.name.startsWith('Sigstore public good'),
      privatePki: result.trustedRoot?.privatePki ?? false,
      tlog: policy.tlog,
      noSct: verifiedSigs.some((s) => s.sigstore?.warnings.some((w) => w.includes('no CT log'))),
      formats: new Set(verifiedSigs.map((s) => s.format)),
      targets,
    });
  const facts: Facts = {
    repo: repositoryOf(image.reference),
    pem: key.pem,
    fingerprint: key.fingerprint,
    policy,
    isIndex: image.isIndex,
    formats: new Set(verifiedSigs.map((s) => s.format)),
    noTlog: verifiedSigs.every((s) => !s.tlogEntry),
    annotations: Object.entries(policy.annotations),
    targets,
  };
  return {
    cosign: cosignSnippet(facts),
    containersPolicy: containersSnippet(facts),
    kyverno: kyvernoSnippet(facts),
    policyController: policyControllerSnippet(facts),
  };
}

/** `host/repo` of a normalised reference `host/repo[:tag][@digest]`. */
function repositoryOf(reference: string): string {
  const at = reference.indexOf('@');
  const noDigest = at < 0 ? reference : reference.slice(0, at);
  const colon = noDigest.lastIndexOf(':');
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(0, colon) : noDigest;
}
