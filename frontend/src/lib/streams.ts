/** A live stream's figures for the UI: its windows as chart rows and Vega-Lite specs, gate 2's rule form. */

export interface StreamWindow {
  id: number;
  window_start: string;
  window_end: string;
  records: number;
  findings: Record<string, number>;
  quality_score: number;
  freshness_p99_seconds: number | null;
  policy_version: number | null;
  mode: string;
  reopened: string[] | null;
}

export interface KindOffer {
  kind: string;
  label: string;
  words: string;
  seen: boolean;
  records: number;
  default_action: string;
  actions: string[];
  rule: Record<string, unknown> | null;
}

export interface RuleDraft {
  kind: string;
  action: string;
  field: string;
  constant: string;
}

/** The most windows the live chart keeps (the newest). */
export const LIVE_WINDOWS = 120;

/** Windows merged by id (a resumed stream may repeat none, a refetch may overlap), oldest first, capped. */
export function mergeWindows(known: StreamWindow[], arrived: StreamWindow[], cap = LIVE_WINDOWS): StreamWindow[] {
  const byId = new Map(known.map((w) => [w.id, w]));
  for (const w of arrived) byId.set(w.id, w);
  return [...byId.values()].sort((a, b) => a.window_start.localeCompare(b.window_start)).slice(-cap);
}

export function violationsOf(window: StreamWindow): number {
  return Object.values(window.findings).reduce((sum, n) => sum + n, 0);
}

/** One row per window and measure, as the chart draws them. */
export function chartRows(windows: StreamWindow[]): { window: string; measure: string; value: number }[] {
  return windows.flatMap((w) => [
    { window: w.window_start, measure: "Records", value: w.records },
    { window: w.window_start, measure: "Quality score", value: w.quality_score },
    { window: w.window_start, measure: "Violations", value: violationsOf(w) },
    ...(w.freshness_p99_seconds == null ? [] : [{ window: w.window_start, measure: "Lag p99 (s)", value: w.freshness_p99_seconds }]),
  ]);
}

/** The live chart: volume, quality score, violations and lag per window, one small panel each. */
export function liveSpec(windows: StreamWindow[]): Record<string, unknown> {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    data: { values: chartRows(windows) },
    facet: { row: { field: "measure", type: "nominal", title: null, sort: ["Records", "Quality score", "Violations", "Lag p99 (s)"] } },
    resolve: { scale: { y: "independent" } },
    spec: {
      width: 560,
      height: 80,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "window", type: "temporal", title: "Window start" },
        y: { field: "value", type: "quantitative", title: null },
        tooltip: [
          { field: "window", type: "temporal", timeUnit: "yearmonthdatehoursminutesseconds" },
          { field: "measure" },
          { field: "value", type: "quantitative" },
        ],
      },
    },
  };
}

/** Gate 2's starting rules: the rule in force for a kind, else its default action, for every kind that needs one. */
export function defaultRules(kinds: KindOffer[], required: string[]): RuleDraft[] {
  return kinds
    .filter((k) => required.includes(k.kind) || k.rule)
    .map((k) => ({
      kind: k.kind,
      action: String(k.rule?.action ?? k.default_action),
      field: k.rule?.field == null ? "" : String(k.rule.field),
      constant: k.rule?.constant == null ? "" : JSON.stringify(k.rule.constant),
    }));
}

/** The rules as `apply_policy` takes them; a constant is JSON (a number, "text", true), else plain text. */
export function policyParams(drafts: RuleDraft[], violationRate: number, scoreDrop: number): Record<string, unknown> {
  return {
    rules: drafts.map((d) => ({
      kind: d.kind,
      action: d.action,
      ...(d.field ? { field: d.field } : {}),
      ...(d.action === "repair_constant" ? { constant: parseConstant(d.constant) } : {}),
    })),
    reopen_violation_rate: violationRate,
    reopen_score_drop: scoreDrop,
  };
}

export function parseConstant(text: string): unknown {
  if (text.trim() === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** What is wrong with the drafted rules before they are sent (the server checks the same and more). */
export function ruleProblems(drafts: RuleDraft[], kinds: KindOffer[], required: string[]): string[] {
  const problems: string[] = [];
  const given = new Set(drafts.map((d) => d.kind));
  const missing = required.filter((k) => !given.has(k));
  if (missing.length) problems.push(`Give a rule for: ${missing.join(", ")}.`);
  if (!drafts.length) problems.push("Give at least one rule.");
  for (const d of drafts) {
    const offer = kinds.find((k) => k.kind === d.kind);
    if (offer && !offer.actions.includes(d.action)) problems.push(`${offer.label}: ${d.action} does not apply.`);
    if (d.action === "repair_constant" && parseConstant(d.constant) === null) problems.push(`${offer?.label ?? d.kind}: repair_constant needs a constant.`);
  }
  return problems;
}
