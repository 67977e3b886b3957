// A value conforming to a JSON Schema (the subset Structured Outputs accepts: objects, arrays, strings,
// numbers, integers, booleans, null, enum, const, anyOf, $ref into $defs), filled from a hint: the toy
// model's own answer where it fits, a neutral value where it does not. This is how the simulator answers
// `response_format: json_schema` and the arguments of a tool call.

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);

function resolve(schema: Json, root: Json): Json {
  let current = schema;
  for (let i = 0; i < 16 && typeof current.$ref === 'string'; i++) {
    const ref = current.$ref as string;
    if (ref === '#') current = root;
    else if (ref.startsWith('#/')) {
      let node: unknown = root;
      for (const part of ref.slice(2).split('/')) node = isObject(node) ? node[part] : undefined;
      current = isObject(node) ? node : {};
    } else return {};
  }
  return current;
}

function typesOf(schema: Json): string[] {
  if (Array.isArray(schema.type)) return schema.type.filter((t): t is string => typeof t === 'string');
  if (typeof schema.type === 'string') return [schema.type];
  if (isObject(schema.properties)) return ['object'];
  if (schema.items !== undefined) return ['array'];
  return [];
}

/** The hint read as a number, e.g. "40.00 EUR" → 40. */
function numberFrom(hint: unknown): number | undefined {
  if (typeof hint === 'number' && Number.isFinite(hint)) return hint;
  if (typeof hint === 'string') {
    const m = /-?\d+(?:[.,]\d+)?/.exec(hint);
    if (m) return Number(m[0].replace(',', '.'));
  }
  return undefined;
}

function fits(schema: Json, root: Json, hint: unknown): boolean {
  const s = resolve(schema, root);
  if ('const' in s) return s.const === hint;
  if (Array.isArray(s.enum)) return s.enum.includes(hint);
  const types = typesOf(s);
  if (types.length === 0) return true;
  return types.some((t) =>
    t === 'null'
      ? hint === null
      : t === 'integer'
        ? Number.isInteger(hint)
        : t === 'array'
          ? Array.isArray(hint)
          : t === 'object'
            ? isObject(hint)
            : typeof hint === t,
  );
}

export function valueForSchema(schema: unknown, hint: unknown, root?: unknown, depth = 0): unknown {
  const top = (isObject(root) ? root : isObject(schema) ? schema : {}) as Json;
  const s = resolve(isObject(schema) ? schema : {}, top);
  if (depth > 12) return null;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum.includes(hint) ? hint : s.enum[0];
  const branches = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(branches) && branches.length > 0) {
    const branch =
      branches.find((b) => isObject(b) && fits(b, top, hint)) ??
      branches.find((b) => isObject(b) && !typesOf(resolve(b, top)).includes('null')) ??
      branches[0];
    return valueForSchema(branch, hint, top, depth + 1);
  }
  const types = typesOf(s);
  const type =
    (hint === null && types.includes('null') ? 'null' : types.find((t) => t !== 'null')) ?? 'string';
  switch (type) {
    case 'null':
      return null;
    case 'object': {
      const props = isObject(s.properties) ? s.properties : {};
      const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : Object.keys(props));
      const source = isObject(hint) ? hint : {};
      const out: Json = {};
      for (const [key, sub] of Object.entries(props)) {
        if (!required.has(key) && !(key in source)) continue;
        out[key] = valueForSchema(sub, source[key], top, depth + 1);
      }
      return out;
    }
    case 'array': {
      const items = Array.isArray(hint) ? hint : [];
      const min = typeof s.minItems === 'number' ? s.minItems : 0;
      const max = typeof s.maxItems === 'number' ? s.maxItems : Number.POSITIVE_INFINITY;
      const out = items.slice(0, max).map((h) => valueForSchema(s.items, h, top, depth + 1));
      while (out.length < min) out.push(valueForSchema(s.items, undefined, top, depth + 1));
      return out;
    }
    case 'integer':
    case 'number': {
      let n = numberFrom(hint) ?? 0;
      if (type === 'integer') n = Math.round(n);
      if (typeof s.minimum === 'number') n = Math.max(n, s.minimum);
      if (typeof s.maximum === 'number') n = Math.min(n, s.maximum);
      return n;
    }
    case 'boolean':
      return typeof hint === 'boolean' ? hint : false;
    default: {
      let text = typeof hint === 'string' ? hint : typeof hint === 'number' ? String(hint) : '';
      if (typeof s.maxLength === 'number') text = text.slice(0, s.maxLength);
      if (typeof s.minLength === 'number') text = text.padEnd(s.minLength, '-');
      return text;
    }
  }
}
