/** The final report and action plan of a completed run, with downloads of every format. */
import { Link, useParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, ok } from "../api/client";
import { accessToken } from "../api/session";
import { ApiError, detailOf } from "../api/errors";
import { RunCharts } from "../components/RunCharts";
import { ErrorMessage, Loading } from "../components/ui";
import { formatNumber, formatTime } from "../lib/format";

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === "object" ? (v as Obj) : {});
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

const DOWNLOADS = [
  ["report", "html", "Report (HTML)"],
  ["report", "markdown", "Report (Markdown)"],
  ["report", "json", "Report (JSON)"],
  ["plan", "csv", "Plan (CSV)"],
  ["plan", "markdown", "Plan (Markdown)"],
  ["plan", "json", "Plan (JSON)"],
] as const;

/** Fetch with the token and save the answer as a file (a plain link cannot carry the Bearer header). */
async function download(runId: string, what: string, format: string): Promise<void> {
  const answer = await fetch(`/runs/${encodeURIComponent(runId)}/${what}?format=${format}`, { headers: { Authorization: `Bearer ${accessToken() ?? ""}` } });
  if (!answer.ok) throw new ApiError(answer.status, detailOf(await answer.json().catch(() => "")));
  const url = URL.createObjectURL(await answer.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = `${what}-${runId}.${format === "markdown" ? "md" : format}`;
  link.click();
  URL.revokeObjectURL(url);
}

export function ReportPage() {
  const { runId = "" } = useParams();
  const [error, setError] = useState<unknown>(null);
  const report = useQuery({
    queryKey: ["report", runId],
    queryFn: async () => (await ok(api.GET("/runs/{run_id}/report", { params: { path: { run_id: runId }, query: { format: "json" } } }))) as unknown as Obj,
  });
  const plan = useQuery({
    queryKey: ["plan", runId],
    queryFn: async () => (await ok(api.GET("/runs/{run_id}/plan", { params: { path: { run_id: runId }, query: { format: "json" } } }))) as unknown as Obj,
  });
  if (report.isPending) return <Loading what="the report" />;
  if (!report.data) return <ErrorMessage error={report.error} />;
  const r = report.data;
  const run = obj(r.run);
  const quality = obj(r.quality);
  return (
    <article data-testid="report">
      <p>
        <Link to={`/runs/${runId}`}>← Back to the run</Link>
      </p>
      <h1>Report: {String(run.name ?? runId)}</h1>
      <p className="muted">
        Goal: {String(obj(r.goal).direction ?? "")} {String(obj(r.goal).target ?? "")} · finished {formatTime(String(run.updated_at ?? run.finished_at ?? ""))}
      </p>
      <div className="row" role="group" aria-label="Downloads">
        {DOWNLOADS.map(([what, format, label]) => (
          <button key={label} type="button" className="btn btn-secondary" onClick={() => void download(runId, what, format).catch(setError)}>
            {label}
          </button>
        ))}
      </div>
      <ErrorMessage error={error} />
      <section aria-labelledby="q">
        <h2 id="q">Quality</h2>
        <p>
          Score {formatNumber(quality.score_before ?? quality.score)} → {formatNumber(quality.score_after ?? quality.score)}
        </p>
        <RunCharts runId={runId} stage="quality" />
      </section>
      <section aria-labelledby="i">
        <h2 id="i">Insights</h2>
        <ol>
          {arr(r.insights).map((i) => (
            <li key={String(i.id)}>{String(i.statement)}</li>
          ))}
        </ol>
        <RunCharts runId={runId} stage="insights" />
      </section>
      <section aria-labelledby="p">
        <h2 id="p">Action plan</h2>
        <ErrorMessage error={plan.error} />
        <table data-testid="plan">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Action</th>
              <th scope="col">Owner</th>
              <th scope="col">Due</th>
              <th scope="col">Expected impact</th>
            </tr>
          </thead>
          <tbody>
            {arr(plan.data?.actions).map((a, n) => {
              const item = obj(a.item);
              return (
                <tr key={String(item.id)}>
                  <td>{n + 1}</td>
                  <td>{String(item.title)}</td>
                  <td>{String(a.owner ?? "–")}</td>
                  <td>{String(a.due ?? "–")}</td>
                  <td>
                    {formatNumber(item.expected_impact)} {String(item.impact_unit ?? "")}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
    </article>
  );
}
