/** Source configs in the browser: each type's form schema (from the gateway's published OpenAPI), the
texts of a stored config, the body to send on create and on edit, secrets kept out of both, and the
problems found (by the same schema, and those the server's 422 names).

A secret (a schema field with `format: password`/`writeOnly`) is never filled in from the server (the
server only ever sends ********); left empty on edit it keeps its stored value.
*/
import { paramsFrom, type Texts } from "../gates/SchemaForm";
import { validate, type Schema } from "./jsonschema";

export const MASK = "********";

export interface SourceType {
  type: string;
  description: string;
  schema: Schema;
}

export interface SourceView {
  id: string;
  name: string;
  type: string;
  config: Record<string, unknown>;
  secret_fields: string[];
  created_by: string;
  created_at: string;
  updated_at: string;
  last_health: SourceHealth | null;
  contract: { columns: unknown[]; run_id: string; approved_by: string; approved_at: string } | null;
}

export interface SourceHealth {
  ok: boolean;
  reachable: boolean;
  authorised: boolean;
  readable: boolean;
  seconds: number;
  message: string;
  checked_at: string | null;
}

// Fields the server sets itself (an upload's artifact address): never in the form.
const SERVER_SET: Record<string, string[]> = { file: ["uri"] };

type OpenApi = { components?: { schemas?: Record<string, { oneOf?: Schema[] }> } };

/** Every source type with its config's schema, from the OpenAPI's `SourceCreate` (one branch a type). */
export function sourceTypes(openapi: unknown): SourceType[] {
  const branches = (openapi as OpenApi)?.components?.schemas?.SourceCreate?.oneOf ?? [];
  return branches.flatMap((branch) => {
    const kind = (branch.properties?.type as { const?: string } | undefined)?.const;
    const config = branch.properties?.config;
    if (!kind || !config) return [];
    const hidden = SERVER_SET[kind] ?? [];
    const properties = Object.fromEntries(Object.entries(config.properties ?? {}).filter(([name]) => !hidden.includes(name)));
    return [{ type: kind, description: config.description ?? "", schema: { ...config, properties } }];
  });
}

function typed(schema: Schema): Schema {
  return schema.anyOf?.find((s) => s.type !== "null") ?? schema;
}

/** Is this field a secret (written, never read back)? */
export function isSecret(schema: Schema): boolean {
  const s = typed(schema);
  return s.format === "password" || (s as { writeOnly?: boolean }).writeOnly === true;
}

/** The dotted paths of every secret field in a config schema. */
export function secretPaths(schema: Schema, prefix = ""): string[] {
  return Object.entries(schema.properties ?? {}).flatMap(([name, sub]) => {
    const path = prefix ? `${prefix}.${name}` : name;
    const s = typed(sub);
    if (s.properties) return secretPaths(s, path);
    return isSecret(sub) ? [path] : [];
  });
}

/** The form's texts for a stored (masked) config: secrets empty, numbers and lists as text. */
export function textsFromConfig(config: Record<string, unknown>, schema: Schema, prefix = ""): Texts {
  const texts: Texts = {};
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    const value = config[name];
    const s = typed(sub);
    if (s.properties) {
      if (value && typeof value === "object") Object.assign(texts, textsFromConfig(value as Record<string, unknown>, s, path));
      continue;
    }
    if (value === undefined || value === null || isSecret(sub) || value === MASK) continue;
    if (Array.isArray(value)) texts[path] = value.join(", ");
    else if (typeof value === "object") {
      if (Object.keys(value).length) texts[path] = JSON.stringify(value);
    } else texts[path] = String(value);
  }
  return texts;
}

/** What a stored secret's field shows instead of its value (a database URL shows its masked form). */
export function secretPlaceholder(config: Record<string, unknown>, path: string): string {
  const value = path.split(".").reduce<unknown>((node, key) => (node && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined), config);
  const shown = typeof value === "string" && value !== MASK ? ` (${value})` : "";
  return `stored${shown}; leave empty to keep`;
}

function nullable(schema: Schema): boolean {
  return !!schema.anyOf?.some((s) => s.type === "null");
}

function at(schema: Schema, path: string): Schema | undefined {
  let node: Schema | undefined = schema;
  for (const key of path.split(".")) node = node ? typed(node).properties?.[key] : undefined;
  return node;
}

function put(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  const leaf = keys.pop() as string;
  let node = target;
  for (const key of keys) {
    if (!node[key] || typeof node[key] !== "object") node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[leaf] = value;
}

/** The config a new source is created with (unset fields left out: the server's defaults apply). */
export function configFromTexts(texts: Texts, schema: Schema): Record<string, unknown> {
  return paramsFrom(texts, schema);
}

/** The body of an edit (a partial change): only the fields whose text changed, `null` for a nullable
field that was cleared. A secret left empty is left out (it keeps its stored value), and so is a cleared
field that cannot be null (it keeps its value). Unchanged fields are not sent back: the server shows
paths relative to its folders, which must not be sent as the new value. */
export function configChanges(before: Texts, after: Texts, schema: Schema): Record<string, unknown> {
  const full = paramsFrom(after, schema);
  const changes: Record<string, unknown> = {};
  for (const path of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const was = (before[path] ?? "").trim();
    const now = (after[path] ?? "").trim();
    if (was === now) continue;
    const field = at(schema, path);
    if (!field) continue;
    if (now === "") {
      if (was !== "" && nullable(field) && !isSecret(field)) put(changes, path, null);
      continue;
    }
    put(changes, path, path.split(".").reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], full));
  }
  return changes;
}

/** The problems of a config against its type's schema, by field path. An edit is `partial`: a field it
leaves out (a required one too, e.g. a stored secret) keeps its stored value, so none is missing. */
export function configProblems(config: Record<string, unknown>, schema: Schema, partial = false): Record<string, string> {
  const found: Record<string, string> = {};
  for (const p of validate(config, schema)) {
    if (partial && p.message === "is required") continue;
    found[p.path] ??= p.message;
  }
  return found;
}

/** The fields a server's 422 names (`errors: [{field, message}]`), by path as the form names them. */
export function serverProblems(body: unknown): Record<string, string> {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return {};
  const found: Record<string, string> = {};
  for (const e of errors) {
    if (e && typeof e === "object" && typeof e.field === "string" && typeof e.message === "string") found[e.field] ??= e.message;
  }
  return found;
}

/** One line on a source's health: what passed, what failed, how long it took. */
export function healthSummary(health: SourceHealth | null | undefined): string {
  if (!health) return "not tested yet";
  const seconds = `${health.seconds < 1 ? health.seconds.toFixed(2) : health.seconds.toFixed(1)} s`;
  if (health.ok) return `OK: reachable, authorised and readable (${seconds})`;
  const step = !health.reachable ? "not reachable" : !health.authorised ? "not authorised" : "not readable";
  return `Failed: ${step}${health.message ? ` — ${health.message}` : ""} (${seconds})`;
}

/** A source name the server accepts (it is used in URL paths). */
export function nameProblem(name: string): string | null {
  if (!name) return "is required";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) return "must start with a letter or digit and use only letters, digits, _ . - (at most 64)";
  return null;
}
