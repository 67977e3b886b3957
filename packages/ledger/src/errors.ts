/** The ledger refuses an operation that contradicts what it already holds (same id, other content; post after void...). */
export class LedgerConflictError extends Error {
  override name = 'LedgerConflictError';
}

/** The operation needs a row that is not there (e.g. posting a reservation that was never made). */
export class LedgerNotFoundError extends Error {
  override name = 'LedgerNotFoundError';
}
