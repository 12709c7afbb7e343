/** The monitoring page's formatting: ages, deadlines, and its two charts' Vega-Lite specs. */
import { formatDuration, parseUtc } from "./format";

export interface StageStat {
  step: string;
  attempts: number;
  succeeded: number;
  failed: number;
  finished: number;
  mean_seconds: number | null;
  median_seconds: number | null;
  p95_seconds: number | null;
  max_seconds: number | null;
}

export interface QualityPoint {
  run_id: string;
  run_name: string;
  source: string;
  score: number;
  recorded_at: string;
}

/** How long something has waited, in words ("2 h 5 min"). */
export function formatAge(seconds: number): string {
  return formatDuration(Math.max(0, seconds) * 1000);
}

/** A decision's deadline against now: "due in 3 h 10 min" or "overdue by 20 min"; "no deadline". */
export function deadlineText(deadline: string | null | undefined, now: number): { text: string; overdue: boolean } {
  if (!deadline) return { text: "no deadline", overdue: false };
  const left = parseUtc(deadline) - now;
  if (left >= 0) return { text: `due in ${formatDuration(left)}`, overdue: false };
  return { text: `overdue by ${formatDuration(-left)}`, overdue: true };
}

/** Runs by state in a fixed order a person reads (active first), with the states the server adds. */
export function stateRows(byState: Record<string, number>, withFindings: number): { state: string; count: number }[] {
  const order = ["running", "waiting", "decided", "completed", "failed", "aborted"];
  const states = [...order.filter((s) => s in byState), ...Object.keys(byState).filter((s) => !order.includes(s)).sort()];
  const rows = states.map((state) => ({ state, count: byState[state] ?? 0 }));
  const done = rows.find((r) => r.state === "completed");
  if (done && withFindings) rows.splice(rows.indexOf(done) + 1, 0, { state: "completed with open findings", count: withFindings });
  return rows;
}

/** Quality score over runs (oldest first), one line per source, on the quality stage's fixed 0-100 scale. */
export function qualitySpec(points: QualityPoint[]): Record<string, unknown> {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    width: 420,
    height: 220,
    data: { values: points.map((p, i) => ({ ...p, n: i + 1 })) },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "recorded_at", type: "temporal", title: "Assessed" },
      y: { field: "score", type: "quantitative", title: "Quality score (0-100)", scale: { domain: [0, 100] } },
      color: { field: "source", type: "nominal", title: "Source" },
      tooltip: [
        { field: "run_name", title: "Run" },
        { field: "score", format: ".2f", title: "Score" },
        { field: "recorded_at", type: "temporal", title: "Assessed" },
      ],
    },
  };
}

/** Median and p95 duration (seconds) of each stage, as grouped bars. */
export function stageSpec(stages: StageStat[]): Record<string, unknown> {
  const values = stages.flatMap((s) => [
    ...(s.median_seconds == null ? [] : [{ step: s.step, measure: "median", seconds: s.median_seconds }]),
    ...(s.p95_seconds == null ? [] : [{ step: s.step, measure: "p95", seconds: s.p95_seconds }]),
  ]);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    width: 420,
    height: 220,
    data: { values },
    mark: "bar",
    encoding: {
      x: { field: "step", type: "nominal", title: "Stage", sort: stages.map((s) => s.step) },
      xOffset: { field: "measure" },
      y: { field: "seconds", type: "quantitative", title: "Seconds" },
      color: { field: "measure", type: "nominal", title: "Duration" },
      tooltip: [{ field: "step" }, { field: "measure" }, { field: "seconds", format: ".2f" }],
    },
  };
}
