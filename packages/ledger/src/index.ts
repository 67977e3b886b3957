export {
  ensureLicenseAccount,
  grantsAccountId,
  licenseAccountId,
  revenueAccountId,
  SYSTEM_STRIPES,
  transferIds,
} from './accounts.ts';
export { AUDITED_INVARIANTS, auditLedger, type Violation } from './audit.ts';
export { type Balance, getBalance, type UsageEntry, type UsageKind, usageLog } from './balance.ts';
export { LedgerConflictError, LedgerNotFoundError } from './errors.ts';
export {
  chargeEvaluation,
  type EvaluationAnswerInput,
  type EvaluationCharge,
  evaluationCharges,
  evaluationTransferId,
  INFERENCE_ACCOUNT,
  recordEvaluationAnswers,
} from './evaluation.ts';
export {
  findReservation,
  type GrantInput,
  grantCredits,
  type PostInput,
  type PostResult,
  postReservation,
  type ReserveInput,
  type ReserveResult,
  reserveCredits,
  voidReservation,
} from './operations.ts';

/** Credits for trained tokens at a price per million tokens, rounded up to whole credits. */
export function creditsForTokens(tokens: bigint, creditsPerMillionTokens: bigint): bigint {
  return (tokens * creditsPerMillionTokens + 999_999n) / 1_000_000n;
}
