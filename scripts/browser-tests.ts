/** Test files that drive a browser: `npm test` provides Chromium when the run selects one of them. */
export const BROWSER_TESTS = [
  'test/api/hub.test.ts',
  'test/api/hub-lists.test.ts',
  'test/api/hub-lifecycle.test.ts',
  'test/evaluator/api-hub.test.ts',
  'test/gateway/hub-usage.test.ts',
  'test/migration/hub.test.ts',
];
