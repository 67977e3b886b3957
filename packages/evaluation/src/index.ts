export * from './amounts.ts';
export * from './dates.ts';
export {
  type EvaluationReport,
  type ModelAnswer,
  prepareEvaluation,
  prepareEvaluationOnDemand,
  report,
  type ScoredRows,
  scoreAnswers,
} from './evaluation.ts';
export {
  FIELD_TYPES,
  type FieldSpec,
  type FieldSpecOptions,
  type FieldType,
  inferFieldSpecs,
  type JsonObject,
  type JsonValue,
  shapeOf,
} from './fields.ts';
export {
  decideMigration,
  MIGRATION_RULES,
  type MigrationEvaluation,
  type MigrationRule,
} from './migration.ts';
export {
  decidePromotion,
  type PromotionDecision,
  type PromotionInput,
  type PromotionRule,
} from './promotion.ts';
export {
  compareField,
  type EvaluationExample,
  type ExampleRow,
  expectedObject,
  FIELD_OUTCOMES,
  type FieldOutcome,
  type FieldRow,
  type PreparedExample,
  prepareExample,
  scoreAnswer,
} from './score.ts';
export { mcnemarExact, wilsonInterval, Z95 } from './stats.ts';
export {
  ALPHA,
  compareModels,
  type FieldSummary,
  formatP,
  type ModelSummary,
  type PairedComparison,
  type PairedCounts,
  type Proportion,
  proportion,
  summarise,
  type Verdict,
} from './summary.ts';
export {
  type EvaluatedModels,
  type EvaluationSummary,
  type EvaluationTable,
  evaluationTable,
  formatDelta,
  formatEvaluationTable,
  formatInterval,
  formatRate,
  type StoredAnswer,
  summariseStoredAnswers,
  type TableRow,
} from './table.ts';
export { normaliseText } from './text.ts';
