/**
 * What to run or deploy to enforce a verification the page made by certificate identity (no
 * key): `cosign verify --certificate-identity … --certificate-oidc-issuer …`
 * (https://github.com/sigstore/cosign/blob/main/doc/cosign_verify.md), a containers-policy.json(5)
 * `sigstoreSigned` with `fulcio` + `rekorPublicKeyPath`, a Kyverno keyless attestor and a
 * policy-controller keyless authority — each with notes where the tool checks less or cannot say it.
 */
import type { IdentityPolicy } from '../sigstore/policy.ts';
import { kubernetesName, kyvernoHead, shellQuote, type PolicySnippets, type Snippet } from './snippet-types.ts';

export interface KeylessFacts {
  repo: string;
  certificate: IdentityPolicy;
  /** The trust root is the shipped public-good one (no --trusted-root file needed). */
  publicGood: boolean;
  privatePki: boolean;
  tlog: 'require' | 'check' | 'ignore' | null;
  /** The trust root lists no CT log (a private deployment): cosign needs --insecure-ignore-sct. */
  noSct: boolean;
  formats: Set<'legacy' | 'bundle'>;
  targets: string[];
}

const FLAGS: [keyof IdentityPolicy, string][] = [
  ['certificateIdentity', '--certificate-identity'],
  ['certificateIdentityRegexp', '--certificate-identity-regexp'],
  ['certificateOidcIssuer', '--certificate-oidc-issuer'],
  ['certificateOidcIssuerRegexp', '--certificate-oidc-issuer-regexp'],
  ['githubWorkflowTrigger', '--certificate-github-workflow-trigger'],
  ['githubWorkflowSha', '--certificate-github-workflow-sha'],
  ['githubWorkflowName', '--certificate-github-workflow-name'],
  ['githubWorkflowRepository', '--certificate-github-workflow-repository'],
  ['githubWorkflowRef', '--certificate-github-workflow-ref'],
];

function cosign(f: KeylessFacts): PolicySnippets['cosign'] {
  const trust = f.privatePki
    ? ['--ca-roots', 'ca-roots.pem', '--ca-intermediates', 'ca-intermediates.pem', '--insecure-ignore-sct']
    : f.publicGood
      ? []
      : ['--trusted-root', 'trusted_root.json', ...(f.noSct ? ['--insecure-ignore-sct'] : [])];
  const argv = f.targets.map((d) => [
    'cosign',
    'verify',
    ...FLAGS.flatMap(([k, flag]) => (f.certificate[k] ? [flag, f.certificate[k]!] : [])),
    ...trust,
    ...(f.tlog === 'ignore' ? ['--insecure-ignore-tlog=true'] : []),
    `${f.repo}@${d}`,
  ]);
  const notes = ['cosign 3.x reads both formats; cosign 2.x reads only the legacy .sig signatures.'];
  if (!f.publicGood && !f.privatePki) notes.push('Save the trusted root this page verified with as trusted_root.json.');
  if (f.tlog === 'check')
    notes.push("cosign has no 'check' rule: it requires a log entry unless told --insecure-ignore-tlog.");
  return { argv, text: argv.map((a) => a.map(shellQuote).join(' ')).join('\n'), notes };
}

/** The `sigstoreSigned` requirement: `pki` for a private PKI (skopeo takes no Rekor key with it), else `fulcio` + the Rekor key. */
function requirement(f: KeylessFacts, email: string | undefined): Record<string, unknown> {
  const common = { type: 'sigstoreSigned', signedIdentity: { type: 'matchRepository' } };
  if (f.privatePki)
    return {
      ...common,
      pki: {
        caRootsPath: '/etc/containers/ca-roots.pem',
        caIntermediatesPath: '/etc/containers/ca-intermediates.pem',
        subjectEmail: email ?? '',
      },
    };
  return {
    ...common,
    fulcio: {
      caPath: '/etc/containers/fulcio-ca.pem',
      oidcIssuer: f.certificate.certificateOidcIssuer ?? '',
      subjectEmail: email ?? '',
    },
    rekorPublicKeyPath: '/etc/containers/rekor.pub',
  };
}

function containers(f: KeylessFacts): Snippet {
  const email = f.certificate.certificateIdentity?.includes('@') ? f.certificate.certificateIdentity : undefined;
  const policy = { default: [{ type: 'reject' }], transports: { docker: { [f.repo]: [requirement(f, email)] } } };
  const notes = f.privatePki
    ? [
        'Put the CA roots and intermediates (PEM) in /etc/containers/ca-roots.pem and ca-intermediates.pem.',
        'skopeo 1.18 takes no Rekor key with pki: it checks the certificate at the current time, not the log time.',
      ]
    : [
        "Put the CA chain (roots and intermediates, PEM) in /etc/containers/fulcio-ca.pem and the Rekor v1 log's public key in /etc/containers/rekor.pub.",
        'containers-policy checks the SET of a Rekor v1 entry only: no Rekor v2 entries, no RFC 3161 timestamps, no GitHub claims.',
      ];
  if (!email)
    notes.push(
      'containers-policy names only an exact e-mail identity (subjectEmail): this identity cannot be said there.',
    );
  if (f.certificate.certificateOidcIssuerRegexp)
    notes.push('containers-policy takes an exact OIDC issuer, not a regular expression.');
  if (!f.formats.has('legacy')) notes.push('skopeo, podman and CRI-O read only the legacy .sig signatures.');
  return { text: JSON.stringify(policy, null, 2), notes };
}

/** The identity and issuer lines of a keyless attestor or authority, indented by `pad`. */
function subjectLines(f: KeylessFacts, pad: string): string[] {
  const c = f.certificate;
  const pairs: [string, string | undefined][] = [
    ['subject', c.certificateIdentity],
    ['subjectRegExp', c.certificateIdentityRegexp],
    ['issuer', c.certificateOidcIssuer],
    ['issuerRegExp', c.certificateOidcIssuerRegexp],
  ];
  return pairs.filter((p): p is [string, string] => !!p[1]).map(([k, v]) => `${pad}${k}: ${JSON.stringify(v)}`);
}

function kyverno(f: KeylessFacts): Snippet {
  const lines = [
    ...kyvernoHead(f.repo),
    `            - ${JSON.stringify(`${f.repo}*`)}`,
    '          failureAction: Enforce',
    '          attestors:',
    '            - entries:',
    '                - keyless:',
    ...subjectLines(f, '                    '),
    '                    rekor:',
    `                      ignoreTlog: ${f.tlog === 'ignore'}`,
  ];
  return {
    text: lines.join('\n'),
    notes: ['Kyverno checks GitHub claims only through its own "additionalExtensions".'],
  };
}

function policyController(f: KeylessFacts): Snippet {
  const [first, ...rest] = subjectLines(f, '          ');
  const lines = [
    'apiVersion: policy.sigstore.dev/v1beta1',
    'kind: ClusterImagePolicy',
    'metadata:',
    `  name: ${kubernetesName(f.repo)}`,
    'spec:',
    '  images:',
    `    - glob: ${JSON.stringify(`${f.repo}*`)}`,
    '  authorities:',
    '    - keyless:',
    '        identities:',
    // The first line of the list item carries its dash.
    ...(first ? [`        - ${first.trimStart()}`, ...rest] : []),
  ];
  return {
    text: lines.join('\n'),
    notes: ['policy-controller uses the public-good trust root unless given a TrustRoot resource.'],
  };
}

/** The four snippets for a result verified by certificate identity. */
export function keylessSnippets(f: KeylessFacts): PolicySnippets {
  return {
    cosign: cosign(f),
    containersPolicy: containers(f),
    kyverno: kyverno(f),
    policyController: policyController(f),
  };
}
