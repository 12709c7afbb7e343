/** A form built from a gate option's parameter schema (the server's JSON Schema), checked with it. */
import type { Schema } from "../lib/jsonschema";
import { fieldValue } from "../lib/jsonschema";

export type Texts = Record<string, string>;

function resolve(schema: Schema, root: Schema): Schema {
  if (schema.$ref) return root.$defs?.[schema.$ref.replace("#/$defs/", "")] ?? schema;
  const typed = schema.anyOf?.find((s) => s.type !== "null");
  if (typed && schema.anyOf) return resolve(typed, root);
  return schema;
}

function label(name: string, schema: Schema): string {
  return schema.title ?? name.replace(/_/g, " ");
}

/** The parameters the texts stand for (nested by dotted path; maps given as JSON). */
export function paramsFrom(texts: Texts, schema: Schema, root: Schema = schema, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(schema.properties ?? {})) {
    const sub = resolve(raw, root);
    const path = prefix ? `${prefix}.${name}` : name;
    if (sub.properties) {
      const nested = paramsFrom(texts, sub, root, path);
      if (Object.keys(nested).length) out[name] = nested;
      continue;
    }
    const text = texts[path];
    if (text === undefined || text.trim() === "") continue;
    if (sub.type === "object" || sub.type === "boolean") {
      try {
        out[name] = JSON.parse(text);
      } catch {
        out[name] = text; // the check then names the field
      }
      continue;
    }
    out[name] = fieldValue(text, raw.anyOf ? raw : sub);
  }
  return out;
}

export function SchemaForm({
  schema,
  root = schema,
  texts,
  onChange,
  prefix = "",
  problems,
  blank = "(unchanged)",
  secretHint,
}: {
  schema: Schema;
  root?: Schema;
  texts: Texts;
  onChange(texts: Texts): void;
  prefix?: string;
  problems: Record<string, string>;
  /** What an empty select says (a gate: unchanged; a new source: the default). */
  blank?: string;
  /** A secret field (format password) is a password input; this gives its placeholder (e.g. "stored"). */
  secretHint?: (path: string) => string;
}) {
  return (
    <div className="schema-form">
      {Object.entries(schema.properties ?? {}).map(([name, raw]) => {
        const sub = resolve(raw, root);
        const path = prefix ? `${prefix}.${name}` : name;
        const id = `param-${path.replace(/\W/g, "-")}`;
        if (sub.properties) {
          return (
            <fieldset key={path}>
              <legend>{label(name, raw.title ? raw : sub)}</legend>
              <SchemaForm schema={sub} root={root} texts={texts} onChange={onChange} prefix={path} problems={problems} blank={blank} secretHint={secretHint} />
            </fieldset>
          );
        }
        const value = texts[path] ?? "";
        const set = (v: string) => onChange({ ...texts, [path]: v });
        const hint = [sub.description, bounds(sub)].filter(Boolean).join(" ");
        const problem = problems[path];
        const items = sub.items ? resolve(sub.items, root) : undefined;
        let input;
        if (sub.enum) {
          input = (
            <select id={id} value={value} onChange={(e) => set(e.target.value)} aria-invalid={!!problem}>
              <option value="">{blank}</option>
              {sub.enum.map((v) => (
                <option key={String(v)} value={String(v)}>
                  {String(v)}
                </option>
              ))}
            </select>
          );
        } else if (sub.type === "boolean") {
          input = (
            <select id={id} value={value} onChange={(e) => set(e.target.value)}>
              <option value="">(detect)</option>
              <option value="true">yes</option>
              <option value="false">no</option>
            </select>
          );
        } else if (sub.type === "object") {
          input = <textarea id={id} rows={2} value={value} placeholder='{"column": "float"}' onChange={(e) => set(e.target.value)} aria-invalid={!!problem} />;
        } else if (sub.format === "password" || (sub as { writeOnly?: boolean }).writeOnly) {
          input = (
            <input
              id={id}
              type="password"
              autoComplete="new-password"
              value={value}
              placeholder={secretHint?.(path) ?? ""}
              onChange={(e) => set(e.target.value)}
              aria-invalid={!!problem}
              aria-describedby={problem ? `${id}-problem` : undefined}
            />
          );
        } else {
          const numeric = sub.type === "integer" || sub.type === "number";
          input = (
            <input
              id={id}
              type={numeric ? "number" : "text"}
              step={sub.type === "number" ? "any" : undefined}
              value={value}
              placeholder={items?.enum ? items.enum.join(", ") : sub.default != null ? String(sub.default) : ""}
              onChange={(e) => set(e.target.value)}
              aria-invalid={!!problem}
              aria-describedby={problem ? `${id}-problem` : undefined}
            />
          );
        }
        return (
          <div className="field" key={path}>
            <label htmlFor={id}>{label(name, raw.title ? raw : sub)}</label>
            {input}
            {hint && <small className="muted">{hint}</small>}
            {problem && (
              <small id={`${id}-problem`} className="error">
                {problem}
              </small>
            )}
          </div>
        );
      })}
    </div>
  );
}

function bounds(s: Schema): string {
  const parts = [];
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
  if (s.exclusiveMaximum !== undefined) parts.push(`< ${s.exclusiveMaximum}`);
  if (s.items?.enum) parts.push(`comma-separated: ${s.items.enum.join(", ")}`);
  return parts.join(", ");
}
