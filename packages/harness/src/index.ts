export { type ChaosPlan, deleteQueueKeys } from './chaos.ts';
export { failedChecks, formatReport, type TrialEvent, type TrialReport } from './report.ts';
export * from './smtp.ts';
export { runTrial, type TrialOptions } from './trial.ts';
