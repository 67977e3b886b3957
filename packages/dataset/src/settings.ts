import { type FineTuneRequest, processClock } from '@tuneline/contracts';
import { type BaseModel, type Catalogue, findBaseModel } from './catalogue.ts';
import { compilePromptTemplate, type PromptTemplate, TemplateError } from './examples.ts';
import type { DatasetIssue, IssueList } from './issues.ts';
import { trainingClosed, trainingClosedMessage } from './lifecycle.ts';
import { findControlChar, findSpecialToken } from './tokens.ts';

/** Everything of a request except the documents (and the ids that do not affect the dataset). */
export type DatasetSettings = Pick<
  FineTuneRequest,
  'modelConfig' | 'dump' | 'testPercent' | 'baseModel' | 'job'
>;

/**
 * The base model's problems, if any (unknown, not fine-tunable, past its `trainingClosesAt` at
 * `provider`: the one the dataset trains at, null or omitted for the model's own). `now` comes from the
 * one clock (issue 21.5): the builder's `BuildOptions.clock`.
 */
export function baseModelIssue(
  name: string,
  catalogue: Catalogue,
  now = processClock().now(),
  provider: string | null = null,
): DatasetIssue | undefined {
  const model = findBaseModel(name, catalogue);
  if (!model) {
    const known = Object.values(catalogue)
      .filter((m) => m.fineTunable)
      .map((m) => m.name);
    return {
      code: 'unknown_base_model',
      field: 'baseModel',
      message: `unknown base model "${name}" (fine-tunable models: ${known.join(', ')})`,
    };
  }
  if (!model.fineTunable) {
    return {
      code: 'base_model_not_fine_tunable',
      field: 'baseModel',
      message: `base model "${name}" cannot be fine-tuned`,
    };
  }
  if (trainingClosed(model, provider, now)) {
    return {
      code: 'base_model_retired',
      field: 'baseModel',
      message: trainingClosedMessage(model, provider),
    };
  }
  return undefined;
}

/** What the passes take from valid settings: the base model and the compiled user prompt. */
export interface CheckedSettings {
  model: BaseModel | undefined;
  prompt: PromptTemplate | undefined;
}

/**
 * The settings' own checks, before any document is read: the base model, the template, the mapped
 * fields, and special tokens or control characters in the prompts. Each problem goes to `errors`.
 */
export function checkSettings(
  settings: DatasetSettings,
  catalogue: Catalogue,
  errors: IssueList,
  now = processClock().now(),
  provider: string | null = null,
): CheckedSettings {
  const { modelConfig, dump } = settings;
  const modelProblem = baseModelIssue(settings.baseModel, catalogue, now, provider);
  if (modelProblem) errors.add(modelProblem);
  const model: BaseModel | undefined = modelProblem
    ? undefined
    : findBaseModel(settings.baseModel, catalogue);
  let prompt: PromptTemplate | undefined;
  try {
    prompt = compilePromptTemplate(modelConfig.userPromptTemplate);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    errors.add({ code: 'invalid_template', field: 'modelConfig.userPromptTemplate', message: err.message });
  }
  if (dump === 'mapped' && modelConfig.mappedFields.length === 0) {
    errors.add({
      code: 'no_mapped_fields',
      field: 'modelConfig.mappedFields',
      message: 'dump "mapped" needs at least one mapped field (or use dump "all")',
    });
  }
  for (const [field, text] of [
    ['modelConfig.systemPrompt', modelConfig.systemPrompt],
    ['modelConfig.userPromptTemplate', modelConfig.userPromptTemplate],
  ] as const) {
    const special = findSpecialToken(text);
    if (special)
      errors.add({ code: 'special_token', field, message: `contains the special token ${special}` });
    const control = findControlChar(text);
    if (control)
      errors.add({
        code: 'control_character',
        field,
        message: `contains the control character ${control.code}`,
      });
  }
  return { model, prompt };
}
