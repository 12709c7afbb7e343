/** A run, live: its stages as a timeline moved by the event stream, the open gate, past decisions. */
import { useEffect, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useQueryClient } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { followEvents } from "../api/events";
import { accessToken } from "../api/session";
import { useOpenRequests, useRun, type RunDetail } from "../api/queries";
import { useAuth } from "../auth";
import { Button, ErrorMessage, Loading, StaleNotice, StatusBadge } from "../components/ui";
import { formatDuration, formatTime, gateLabel, runState } from "../lib/format";
import { mayStartRuns } from "../lib/roles";
import { openFindings, stageRows, stageSummary } from "../lib/timeline";
import { GatePanel } from "../gates/GatePanel";
import { PastDecisions } from "../gates/PastDecisions";

/** Follow the run's Server-Sent Events; each one refreshes the run and its open gate. */
function useRunEvents(runId: string, ended: boolean): number {
  const queries = useQueryClient();
  const [seen, setSeen] = useState(0);
  const last = useRef(0);
  useEffect(() => {
    if (ended) return;
    return followEvents(
      // EventSource cannot send headers: the token goes as ?access_token= (this route only).
      () => `/runs/${encodeURIComponent(runId)}/events?after=${last.current}&access_token=${encodeURIComponent(accessToken() ?? "")}`,
      (source) => {
        const onEvent = (e: MessageEvent) => {
          if (e.lastEventId) last.current = Number(e.lastEventId);
          setSeen((n) => n + 1);
          void queries.invalidateQueries({ queryKey: ["run", runId] });
          void queries.invalidateQueries({ queryKey: ["decisions"] });
        };
        source.onmessage = onEvent;
        for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
      },
    );
  }, [runId, ended, queries]);
  return seen;
}

const EVENT_TYPES = [
  "RunRequested", "IngestSource", "SourceIngested", "AssessQuality", "QualityAssessed", "ApplyResolutions", "ResolutionsApplied",
  "RunAnalytics", "AnalyticsCompleted", "GenerateInsights", "InsightsGenerated", "RecommendActions", "ActionsRecommended",
  "CompileReport", "ReportCompiled", "DecisionRequested", "DecisionMade", "RunCompleted", "RunFailed", "RunAborted", "StepFailed",
];

function Timeline({ run }: { run: RunDetail }) {
  return (
    <ol className="timeline" aria-label="Stages">
      {stageRows(run).map((s) => (
        <li key={s.stage} className={`stage stage-${s.status}`} data-testid={`stage-${s.stage}`}>
          <strong>{s.stage}</strong>
          <span className="badge">{s.status === "waiting" ? "waiting for a decision" : s.status}</span>
          <span className="muted">{formatDuration(s.durationMs)}</span>
          {s.status === "succeeded" && <small>{stageSummary(s.stage, run.results)}</small>}
          {s.attempts > 1 && <span className="muted">{s.attempts} attempts</span>}
          {s.status === "failed" && s.error && <span className="error">{s.error}</span>}
        </li>
      ))}
    </ol>
  );
}

function ShareForm({ runId }: { runId: string }) {
  const [name, setName] = useState("");
  const [done, setDone] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  async function share() {
    setError(null);
    try {
      await ok(api.POST("/shares", { body: { object_type: "run", object_id: runId, username: name } }));
      setDone(`Shared with ${name}.`);
    } catch (failure) {
      setError(failure);
    }
  }
  return (
    <div className="row">
      <label htmlFor="share">Share this run with</label>
      <input id="share" value={name} onChange={(e) => setName(e.target.value)} placeholder="username" />
      <button type="button" className="btn btn-secondary" disabled={!name} onClick={() => void share()}>
        Share
      </button>
      {done && <span role="status">{done}</span>}
      <ErrorMessage error={error} />
    </div>
  );
}

export function RunPage() {
  const { runId = "" } = useParams();
  const run = useRun(runId);
  const open = useOpenRequests(runId);
  const { me } = useAuth();
  const queries = useQueryClient();
  const ended = ["completed", "failed", "aborted"].includes(run.data?.status ?? "");
  useRunEvents(runId, ended);
  const [retryError, setRetryError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<unknown>(null);

  if (run.isPending) return <Loading what="the run" />;
  // A failed refresh keeps the run on screen (react-query keeps the last data): only no data at all is an error.
  if (!run.data) return <ErrorMessage error={run.error} />;
  const data = run.data;
  const request = open.data?.rows[0];

  async function retry() {
    setRetryError(null);
    try {
      await ok(api.POST("/runs/{run_id}/retry", { params: { path: { run_id: runId } } }));
      await queries.invalidateQueries({ queryKey: ["run", runId] });
    } catch (failure) {
      setRetryError(failure);
    }
  }

  return (
    <section data-testid="run-view">
      <div className="row spread">
        <h1>{data.name}</h1>
        <StatusBadge state={data.status === "completed" && openFindings(data.results) > 0 ? `completed with ${openFindings(data.results)} open quality findings` : runState(data)} />
      </div>
      <p className="muted">
        Started by {data.requested_by} at {formatTime(data.created_at)} · id {data.id}
        {data.status === "completed" && (
          <>
            {" · "}
            <Link to={`/runs/${data.id}/report`}>Open the report</Link>
          </>
        )}
        {data.current_step === "stream" && (
          <>
            {" · "}
            <Link to={`/streams/${data.id}`}>Open the live stream</Link>
          </>
        )}
      </p>
      <StaleNotice error={run.error} what="this run" />
      <Timeline run={data} />
      {data.status === "failed" && (
        <div className="card" role="alert">
          <p className="error">The run failed: {data.error}</p>
          <Button variant="primary" verdict={mayStartRuns(me)} onClick={() => void retry()}>
            Retry the failed step
          </Button>
          <ErrorMessage error={retryError} />
        </div>
      )}
      {data.status === "aborted" && <p className="error">Aborted: {data.error}</p>}
      <ErrorMessage error={conflict} />
      {me?.username === data.requested_by && <ShareForm runId={data.id} />}
      {request ? (
        <GatePanel key={request.id} requestId={request.id} run={data} onConflict={setConflict} />
      ) : (
        data.status === "running" && <p role="status" className="muted">Working: {data.current_step ?? "…"}. {gateLabel(data.open_gate) !== "–" ? gateLabel(data.open_gate) : ""}</p>
      )}
      <PastDecisions decisions={data.decisions} />
    </section>
  );
}
