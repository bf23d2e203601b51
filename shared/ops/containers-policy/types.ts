/**
 * What a containers-policy.json(5) holds once read (parse.ts), and what a verification result
 * records of the one applied (apply.ts, ops/verify.ts). Names follow containers/image's
 * signature/policy_types.go.
 * https://github.com/containers/image/blob/main/docs/containers-policy.json.5.md
 */
import type { IdentityRule } from '../../cosign/identity.ts';

/** A `signedIdentity`: every containers-policy rule (cosign's `ignore` is not one). */
export type SignedIdentity = Exclude<IdentityRule, { type: 'ignore' }>;

/** Where a sigstoreSigned requirement takes its keys or certificate authorities from. */
export type SigstoreTrustSource =
  | { kind: 'keys'; field: 'keyData' | 'keyDatas'; pems: string[] }
  | { kind: 'fulcio'; caPem: string; oidcIssuer: string; subjectEmail: string }
  | {
      kind: 'pki';
      rootsPem: string;
      intermediatesPem: string | undefined;
      subjectEmail: string | undefined;
      subjectHostname: string | undefined;
    };

export interface SigstoreSignedRequirement {
  type: 'sigstoreSigned';
  /** Null when the requirement names a *Path form (a file the browser cannot read): see `paths`. */
  trust: SigstoreTrustSource | null;
  /** The Rekor keys (PEM) of rekorPublicKeyData(s); empty when none is given. */
  rekorPems: string[];
  signedIdentity: SignedIdentity;
  /** The *Path fields the requirement names (keyPath, caPath, rekorPublicKeyPaths…). */
  paths: string[];
}

export type Requirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  /** GPG ("simple signing") signatures: read, never checked here. */
  | { type: 'signedBy' }
  | { type: 'signedBaseLayer' }
  | SigstoreSignedRequirement;

export type RequirementType = Requirement['type'];

/** A whole policy: `default` and the docker transport's scopes (other transports are read, not used). */
export interface ContainersPolicy {
  default: Requirement[];
  /** `transports.docker`, scope → requirements, in the file's order; empty when there is none. */
  docker: Map<string, Requirement[]>;
  /** The other transports named (oci, dir, …): checked, not applied. */
  otherTransports: string[];
}

/** What was pasted: a whole policy, or requirements to apply to the image as they are. */
export type PolicyInput =
  { kind: 'policy'; policy: ContainersPolicy } | { kind: 'requirements'; requirements: Requirement[] };

/** What a verification result records of the containers policy applied (README, result format). */
export interface ContainersPolicyApplied {
  /**
   * The scope whose requirements applied, as the policy names it: `transports.docker["host/repo"]`,
   * `transports.docker[""]`, `default`, or `requirements` when requirements were pasted alone.
   */
  scope: string;
  /** The identity the scope was looked up with (`host/repo:tag` or `host/repo@sha256:…`). */
  identity: string;
  /** Each requirement of the scope, in order, and how it went. */
  requirements: {
    type: RequirementType;
    /** For sigstoreSigned: keyData, keyDatas, fulcio or pki, and `+ rekor` with a Rekor key. */
    trust: string | null;
    outcome: 'accepted' | 'refused' | 'not-reached';
  }[];
}
