export * from './smtp.ts';
export * from './trial.ts';
