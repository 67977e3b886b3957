/**
 * Row → record rules every repository shares: a nullable bigint column read as a bigint, and "the
 * record of the one row a statement returns, or undefined when it returns none".
 */

/** A nullable bigint column (pg returns int8 as a string) as a bigint or null. */
export const bigintOrNull = (value: string | null): bigint | null => (value === null ? null : BigInt(value));

/**
 * Runs a statement that returns at most one row (a select, or a write with `returning`) and maps that
 * row with `toRecord`; undefined when there is none.
 */
export async function firstRecord<Row, Rec>(
  query: { executeTakeFirst(): Promise<Row | undefined> },
  toRecord: (row: Row) => Rec,
): Promise<Rec | undefined> {
  const row = await query.executeTakeFirst();
  return row === undefined ? undefined : toRecord(row);
}
