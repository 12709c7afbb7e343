/** Browser-side checks from the same JSON Schema the server publishes for a gate option's parameters.

Covers what the gates' schemas use (pydantic's output): type, enum, bounds, lengths, pattern, anyOf with
null, arrays, objects with required/additionalProperties, and local $refs. The server checks again.
*/

export type Schema = {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  anyOf?: Schema[];
  $ref?: string;
  $defs?: Record<string, Schema>;
  title?: string;
  description?: string;
  default?: unknown;
  format?: string;
};

export interface Problem {
  path: string;
  message: string;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function typeFits(expected: string, actual: string): boolean {
  return expected === actual || (expected === "number" && actual === "integer");
}

/** Every problem of `value` against `schema` (empty: valid). */
export function validate(value: unknown, schema: Schema, root: Schema = schema, path = ""): Problem[] {
  const at = path || "(value)";
  if (schema.$ref) {
    const name = schema.$ref.replace("#/$defs/", "");
    const target = root.$defs?.[name];
    return target ? validate(value, target, root, path) : [{ path: at, message: `unknown reference ${schema.$ref}` }];
  }
  if (schema.anyOf) {
    const branches = schema.anyOf.map((s) => validate(value, s, root, path));
    if (branches.some((b) => b.length === 0)) return [];
    const typed = branches.find((_, i) => schema.anyOf?.[i]?.type !== "null");
    return typed ?? branches[0] ?? [];
  }
  const problems: Problem[] = [];
  const actual = typeOf(value);
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => typeFits(t, actual))) return [{ path: at, message: `must be ${types.join(" or ")}` }];
  }
  if (schema.enum && !schema.enum.includes(value)) {
    problems.push({ path: at, message: `must be one of ${schema.enum.join(", ")}` });
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) problems.push({ path: at, message: `must be at least ${schema.minimum}` });
    if (schema.maximum !== undefined && value > schema.maximum) problems.push({ path: at, message: `must be at most ${schema.maximum}` });
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) problems.push({ path: at, message: `must be more than ${schema.exclusiveMinimum}` });
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) problems.push({ path: at, message: `must be less than ${schema.exclusiveMaximum}` });
  }
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength) problems.push({ path: at, message: `must have at least ${schema.minLength} characters` });
    if (schema.maxLength !== undefined && value.length > schema.maxLength) problems.push({ path: at, message: `must have at most ${schema.maxLength} characters` });
    if (schema.pattern && !new RegExp(schema.pattern, "u").test(value)) problems.push({ path: at, message: `must match ${schema.pattern}` });
    if (schema.format === "date" && !/^\d{4}-\d{2}-\d{2}$/.test(value)) problems.push({ path: at, message: "must be a date (YYYY-MM-DD)" });
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) problems.push({ path: at, message: `needs at least ${schema.minItems} item(s)` });
    if (schema.items) value.forEach((item, i) => problems.push(...validate(item, schema.items as Schema, root, `${path}[${i}]`)));
  }
  if (actual === "object") {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) {
      if (!(name in object)) problems.push({ path: join(path, name), message: "is required" });
    }
    for (const [name, item] of Object.entries(object)) {
      const sub = schema.properties?.[name];
      if (sub) problems.push(...validate(item, sub, root, join(path, name)));
      else if (schema.additionalProperties === false) problems.push({ path: join(path, name), message: "is not a known field" });
      else if (typeof schema.additionalProperties === "object") problems.push(...validate(item, schema.additionalProperties, root, join(path, name)));
    }
  }
  return problems;
}

function join(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

/** A form field's text as the value its schema asks for: "" is unset (null), numbers parsed. */
export function fieldValue(text: string, schema: Schema): unknown {
  if (text.trim() === "") return undefined;
  const types = (schema.anyOf ?? [schema]).map((s) => s.type).flat();
  if (types.includes("integer") || types.includes("number")) {
    const n = Number(text);
    return Number.isNaN(n) ? text : n;
  }
  if (types.includes("array")) return text.split(",").map((s) => s.trim()).filter(Boolean);
  return text;
}

/** The form's values without unset fields (the server then keeps its defaults). */
export function compact(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}
