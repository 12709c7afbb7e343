/** A stream's two gates: approve the contract (as inferred, or edited) and approve a standing policy. */
import { useState } from "react";
import { HeaderRow } from "../components/ui";
import { formatNumber } from "../lib/format";
import { defaultRules, policyParams, ruleProblems, type KindOffer, type RuleDraft } from "../lib/streams";
import { DecideButton, type DecideProps } from "./GatePanel";

type Obj = Record<string, unknown>;
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

/** Gate 1 of a stream: the sample, and the JSON Schema contract inferred from it, editable as JSON. */
export function StreamGate1(props: DecideProps) {
  const c = props.request.context;
  const inferred = JSON.stringify(c.contract ?? {}, null, 2);
  const [text, setText] = useState(inferred);
  const [mode, setMode] = useState("");
  let contract: unknown = null;
  let problem = "";
  try {
    contract = JSON.parse(text);
  } catch (error) {
    problem = `Not JSON: ${error instanceof Error ? error.message : String(error)}`;
  }
  const sample = arr(c.sample);
  const columns = Object.keys(sample[0] ?? {});
  const params: Obj = { ...(text === inferred ? {} : { contract }), ...(mode ? { unapproved_mode: mode } : {}) };
  return (
    <>
      <p>
        {formatNumber(c.rows)} records sampled from the topic{Number(c.sample_malformed ?? 0) > 0 ? `, ${formatNumber(c.sample_malformed)} of them not JSON objects` : ""}. Every
        record from now on is checked against the contract below.
      </p>
      <table>
        <caption>Sample records</caption>
        <thead>
          <HeaderRow columns={columns} />
        </thead>
        <tbody>
          {sample.map((row, i) => (
            <tr key={i}>
              {columns.map((k) => (
                <td key={k}>{typeof row[k] === "object" ? JSON.stringify(row[k]) : String(row[k] ?? "")}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <div className="field">
        <label htmlFor="contract">Contract (JSON Schema of one record; edit to tighten it, e.g. add a maximum)</label>
        <textarea id="contract" rows={14} spellCheck={false} value={text} onChange={(e) => setText(e.target.value)} aria-invalid={!!problem} />
        {problem && <small className="error">{problem}</small>}
      </div>
      <div className="field">
        <label htmlFor="unapproved">Until a quality policy is approved</label>
        <select id="unapproved" value={mode} onChange={(e) => setMode(e.target.value)}>
          <option value="">as the source says</option>
          <option value="hold">hold records (replayed through the policy once approved)</option>
          <option value="pass">pass records through untouched</option>
        </select>
      </div>
      <div className="row">
        <DecideButton props={props} name="approve" label={text === inferred ? "Approve the contract" : "Approve the edited contract"} params={params} problems={problem ? { contract: problem } : {}} primary />
        <DecideButton props={props} name="resample" label="Read a new sample" />
      </div>
    </>
  );
}

/** Gate 2 of a stream: per kind of finding, what to do with every future record; when to ask again. */
export function StreamGate2(props: DecideProps) {
  const c = props.request.context;
  const kinds = arr(c.kinds) as unknown as KindOffer[];
  const required = (Array.isArray(c.required_kinds) ? c.required_kinds : []) as string[];
  const fields = (Array.isArray(c.fields) ? c.fields : []) as string[];
  const [drafts, setDrafts] = useState<RuleDraft[]>(() => defaultRules(kinds, required));
  const [rate, setRate] = useState(String(c.reopen_violation_rate ?? 0.05));
  const [drop, setDrop] = useState(String(c.reopen_score_drop ?? 15));
  const reasons = (Array.isArray(c.reasons) ? c.reasons : []) as string[];
  const problems = ruleProblems(drafts, kinds, required);
  const rateValue = Number(rate);
  const dropValue = Number(drop);
  if (!(rateValue >= 0 && rateValue <= 1)) problems.push("The violation rate must be between 0 and 1.");
  if (!(dropValue >= 0 && dropValue <= 100)) problems.push("The score drop must be between 0 and 100.");
  const ruled = new Set(drafts.map((d) => d.kind));
  const update = (kind: string, change: Partial<RuleDraft>) => setDrafts((all) => all.map((d) => (d.kind === kind ? { ...d, ...change } : d)));
  const policy = c.policy as Obj | null;
  return (
    <>
      {reasons.length > 0 && (
        <div className="card" role="alert">
          <p>Asked again (the stream goes on under policy v{String(policy?.version ?? "?")}):</p>
          <ul>
            {reasons.map((r) => (
              <li key={r}>{r}</li>
            ))}
          </ul>
        </div>
      )}
      <p>
        {formatNumber(c.records)} records in the last {arr(c.windows).length} windows; latest quality score {formatNumber(c.score)}.
      </p>
      <table>
        <caption>One rule per kind of finding (a kind marked required was seen)</caption>
        <thead>
          <HeaderRow columns={["Finding", "Records", "Rule", "Action", "Field", "Constant"]} />
        </thead>
        <tbody>
          {kinds.map((k) => {
            const draft = drafts.find((d) => d.kind === k.kind);
            return (
              <tr key={k.kind} data-kind={k.kind}>
                <td>
                  {k.label}
                  {required.includes(k.kind) && <strong> (required)</strong>}
                </td>
                <td>{formatNumber(k.records)}</td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`A rule for ${k.words}`}
                    checked={ruled.has(k.kind)}
                    disabled={required.includes(k.kind)}
                    onChange={(e) =>
                      setDrafts((all) => (e.target.checked ? [...all, { kind: k.kind, action: k.default_action, field: "", constant: "" }] : all.filter((d) => d.kind !== k.kind)))
                    }
                  />
                </td>
                <td>
                  <select aria-label={`Action for ${k.words}`} disabled={!draft} value={draft?.action ?? k.default_action} onChange={(e) => update(k.kind, { action: e.target.value })}>
                    {k.actions.map((a) => (
                      <option key={a} value={a}>
                        {a.replace(/_/g, " ")}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <select aria-label={`Field for ${k.words}`} disabled={!draft} value={draft?.field ?? ""} onChange={(e) => update(k.kind, { field: e.target.value })}>
                    <option value="">every field</option>
                    {fields.map((f) => (
                      <option key={f} value={f}>
                        {f}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <input aria-label={`Constant for ${k.words}`} disabled={draft?.action !== "repair_constant"} value={draft?.constant ?? ""} onChange={(e) => update(k.kind, { constant: e.target.value })} placeholder="JSON, e.g. 0" />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div className="row">
        <div className="field">
          <label htmlFor="rate">Ask again above this contract violation rate (0-1)</label>
          <input id="rate" inputMode="decimal" value={rate} onChange={(e) => setRate(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="drop">… or when a window's score drops this many points</label>
          <input id="drop" inputMode="decimal" value={drop} onChange={(e) => setDrop(e.target.value)} />
        </div>
      </div>
      {problems.length > 0 && (
        <ul className="error" aria-live="polite">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
      <div className="row">
        <DecideButton
          props={props}
          name="apply_policy"
          label={policy ? `Approve as policy v${Number(policy.version) + 1}` : "Approve the policy"}
          params={policyParams(drafts, rateValue, dropValue)}
          problems={Object.fromEntries(problems.map((p, i) => [String(i), p]))}
          primary
        />
        {policy && <DecideButton props={props} name="keep_policy" label={`Keep policy v${String(policy.version)}`} />}
      </div>
    </>
  );
}
