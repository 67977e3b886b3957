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
  type CreditShortfall,
  creditShortfall,
  creditsForTokens,
  type DatasetEstimate,
  type EstimateParts,
  type FineTuneEstimate,
  fineTuneEstimate,
  insufficientCreditsMessage,
  reservationAmount,
} from './estimate.ts';
export { chargeEvaluationRun, type EvaluationRunCharge, evaluationCharges } from './evaluation.ts';
export { chargeHostingHours, type HostingCharge, hostingTransferId } from './hosting.ts';
export {
  callTransferIds,
  type HoldInput,
  type HoldResult,
  holdCall,
  holdCalls,
  inferenceAccountId,
  releaseCall,
  type SettleInput,
  type SettleResult,
  settleCall,
  settleCalls,
} from './inference.ts';
export {
  findReservation,
  type GrantInput,
  grantCredits,
  MAX_GRANT_CREDITS,
  type PostInput,
  type PostResult,
  postReservation,
  type ReserveInput,
  type ReserveResult,
  reserveCredits,
  voidReservation,
} from './operations.ts';
