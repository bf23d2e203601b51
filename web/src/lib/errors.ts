/**
 * The page's one way of turning a failure into what it shows: the project's errors keep their code
 * and sentence; anything else (a bug, a browser refusal) becomes UNEXPECTED with its message.
 */
import { CosignWebError } from '../../../shared/errors.ts';

export interface Described {
  code: string;
  message: string;
}

export function describeError(e: unknown): Described {
  if (e instanceof CosignWebError) return { code: e.code, message: e.message };
  return { code: 'UNEXPECTED', message: `Something went wrong: ${(e as Error)?.message ?? String(e)}` };
}
