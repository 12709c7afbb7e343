/** Live streams: the list, and one stream with its live chart (volume, quality, violations, lag), its open
gate, its policy versions and snapshots. Windows arrive over Server-Sent Events. */
import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, page } from "../api/client";
import { followEvents } from "../api/events";
import { accessToken } from "../api/session";
import { useOpenRequests, useRun } from "../api/queries";
import { useAuth } from "../auth";
import { ChartGrid } from "../components/RunCharts";
import { Button, Empty, ErrorMessage, HeaderRow, Loading, StatusBadge } from "../components/ui";
import { formatNumber, formatTime, gateLabel } from "../lib/format";
import { mayStartRuns } from "../lib/roles";
import { LIVE_WINDOWS, liveSpec, mergeWindows, violationsOf, type StreamWindow } from "../lib/streams";
import { GatePanel } from "../gates/GatePanel";
import { PastDecisions } from "../gates/PastDecisions";

type Obj = Record<string, unknown>;

interface StreamRow {
  id: string;
  name: string;
  status: string;
  open_gate: string | null;
  requested_by: string;
  created_at: string;
  topic: string | null;
  window_seconds: number | null;
  started: boolean;
  policy_version: number | null;
  windows: number;
  records: number;
  violations: number;
  last_quality_score: number | null;
  last_freshness_p99_seconds: number | null;
  snapshots?: { id: string; name: string; status: string; created_at: string }[];
  schedule?: { last_windows: number; every_minutes: number; next_at: string; created_by: string } | null;
}

export function StreamsPage() {
  const streams = useQuery({
    queryKey: ["streams"],
    queryFn: async () => {
      const found = await page(api.GET("/streams", { params: { query: { limit: 200 } } }));
      return { rows: found.rows as unknown as StreamRow[], total: found.total };
    },
    refetchInterval: 5_000,
  });
  if (streams.isPending) return <Loading what="the streams" />;
  if (!streams.data) return <ErrorMessage error={streams.error} />;
  return (
    <section>
      <h1>Streams</h1>
      <p className="muted">A stream starts from a stream source (a Kafka topic): open it under <Link to="/sources">Sources</Link> and start a run.</p>
      {streams.data.rows.length === 0 ? (
        <Empty>No streams yet.</Empty>
      ) : (
        <table>
          <caption>{streams.data.total} streams</caption>
          <thead>
            <HeaderRow columns={["Stream", "Topic", "State", "Policy", "Windows", "Records", "Last score", "Started by"]} />
          </thead>
          <tbody>
            {streams.data.rows.map((s) => (
              <tr key={s.id}>
                <td>
                  <Link to={`/streams/${s.id}`}>{s.name}</Link>
                </td>
                <td>{s.topic ?? "–"}</td>
                <td>
                  <StatusBadge state={s.open_gate ? `waiting at ${gateLabel(s.open_gate)}` : s.status} />
                </td>
                <td>{s.policy_version ? `v${s.policy_version}` : "none yet"}</td>
                <td>{formatNumber(s.windows)}</td>
                <td>{formatNumber(s.records)}</td>
                <td>{formatNumber(s.last_quality_score)}</td>
                <td>{s.requested_by}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** The stream's windows: the newest page first, then each new one as the server sends it. */
function useLiveWindows(streamId: string, ended: boolean): StreamWindow[] {
  const [windows, setWindows] = useState<StreamWindow[]>([]);
  const last = useRef(0);
  useEffect(() => {
    let stopped = false;
    let stop: (() => void) | undefined;
    const add = (arrived: StreamWindow[]) => {
      for (const w of arrived) last.current = Math.max(last.current, w.id);
      setWindows((known) => mergeWindows(known, arrived));
    };
    void (async () => {
      const first = await ok(api.GET("/streams/{stream_id}/windows", { params: { path: { stream_id: streamId }, query: { limit: LIVE_WINDOWS } } }));
      if (stopped) return;
      add(first as unknown as StreamWindow[]);
      if (ended) return;
      stop = followEvents(
        () => `/streams/${encodeURIComponent(streamId)}/windows/stream?after=${last.current}&access_token=${encodeURIComponent(accessToken() ?? "")}`,
        (source) => {
          source.addEventListener("window", (e) => add([JSON.parse((e as MessageEvent).data) as StreamWindow]));
          source.addEventListener("ended", () => stop?.());
        },
      );
    })();
    return () => {
      stopped = true;
      stop?.();
    };
  }, [streamId, ended]);
  return windows;
}

function Snapshot({ streamId }: { streamId: string }) {
  const { me } = useAuth();
  const navigate = useNavigate();
  const [last, setLast] = useState("10");
  const [every, setEvery] = useState("");
  const [error, setError] = useState<unknown>(null);
  async function cut() {
    setError(null);
    try {
      const body = { last: Number(last), ...(every ? { every_minutes: Number(every) } : {}) };
      const made = await ok(api.POST("/streams/{stream_id}/snapshots", { params: { path: { stream_id: streamId } }, body }));
      navigate(`/runs/${(made as { id: string }).id}`);
    } catch (failure) {
      setError(failure);
    }
  }
  return (
    <div className="card">
      <h2>Snapshot</h2>
      <p className="muted">The last windows' records as one dataset, run through analytics, insights, recommendations and the report as a run of its own.</p>
      <div className="row">
        <label htmlFor="last">Windows</label>
        <input id="last" inputMode="numeric" value={last} onChange={(e) => setLast(e.target.value)} />
        <label htmlFor="every">and again every (minutes, optional)</label>
        <input id="every" inputMode="numeric" value={every} onChange={(e) => setEvery(e.target.value)} placeholder="e.g. 60" />
        <Button variant="secondary" verdict={mayStartRuns(me)} onClick={() => void cut()}>
          Run a snapshot
        </Button>
      </div>
      <ErrorMessage error={error} />
    </div>
  );
}

export function StreamPage() {
  const { streamId = "" } = useParams();
  const queries = useQueryClient();
  const stream = useQuery({
    queryKey: ["stream", streamId],
    queryFn: async () => (await ok(api.GET("/streams/{stream_id}", { params: { path: { stream_id: streamId } } }))) as unknown as StreamRow,
    refetchInterval: 5_000,
  });
  const policies = useQuery({
    queryKey: ["stream", streamId, "policies"],
    queryFn: async () => (await ok(api.GET("/streams/{stream_id}/policies", { params: { path: { stream_id: streamId } } }))) as unknown as Obj[],
    refetchInterval: 10_000,
  });
  const run = useRun(streamId);
  const open = useOpenRequests(streamId);
  const ended = ["completed", "failed", "aborted"].includes(stream.data?.status ?? "");
  const windows = useLiveWindows(streamId, ended);
  const [conflict, setConflict] = useState<unknown>(null);
  useEffect(() => {
    // A new window may have opened a gate: show it without waiting for the poll.
    void queries.invalidateQueries({ queryKey: ["decisions", "open", streamId] });
  }, [windows.length, streamId, queries]);

  if (stream.isPending) return <Loading what="the stream" />;
  if (!stream.data) return <ErrorMessage error={stream.error} />;
  const s = stream.data;
  const request = open.data?.rows[0];
  const latest = windows[windows.length - 1];
  return (
    <section data-testid="stream-view">
      <div className="row spread">
        <h1>{s.name}</h1>
        <StatusBadge state={s.open_gate ? `waiting at ${gateLabel(s.open_gate)}` : s.status} />
      </div>
      <p className="muted">
        Topic {s.topic ?? "–"} · windows of {formatNumber(s.window_seconds)} s · policy {s.policy_version ? `v${s.policy_version}` : "none yet"} · started by {s.requested_by} at{" "}
        {formatTime(s.created_at)} · <Link to={`/runs/${s.id}`}>its run</Link>
      </p>
      <dl className="kv" aria-label="Totals">
        <div>
          <dt>windows</dt>
          <dd>{formatNumber(s.windows)}</dd>
        </div>
        <div>
          <dt>records</dt>
          <dd>{formatNumber(s.records)}</dd>
        </div>
        <div>
          <dt>violations</dt>
          <dd>{formatNumber(s.violations)}</dd>
        </div>
        <div>
          <dt>last score</dt>
          <dd>{formatNumber(latest?.quality_score ?? s.last_quality_score)}</dd>
        </div>
        <div>
          <dt>lag p99</dt>
          <dd>{latest?.freshness_p99_seconds == null ? "–" : `${formatNumber(latest.freshness_p99_seconds)} s`}</dd>
        </div>
      </dl>
      <ErrorMessage error={conflict} />
      {request && run.data && <GatePanel key={request.id} requestId={request.id} run={run.data} onConflict={setConflict} />}
      {!s.started && !request && <p role="status">Reading a sample of the topic for gate 1…</p>}
      {windows.length > 0 ? (
        <ChartGrid
          label="Live windows"
          items={[{ id: `live-${windows.length}-${latest?.id ?? 0}`, stage: "streams", title: "Live windows", description: "Records, quality score, violations and lag (p99 seconds) per window", spec: liveSpec(windows) }]}
        />
      ) : (
        s.started && <Empty>No window has closed yet.</Empty>
      )}
      {windows.length > 0 && (
        <table>
          <caption>Latest windows</caption>
          <thead>
            <HeaderRow columns={["Window start", "Mode", "Policy", "Records", "Violations", "Score", "Lag p99", "Reopened the gate"]} />
          </thead>
          <tbody>
            {[...windows].reverse().slice(0, 20).map((w) => (
              <tr key={w.id}>
                <td>{formatTime(w.window_start)}</td>
                <td>{w.mode}</td>
                <td>{w.policy_version ? `v${w.policy_version}` : "–"}</td>
                <td>{formatNumber(w.records)}</td>
                <td>{formatNumber(violationsOf(w))}</td>
                <td>{formatNumber(w.quality_score)}</td>
                <td>{w.freshness_p99_seconds == null ? "–" : `${formatNumber(w.freshness_p99_seconds)} s`}</td>
                <td>{w.reopened?.join("; ") ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {(policies.data ?? []).length > 0 && (
        <table>
          <caption>Policy versions</caption>
          <thead>
            <HeaderRow columns={["Version", "Approved by", "At", "Rules"]} />
          </thead>
          <tbody>
            {(policies.data ?? []).map((p) => (
              <tr key={String(p.version)}>
                <td>v{String(p.version)}</td>
                <td>{String(p.approved_by)}</td>
                <td>{formatTime(String(p.approved_at))}</td>
                <td>{(p.rules as Obj[]).map((r) => `${String(r.kind)}: ${String(r.action)}${r.field ? ` (${String(r.field)})` : ""}`).join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {s.schedule && (
        <p role="status">
          A snapshot of the last {s.schedule.last_windows} windows runs every {s.schedule.every_minutes} minutes (next at {formatTime(s.schedule.next_at)}, set by {s.schedule.created_by}).
        </p>
      )}
      {s.windows > 0 && <Snapshot streamId={s.id} />}
      {(s.snapshots ?? []).length > 0 && (
        <ul aria-label="Snapshots">
          {(s.snapshots ?? []).map((r) => (
            <li key={r.id}>
              <Link to={`/runs/${r.id}`}>{r.name}</Link> · {r.status} · {formatTime(r.created_at)}
            </li>
          ))}
        </ul>
      )}
      {run.data && <PastDecisions decisions={run.data.decisions} />}
    </section>
  );
}
