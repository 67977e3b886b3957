/** Base models the simulator serves and fine-tunes, with the per-example token limit of each. */
export interface BaseModel {
  id: string;
  created: number;
  encoding: 'o200k_base' | 'cl100k_base';
  /** Longest training example, in tokens, the provider accepts for this model. */
  exampleTokenLimit: number;
}

export const BASE_MODELS: BaseModel[] = [
  { id: 'gpt-4o-mini-2024-07-18', created: 1721172717, encoding: 'o200k_base', exampleTokenLimit: 65536 },
  { id: 'gpt-4o-2024-08-06', created: 1722814719, encoding: 'o200k_base', exampleTokenLimit: 65536 },
  { id: 'gpt-4.1-2025-04-14', created: 1744316542, encoding: 'o200k_base', exampleTokenLimit: 65536 },
  { id: 'gpt-4.1-mini-2025-04-14', created: 1744317547, encoding: 'o200k_base', exampleTokenLimit: 65536 },
  { id: 'gpt-4.1-nano-2025-04-14', created: 1744321025, encoding: 'o200k_base', exampleTokenLimit: 65536 },
  { id: 'gpt-3.5-turbo-0125', created: 1706048358, encoding: 'cl100k_base', exampleTokenLimit: 16385 },
];

export function findBaseModel(id: string): BaseModel | undefined {
  return BASE_MODELS.find((m) => m.id === id);
}
