import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * CSV downloads (the usage log, an evaluation's answers): asked for with `?format=csv`, or without a
 * `format` by `Accept: text/csv`; a header line, then a line per row, CRLF-ended.
 */

export const wantsCsv = (format: 'json' | 'csv' | undefined, request: FastifyRequest): boolean =>
  format === 'csv' || (format === undefined && /\btext\/csv\b/.test(request.headers.accept ?? ''));

/** Sends `text` as the CSV attachment `filename`. */
export const sendCsv = (reply: FastifyReply, filename: string, text: string) =>
  reply
    .code(200)
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename}"`)
    .send(text);

/** How a table writes its values: as text, and which text starting with `-` is a number, not a formula. */
export interface CsvCells {
  text: (value: unknown) => string;
  negativeNumber: RegExp;
}

function csvCell(value: unknown, cells: CsvCells): string {
  if (value === null || value === undefined) return '';
  const text = cells.text(value);
  // Quote when needed; a leading = + - @ is neutralised so spreadsheets never run it as a formula.
  const safe =
    /^[=+@\t\r]/.test(text) || (/^-/.test(text) && !cells.negativeNumber.test(text)) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvText<C extends string>(
  columns: readonly C[],
  rows: Iterable<Record<C, unknown>>,
  cells: CsvCells,
): string {
  const lines = [columns.join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c], cells)).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
