/** `snake_case` as `camelCase`, at the type level. */
type CamelKey<K extends string> = K extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<CamelKey<Tail>>}`
  : K;

/** A row with its snake_case column names in camelCase, the values as they are. */
export type Camelized<R> = { [K in keyof R as K extends string ? CamelKey<K> : K]: R[K] };

/**
 * The record of a row whose columns all map to fields of the same name in camelCase (`job_id` →
 * `jobId`), values unchanged. Only for rows of one table's columns: every column becomes a field.
 */
export function camelized<R extends object>(row: R): Camelized<R> {
  const record: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    record[key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = value;
  }
  return record as Camelized<R>;
}
