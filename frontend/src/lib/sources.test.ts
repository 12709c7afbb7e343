import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import {
  configChanges,
  configFromTexts,
  configProblems,
  healthSummary,
  MASK,
  nameProblem,
  secretPaths,
  secretPlaceholder,
  serverProblems,
  sourceTypes,
  textsFromConfig,
} from "./sources";
import { mayManageSource } from "./roles";

// The OpenAPI the client is generated from (the gateway publishes the same at /openapi.json).
const openapi: unknown = JSON.parse(readFileSync(new URL("../../openapi.json", import.meta.url), "utf8"));
const types = sourceTypes(openapi);
const kind = (name: string) => {
  const found = types.find((t) => t.type === name);
  if (!found) throw new Error(`no ${name} type`);
  return found.schema;
};

describe("source types from the OpenAPI", () => {
  it("has the five types, with the server-set upload address left out of the file form", () => {
    expect(types.map((t) => t.type)).toEqual(["file", "api", "database", "s3", "stream"]);
    expect(Object.keys(kind("file").properties ?? {})).toContain("path");
    expect(Object.keys(kind("file").properties ?? {})).not.toContain("uri");
    expect(kind("file").required).toEqual(["path"]);
  });

  it("finds every secret, nested ones by dotted path", () => {
    expect(secretPaths(kind("api"))).toEqual(["auth.password", "auth.token"]);
    expect(secretPaths(kind("database"))).toEqual(["url"]);
    expect(secretPaths(kind("s3"))).toEqual(["secret_access_key", "session_token"]);
    expect(secretPaths(kind("stream"))).toEqual(["schema_registry_password", "security.sasl_password"]);
    expect(secretPaths(kind("file"))).toEqual([]);
  });
});

describe("a new source's config", () => {
  it("is built from the texts, nested and typed, unset fields left out", () => {
    const texts = { url: "https://api.example.com/items", max_pages: "3", "auth.type": "bearer", "auth.token": "s3cret", headers: '{"Accept": "application/json"}' };
    expect(configFromTexts(texts, kind("api"))).toEqual({
      url: "https://api.example.com/items",
      max_pages: 3,
      auth: { type: "bearer", token: "s3cret" },
      headers: { Accept: "application/json" },
    });
  });

  it("is checked with the type's schema: required, bounds, pattern, enum", () => {
    expect(configProblems(configFromTexts({}, kind("file")), kind("file"))).toEqual({ path: "is required" });
    expect(configProblems(configFromTexts({ url: "https://x", max_pages: "0" }, kind("api")), kind("api"))).toEqual({ max_pages: "must be at least 1" });
    expect(configProblems(configFromTexts({ bucket: "Bad_Bucket" }, kind("s3")), kind("s3")).bucket).toMatch(/must match/);
    expect(configProblems(configFromTexts({ path: "/d/a.csv", delimiter: ";;" }, kind("file")), kind("file"))).toEqual({ delimiter: "must have at most 1 characters" });
    expect(configProblems(configFromTexts({ path: "/d/a.csv", format: "csv", header: "true" }, kind("file")), kind("file"))).toEqual({});
  });
});

describe("editing a stored source", () => {
  const stored = { url: "https://api.example.com", auth: { type: "bearer", token: MASK, header: "X-API-Key" }, max_pages: 5, records_path: "data.items", headers: {} };

  it("never fills a secret in from the server, and shows it as stored", () => {
    const texts = textsFromConfig(stored, kind("api"));
    expect(texts).toEqual({ url: "https://api.example.com", "auth.type": "bearer", "auth.header": "X-API-Key", max_pages: "5", records_path: "data.items" });
    expect(Object.values(texts)).not.toContain(MASK);
    expect(secretPlaceholder(stored, "auth.token")).toBe("stored; leave empty to keep");
    expect(secretPlaceholder({ url: "postgresql://u:***@db/x" }, "url")).toBe("stored (postgresql://u:***@db/x); leave empty to keep");
  });

  it("sends only what changed, null for a cleared nullable field, and leaves an empty secret out", () => {
    const before = textsFromConfig(stored, kind("api"));
    expect(configChanges(before, before, kind("api"))).toEqual({});
    const after = { ...before, records_path: "", max_pages: "", "auth.header": "X-Key", "pagination.page_size": "50" };
    expect(configChanges(before, after, kind("api"))).toEqual({ records_path: null, auth: { header: "X-Key" }, pagination: { page_size: 50 } });
    expect(configChanges(before, { ...before, "auth.token": "new" }, kind("api"))).toEqual({ auth: { token: "new" } });
    expect(configChanges(before, { ...before, headers: '{"A": "b"}' }, kind("api"))).toEqual({ headers: { A: "b" } });
  });

  it("does not ask again for a required field that is stored (a secret, the URL), but checks what changed", () => {
    const db = kind("database");
    const changes = configChanges({ table: "sales" }, { table: "orders" }, db);
    expect(changes).toEqual({ table: "orders" });
    expect(configProblems(changes, db)).toEqual({ url: "is required" });
    expect(configProblems(changes, db, true)).toEqual({});
    expect(configProblems(configChanges({}, { chunk_rows: "10" }, db), db, true)).toEqual({ chunk_rows: "must be at least 100" });
  });
});

describe("answers and names", () => {
  it("maps a 422's field errors onto the form", () => {
    expect(serverProblems({ detail: "invalid", errors: [{ field: "url", message: "must be an http:// or https:// URL" }] })).toEqual({ url: "must be an http:// or https:// URL" });
    expect(serverProblems({ detail: "x" })).toEqual({});
    expect(serverProblems(null)).toEqual({});
  });

  it("says which check failed", () => {
    expect(healthSummary(null)).toBe("not tested yet");
    expect(healthSummary({ ok: true, reachable: true, authorised: true, readable: true, seconds: 0.123, message: "", checked_at: null })).toBe("OK: reachable, authorised and readable (0.12 s)");
    expect(healthSummary({ ok: false, reachable: true, authorised: false, readable: false, seconds: 2, message: "401 from the API", checked_at: null })).toBe("Failed: not authorised — 401 from the API (2.0 s)");
  });

  it("checks a name as the server does", () => {
    expect(nameProblem("")).toBe("is required");
    expect(nameProblem("sales-2026.csv")).toBeNull();
    expect(nameProblem("has space")).toMatch(/letters, digits/);
    expect(nameProblem("x".repeat(65))).toMatch(/at most 64/);
  });

  it("lets only the owner, an author, change a source", () => {
    expect(mayManageSource({ username: "ana", roles: ["analyst"] }, "ana").allowed).toBe(true);
    expect(mayManageSource({ username: "bob", roles: ["analyst"] }, "ana").reason).toMatch(/owner \(ana\)/);
    expect(mayManageSource({ username: "ana", roles: ["viewer"] }, "ana").allowed).toBe(false);
  });
});
