/**
 * Form errors of the verification pages, kept apart from their verdicts: a field left empty or
 * malformed is marked at the field (aria-invalid, an inline sentence) and no "Not verified" is
 * said for a form that was never verified. An error holds while its field still has the value it
 * was given for, so typing in the field clears it.
 */
import type { Reason } from '../../../shared/errors.ts';

/** A form that cannot be verified as filled in: which field, and why. */
export class FormProblem<F extends string> extends Error {
  readonly field: F;
  readonly reason: Reason;
  constructor(field: F, reason: Reason) {
    super(reason.message);
    this.name = 'FormProblem';
    this.field = field;
    this.reason = reason;
  }
}

/** The form's field errors, one at a time (the first problem found), by field name. */
export class FieldErrors<F extends string> {
  #error = $state.raw<{ field: F; message: string; value: string } | null>(null);

  /** The field in error, while its value is the one the error was given for. */
  field(values: Record<F, string>): F | null {
    const e = this.#error;
    return e && values[e.field] === e.value ? e.field : null;
  }

  /** The sentence for `field` when it is the field in error and still holds the same value; else null. */
  message(field: F, value: string): string | null {
    const e = this.#error;
    return e?.field === field && e.value === value ? e.message : null;
  }

  /** Marks `field` (now holding `value`) with the problem's sentence. */
  set(problem: FormProblem<F>, value: string): void {
    this.#error = { field: problem.field, message: problem.reason.message, value };
  }

  clear(): void {
    this.#error = null;
  }
}

/**
 * Runs `step`, turning what it throws into a FormProblem for `field`.
 * @throws FormProblem with the step's reason.
 */
export function atField<F extends string, T>(field: F, step: () => T, reason: (e: unknown) => Reason): T {
  try {
    return step();
  } catch (e) {
    throw new FormProblem(field, reason(e));
  }
}

/** The attributes that mark the field `id` as in error (its sentence in the element `${id}-error`), or none. */
export function invalidAttrs(id: string, error: string | null): Record<string, string> {
  return error ? { 'aria-invalid': 'true', 'aria-describedby': `${id}-error` } : {};
}
