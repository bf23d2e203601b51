/**
 * The page's one way of turning a failure into what it shows: shared/errors.ts's reasonOf, so the
 * page says what the server and result files say (a project error's code and sentence; anything
 * else, a bug or a browser refusal, as UNEXPECTED with its message).
 */
import { reasonOf, type Reason } from '../../../shared/errors.ts';

/** What a failure shows: its code and sentence. */
export function describeError(e: unknown): Reason {
  return reasonOf(e);
}

/** The status a page shows when something is not verified: its code, and its sentence after "Not verified:". */
export function notVerified({ code, message }: Reason): { state: 'error'; code: string; message: string } {
  return { state: 'error', code, message: `Not verified: ${message}` };
}
