/**
 * The containers-policy.json reader and scope choice (shared/ops/containers-policy/): tables taken
 * from containers/image's own tests (signature/policy_eval_test.go
 * TestPolicyContextRequirementsForImageRef, docker/policyconfiguration/naming_test.go,
 * signature/policy_reference_match_test.go's exact-match and repository-match tables for
 * exactReference and exactRepository), the refusals of policy_config*.go, and fast-check fuzzing:
 * whatever the text, only a PolicyError comes out. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../../../shared/errors.ts';
import { toBase64 } from '../../../../shared/encoding/base64.ts';
import { parseContainersPolicy } from '../../../../shared/ops/containers-policy/parse.ts';
import { policyNamespaces, selectScope } from '../../../../shared/ops/containers-policy/scope.ts';
import type { ContainersPolicy, Requirement } from '../../../../shared/ops/containers-policy/types.ts';
import { intendedReference, matchIdentity } from '../../../../shared/cosign/identity.ts';
import { parseReference } from '../../../../shared/registry/reference.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const PEM = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n';
const DATA = toBase64(new TextEncoder().encode(PEM));
const KEYED = { type: 'sigstoreSigned', keyData: DATA };

function policyOf(v: unknown): ContainersPolicy {
  const p = parseContainersPolicy(JSON.stringify(v));
  if (p.kind !== 'policy') throw new Error('not a policy');
  return p.policy;
}

function codeOf(text: string): string {
  try {
    parseContainersPolicy(text);
    return 'ok';
  } catch (e) {
    return e instanceof PolicyError ? e.code : `not a PolicyError: ${String(e)}`;
  }
}

describe('scope choice, as containers/image TestPolicyContextRequirementsForImageRef', () => {
  const scopes = [
    '',
    'unmatched',
    'deep.com',
    '*.very.deep.com',
    '*.deep.com',
    'deep.com/n1',
    'deep.com/n1/n2',
    'deep.com/n1/n2/n3',
    'deep.com/n1/n2/n3/repo',
    'deep.com/n1/n2/n3/repo:tag2',
  ];
  const policy = policyOf({
    default: [{ type: 'reject' }],
    transports: {
      docker: Object.fromEntries(scopes.map((s) => [s, [{ type: 'insecureAcceptAnything' }]])),
      atomic: { unmatched: [{ type: 'reject' }] },
    },
  });
  it.each([
    ['deep.com/n1/n2/n3/repo:tag2', 'deep.com/n1/n2/n3/repo:tag2'],
    ['deep.com/n1/n2/n3/repo:nottag2', 'deep.com/n1/n2/n3/repo'],
    ['deep.com/n1/n2/n3/notrepo:tag2', 'deep.com/n1/n2/n3'],
    ['deep.com/n1/n2/notn3/repo:tag2', 'deep.com/n1/n2'],
    ['deep.com/n1/notn2/n3/repo:tag2', 'deep.com/n1'],
    ['deep.com/notn1/n2/n3/repo:tag2', 'deep.com'],
    ['very.deep.com/n1/n2/n3/repo:tag2', '*.deep.com'],
    ['not.very.deep.com/n1/n2/n3/repo:tag2', '*.very.deep.com'],
    ['this.does-not/match:anything', ''],
  ])('%s uses the scope %j', (image, scope) => {
    expect(selectScope(policy, parseReference(image)).scope).toBe(`transports.docker[${JSON.stringify(scope)}]`);
  });

  it('falls back to default without a docker "" scope, and never normalises scope keys', () => {
    const p = policyOf({ default: [{ type: 'reject' }], transports: { docker: { busybox: [KEYED] } } });
    const choice = selectScope(p, parseReference('busybox'));
    expect(choice).toMatchObject({ scope: 'default', identity: 'docker.io/library/busybox:latest' });
    const byDigest = parseReference(`docker.io/library/busybox@sha256:${'a'.repeat(64)}`);
    expect(selectScope(p, byDigest).identity).toBe(`docker.io/library/busybox@sha256:${'a'.repeat(64)}`);
  });

  it.each([
    [
      'example.com/ns1/ns2/repo:tag',
      ['example.com/ns1/ns2/repo', 'example.com/ns1/ns2', 'example.com/ns1', 'example.com', '*.com'],
    ],
    [
      'reg.example.com:5000/a/b',
      ['reg.example.com:5000/a/b', 'reg.example.com:5000/a', 'reg.example.com:5000', '*.example.com', '*.com'],
    ],
    ['localhost:5000/a', ['localhost:5000/a', 'localhost:5000']],
    ['busybox', ['docker.io/library/busybox', 'docker.io/library', 'docker.io', '*.io']],
  ])('namespaces of %s (naming_test.go)', (image, want) => {
    expect(policyNamespaces(parseReference(image))).toEqual(want);
  });
});

/** The signedIdentity a requirement was read with. */
function identityOf(signedIdentity: unknown): Requirement & { type: 'sigstoreSigned' } {
  const p = parseContainersPolicy(JSON.stringify({ ...KEYED, signedIdentity }));
  return p.kind === 'requirements' ? (p.requirements[0] as Requirement & { type: 'sigstoreSigned' }) : (null as never);
}

const DIGEST = `@sha256:${'0'.repeat(64)}`;
const OTHER = `@sha256:${'1'.repeat(64)}`;
const RHEL = 'registry.access.redhat.com/rhel7/rhel:7.2.3';
// policy_reference_match_test.go prmExactMatchTestTable (exactReference) and prmRepositoryMatchTestTable (exactRepository).
const EXACT: [string, string, boolean][] = [
  ['busybox:latest', 'busybox:latest', true],
  [RHEL, RHEL, true],
  [`busybox${DIGEST}`, `busybox${DIGEST}`, true],
  ['library/busybox:latest', 'busybox:latest', true],
  ['docker.io/library/busybox:latest', 'busybox:latest', true],
  ['busybox:latest', 'busybox:notlatest', false],
  ['busybox:latest', 'hostname/library/busybox:notlatest', false],
  ['busybox:latest', `busybox${DIGEST}`, false],
  [`busybox${DIGEST}`, `busybox${OTHER}`, false],
  ['busybox', 'busybox:latest', false],
  ['busybox', 'busybox', false],
  [`busybox:latest${DIGEST}`, `busybox:latest${DIGEST}`, true],
  [`busybox:latest${DIGEST}`, `busybox:latest${OTHER}`, false],
  [`busybox:latest${DIGEST}`, `busybox${DIGEST}`, false],
  ['UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES', 'busybox:latest', false],
  ['INVALID', 'INVALID', false],
];
const REPOSITORY: [string, string, boolean][] = [
  ['busybox:latest', 'busybox:notlatest', true],
  [`${RHEL}tagsuffix`, RHEL, true],
  ['docker.io/library/busybox:notlatest', 'busybox:latest', true],
  [`busybox${DIGEST}`, `busybox${OTHER}`, true],
  ['busybox', 'busybox:notlatest', true],
  ['docker.io/library/busybox', 'busybox', true],
  ['busybox:latest', 'notbusybox:latest', false],
  ['hostname/library/busybox:latest', 'busybox:notlatest', false],
  [`busybox:latest${DIGEST}`, 'busybox:latest', true],
  ['UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES', 'busybox:latest', false],
  ['', 'UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES', false],
];

describe('signedIdentity, as containers/image policy_reference_match_test.go', () => {
  const intended = intendedReference(parseReference('example.com/unrelated:v1'));
  const judge = (rule: Record<string, string>, signed: string): boolean => {
    let req;
    try {
      req = identityOf(rule);
    } catch (e) {
      // containers/image refuses to build such a rule (NewPRMExactReference / NewPRMExactRepository).
      expect(e).toBeInstanceOf(PolicyError);
      return false;
    }
    return matchIdentity(req.signedIdentity, intended, signed).match;
  };
  it.each(EXACT)('exactReference %j, signature %j: %s', (ref, signed, want) => {
    expect(judge({ type: 'exactReference', dockerReference: ref }, signed)).toBe(want);
  });
  it.each(REPOSITORY)('exactRepository %j, signature %j: %s', (repo, signed, want) => {
    expect(judge({ type: 'exactRepository', dockerRepository: repo }, signed)).toBe(want);
  });
  it('defaults to matchRepoDigestOrExact and reads every rule type', () => {
    expect(identityOf(undefined).signedIdentity).toEqual({ type: 'matchRepoDigestOrExact' });
    for (const type of ['matchExact', 'matchRepository', 'matchRepoDigestOrExact'])
      expect(identityOf({ type }).signedIdentity).toEqual({ type });
    expect(
      identityOf({ type: 'remapIdentity', prefix: 'example.com/a', signedPrefix: 'docker.io/b' }).signedIdentity,
    ).toEqual({
      type: 'remapIdentity',
      prefix: 'example.com/a',
      signedPrefix: 'docker.io/b',
    });
  });
});

describe('reading', () => {
  it('a whole policy, one requirement, or an array of them; *Data decoded, *Path recorded', () => {
    const whole = parseContainersPolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { docker: { 'a.io/b': [KEYED] }, oci: { '': [{ type: 'insecureAcceptAnything' }] } },
      }),
    );
    expect(whole.kind).toBe('policy');
    if (whole.kind === 'policy') {
      expect(whole.policy.otherTransports).toEqual(['oci']);
      expect(whole.policy.docker.get('a.io/b')![0]).toMatchObject({
        trust: { kind: 'keys', field: 'keyData', pems: [PEM] },
      });
    }
    expect(parseContainersPolicy(JSON.stringify([{ type: 'insecureAcceptAnything' }, KEYED]))).toMatchObject({
      kind: 'requirements',
      requirements: [{ type: 'insecureAcceptAnything' }, { type: 'sigstoreSigned' }],
    });
    const paths = parseContainersPolicy(
      JSON.stringify({ type: 'sigstoreSigned', keyPath: '/k.pub', rekorPublicKeyPaths: ['/r.pub'] }),
    );
    expect(paths).toMatchObject({ requirements: [{ trust: null, paths: ['keyPath', 'rekorPublicKeyPaths'] }] });
    const fulcio = { caData: DATA, oidcIssuer: 'https://i', subjectEmail: 'a@b' };
    expect(
      parseContainersPolicy(JSON.stringify({ type: 'sigstoreSigned', fulcio, rekorPublicKeyDatas: [DATA, DATA] })),
    ).toMatchObject({
      requirements: [{ trust: { kind: 'fulcio', caPem: PEM, subjectEmail: 'a@b' }, rekorPems: [PEM, PEM] }],
    });
    const pki = { caRootsData: DATA, subjectHostname: 'h.example' };
    expect(parseContainersPolicy(JSON.stringify({ type: 'sigstoreSigned', pki }))).toMatchObject({
      requirements: [{ trust: { kind: 'pki', rootsPem: PEM, subjectHostname: 'h.example' }, rekorPems: [] }],
    });
  });

  const fulcio = { caData: DATA, oidcIssuer: 'https://i', subjectEmail: 'a@b' };
  it.each([
    ['not JSON', '{'],
    ['a duplicate key', `{"type":"reject","type":"reject"}`],
    ['a number', '1'],
    ['no default', JSON.stringify({ transports: {} })],
    ['an empty list', JSON.stringify({ default: [] })],
    ['an unknown top-level key', JSON.stringify({ default: [{ type: 'reject' }], extra: 1 })],
    ['an unknown requirement type', JSON.stringify({ type: 'signedByAnyone' })],
    ['a key beside insecureAcceptAnything', JSON.stringify({ type: 'insecureAcceptAnything', keyData: DATA })],
    ['no key source', JSON.stringify({ type: 'sigstoreSigned' })],
    ['two key sources', JSON.stringify({ ...KEYED, keyPath: '/k' })],
    ['an empty keyDatas', JSON.stringify({ type: 'sigstoreSigned', keyDatas: [] })],
    ['keyData not base64', JSON.stringify({ type: 'sigstoreSigned', keyData: '-----BEGIN PUBLIC KEY-----' })],
    ['keyData not a PEM', JSON.stringify({ type: 'sigstoreSigned', keyData: toBase64(new Uint8Array([1, 2, 3])) })],
    ['fulcio without a Rekor key', JSON.stringify({ type: 'sigstoreSigned', fulcio })],
    [
      'fulcio without subjectEmail',
      JSON.stringify({ type: 'sigstoreSigned', fulcio: { ...fulcio, subjectEmail: '' }, rekorPublicKeyData: DATA }),
    ],
    [
      'fulcio caPath and caData',
      JSON.stringify({ type: 'sigstoreSigned', fulcio: { ...fulcio, caPath: '/c' }, rekorPublicKeyData: DATA }),
    ],
    [
      'pki with a Rekor key',
      JSON.stringify({
        type: 'sigstoreSigned',
        pki: { caRootsData: DATA, subjectEmail: 'a@b' },
        rekorPublicKeyData: DATA,
      }),
    ],
    ['pki without a subject', JSON.stringify({ type: 'sigstoreSigned', pki: { caRootsData: DATA } })],
    ['two Rekor key forms', JSON.stringify({ ...KEYED, rekorPublicKeyData: DATA, rekorPublicKeyDatas: [DATA] })],
    ['an unknown signedIdentity', JSON.stringify({ ...KEYED, signedIdentity: { type: 'matchAnything' } })],
    ['cosign’s "ignore" as signedIdentity', JSON.stringify({ ...KEYED, signedIdentity: { type: 'ignore' } })],
    [
      'exactReference without a tag',
      JSON.stringify({ ...KEYED, signedIdentity: { type: 'exactReference', dockerReference: 'busybox' } }),
    ],
    ['exactReference lacking its field', JSON.stringify({ ...KEYED, signedIdentity: { type: 'exactReference' } })],
    [
      'a bad remapIdentity prefix',
      JSON.stringify({
        ...KEYED,
        signedIdentity: { type: 'remapIdentity', prefix: 'example.com/', signedPrefix: 'a.io' },
      }),
    ],
    ['signedBy without keyType', JSON.stringify({ type: 'signedBy', keyData: DATA })],
  ])('refuses %s with POLICY_INVALID', (_why, text) => {
    expect(codeOf(text)).toBe('POLICY_INVALID');
  });

  it('fuzz: any text, any JSON, and mangled policies give a policy or a PolicyError, nothing else', () => {
    const valid = {
      default: [{ type: 'reject' }],
      transports: { docker: { 'a.io/b': [KEYED, { type: 'sigstoreSigned', fulcio, rekorPublicKeyData: DATA }] } },
    };
    const text = JSON.stringify(valid);
    const ok = (t: string): boolean => /^(ok|POLICY_INVALID)$/.test(codeOf(t));
    fc.assert(fc.property(fc.string({ maxLength: 300 }), ok), { numRuns: fuzzRuns(300) });
    fc.assert(fc.property(fc.json({ maxDepth: 4 }), ok), { numRuns: fuzzRuns(300) });
    fc.assert(
      fc.property(fc.nat(text.length), fc.nat(text.length), fc.string({ maxLength: 8 }), (a, b, ins) =>
        ok(text.slice(0, Math.min(a, b)) + ins + text.slice(Math.max(a, b))),
      ),
      { numRuns: fuzzRuns(500) },
    );
    const field = fc.constantFrom(
      'type',
      'keyData',
      'keyDatas',
      'fulcio',
      'pki',
      'rekorPublicKeyData',
      'signedIdentity',
      'caData',
      'subjectEmail',
    );
    const value = fc.oneof(fc.constant(DATA), fc.constant([DATA]), fc.jsonValue({ maxDepth: 2 }), fc.constant(fulcio));
    fc.assert(
      fc.property(fc.dictionary(field, value), (req) => ok(JSON.stringify({ ...req, type: 'sigstoreSigned' }))),
      { numRuns: fuzzRuns(500) },
    );
  });
});
