/**
 * Merkle inclusion proofs (shared/sigstore/merkle.ts) against trees built in the test as RFC 6962
 * §2.1 defines them (rfc6962-tree.ts): the roots of the certificate-transparency test tree, proofs
 * that verify for every leaf of random trees, and fail when any hash, the root, the leaf, the index
 * or the number of hashes is changed. Node and Chromium.
 * https://www.rfc-editor.org/rfc/rfc6962#section-2.1
 */
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { leafHash, verifyInclusion } from '../../../../shared/sigstore/merkle.ts';
import type { InclusionProof } from '../../../../shared/sigstore/types.ts';
import { toHex } from '../../../../shared/encoding/base64.ts';
import { H, cat, mth, proofFor } from './rfc6962-tree.ts';

const hex = toHex;
const fromHex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));

function outcome(fn: () => void): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return (e as VerificationError).code;
  }
}

// The certificate-transparency test tree (its merkle_tree_test.cc, transparency-dev/merkle testonly).
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

describe('verifyInclusion', () => {
  const ct = CT_LEAVES.map((h) => fromHex(h));

  it('the tree built here has the certificate-transparency test roots, and every leaf of each is proven', () => {
    for (let n = 1; n <= ct.length; n++) {
      const leaves = ct.slice(0, n);
      expect(hex(mth(leaves))).toBe(CT_ROOTS[n - 1]);
      for (let i = 0; i < n; i++) verifyInclusion(proofFor(leaves, i), leafHash(leaves[i]!));
    }
  });

  it('hashes a leaf as SHA-256(0x00 ‖ entry)', () => {
    expect(hex(leafHash(new Uint8Array(0)))).toBe(CT_ROOTS[0]);
  });

  // Distinct leaves: with two equal ones, a proof for one is rightly a proof for the other.
  const trees = fc
    .uniqueArray(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 70, selector: hex })
    .chain((leaves) => fc.tuple(fc.constant(leaves), fc.nat(leaves.length - 1)));

  it('proves every leaf of random trees', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 70 }), (leaves) => {
        leaves.forEach((leaf, i) => verifyInclusion(proofFor(leaves, i), leafHash(leaf)));
      }),
      { numRuns: 40 },
    );
  });

  it('refuses a proof with any bit of any hash flipped', () => {
    fc.assert(
      fc.property(trees, fc.nat(), fc.nat(255), ([leaves, i], which, bit) => {
        const p = proofFor(leaves, i);
        fc.pre(p.hashes.length > 0);
        const h = p.hashes[which % p.hashes.length]!;
        h[bit >> 3] = h[bit >> 3]! ^ (1 << (bit & 7));
        expect(outcome(() => verifyInclusion(p, leafHash(leaves[i]!)))).toBe('VERIFY_INCLUSION_PROOF_INVALID');
      }),
    );
  });

  it('refuses another root, another leaf, another index, an index outside the tree, and a hash too many or too few', () => {
    fc.assert(
      fc.property(trees, fc.nat(255), ([leaves, i], bit) => {
        const leaf = leafHash(leaves[i]!);
        const p = proofFor(leaves, i);
        const fails = (q: InclusionProof, l = leaf) =>
          expect(outcome(() => verifyInclusion(q, l))).toBe('VERIFY_INCLUSION_PROOF_INVALID');
        const root = p.rootHash.slice();
        root[bit >> 3] = root[bit >> 3]! ^ (1 << (bit & 7));
        fails({ ...p, rootHash: root });
        fails(p, leafHash(cat(leaves[i]!, new Uint8Array([0]))));
        fails({ ...p, logIndex: p.treeSize });
        fails({ ...p, hashes: [...p.hashes, new Uint8Array(32)] });
        if (p.hashes.length) fails({ ...p, hashes: p.hashes.slice(1) });
        if (leaves.length > 1) fails({ ...p, logIndex: (i + 1) % leaves.length });
      }),
    );
  });

  it('says what is wrong', () => {
    const leaves = ct.slice(0, 5);
    const p = proofFor(leaves, 2);
    const leaf = leafHash(leaves[2]!);
    const message = (q: InclusionProof) => {
      try {
        verifyInclusion(q, leaf);
        return 'ok';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(message({ ...p, logIndex: 5 })).toMatch(/leaf index 5 is not inside a tree of 5 leaves/);
    expect(message({ ...p, logIndex: -1 })).toMatch(/is not a non-negative integer/);
    expect(message({ ...p, treeSize: 2 ** 53 })).toMatch(/is not a non-negative integer/);
    expect(message({ ...p, hashes: p.hashes.slice(1) })).toMatch(/has 2 hashes where leaf 2 of a tree of 5 needs 3/);
    expect(message({ ...p, hashes: [new Uint8Array(31), ...p.hashes.slice(1)] })).toMatch(/hash 1 is not 32 bytes/);
    expect(message({ ...p, rootHash: new Uint8Array(32) })).toMatch(/not the proof's root hash/);
  });

  it('handles indexes and sizes beyond 32 bits', () => {
    // Leaf 2^40 - 1 of a tree of 2^40 leaves: forty left siblings, none on a border.
    const size = 2 ** 40;
    const p: InclusionProof = {
      logIndex: size - 1,
      treeSize: size,
      rootHash: new Uint8Array(32),
      hashes: [],
      checkpoint: '',
    };
    let r = leafHash(new Uint8Array([1]));
    for (let level = 0; level < 40; level++) {
      const sibling = sha256(new Uint8Array([level]));
      p.hashes.push(sibling);
      r = H(new Uint8Array([1]), sibling, r);
    }
    p.rootHash = r;
    verifyInclusion(p, leafHash(new Uint8Array([1])));
    expect(outcome(() => verifyInclusion({ ...p, logIndex: size - 2 }, leafHash(new Uint8Array([1]))))).toBe(
      'VERIFY_INCLUSION_PROOF_INVALID',
    );
  });
});
