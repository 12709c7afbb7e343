/** Monitoring: active runs by state, stage durations, failures, open decisions with their age and deadline,
quality over runs, open alerts; polled every few seconds (GET /monitoring/overview, GET /alerts). */
import { lazy, Suspense } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { api, ok, page } from "../api/client";
import { Empty, ErrorMessage, Loading, StatusBadge, HeaderRow } from "../components/ui";
import { formatDuration, formatNumber, formatTime, gateLabel, parseUtc } from "../lib/format";
import { deadlineText, formatAge, qualitySpec, stageSpec, stateRows, type QualityPoint, type StageStat } from "../lib/monitoring";

const VegaChart = lazy(() => import("../components/VegaChart"));
const POLL_MS = 5_000;

interface Overview {
  generated_at: string;
  runs_by_state: Record<string, number>;
  completed_with_findings: number;
  active_runs: { id: string; name: string; status: string; current_step: string | null; open_gate: string | null; requested_by: string; updated_at: string }[];
  stages: StageStat[];
  failures: { run_id: string; run_name: string; run_status: string; step: string; error: string | null; finished_at: string | null }[];
  failures_total: number;
  open_decisions: { id: string; run_id: string; run_name: string; gate: string; title: string; created_at: string; age_seconds: number; deadline_at: string | null; overdue: boolean }[];
  open_decisions_total: number;
  gate_deadline_seconds: number;
  quality: QualityPoint[];
}

interface Alert {
  id: number;
  run_id: string | null;
  kind: string;
  severity: string;
  title: string;
  created_at: string;
}

const seconds = (s: number | null) => (s == null ? "–" : formatDuration(s * 1000));

export function MonitoringPage() {
  const overview = useQuery({
    queryKey: ["monitoring"],
    queryFn: async () => (await ok(api.GET("/monitoring/overview"))) as unknown as Overview,
    refetchInterval: POLL_MS,
  });
  const alerts = useQuery({
    queryKey: ["alerts", "open"],
    queryFn: async () => page(api.GET("/alerts", { params: { query: { status: "open", limit: 20 } } })),
    refetchInterval: POLL_MS,
  });
  if (overview.isPending) return <Loading what="the monitoring overview" />;
  const data = overview.data;
  if (!data) return <ErrorMessage error={overview.error} />;
  const at = parseUtc(data.generated_at);
  const states = stateRows(data.runs_by_state, data.completed_with_findings);
  const openAlerts = (alerts.data?.rows ?? []) as unknown as Alert[];
  return (
    <section>
      <div className="row spread">
        <h1>Monitoring</h1>
        <p role="status" className="muted" data-testid="updated">
          Updated {formatTime(data.generated_at)} · refreshes every {POLL_MS / 1000} s
        </p>
      </div>
      <ErrorMessage error={overview.error ?? alerts.error} />

      <div className="grid">
        <section aria-labelledby="states" className="card">
          <h2 id="states">Runs by state</h2>
          {states.length ? (
            <table data-testid="runs-by-state">
              <caption className="sr-only">How many runs are in each state</caption>
              <tbody>
                {states.map((s) => (
                  <tr key={s.state}>
                    <th scope="row">
                      <StatusBadge state={s.state} />
                    </th>
                    <td>{s.count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No runs yet.</Empty>
          )}
        </section>
        <section aria-labelledby="alerts" className="card">
          <h2 id="alerts">Open alerts</h2>
          {openAlerts.length ? (
            <ul data-testid="alerts">
              {openAlerts.map((a) => (
                <li key={a.id} className={a.severity === "critical" ? "error" : ""}>
                  {a.title} {a.run_id && <Link to={`/runs/${a.run_id}`}>run</Link>} <small className="muted">{formatTime(a.created_at)}</small>
                </li>
              ))}
            </ul>
          ) : (
            <Empty>No open alerts.</Empty>
          )}
        </section>
      </div>

      <section aria-labelledby="active">
        <h2 id="active">Active runs</h2>
        {data.active_runs.length ? (
          <table className="nowrap" data-testid="active-runs">
            <caption className="sr-only">Runs running or waiting, latest change first</caption>
            <thead>
              <HeaderRow columns={["Run", "State", "Step", "Gate", "Started by", "Last change"]} />
            </thead>
            <tbody>
              {data.active_runs.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link to={`/runs/${r.id}`}>{r.name}</Link>
                  </td>
                  <td>
                    <StatusBadge state={r.open_gate ? "waiting for a decision" : r.status} />
                  </td>
                  <td>{r.current_step ?? "–"}</td>
                  <td>{gateLabel(r.open_gate)}</td>
                  <td>{r.requested_by}</td>
                  <td>{formatTime(r.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <Empty>No run is active.</Empty>
        )}
      </section>

      <section aria-labelledby="decisions">
        <h2 id="decisions">
          Open decisions <span className="muted">({data.open_decisions_total}; overdue after {formatAge(data.gate_deadline_seconds)})</span>
        </h2>
        {data.open_decisions.length ? (
          <table className="nowrap" data-testid="open-decisions">
            <caption className="sr-only">Open decisions, oldest first</caption>
            <thead>
              <HeaderRow columns={["Run", "Gate", "Waiting for", "Deadline"]} />
            </thead>
            <tbody>
              {data.open_decisions.map((d) => {
                const due = deadlineText(d.deadline_at, at);
                return (
                  <tr key={d.id}>
                    <td>
                      <Link to={`/runs/${d.run_id}`}>{d.run_name}</Link>
                    </td>
                    <td>{gateLabel(d.gate)}</td>
                    <td>{formatAge(d.age_seconds)}</td>
                    <td className={due.overdue ? "error" : ""}>
                      {due.text} <small className="muted">({formatTime(d.deadline_at)})</small>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : (
          <Empty>No decision is waiting.</Empty>
        )}
      </section>

      <section aria-labelledby="stages">
        <h2 id="stages">Stage durations</h2>
        {data.stages.length ? (
          <table data-testid="stage-durations" tabIndex={0}>
            <caption className="sr-only">Each stage's attempts and how long the finished ones took (latest attempts)</caption>
            <thead>
              <HeaderRow columns={["Stage", "Attempts", "Succeeded", "Failed", "Median", "p95", "Longest"]} />
            </thead>
            <tbody>
              {data.stages.map((s) => (
                <tr key={s.step}>
                  <td>{s.step}</td>
                  <td>{s.attempts}</td>
                  <td>{s.succeeded}</td>
                  <td className={s.failed ? "error" : ""}>{s.failed}</td>
                  <td>{seconds(s.median_seconds)}</td>
                  <td>{seconds(s.p95_seconds)}</td>
                  <td>{seconds(s.max_seconds)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <Empty>No stage has run yet.</Empty>
        )}
      </section>

      <section aria-labelledby="failures">
        <h2 id="failures">Failures ({data.failures_total})</h2>
        {data.failures.length ? (
          <table data-testid="failures">
            <caption className="sr-only">Failed stage attempts, newest first</caption>
            <thead>
              <HeaderRow columns={["Run", "Stage", "Message", "When", "Run now"]} />
            </thead>
            <tbody>
              {data.failures.map((f, i) => (
                <tr key={`${f.run_id}-${i}`}>
                  <td>
                    <Link to={`/runs/${f.run_id}`}>{f.run_name}</Link>
                  </td>
                  <td>{f.step}</td>
                  <td>{f.error ?? "–"}</td>
                  <td>{formatTime(f.finished_at)}</td>
                  <td>{f.run_status}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <Empty>No failures.</Empty>
        )}
      </section>

      <section aria-labelledby="quality">
        <h2 id="quality">Quality score over runs</h2>
        {data.quality.length ? (
          <>
            <Suspense fallback={<p className="muted">Drawing the chart…</p>}>
              <div className="charts">
                <VegaChart
                  chart={{ id: "quality-over-runs", stage: "monitoring", title: "Quality score over runs", description: "each assessed run's score (0 to 100), by source", spec: qualitySpec(data.quality) }}
                />
                {data.stages.some((s) => s.median_seconds != null) && (
                  <VegaChart chart={{ id: "stage-durations", stage: "monitoring", title: "Stage durations", description: "median and p95 seconds of each stage", spec: stageSpec(data.stages) }} />
                )}
              </div>
            </Suspense>
            <table data-testid="quality">
              <caption className="sr-only">Quality scores, oldest first</caption>
              <thead>
                <HeaderRow columns={["Run", "Source", "Score", "Assessed"]} />
              </thead>
              <tbody>
                {data.quality.map((q) => (
                  <tr key={q.run_id}>
                    <td>
                      <Link to={`/runs/${q.run_id}`}>{q.run_name}</Link>
                    </td>
                    <td>{q.source}</td>
                    <td>{formatNumber(q.score)}</td>
                    <td>{formatTime(q.recorded_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        ) : (
          <Empty>No run has been assessed yet.</Empty>
        )}
      </section>
    </section>
  );
}
