/** The evidence and the option forms of each of the five gates. */
import { useMemo, useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { api, ok, page } from "../api/client";
import type { DecisionRequest } from "../api/queries";
import { ChartGrid, RunCharts } from "../components/RunCharts";
import type { ChartItem } from "../components/VegaChart";
import { ErrorMessage, HeaderRow } from "../components/ui";
import { listChange, move, moveTo, statRows, type StatPair } from "../lib/diff";
import { formatBytes, formatEstimate, formatNumber, formatShare } from "../lib/format";
import type { Schema } from "../lib/jsonschema";
import { DecideButton, problemsOf, type DecideProps } from "./GatePanel";
import { paramsFrom, SchemaForm, type Texts } from "./SchemaForm";

type Obj = Record<string, unknown>;
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);
const obj = (v: unknown): Obj => (v && typeof v === "object" ? (v as Obj) : {});

function KeyValues({ values }: { values: Obj }) {
  return (
    <dl className="kv">
      {Object.entries(values).map(([k, v]) => (
        <div key={k}>
          <dt>{k.replace(/_/g, " ")}</dt>
          <dd>{typeof v === "object" && v !== null ? JSON.stringify(v) : formatNumber(v)}</dd>
        </div>
      ))}
    </dl>
  );
}

/** An option that takes parameters: its schema's form, checked as the person types. */
function ParamsOption({ props, name, label }: { props: DecideProps; name: string; label: string }) {
  const option = props.option(name);
  const schema = option?.params_schema as Schema | undefined;
  const [texts, setTexts] = useState<Texts>({});
  const [open, setOpen] = useState(false);
  if (!schema) return null;
  const params = paramsFrom(texts, schema);
  const problems = problemsOf(option, params);
  return (
    <details className="option" open={open} onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>
        {label}: {option?.description}
      </summary>
      <SchemaForm schema={schema} texts={texts} onChange={setTexts} problems={problems} />
      <DecideButton props={props} name={name} label={label} params={params} problems={problems} />
    </details>
  );
}

export function Gate1(props: DecideProps) {
  const c = props.request.context;
  const schema = arr(c.schema);
  return (
    <>
      <KeyValues values={{ rows: c.rows, size: formatBytes(Number(c.bytes_read ?? 0)), file: obj(c.source).path, health: c.health ?? "not checked", drift: c.drift ?? "no contract to compare" }} />
      <table>
        <caption>Inferred schema</caption>
        <thead>
          <tr>
            <th scope="col">Column</th>
            <th scope="col">Type</th>
            <th scope="col">Nullable</th>
            <th scope="col">Nulls</th>
            <th scope="col">Examples</th>
          </tr>
        </thead>
        <tbody>
          {schema.map((col) => (
            <tr key={String(col.name)}>
              <td>{String(col.name)}</td>
              <td>{String(col.dtype)}</td>
              <td>{col.nullable ? "yes" : "no"}</td>
              <td>{formatNumber(col.null_count)}</td>
              <td>{arr(col.examples).map(String).join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="row">
        <DecideButton props={props} name="approve" label="Approve the source" primary />
      </div>
      <ParamsOption props={props} name="reconfigure" label="Reconfigure" />
    </>
  );
}

interface Resolution {
  strategy: string;
  params: Obj;
  rationale: string;
  risk: string;
  description: string;
}

const SEVERITY = ["critical", "high", "medium", "low", "info"];

export function Gate2(props: DecideProps) {
  const c = props.request.context;
  const findings = useMemo(() => [...arr(c.findings)].sort((a, b) => SEVERITY.indexOf(String(a.severity)) - SEVERITY.indexOf(String(b.severity))), [c.findings]);
  const [picked, setPicked] = useState<Record<string, string>>({});
  const [preview, setPreview] = useState<Obj | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const [previewing, setPreviewing] = useState(false);
  const previewToken = useRef(0); // a newer preview (or a changed choice) stops polling for an older one
  const choices = findings
    .filter((f) => picked[String(f.id)])
    .map((f) => {
      const res = arr(f.resolutions).find((r) => r.strategy === picked[String(f.id)]) as unknown as Resolution;
      return { finding_id: String(f.id), strategy: res.strategy, params: res.params ?? {} };
    });
  const counts = SEVERITY.map((s) => [s, findings.filter((f) => f.severity === s).length] as const).filter(([, n]) => n > 0);
  const problems = problemsOf(props.option("apply"), { choices });

  function clearPreview() {
    previewToken.current += 1;
    setPreview(null);
  }

  async function runPreview() {
    const token = ++previewToken.current;
    setPreviewing(true);
    setPreviewError(null);
    const ask = async () => (await ok(api.POST("/decisions/{request_id}/preview", { params: { path: { request_id: props.request.id } }, body: { choices } }))) as Obj;
    try {
      let answer = await ask();
      setPreview(answer);
      setPreviewing(false);
      // A first answer from a sample: the service computes the exact figures meanwhile; ask again
      // (answered from its cache) until they are there.
      for (let tries = 0; answer.exact_pending === true && tries < 240; tries++) {
        await new Promise((done) => setTimeout(done, 500));
        if (token !== previewToken.current) return;
        answer = await ask();
        if (token !== previewToken.current) return;
        setPreview(answer);
      }
    } catch (failure) {
      if (token === previewToken.current) setPreviewError(failure);
    } finally {
      if (token === previewToken.current) setPreviewing(false);
    }
  }

  return (
    <>
      <KeyValues values={{ "quality score": c.score, rows: c.rows, ...obj(c.dimensions) }} />
      <p>
        Findings by severity: {counts.map(([s, n]) => `${n} ${s}`).join(", ") || "none"}.
      </p>
      <RunCharts runId={props.run.id} stage="quality" />
      <table>
        <caption>Findings and their resolutions (ranked; the first is recommended)</caption>
        <thead>
          <tr>
            <th scope="col">Finding</th>
            <th scope="col">Severity</th>
            <th scope="col">Count</th>
            <th scope="col">Share</th>
            <th scope="col">Resolution</th>
          </tr>
        </thead>
        <tbody>
          {findings.map((f) => {
            const id = String(f.id);
            const selectId = `fix-${id.replace(/\W/g, "-")}`;
            return (
              <tr key={id}>
                <td>
                  <strong>{String(f.label ?? f.category)}</strong> <span className="muted">{arr(f.columns).map(String).join(", ")}</span>
                  <br />
                  <small>{String(f.explanation ?? "")}</small>
                  {arr(f.sample_rows).length > 0 && (
                    <details>
                      <summary>Sample rows</summary>
                      <code className="params">{JSON.stringify(f.sample_rows)}</code>
                    </details>
                  )}
                </td>
                <td>
                  <span className={`badge sev-${String(f.severity)}`}>{String(f.severity)}</span>
                </td>
                <td>{formatNumber(f.count)}</td>
                <td>{formatShare(Number(f.share ?? 0))}</td>
                <td>
                  <label htmlFor={selectId} className="sr-only">
                    Resolution for {id}
                  </label>
                  <select id={selectId} value={picked[id] ?? ""} onChange={(e) => { setPicked({ ...picked, [id]: e.target.value }); clearPreview(); }}>
                    <option value="">leave as is</option>
                    {arr(f.resolutions).map((r, i) => (
                      <option key={String(r.strategy)} value={String(r.strategy)}>
                        {i + 1}. {String(r.description ?? r.strategy)} (risk {String(r.risk)})
                      </option>
                    ))}
                  </select>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div className="row">
        <button type="button" className="btn btn-secondary" disabled={!choices.length || previewing || !props.verdict.allowed} onClick={() => void runPreview()} data-testid="preview">
          {previewing ? "Previewing…" : `Preview ${choices.length} fix${choices.length === 1 ? "" : "es"}`}
        </button>
        <DecideButton props={props} name="apply" label="Apply the chosen fixes" params={{ choices }} problems={choices.length ? problems : { choices: "choose at least one resolution" }} primary />
        <DecideButton props={props} name="accept_as_is" label="Accept the data as is" />
      </div>
      <ErrorMessage error={previewError} />
      {preview && <Preview preview={preview} />}
    </>
  );
}

function Preview({ preview }: { preview: Obj }) {
  const rows = statRows(obj(preview.columns) as Record<string, StatPair>);
  const exact = preview.exact !== false;
  const margin = obj(preview.margin);
  return (
    <section className="card" aria-labelledby="preview-title" data-testid="preview-result" data-exact={String(exact)}>
      <h3 id="preview-title">Preview: nothing is applied yet</h3>
      {!exact && (
        <p className="muted" data-testid="preview-estimate">
          Estimates from a sample of {formatNumber(preview.sample_rows)} of {formatNumber(preview.rows_total)} rows (± a 95 % margin)
          {preview.exact_pending === true ? "; the exact figures follow…" : "."} The notes below count the sampled rows.
        </p>
      )}
      <KeyValues
        values={{
          method: preview.method,
          "rows removed": formatEstimate(preview.rows_removed, margin.rows_removed, exact),
          "rows changed": formatEstimate(preview.rows_changed, margin.rows_changed, exact),
          "cells changed": formatEstimate(preview.cells_changed, margin.cells_changed, exact),
        }}
      />
      <ul>
        {arr(preview.steps).map((s) => (
          <li key={String(s.finding_id)}>{String(s.note)}</li>
        ))}
      </ul>
      <table>
        <caption>Statistics before and after</caption>
        <thead>
          <tr>
            <th scope="col">Column</th>
            <th scope="col">Statistic</th>
            <th scope="col">Before</th>
            <th scope="col">After</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.column + r.stat} className={r.changed ? "changed" : ""}>
              <td>{r.column}</td>
              <td>{r.stat}</td>
              <td>{formatNumber(r.before)}</td>
              <td>{formatNumber(r.after)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <ChartGrid items={(Array.isArray(preview.charts) ? preview.charts : []) as ChartItem[]} label="Before and after" />
      <table>
        <caption>Changed rows (first ones)</caption>
        <thead>
          <tr>
            <th scope="col">Row</th>
            <th scope="col">Change</th>
            <th scope="col">Cells (before → after)</th>
          </tr>
        </thead>
        <tbody>
          {arr(preview.changed_rows).map((r) => (
            <tr key={String(r.row)}>
              <td>{String(r.row)}</td>
              <td>{String(r.change)}</td>
              <td>
                {Object.entries(obj(r.cells))
                  .map(([col, v]) => `${col}: ${formatNumber(obj(v).before)} → ${formatNumber(obj(v).after)}`)
                  .join("; ")}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** The figures of one analytics result that a modify changes, by name. */
export function analyticsFigures(a: Obj): Record<string, string> {
  const clustering = obj(a.clustering);
  const drivers = arr(obj(a.drivers).drivers);
  return {
    "Clusters (k)": formatNumber(clustering.k),
    Silhouette: formatNumber(clustering.silhouette),
    "Anomalous rows": formatNumber(obj(a.anomalies).count),
    "Top drivers": drivers.slice(0, 3).map((d) => String(d.column)).join(", ") || "–",
    "Trend per period": formatNumber(obj(a.time_series).trend_slope),
    "Rows used": formatNumber(a.rows_used),
  };
}

/** After a modify (a loop back to analytics), the earlier results beside the new ones. */
function EarlierAnalytics({ props, now }: { props: DecideProps; now: Obj }) {
  const earlier = useQuery({
    queryKey: ["decisions", "gate3-history", props.run.id],
    queryFn: async () => {
      const found = await page(api.GET("/decisions", { params: { query: { status: "all", run_id: props.run.id, limit: 1000 } } }));
      const rows = (found.rows as unknown as DecisionRequest[]).filter((r) => r.gate === "analytics_review" && r.id !== props.request.id);
      const last = rows[rows.length - 1];
      if (!last) return null;
      const full = await ok(api.GET("/decisions/{request_id}", { params: { path: { request_id: last.id } } }));
      return obj((full as unknown as DecisionRequest).context.analytics);
    },
  });
  if (!earlier.data) return null;
  const before = analyticsFigures(earlier.data);
  const after = analyticsFigures(now);
  return (
    <table data-testid="analytics-compare">
      <caption>New results beside the earlier ones (before the modify)</caption>
      <thead>
        <tr>
          <th scope="col">Figure</th>
          <th scope="col">Earlier</th>
          <th scope="col">Now</th>
        </tr>
      </thead>
      <tbody>
        {Object.keys(after).map((name) => (
          <tr key={name} className={before[name] !== after[name] ? "changed" : ""}>
            <td>{name}</td>
            <td>{before[name]}</td>
            <td>{after[name]}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Gate3(props: DecideProps) {
  const a = obj(props.request.context.analytics);
  const columns = arr(a.columns);
  const drivers = arr(obj(a.drivers).drivers);
  const clustering = obj(a.clustering);
  const anomalies = obj(a.anomalies);
  const series = obj(a.time_series);
  const correlations = [...arr(a.correlations)].sort((x, y) => Math.abs(Number(y.pearson)) - Math.abs(Number(x.pearson))).slice(0, 8);
  return (
    <>
      <p>{String(a.sample_note ?? "")}</p>
      <EarlierAnalytics props={props} now={a} />
      <RunCharts runId={props.run.id} stage="analytics" />
      <table>
        <caption>Statistics by column</caption>
        <thead>
          <HeaderRow columns={["Column", "Kind", "Missing", "Distinct", "Mean", "Median", "Min", "Max"]} />
        </thead>
        <tbody>
          {columns.map((col) => (
            <tr key={String(col.name)}>
              <td>{String(col.name)}</td>
              <td>{String(col.kind)}</td>
              <td>{formatNumber(col.missing)}</td>
              <td>{formatNumber(col.distinct)}</td>
              <td>{formatNumber(col.mean)}</td>
              <td>{formatNumber(col.median)}</td>
              <td>{formatNumber(col.min)}</td>
              <td>{formatNumber(col.max)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="grid">
        <div>
          <h3>Strongest correlations</h3>
          <ul>
            {correlations.map((c) => (
              <li key={`${String(c.a)}-${String(c.b)}`}>
                {String(c.a)} × {String(c.b)}: r = {formatNumber(c.pearson)}
              </li>
            ))}
          </ul>
        </div>
        <div>
          <h3>Drivers of {String(obj(a.drivers).target ?? a.target ?? "the target")}</h3>
          <ol>
            {drivers.map((d) => (
              <li key={String(d.column)}>
                {String(d.column)}: importance {formatNumber(d.permutation_importance)}
              </li>
            ))}
          </ol>
        </div>
        <div>
          <h3>Clusters and anomalies</h3>
          <p>
            {formatNumber(clustering.k)} clusters (by {String(clustering.chosen_by ?? "–")}, silhouette {formatNumber(clustering.silhouette)}); {formatNumber(anomalies.count)} anomalous rows (
            {formatShare(Number(anomalies.share ?? 0))}).
          </p>
          <h3>Time series</h3>
          <p>
            {String(series.value ?? "–")} by {String(series.freq ?? "–")}: trend {formatNumber(series.trend_slope)} per period (p = {formatNumber(series.trend_p_value)}), {arr(series.change_points).length} change points.
          </p>
        </div>
      </div>
      <div className="row">
        <DecideButton props={props} name="accept" label="Accept the analytics" primary />
      </div>
      <ParamsOption props={props} name="modify" label="Modify and run again" />
    </>
  );
}

export function Gate4(props: DecideProps) {
  const c = props.request.context;
  const insights = arr(c.insights);
  const previous = arr(c.previous_insights);
  const change = previous.length ? listChange(previous.map((i) => String(i.id)), insights.map((i) => String(i.id))) : null;
  return (
    <>
      <RunCharts runId={props.run.id} stage="insights" />
      {change && (
        <p data-testid="refine-change">
          After the refine: {change.added.length} added ({change.added.join(", ") || "none"}), {change.dropped.length} dropped ({change.dropped.join(", ") || "none"}), {change.moved.length} re-ranked.
        </p>
      )}
      <table>
        <caption>Insights, ranked</caption>
        <thead>
          <HeaderRow columns={["#", "Insight", "Effect", "Confidence", "Interval", "Method"]} />
        </thead>
        <tbody>
          {insights.map((i, n) => (
            <tr key={String(i.id)}>
              <td>{n + 1}</td>
              <td>
                {String(i.statement)}
                <details>
                  <summary>Numbers</summary>
                  <KeyValues values={obj(i.numbers)} />
                </details>
              </td>
              <td>{formatNumber(i.effect_size)}</td>
              <td>{formatNumber(i.confidence)}</td>
              <td>
                [{formatNumber(i.ci_low)}, {formatNumber(i.ci_high)}] <small className="muted">{String(i.ci_of ?? "")}</small>
              </td>
              <td>
                <small>{String(i.method ?? "")}</small>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="row">
        <DecideButton props={props} name="accept" label="Accept the insights" primary />
      </div>
      <ParamsOption props={props} name="refine" label="Refine" />
    </>
  );
}

export function Gate5(props: DecideProps) {
  const items = arr(props.request.context.items);
  const [order, setOrder] = useState<string[]>(() => items.map((i) => String(i.id)));
  const [selected, setSelected] = useState<Set<string>>(() => new Set());
  const [owners, setOwners] = useState<Record<string, string>>({});
  const [due, setDue] = useState<Record<string, string>>({});
  const [dragging, setDragging] = useState<number | null>(null);
  const [said, setSaid] = useState("");
  const byId = new Map(items.map((i) => [String(i.id), i]));
  // A drop or an arrow key on an item's handle: the move is announced to screen readers.
  const place = (from: number, to: number) => {
    const next = moveTo(order, from, to);
    if (next === order) return;
    setOrder(next);
    setSaid(`${order[from]} moved to position ${to + 1} of ${order.length}.`);
  };
  const chosen = order.filter((id) => selected.has(id));
  const params = {
    selected: chosen,
    owners: Object.fromEntries(chosen.filter((id) => owners[id]).map((id) => [id, owners[id] as string])),
    due: Object.fromEntries(chosen.filter((id) => due[id]).map((id) => [id, due[id] as string])),
  };
  const problems = items.length && !chosen.length ? { selected: "choose at least one action" } : problemsOf(props.option("choose"), params);
  return (
    <>
      <p className="note">
        Separation of duties: the person who started this run ({props.run.requested_by}) may not choose its plan; another approver does.
      </p>
      <p className="muted">Reorder by dragging an action, or focus its ⠿ handle and use the arrow keys (or the ↑ ↓ buttons).</p>
      <p role="status" className="sr-only" data-testid="reorder-said">
        {said}
      </p>
      <ol className="actions" aria-label="Recommended actions, in plan order">
        {order.map((id, index) => {
          const item = byId.get(id) ?? {};
          const box = `pick-${id}`;
          return (
            <li
              key={id}
              className={`card${dragging === index ? " dragging" : ""}`}
              data-testid={`action-${id}`}
              draggable
              onDragStart={(e) => {
                setDragging(index);
                e.dataTransfer.effectAllowed = "move";
                e.dataTransfer.setData("text/plain", id);
              }}
              onDragOver={(e) => e.preventDefault()}
              onDrop={(e) => {
                e.preventDefault();
                if (dragging !== null) place(dragging, index);
                setDragging(null);
              }}
              onDragEnd={() => setDragging(null)}
            >
              <div className="row">
                <button
                  type="button"
                  className="btn btn-secondary handle"
                  aria-label={`Reorder ${id} (drag, or the arrow keys)`}
                  aria-keyshortcuts="ArrowUp ArrowDown"
                  onKeyDown={(e) => {
                    if (e.key === "ArrowUp" || e.key === "ArrowDown") {
                      e.preventDefault();
                      place(index, index + (e.key === "ArrowUp" ? -1 : 1));
                    }
                  }}
                >
                  ⠿
                </button>
                <input id={box} type="checkbox" checked={selected.has(id)} onChange={(e) => { const next = new Set(selected); if (e.target.checked) next.add(id); else next.delete(id); setSelected(next); }} />
                <label htmlFor={box}>
                  <strong>{String(item.title)}</strong>
                </label>
              </div>
              <small>
                Expected impact {formatNumber(item.expected_impact)} {String(item.impact_unit ?? "")} · confidence {formatNumber(item.confidence)} · effort {formatNumber(item.effort)}
              </small>
              <div className="row">
                <button type="button" className="btn btn-secondary" aria-label={`Move ${id} up`} disabled={index === 0} onClick={() => setOrder(move(order, index, -1))}>
                  ↑
                </button>
                <button type="button" className="btn btn-secondary" aria-label={`Move ${id} down`} disabled={index === order.length - 1} onClick={() => setOrder(move(order, index, 1))}>
                  ↓
                </button>
                <label htmlFor={`owner-${id}`}>Owner</label>
                <input id={`owner-${id}`} value={owners[id] ?? ""} onChange={(e) => setOwners({ ...owners, [id]: e.target.value })} />
                <label htmlFor={`due-${id}`}>Due</label>
                <input id={`due-${id}`} type="date" value={due[id] ?? ""} onChange={(e) => setDue({ ...due, [id]: e.target.value })} />
              </div>
            </li>
          );
        })}
      </ol>
      <div className="row">
        <DecideButton props={props} name="choose" label={`Choose ${chosen.length} action${chosen.length === 1 ? "" : "s"} as the plan`} params={params} problems={problems} primary />
      </div>
    </>
  );
}
