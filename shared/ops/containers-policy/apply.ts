/**
 * Applies a pasted containers-policy.json to an image the way skopeo/podman do
 * (containers/image signature/policy_eval.go IsRunningImageAllowed): the scope's requirements, in
 * order, each of which must allow the image (the first refusal decides). Each `sigstoreSigned`
 * requirement runs the page's one verifier (ops/verify.ts) with what containers/image checks and
 * nothing more (policy_eval_sigstore.go):
 *   - keyData(s): the signature with one of the keys; with Rekor keys, also a SET by one of them
 *     over an entry naming that key (transparency log `require`), else no log at all (`ignore`);
 *   - fulcio: the certificate chains to caData (with the signature's chain, less its last
 *     certificate, as intermediates) at the SET's integrated time, a SET by a Rekor key is
 *     required, the OIDC issuer is `oidcIssuer` and an e-mail SAN is `subjectEmail`; no SCT;
 *   - pki: the certificate chains to caRootsData (+ caIntermediatesData and the signature's chain)
 *     at the current time, no log, `subjectEmail` and/or `subjectHostname`;
 *   - only legacy `.sig` signatures are read, RFC 3161 timestamps are ignored, and `signedIdentity`
 *     is checked against the payload's `critical.identity.docker-reference`.
 * `reject` refuses, `insecureAcceptAnything` allows, `signedBy` (GPG) and *Path forms are refused
 * because this page cannot check them, `signedBaseLayer` is refused as containers/image refuses it.
 */
import { PolicyError, reasonOf, type Reason } from '../../errors.ts';
import { parsePublicKey } from '../../crypto/keys.ts';
import type { RegistryClient } from '../../registry/client.ts';
import { manifestReference, parseReference, type ImageReference } from '../../registry/reference.ts';
import { decidedResult, verifyImage, type VerificationResult, type VerifyOptions } from '../verify.ts';
import type { SigstoreTrust } from '../verify-sigstore.ts';
import { parseContainersPolicy } from './parse.ts';
import { policyIdentity, selectScope, type ScopeChoice } from './scope.ts';
import type { ContainersPolicyApplied, Requirement, SigstoreSignedRequirement, SigstoreTrustSource } from './types.ts';

/** What a containers-policy verification takes besides the policy: the image and how to run. */
export type ContainersPolicyOptions = Pick<
  VerifyOptions,
  'image' | 'knownKeys' | 'onProgress' | 'signal' | 'concurrency' | 'now'
>;

function trustLabel(r: Requirement): string | null {
  if (r.type !== 'sigstoreSigned') return null;
  if (!r.trust) return r.paths.join(', ');
  const kind = r.trust.kind === 'keys' ? r.trust.field : r.trust.kind;
  return r.rekorPems.length ? `${kind} + rekorPublicKeyData` : kind;
}

/** Why a requirement this page cannot apply refuses, or null for one it can. */
function unsupported(r: Requirement, scope: string): Reason | null {
  if (r.type === 'signedBy')
    return {
      code: 'POLICY_UNSUPPORTED',
      message: `The policy's ${scope} asks for a GPG signature (signedBy): this page cannot check GPG signatures. Check it with skopeo or podman.`,
    };
  if (r.type === 'signedBaseLayer')
    return {
      code: 'POLICY_REJECTED',
      message: 'signedBaseLayer is not implemented in containers/image, which refuses every image with it.',
    };
  if (r.type === 'sigstoreSigned' && r.paths.length)
    return {
      code: 'POLICY_UNSUPPORTED',
      message: `The policy's ${scope} names files (${r.paths.join(', ')}), which a browser cannot read: paste the *Data forms instead (keyData, caData, caRootsData, caIntermediatesData, rekorPublicKeyData: base64 of the PEM file, e.g. "base64 -w0 cosign.pub").`,
    };
  return null;
}

/** The trust a fulcio/pki requirement or a Rekor key stands for, as the verifier takes it. */
async function trustFor(t: SigstoreTrustSource, rekorPems: string[]): Promise<SigstoreTrust> {
  const { buildTrust } = await import('../verify-sigstore.ts');
  const ca =
    t.kind === 'fulcio'
      ? { caRootsPem: t.caPem }
      : t.kind === 'pki'
        ? { caRootsPem: t.rootsPem, caIntermediatesPem: t.intermediatesPem }
        : {};
  const trust = buildTrust({ root: 'public-good', ...ca, rekorPublicKey: rekorPems });
  return { ...trust, name: `containers policy (${t.kind === 'keys' ? t.field : t.kind})`, chainIntermediates: true };
}

/**
 * The Rekor keys' SPKIs, refused as containers/image refuses them (not ECDSA).
 * @throws PolicyError POLICY_INVALID; KeyError for a key that cannot be read.
 */
function checkRekorKeys(pems: string[]): void {
  pems.forEach((pem, i) => {
    if (parsePublicKey(pem).algorithm.kind !== 'ecdsa')
      throw new PolicyError(
        'POLICY_INVALID',
        `Rekor public key ${i + 1} is not an ECDSA key, as containers/image requires.`,
      );
  });
}

/** One sigstoreSigned requirement through the verifier: verified when one key (or the certificate) passes. */
async function sigstoreSigned(
  client: RegistryClient,
  req: SigstoreSignedRequirement,
  opts: ContainersPolicyOptions,
): Promise<VerificationResult> {
  const t = req.trust!; // unsupported() has refused a requirement naming paths
  const rekor = req.rekorPems.length > 0;
  const base: VerifyOptions = { ...opts, identity: req.signedIdentity, containers: true };
  let keys: Uint8Array[];
  try {
    checkRekorKeys(req.rekorPems);
    keys = t.kind === 'keys' ? t.pems.map((pem) => parsePublicKey(pem).spki) : [];
  } catch (e) {
    return decidedResult(base, { error: reasonOf(e) });
  }
  const trust = (): Promise<SigstoreTrust> => trustFor(t, req.rekorPems);
  if (t.kind === 'fulcio')
    return verifyImage(client, {
      ...base,
      certificate: { subjectEmail: t.subjectEmail, certificateOidcIssuer: t.oidcIssuer },
      tlog: 'require',
      trust,
    });
  if (t.kind === 'pki')
    return verifyImage(client, {
      ...base,
      certificate: {
        ...(t.subjectEmail ? { subjectEmail: t.subjectEmail } : {}),
        ...(t.subjectHostname ? { subjectHostname: t.subjectHostname } : {}),
      },
      tlog: 'ignore',
      trust,
    });
  let first: VerificationResult | undefined;
  for (const spki of keys) {
    const r = await verifyImage(client, {
      ...base,
      spki,
      tlog: rekor ? 'require' : 'ignore',
      ...(rekor ? { trust } : {}),
    });
    if (r.verified) return r;
    first ??= r;
  }
  return first!;
}

/** Every requirement allowed and none read a signature: the image must still exist, as skopeo needs it. */
async function acceptedWithoutSignatures(
  client: RegistryClient,
  ref: ImageReference,
  opts: ContainersPolicyOptions,
  scope: string,
): Promise<VerificationResult> {
  try {
    const m = await client.getManifest({ registry: ref.registry, repository: ref.repository }, manifestReference(ref));
    const result = decidedResult(opts, {
      summary: `Verified: the containers policy's ${scope} accepts ${ref.registry}/${ref.repository}@${m.descriptor.digest} without a signature (insecureAcceptAnything).`,
    });
    result.image.digest = m.descriptor.digest;
    result.image.mediaType = m.descriptor.mediaType;
    return result;
  } catch (e) {
    opts.signal?.throwIfAborted();
    return decidedResult(opts, { error: reasonOf(e) });
  }
}

/** The scope that applies to `ref`, or the requirements pasted alone. @throws PolicyError POLICY_INVALID */
function chooseScope(text: string, ref: ImageReference): ScopeChoice {
  const input = parseContainersPolicy(text);
  if (input.kind === 'policy') return selectScope(input.policy, ref);
  return { scope: 'requirements', identity: policyIdentity(ref), requirements: input.requirements };
}

/** Runs the scope's requirements in order; the first refusal decides. */
async function evaluate(
  client: RegistryClient,
  choice: ScopeChoice,
  ref: ImageReference,
  opts: ContainersPolicyOptions,
  applied: ContainersPolicyApplied,
): Promise<VerificationResult> {
  let last: VerificationResult | null = null;
  for (const [i, req] of choice.requirements.entries()) {
    const step = applied.requirements[i]!;
    let result: VerificationResult | null = null;
    const refusal =
      req.type === 'reject'
        ? {
            code: 'POLICY_REJECTED' as const,
            message: `Running image docker://${choice.identity} is rejected by policy (${choice.scope}).`,
          }
        : unsupported(req, choice.scope);
    if (refusal) result = decidedResult(opts, { error: refusal });
    else if (req.type === 'sigstoreSigned') result = await sigstoreSigned(client, req, opts);
    step.outcome = result && !result.verified ? 'refused' : 'accepted';
    if (result && !result.verified) return result;
    last = result ?? last;
  }
  if (!last) return acceptedWithoutSignatures(client, ref, opts, choice.scope);
  last.summary = `${last.summary.replace(/\.$/, '')}, as the containers policy's ${choice.scope} requires.`;
  return last;
}

/**
 * Verifies `opts.image` under the containers-policy.json `policyText` (see the file's header).
 * The result records the scope and each requirement's outcome in `policy.containersPolicy`.
 * @throws the signal's reason when `opts.signal` aborts; never for a refusal (the result says why:
 *   POLICY_INVALID, POLICY_UNSUPPORTED, POLICY_REJECTED or the verifier's codes).
 */
export async function verifyWithContainersPolicy(
  client: RegistryClient,
  policyText: string,
  opts: ContainersPolicyOptions,
): Promise<VerificationResult> {
  let ref: ImageReference;
  let choice: ScopeChoice;
  try {
    ref = parseReference(opts.image);
    choice = chooseScope(policyText, ref);
  } catch (e) {
    return decidedResult(opts, { error: reasonOf(e) });
  }
  const applied: ContainersPolicyApplied = {
    scope: choice.scope,
    identity: choice.identity,
    requirements: choice.requirements.map((r) => ({ type: r.type, trust: trustLabel(r), outcome: 'not-reached' })),
  };
  const result = await evaluate(client, choice, ref, opts, applied);
  result.policy.containersPolicy = applied;
  return result;
}
