import { badRequest } from './errors.ts';

export interface Page<T> {
  data: T[];
  has_more: boolean;
}

/** Cursor pagination like OpenAI's: `items` already in answer order, `after` = id of the last seen item. */
export function paginate<T extends { id: string }>(
  items: T[],
  after: string | undefined,
  limit: number,
): Page<T> {
  let start = 0;
  if (after) {
    const index = items.findIndex((i) => i.id === after);
    start = index < 0 ? items.length : index + 1;
  }
  const data = items.slice(start, start + limit);
  return { data, has_more: start + limit < items.length };
}

export function parseLimit(raw: unknown, fallback: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw badRequest(
      `Invalid 'limit': expected an integer between 1 and ${max}, got ${String(raw)}.`,
      'limit',
      'integer_out_of_range',
    );
  }
  return n;
}
