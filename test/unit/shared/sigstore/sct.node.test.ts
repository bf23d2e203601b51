/**
 * verifyEmbeddedScts (shared/sigstore/sct.ts) on real Fulcio certificates from the conformance
 * suite: their SCTs verify with the CT logs of the root they were issued under (also an SCT with
 * extensions, as Static CT logs write); a root whose CT key is another (invalid-ct-key_fail), the
 * wrong issuer key, a changed signature or timestamp, or a log not valid at the SCT's time give
 * VERIFY_SCT_INVALID; a certificate without SCTs (one openssl makes) gives VERIFY_SCT_MISSING.
 * Node only (conformance files, openssl).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { parseCertificate, type Certificate } from '../../../../shared/sigstore/certificate.ts';
import { parseSctList, verifyEmbeddedScts } from '../../../../shared/sigstore/sct.ts';
import type { TrustedLog, TrustedRoot } from '../../../../shared/sigstore/types.ts';
import { CA_EXT, FULCIO_LEAF_EXT, OpensslPki } from './openssl-pki.ts';
import { conformanceLeaf, conformanceRoot } from './real-certificates.ts';

/** The leaf of a case and its issuer (the intermediate of the case's root that signed it). */
function material(name: string): { leaf: Certificate; issuer: Certificate; root: TrustedRoot } {
  const root = conformanceRoot(name);
  const leaf = parseCertificate(conformanceLeaf(name));
  const issuer = root.certificateAuthorities
    .flatMap((a) => a.certChain.map(parseCertificate))
    .find((c) => c.subject === leaf.issuer && c.subjectKeyId?.join() === leaf.authorityKeyId?.join())!;
  return { leaf, issuer, root };
}

async function code(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: { code: string }) => e.code,
  );
}

describe('embedded SCTs of conformance leaves', () => {
  for (const name of ['happy-path-v0.1', 'happy-path-v0.3', 'rekor2-happy-path', 'happy-path-intoto-in-dsse-v3'])
    it(`${name}: an SCT of its root's CT log (public good or staging), from when the certificate was issued`, async () => {
      const { leaf, issuer, root } = material(name);
      const r = await verifyEmbeddedScts(leaf, issuer, root.ctlogs);
      expect(r).toHaveLength(1);
      expect(r[0]!.log.baseUrl).toMatch(/^https:\/\/ctfe\.(sigstore|sigstage)\.dev/);
      expect(r[0]!.logId).toEqual(r[0]!.log.logId);
      expect(Math.abs(r[0]!.time.getTime() - leaf.notBefore.getTime())).toBeLessThan(60_000);
    });

  it('bundle-with-sct-with-extensions: an SCT whose extensions are not empty verifies', async () => {
    const { leaf, issuer, root } = material('bundle-with-sct-with-extensions');
    expect(parseSctList(leaf.sctList!)[0]!.extensions.length).toBeGreaterThan(0);
    expect(await verifyEmbeddedScts(leaf, issuer, root.ctlogs)).toHaveLength(1);
  });

  it("invalid-ct-key_fail: its root's CT log key is another", async () => {
    const { leaf, issuer, root } = material('invalid-ct-key_fail');
    expect(await code(verifyEmbeddedScts(leaf, issuer, root.ctlogs))).toBe('VERIFY_SCT_INVALID');
    const pg = material('happy-path-v0.1');
    expect(await code(verifyEmbeddedScts(leaf, issuer, pg.root.ctlogs))).toBe('ok');
  });

  const { leaf, issuer, root } = material('happy-path-v0.3');

  it('the wrong issuer key does not verify (the issuer key hash is signed)', async () => {
    const top = parseCertificate(root.certificateAuthorities.at(-1)!.certChain.at(-1)!);
    expect(await code(verifyEmbeddedScts(leaf, top, root.ctlogs))).toBe('VERIFY_SCT_INVALID');
  });

  it('a changed signature or timestamp does not verify', async () => {
    const sig = new Uint8Array(leaf.sctList!);
    sig[sig.length - 10] = sig[sig.length - 10]! ^ 1;
    expect(await code(verifyEmbeddedScts({ ...leaf, sctList: sig }, issuer, root.ctlogs))).toBe('VERIFY_SCT_INVALID');
    const ts = new Uint8Array(leaf.sctList!);
    ts[2 + 2 + 1 + 32 + 7] = ts[2 + 2 + 1 + 32 + 7]! ^ 1; // list length, SCT length, version, log id, timestamp's last byte
    expect(await code(verifyEmbeddedScts({ ...leaf, sctList: ts }, issuer, root.ctlogs))).toBe('VERIFY_SCT_INVALID');
  });

  it('a CT log counts only within its validity', async () => {
    const sctTime = parseSctList(leaf.sctList!)[0]!.timestamp;
    const closed: TrustedLog[] = root.ctlogs.map((l) => ({
      ...l,
      validFor: { start: l.validFor.start, end: new Date(Number(sctTime) - 1) },
    }));
    expect(await code(verifyEmbeddedScts(leaf, issuer, closed))).toBe('VERIFY_SCT_INVALID');
    expect(await code(verifyEmbeddedScts(leaf, issuer, []))).toBe('VERIFY_SCT_INVALID');
  });

  it('an empty SCT list is missing SCTs', async () => {
    const empty = { ...leaf, sctList: new Uint8Array([0, 0]) };
    expect(await code(verifyEmbeddedScts(empty, issuer, root.ctlogs))).toBe('VERIFY_SCT_MISSING');
  });
});

describe('a certificate without SCTs', () => {
  const pki = new OpensslPki();
  afterAll(() => pki.close());

  it('is missing SCTs', async () => {
    const ca = pki.issue('root', { key: 'p256', subject: '/CN=root', ext: CA_EXT });
    const leaf = parseCertificate(
      pki.issue('leaf', { key: 'p256', subject: '/CN=l', ext: FULCIO_LEAF_EXT, issuer: ca }).der,
    );
    expect(leaf.sctList).toBeUndefined();
    const ctlogs = conformanceRoot().ctlogs;
    expect(await code(verifyEmbeddedScts(leaf, parseCertificate(ca.der), ctlogs))).toBe('VERIFY_SCT_MISSING');
  });
});
