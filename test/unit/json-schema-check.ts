/**
 * A small JSON Schema (draft 2020-12) checker for exactly the subset vipd's generator emits:
 * type, properties, additionalProperties, required, items, oneOf, enum, minimum, maximum,
 * pattern and maxLength. Annotations (title, description, default, $comment, format, $schema,
 * $id) are accepted and ignored, as 2020-12 does by default. Any other keyword is reported by
 * checkSchemaStructure and makes validate throw, so the checker never passes a document by
 * silently skipping a rule it does not understand.
 */

export type Schema = boolean | { [keyword: string]: unknown };

const ANNOTATIONS = new Set(["title", "description", "default", "$comment", "format", "$schema", "$id"]);
const ASSERTIONS = new Set(["type", "properties", "additionalProperties", "required", "items", "oneOf", "enum", "minimum", "maximum", "pattern", "maxLength"]);
const TYPES = new Set(["null", "boolean", "object", "array", "number", "integer", "string"]);
export const DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Structural problems of a schema document (keyword value types, unknown keywords, bad regexes); [] when sound. */
export function checkSchemaStructure(schema: unknown, path = "#"): string[] {
  const out: string[] = [];
  if (typeof schema === "boolean") return out;
  if (!isObject(schema)) return [`${path}: a schema must be an object or a boolean`];
  if (path === "#" && schema.$schema !== DRAFT_2020_12) out.push(`#: $schema must be ${DRAFT_2020_12}`);
  for (const [k, v] of Object.entries(schema)) {
    const at = `${path}/${k}`;
    if (ANNOTATIONS.has(k)) {
      if (k !== "default" && typeof v !== "string") out.push(`${at}: must be a string`);
      continue;
    }
    if (!ASSERTIONS.has(k)) {
      out.push(`${at}: keyword outside the supported subset`);
      continue;
    }
    switch (k) {
      case "type": {
        const ts = Array.isArray(v) ? v : [v];
        if (!ts.length || ts.some((t) => typeof t !== "string" || !TYPES.has(t))) out.push(`${at}: not a type name (or list of them)`);
        break;
      }
      case "properties":
        if (!isObject(v)) out.push(`${at}: must be an object`);
        else for (const [name, sub] of Object.entries(v)) out.push(...checkSchemaStructure(sub, `${at}/${name}`));
        break;
      case "additionalProperties":
      case "items":
        out.push(...checkSchemaStructure(v, at));
        break;
      case "required":
        if (!Array.isArray(v) || v.some((x) => typeof x !== "string") || new Set(v).size !== v.length) out.push(`${at}: must be an array of unique strings`);
        break;
      case "oneOf":
        if (!Array.isArray(v) || !v.length) out.push(`${at}: must be a non-empty array`);
        else v.forEach((sub, i) => out.push(...checkSchemaStructure(sub, `${at}/${i}`)));
        break;
      case "enum":
        if (!Array.isArray(v) || !v.length) out.push(`${at}: must be a non-empty array`);
        break;
      case "minimum":
      case "maximum":
        if (typeof v !== "number" || !Number.isFinite(v)) out.push(`${at}: must be a number`);
        break;
      case "maxLength":
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0) out.push(`${at}: must be a non-negative integer`);
        break;
      case "pattern":
        try {
          new RegExp(String(v), "u");
          if (typeof v !== "string") out.push(`${at}: must be a string`);
        } catch (e) {
          out.push(`${at}: invalid ECMA-262 regex: ${(e as Error).message}`);
        }
        break;
    }
  }
  return out;
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function hasType(v: unknown, t: string): boolean {
  switch (t) {
    case "integer":
      return typeof v === "number" && Number.isInteger(v);
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    default:
      return typeOf(v) === t;
  }
}

/** JSON equality for enum (values are plain JSON). */
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Errors of `value` against `schema`, each prefixed with a JSON pointer; [] when valid. */
export function validate(schema: Schema, value: unknown, path = ""): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path || "/"}: no value is allowed here`];
  const out: string[] = [];
  const here = path || "/";
  for (const k of Object.keys(schema)) if (!ANNOTATIONS.has(k) && !ASSERTIONS.has(k)) throw new Error(`unsupported schema keyword '${k}' at ${here}`);
  const s = schema;
  if (s.type !== undefined) {
    const ts = (Array.isArray(s.type) ? s.type : [s.type]) as string[];
    if (!ts.some((t) => hasType(value, t))) return [`${here}: expected ${ts.join(" or ")}, got ${typeOf(value)}`];
  }
  if (s.enum !== undefined && !(s.enum as unknown[]).some((e) => same(e, value))) out.push(`${here}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`);
  if (typeof value === "number") {
    if (typeof s.minimum === "number" && value < s.minimum) out.push(`${here}: ${value} < minimum ${s.minimum}`);
    if (typeof s.maximum === "number" && value > s.maximum) out.push(`${here}: ${value} > maximum ${s.maximum}`);
  }
  if (typeof value === "string") {
    if (typeof s.pattern === "string" && !new RegExp(s.pattern, "u").test(value)) out.push(`${here}: '${value}' does not match /${s.pattern}/`);
    // maxLength counts code points, not UTF-16 units
    if (typeof s.maxLength === "number" && [...value].length > s.maxLength) out.push(`${here}: longer than ${s.maxLength}`);
  }
  if (isObject(value)) {
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const r of (s.required ?? []) as string[]) if (!(r in value)) out.push(`${here}: missing required property '${r}'`);
    for (const [k, v] of Object.entries(value)) {
      const sub = Object.hasOwn(props, k) ? props[k] : s.additionalProperties;
      if (sub === undefined) continue;
      if (sub === false && !Object.hasOwn(props, k)) {
        out.push(`${here}: unknown property '${k}'`);
        continue;
      }
      out.push(...validate(sub as Schema, v, `${path}/${k}`));
    }
  }
  if (Array.isArray(value) && s.items !== undefined) value.forEach((v, i) => out.push(...validate(s.items as Schema, v, `${path}/${i}`)));
  if (s.oneOf !== undefined) {
    const results = (s.oneOf as Schema[]).map((sub) => validate(sub, value, path));
    const passing = results.filter((r) => r.length === 0).length;
    if (passing !== 1)
      out.push(passing === 0 ? `${here}: matches none of oneOf: ${results.map((r) => r[0]).join(" | ")}` : `${here}: matches ${passing} branches of oneOf (exactly one allowed)`);
  }
  return out;
}
