/**
 * Reading the relay's blob transfer answer (shared/registry/transfer.ts): progress lines arrive
 * cut anywhere across chunks (property test), each byte is reported once; an error line becomes
 * the RegistryError or RelayError it names; an answer that ends without an outcome is
 * RELAY_TRANSFER_FAILED, never a success.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError, RelayError } from '../../../../shared/errors.ts';
import { readTransferAnswer } from '../../../../shared/registry/transfer.ts';

function answer(text: string, cuts: number[] = []): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    pieces.push(bytes.subarray(at, p));
    at = p;
  }
  return new ReadableStream({
    start(c) {
      for (const p of pieces) c.enqueue(p);
      c.close();
    },
  });
}

async function outcome(text: string): Promise<unknown> {
  return readTransferAnswer(answer(text), () => undefined).then(
    () => 'done',
    (e: unknown) => e,
  );
}

describe('readTransferAnswer', () => {
  it('reports every byte once, however the lines are cut', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 8 }), async (cuts) => {
        const text = '{"bytes":10}\n{"bytes":4096}\n{"bytes":4096}\n{"bytes":70000,"done":true}\n';
        let total = 0;
        await readTransferAnswer(answer(text, cuts), (n) => (total += n));
        expect(total).toBe(70000);
      }),
    );
  });

  it('turns an error line into the error it names, and a cut answer into RELAY_TRANSFER_FAILED', async () => {
    const lie = await outcome('{"bytes":5}\n{"error":{"code":"REGISTRY_DIGEST_MISMATCH","message":"bad bytes"}}\n');
    expect(lie).toBeInstanceOf(RegistryError);
    expect(lie).toMatchObject({ code: 'REGISTRY_DIGEST_MISMATCH', message: 'bad bytes' });
    const failed = await outcome('{"error":{"code":"RELAY_UPSTREAM_UNREACHABLE","message":"gone"}}');
    expect(failed).toBeInstanceOf(RelayError);
    expect(failed).toMatchObject({ code: 'RELAY_UPSTREAM_UNREACHABLE' });
    for (const cut of ['', '{"bytes":5}\n', '{"bytes":5}\n{"done":tr']) {
      expect(await outcome(cut), JSON.stringify(cut)).toMatchObject({ code: 'RELAY_TRANSFER_FAILED' });
    }
    expect(await outcome('{"bytes":5,"done":true}')).toBe('done');
  });
});
