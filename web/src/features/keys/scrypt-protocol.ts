// Messages between the page and the scrypt worker.
import type { ScryptImpl, ScryptParams } from '../../../../shared/crypto/scrypt.ts';

export interface ScryptRequest {
  id: number;
  password: Uint8Array;
  salt: Uint8Array;
  params: ScryptParams;
  impl: ScryptImpl | 'auto';
}

export type ScryptResponse =
  | { id: number; type: 'estimate'; ms: number }
  | { id: number; type: 'progress'; fraction: number }
  | { id: number; type: 'done'; key: Uint8Array; impl: ScryptImpl; ms: number }
  | { id: number; type: 'error'; code: string; message: string };
