/**
 * The Sigstore material a verification works on, decoded once from JSON into bytes and numbers:
 * the trusted root (who is trusted, and when) and a bundle's parts (certificate or key, log
 * entries, timestamps, the signed content).
 *
 * Field names follow protobuf-specs (sigstore_trustroot.proto, sigstore_bundle.proto,
 * sigstore_rekor.proto) so a reader can hold this file beside them.
 * https://github.com/sigstore/protobuf-specs/tree/main/protos
 */

/** A period of validity; an absent end means "still valid". Both ends are inclusive. */
export interface ValidityPeriod {
  start: Date;
  end?: Date;
}

/** A transparency log (Rekor) or certificate-transparency log of the trusted root. */
export interface TrustedLog {
  baseUrl: string;
  /** SHA-256 of the DER SPKI for Rekor v1 and CT logs; for Rekor v2, the checkpoint key id. */
  logId: Uint8Array;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** protobuf-specs PublicKeyDetails, e.g. PKIX_ECDSA_P256_SHA_256, PKIX_ED25519. */
  keyDetails: string;
  validFor: ValidityPeriod;
}

/** A certificate authority (Fulcio, a private CA) or timestamp authority of the trusted root. */
export interface TrustedAuthority {
  /** A name for people: the subject's organization and common name, or the URI. */
  name: string;
  uri: string;
  /** DER certificates, leaf-most first, the self-signed root last (as the root lists them). */
  certChain: Uint8Array[];
  validFor: ValidityPeriod;
}

export interface TrustedRoot {
  mediaType: string;
  tlogs: TrustedLog[];
  ctlogs: TrustedLog[];
  certificateAuthorities: TrustedAuthority[];
  timestampAuthorities: TrustedAuthority[];
}

/** A transparency-log entry as a bundle (or a legacy `.sig` layer's annotations) carries it. */
export interface TlogEntry {
  logIndex: number;
  /** The log's id (see TrustedLog.logId). */
  logId: Uint8Array;
  kindVersion: { kind: string; version: string };
  /** Seconds since the epoch; 0 for Rekor v2 entries, which give no time. */
  integratedTime: number;
  /** Rekor v1's signed entry timestamp (SET), DER signature. */
  inclusionPromise?: { signedEntryTimestamp: Uint8Array };
  inclusionProof?: InclusionProof;
  /** The entry's body exactly as the log stores it (JSON bytes). */
  canonicalizedBody: Uint8Array;
}

export interface InclusionProof {
  logIndex: number;
  rootHash: Uint8Array;
  treeSize: number;
  hashes: Uint8Array[];
  /** The signed note (checkpoint) text, with its signature lines. */
  checkpoint: string;
}

/** What signed: a key named by hint, or a certificate with the chain the signer sent. */
export type SignerMaterial =
  { kind: 'publicKey'; hint: string } | { kind: 'certificate'; certificate: Uint8Array; chain: Uint8Array[] };

/** What was signed: a message digest (hashedrekord) or a DSSE envelope. */
export type SignedContent =
  | {
      kind: 'messageSignature';
      signature: Uint8Array;
      digest?: { algorithm: string; digest: Uint8Array };
    }
  | {
      kind: 'dsse';
      payloadType: string;
      payload: Uint8Array;
      signatures: { sig: Uint8Array; keyid: string }[];
    };

/** A Sigstore bundle, v0.1 to v0.3, both media-type spellings. */
export interface SigstoreBundle {
  mediaType: string;
  /** 1, 2 or 3 (the minor version: 0.1, 0.2, 0.3). */
  version: 1 | 2 | 3;
  signer: SignerMaterial;
  tlogEntries: TlogEntry[];
  /** DER RFC 3161 TimeStampToken (a CMS ContentInfo), as the bundle's timestampVerificationData holds them. */
  rfc3161Timestamps: Uint8Array[];
  content: SignedContent;
}

/** A time a verifier may trust, and where it came from. */
export interface VerifiedTime {
  time: Date;
  source: 'tlog' | 'timestamp' | 'now';
  /** The log's or the TSA's name (from the trusted root), absent for the clock. */
  by?: string;
}
