/** The path of `GET /v1/pricing/estimate` asking for `query` (values URL-encoded). */
export function estimatePath(query: Record<string, string | number>): string {
  const params = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  return `/v1/pricing/estimate?${params}`;
}
