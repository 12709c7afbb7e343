import { describe, expect, it } from "vitest";
import { compact, fieldValue, validate, type Schema } from "./jsonschema";
import { listChange, move, moveTo, statRows } from "./diff";
import { mayDecide, mayStartRuns } from "./roles";

// The gate 3 and gate 4 parameter schemas as the server publishes them (trimmed to what is tested).
const analytics: Schema = {
  type: "object",
  additionalProperties: false,
  properties: {
    n_clusters: { anyOf: [{ type: "integer", minimum: 2, maximum: 20 }, { type: "null" }] },
    contamination: { type: "number", exclusiveMinimum: 0, maximum: 0.5 },
    features: { anyOf: [{ type: "array", items: { type: "string" } }, { type: "null" }] },
    resample: { anyOf: [{ type: "string", enum: ["D", "W", "MS"] }, { type: "null" }] },
  },
};
const refine: Schema = {
  $defs: { Goal: { type: "object", properties: { direction: { type: "string", enum: ["increase", "decrease"] } } } },
  type: "object",
  properties: {
    goal: { anyOf: [{ $ref: "#/$defs/Goal" }, { type: "null" }] },
    segment_of_interest: { anyOf: [{ type: "string", pattern: "^[^=]+=.*$" }, { type: "null" }] },
  },
};
const selection: Schema = {
  type: "object",
  required: ["selected"],
  properties: { selected: { type: "array", items: { type: "string" } }, due: { type: "object", additionalProperties: { type: "string", format: "date" } } },
};

describe("parameter forms validated from the server's schema", () => {
  it("accepts valid parameters", () => {
    expect(validate({ n_clusters: 4, contamination: 0.05, features: ["a"], resample: "W" }, analytics)).toEqual([]);
    expect(validate({ n_clusters: null }, analytics)).toEqual([]);
    expect(validate({ goal: { direction: "decrease" }, segment_of_interest: "region=North" }, refine)).toEqual([]);
  });
  it("names each problem with its field", () => {
    expect(validate({ n_clusters: 1 }, analytics)).toEqual([{ path: "n_clusters", message: "must be at least 2" }]);
    expect(validate({ n_clusters: 2.5 }, analytics)[0]?.message).toBe("must be integer");
    expect(validate({ contamination: 0 }, analytics)[0]?.message).toBe("must be more than 0");
    expect(validate({ resample: "Y" }, analytics)[0]?.message).toBe("must be one of D, W, MS");
    expect(validate({ typo: 1 }, analytics)[0]).toEqual({ path: "typo", message: "is not a known field" });
    expect(validate({ goal: { direction: "up" } }, refine)[0]?.path).toBe("goal.direction");
    expect(validate({ segment_of_interest: "North" }, refine)[0]?.message).toMatch(/must match/);
    expect(validate({}, selection)).toEqual([{ path: "selected", message: "is required" }]);
    expect(validate({ selected: [], due: { "act-1": "tomorrow" } }, selection)[0]?.path).toBe("due.act-1");
  });
  it("turns field text into the schema's types", () => {
    const props = analytics.properties ?? {};
    expect(fieldValue("4", props.n_clusters as Schema)).toBe(4);
    expect(fieldValue("", props.n_clusters as Schema)).toBeUndefined();
    expect(fieldValue("a, b", props.features as Schema)).toEqual(["a", "b"]);
    expect(compact({ a: 1, b: undefined })).toEqual({ a: 1 });
  });
});

describe("diffs", () => {
  it("flags the statistics a preview changes", () => {
    const rows = statRows({ units: { before: { missing: 13, mean: 20.0496 }, after: { missing: 0, mean: 20.0496 } } });
    expect(rows).toEqual([
      { column: "units", stat: "missing", before: 13, after: 0, changed: true },
      { column: "units", stat: "mean", before: 20.0496, after: 20.0496, changed: false },
    ]);
  });
  it("tells what a refine added, dropped and re-ranked", () => {
    expect(listChange(["a", "b", "c"], ["b", "a", "d"])).toEqual({
      added: ["d"],
      dropped: ["c"],
      moved: [
        { id: "b", from: 2, to: 1 },
        { id: "a", from: 1, to: 2 },
      ],
    });
  });
  it("reorders by keyboard within the list", () => {
    expect(move(["a", "b", "c"], 0, 1)).toEqual(["b", "a", "c"]);
    expect(move(["a", "b", "c"], 0, -1)).toEqual(["a", "b", "c"]);
    expect(move(["a", "b", "c"], 2, 1)).toEqual(["a", "b", "c"]);
  });
});

describe("roles", () => {
  const ana = { username: "ana", roles: ["analyst"] };
  const apo = { username: "apo", roles: ["approver"] };
  const vic = { username: "vic", roles: ["viewer"] };
  it("gives the reason a button is disabled", () => {
    expect(mayDecide(ana, "quality_review", "ana").allowed).toBe(true);
    expect(mayDecide(ana, "action_selection", "ana").reason).toMatch(/Only approver/);
    expect(mayDecide(apo, "action_selection", "apo").reason).toMatch(/Separation of duties/);
    expect(mayDecide(apo, "action_selection", "ana").allowed).toBe(true);
    expect(mayDecide(vic, "source_review", "ana").reason).toMatch(/you are viewer/);
    expect(mayStartRuns(vic).allowed).toBe(false);
  });
});

import { filtersToParams, pageCount, parseFilters, runsQuery } from "./filters";

describe("run filters in the URL", () => {
  it("round-trips and refuses bad values", () => {
    const f = parseFilters(new URLSearchParams("status=waiting&q=sales&page=2"));
    expect(f).toEqual({ status: "waiting", q: "sales", page: 2 });
    expect(filtersToParams(f)).toEqual({ status: "waiting", q: "sales", page: "2" });
    expect(parseFilters(new URLSearchParams("status=deferred&page=-3"))).toEqual({ status: "all", q: "", page: 1 });
  });
  it("asks the server for the state, the search and the page", () => {
    expect(runsQuery({ status: "completed_with_findings", q: "  sales ", page: 3 })).toEqual({ status: "completed_with_findings", q: "sales", limit: 20, offset: 40 });
    expect(runsQuery({ status: "all", q: "   ", page: 1 })).toEqual({ limit: 20, offset: 0 });
    expect(runsQuery({ status: "all", q: "x".repeat(300), page: 1 }).q).toHaveLength(200);
    expect([pageCount(0), pageCount(20), pageCount(21)]).toEqual([1, 1, 2]);
  });
});

import { stageRows } from "./timeline";

describe("the run timeline", () => {
  it("shows each stage's status, summed duration and the gate waiting after it", () => {
    const attempt = (step: string, status: string, start: string, end: string | null, error: string | null = null) => ({
      id: step + start, step, status, error, dispatches: 1, requested_at: start, finished_at: end,
    });
    const rows = stageRows({
      status: "running",
      open_gate: "analytics_review",
      attempts: [
        attempt("ingest", "succeeded", "2026-01-01T00:00:00", "2026-01-01T00:00:01"),
        attempt("assess_quality", "succeeded", "2026-01-01T00:00:02", "2026-01-01T00:00:02.500"),
        attempt("apply_resolutions", "succeeded", "2026-01-01T00:00:03", "2026-01-01T00:00:03.250"),
        attempt("analyse", "succeeded", "2026-01-01T00:00:04", "2026-01-01T00:00:06"),
      ],
    });
    expect(rows.map((r) => r.status)).toEqual(["succeeded", "succeeded", "waiting", "pending", "pending", "pending"]);
    expect(rows[1]).toMatchObject({ durationMs: 750, attempts: 2 });
    const failed = stageRows({ status: "failed", open_gate: null, attempts: [attempt("ingest", "failed", "2026-01-01T00:00:00", null, "boom")] });
    expect(failed[0]).toMatchObject({ status: "failed", error: "boom", durationMs: null });
  });
});

import { openFindings, stageSummary } from "./timeline";

describe("stage summaries", () => {
  const results = {
    dataset_ingested: { rows: 4025, columns: 10 },
    score_before: 98.2,
    score_after: 99.1,
    findings: [{}, {}, {}],
    findings_after: [{}],
    analytics: { rows_used: 4025, parts: ["describe", "drivers"] },
    insights: [{}, {}],
    actions: [{}, {}, {}],
    plan: [{}],
    report: { html_uri: "x" },
  };
  it("says what each stage produced", () => {
    expect(stageSummary("ingest", results)).toBe("4,025 rows × 10 columns");
    expect(stageSummary("quality", results)).toBe("score 98.2 → 99.1; 1 open finding(s)");
    expect(stageSummary("analytics", results)).toBe("2 analyses on 4,025 rows");
    expect(stageSummary("recommendations", results)).toBe("3 actions proposed, 1 chosen");
    expect(stageSummary("reporting", {})).toBe("");
    expect(stageSummary("ingest", { dataset_ingested: { rows: 5, columns: [{ name: "a" }, { name: "b" }] } })).toBe("5 rows × 2 columns");
  });
  it("counts the findings left open (all of them when none was fixed)", () => {
    expect(openFindings(results)).toBe(1);
    expect(openFindings({ findings: [{}, {}], findings_after: null })).toBe(2);
  });
});

describe("gate 5's reorder by drag and by keyboard", () => {
  it("puts the dragged item where it is dropped, and leaves the list alone when nothing moves", () => {
    const order = ["act-1", "act-2", "act-3", "act-4"];
    expect(moveTo(order, 3, 0)).toEqual(["act-4", "act-1", "act-2", "act-3"]);
    expect(moveTo(order, 0, 2)).toEqual(["act-2", "act-3", "act-1", "act-4"]);
    expect(moveTo(order, 1, 1)).toBe(order);
    expect(moveTo(order, 0, -1)).toBe(order); // an arrow key past the top
    expect(moveTo(order, 3, 4)).toBe(order);
    expect(order).toEqual(["act-1", "act-2", "act-3", "act-4"]);
  });
});
