import type { z } from 'zod';

export interface FieldError {
  /** Dotted path of the offending field, e.g. `documents[3].text` or `job.suffix`. */
  field: string;
  message: string;
}

/** Turns a zod path into the dotted/bracketed form users read, e.g. `documents[3].fields`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(root)';
}

/** One entry per bad field; an unknown key (strict objects) is named as a field of its own. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({
          field: formatPath([...issue.path, key]),
          message: `Unrecognized key "${key}": not a field here (check its spelling)`,
        }))
      : [{ field: formatPath(issue.path), message: issue.message }],
  );
}

/** One line per bad field: `job.suffix: at most 18 characters`. */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}

export function formatZodError(error: z.ZodError): string {
  return formatFieldErrors(fieldErrors(error));
}

/**
 * A setting (an environment variable, a config file) that is missing or wrong; the message names
 * each one. Processes exit with 78 (EX_CONFIG) on it. Defined here, beside the field errors, so the
 * runtime and the provider profiles throw the same class without depending on each other.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
