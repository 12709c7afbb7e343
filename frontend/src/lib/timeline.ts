/** The seven stages of a run as a timeline, from its step attempts and its open gate. */
import type { Attempt, RunDetail } from "../api/queries";
import { between } from "./format";

export const STAGES = ["ingest", "quality", "analytics", "insights", "recommendations", "reporting"] as const;
const STAGE_OF_STEP: Record<string, string> = {
  ingest: "ingest",
  assess_quality: "quality",
  apply_resolutions: "quality",
  analyse: "analytics",
  generate_insights: "insights",
  recommend: "recommendations",
  report: "reporting",
};
export const GATE_AFTER_STAGE: Record<string, string> = {
  ingest: "source_review",
  quality: "quality_review",
  analytics: "analytics_review",
  insights: "insight_review",
  recommendations: "action_selection",
};

export interface StageRow {
  stage: string;
  status: "pending" | "running" | "succeeded" | "failed" | "waiting";
  durationMs: number | null;
  attempts: number;
  error: string | null;
}

/** Each stage's latest status and the summed duration of its finished attempts. */
export function stageRows(run: Pick<RunDetail, "attempts" | "open_gate" | "status">): StageRow[] {
  return STAGES.map((stage) => {
    const attempts: Attempt[] = run.attempts.filter((a) => STAGE_OF_STEP[a.step] === stage);
    const last = attempts[attempts.length - 1];
    const durations = attempts.map((a) => between(a.requested_at, a.finished_at)).filter((d): d is number => d !== null);
    let status: StageRow["status"] = "pending";
    if (last) status = last.status === "succeeded" ? "succeeded" : last.status === "failed" || last.status === "dead" ? "failed" : "running";
    if (status === "succeeded" && run.open_gate && GATE_AFTER_STAGE[stage] === run.open_gate) status = "waiting";
    return {
      stage,
      status,
      durationMs: durations.length ? durations.reduce((a, b) => a + b, 0) : null,
      attempts: attempts.length,
      error: last?.error ?? null,
    };
  });
}

type Results = Record<string, unknown>;
const count = (v: unknown): number => (Array.isArray(v) ? v.length : 0);

/** One line per finished stage saying what it produced (from the run's results). */
export function stageSummary(stage: string, results: Results): string {
  const dataset = (results.dataset_ingested ?? {}) as { rows?: number; columns?: unknown };
  const analytics = (results.analytics ?? {}) as { rows_used?: number; parts?: unknown[] };
  switch (stage) {
    case "ingest":
      // The dataset names its columns (a list); older results held their number.
      if (dataset.rows == null) return "";
      return `${dataset.rows.toLocaleString("en-US")} rows × ${Array.isArray(dataset.columns) ? dataset.columns.length : String(dataset.columns ?? "?")} columns`;
    case "quality": {
      if (results.score_before == null) return "";
      const after = results.score_after != null ? ` → ${String(results.score_after)}` : "";
      return `score ${String(results.score_before)}${after}; ${openFindings(results)} open finding(s)`;
    }
    case "analytics":
      return analytics.rows_used != null ? `${count(analytics.parts)} analyses on ${analytics.rows_used.toLocaleString("en-US")} rows` : "";
    case "insights":
      return results.insights ? `${count(results.insights)} insights` : "";
    case "recommendations":
      return results.actions ? `${count(results.actions)} actions proposed${results.plan ? `, ${count(results.plan)} chosen` : ""}` : "";
    case "reporting":
      return results.report ? "report ready" : "";
    default:
      return "";
  }
}

/** Quality findings left in the data: after the fixes if any were applied, else all found. */
export function openFindings(results: Results): number {
  return count(results.findings_after ?? results.findings);
}
