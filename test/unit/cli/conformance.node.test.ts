/**
 * Every case of the Sigstore client conformance suite, in both of its modes (the file, and only
 * its sha256 digest), through cosign-web's command line: the verdict must be the case's. Most run
 * in this process through the command's own entry (main); a few through the real `bin` script in a
 * child process, as the suite's runner calls it.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { main } from '../../../cli/main.ts';
import { conformanceArgs, conformanceCases } from '../../conformance.ts';

const cases = conformanceCases();

function sink(): { text: string; write(t: string): void } {
  return {
    text: '',
    write(t) {
      this.text += t;
    },
  };
}

describe('Sigstore conformance cases through `cosign-web verify-bundle`', () => {
  it('finds the 70 cases', () => {
    expect(cases.length).toBe(70);
  });

  for (const mode of ['file', 'digest'] as const) {
    it.each(cases.map((c) => [c.name, c] as const))(`%s (${mode})`, async (_name, c) => {
      const out = sink();
      const err = sink();
      const code = await main(conformanceArgs(c, mode), out, err);
      if (c.shouldVerify) expect({ code, err: err.text }).toEqual({ code: 0, err: '' });
      else {
        expect(code, out.text).toBe(1);
        expect(err.text).toMatch(/^Not verified: .+\n[A-Z0-9_]+\n$/);
      }
    });
  }
});

describe('the `cosign-web` bin script', () => {
  const bin = resolve(import.meta.dirname, '../../../bin/cosign-web.mjs');
  const run = promisify(execFile);
  const byName = (n: string) => cases.find((c) => c.name === n)!;

  it('exits 0 and says Verified for a good bundle', async () => {
    const { stdout } = await run(process.execPath, [bin, ...conformanceArgs(byName('happy-path-v0.3'), 'file')]);
    expect(stdout).toMatch(/^Verified: sha256:[0-9a-f]{64} signed by https:\/\/github\.com\/sigstore-conformance\//);
  });

  it('exits 1 with the code on stderr for a bad one', async () => {
    const e = await run(process.execPath, [bin, ...conformanceArgs(byName('signature-mismatch_fail'), 'digest')]).catch(
      (x: { code: number; stderr: string }) => x,
    );
    expect(e).toMatchObject({ code: 1, stderr: expect.stringMatching(/\nVERIFY_[A-Z_]+\n$/) });
  });

  it('exits 2 for a command line it cannot read', async () => {
    const e = await run(process.execPath, [bin, 'verify-bundle', '--bundle']).catch((x: { code: number }) => x);
    expect(e).toMatchObject({ code: 2 });
  });
});
