// JSON text checked as it is typed: the syntax (with line and column) and the JSON Schema of a
// device mapping (the subset `fieldgate schema` writes: type, properties, required,
// additionalProperties, items, enum, const, bounds, lengths, pattern, oneOf/anyOf, $ref).
// The gateway checks again on save, with the rules a schema cannot say (overlaps, duplicate ids).

function pathText(path) {
  let out = '';
  for (const s of path) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
  return out || '(top level)';
}

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeOk(want, v) {
  const got = typeOf(v);
  return want === got || (want === 'number' && got === 'integer');
}

function resolve(root, schema) {
  let s = schema;
  for (let i = 0; i < 20 && s && s.$ref; i++) {
    s = s.$ref.replace(/^#\/?/, '').split('/').filter(Boolean).reduce((node, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], root);
  }
  return s ?? {};
}

function check(root, schemaIn, value, path, errors) {
  const schema = resolve(root, schemaIn);
  if (schema === true || !schema) return;
  const at = pathText(path);
  const push = (message) => errors.push({ path: at, message });
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives) {
    const tried = alternatives.map((alt) => { const e = []; check(root, alt, value, path, e); return e; });
    if (tried.some((e) => e.length === 0)) return;
    // The branch whose "type" (or other const) matches says the most; else the one with the fewest errors.
    const constMatch = alternatives.findIndex((alt) => {
      const props = resolve(root, alt).properties ?? {};
      return Object.entries(props).some(([k, p]) => p.const !== undefined && value?.[k] === p.const);
    });
    if (constMatch >= 0) { errors.push(...tried[constMatch]); return; }
    const consts = alternatives.map((alt) => resolve(root, alt).properties?.type?.const).filter((c) => c !== undefined);
    if (consts.length === alternatives.length && value && typeof value === 'object') {
      push(`"type": expected one of ${consts.map((c) => JSON.stringify(c)).join(', ')} (got ${JSON.stringify(value.type)})`);
      return;
    }
    errors.push(...tried.reduce((a, b) => (b.length < a.length ? b : a)));
    return;
  }
  if (schema.allOf) for (const s of schema.allOf) check(root, s, value, path, errors);
  if (schema.const !== undefined && value !== schema.const) return push(`expected ${JSON.stringify(schema.const)} (got ${JSON.stringify(value)})`);
  if (schema.enum && !schema.enum.includes(value)) return push(`expected one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')} (got ${JSON.stringify(value)})`);
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => typeOk(t, value))) return push(`expected ${types.join(' or ')} (got ${JSON.stringify(value)})`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) push(`expected at least ${schema.minimum} (got ${value})`);
    if (schema.maximum !== undefined && value > schema.maximum) push(`expected at most ${schema.maximum} (got ${value})`);
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) push(`expected more than ${schema.exclusiveMinimum} (got ${value})`);
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) push(`expected less than ${schema.exclusiveMaximum} (got ${value})`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) push(`expected at least ${schema.minLength} characters (got ${JSON.stringify(value)})`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) push(`expected at most ${schema.maxLength} characters`);
    if (schema.pattern !== undefined) {
      let re;
      try { re = new RegExp(schema.pattern, 'u'); } catch { re = undefined; }
      if (re && !re.test(value)) push(`does not match ${schema.pattern} (got ${JSON.stringify(value)})`);
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) push(`expected at least ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) push(`expected at most ${schema.maxItems} items`);
    if (schema.items && typeof schema.items === 'object') value.forEach((v, i) => check(root, schema.items, v, [...path, i], errors));
  } else if (value && typeof value === 'object') {
    const props = schema.properties ?? {};
    for (const key of schema.required ?? []) if (!(key in value)) errors.push({ path: pathText([...path, key]), message: 'missing' });
    for (const [key, v] of Object.entries(value)) {
      if (props[key]) check(root, props[key], v, [...path, key], errors);
      else if (schema.additionalProperties === false) {
        const near = Object.keys(props).find((k) => k.toLowerCase() === key.toLowerCase() || k.startsWith(key.slice(0, 4)));
        errors.push({ path: pathText([...path, key]), message: `unknown key${near ? `: did you mean "${near}"?` : ''}` });
      } else if (typeof schema.additionalProperties === 'object') check(root, schema.additionalProperties, v, [...path, key], errors);
    }
  }
}

/** JSON.parse's "position N" as line and column. */
function syntaxError(text, error) {
  const m = /position (\d+)/.exec(error.message);
  if (!m) return { path: '(syntax)', message: error.message };
  const pos = Number(m[1]);
  const before = text.slice(0, pos).split('\n');
  return { path: '(syntax)', message: `line ${before.length}, column ${before.at(-1).length + 1}: ${error.message.replace(/ in JSON at position \d+.*$/, '')}` };
}

/** Every problem of `text` against `schema`: [] when it is valid. */
export function validateJsonText(text, schema) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return [syntaxError(text, error)];
  }
  const errors = [];
  if (schema) check(schema, schema, value, [], errors);
  return errors;
}
