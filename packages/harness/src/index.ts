export { type ChaosPlan, deleteQueueKeys } from './chaos.ts';
export { TRIAL_PROVIDERS, type TrialProvider } from './providers.ts';
export { failedChecks, formatReport, SERVICES, type TrialEvent, type TrialReport } from './report.ts';
export * from './smtp.ts';
export { runTrial, type TrialOptions } from './trial.ts';
