/** The open gate of a run: its evidence, its options' forms, and the decision (who may, and why not). */
import { useState, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ApiError } from "../api/errors";
import type { components } from "../api/schema";
import { useRequest, type DecisionRequest, type GateOption, type RunDetail } from "../api/queries";
import { useAuth } from "../auth";
import { Button, ConfirmButton, ErrorMessage, Loading } from "../components/ui";
import { formatTime, gateLabel } from "../lib/format";
import { validate, type Schema } from "../lib/jsonschema";
import { mayDecide, type Verdict } from "../lib/roles";
import { Gate1, Gate2, Gate3, Gate4, Gate5 } from "./Gates";
import { StreamGate1, StreamGate2 } from "./StreamGates";

export interface DecideProps {
  request: DecisionRequest;
  run: RunDetail;
  verdict: Verdict;
  busy: boolean;
  decide(option: string, params?: Record<string, unknown>): void;
  option(name: string): GateOption | undefined;
}

/** Problems of params against the option's schema, by field path (empty: valid). */
export function problemsOf(option: GateOption | undefined, params: Record<string, unknown>): Record<string, string> {
  const schema = option?.params_schema as Schema | null | undefined;
  if (!schema) return {};
  return Object.fromEntries(validate(params, schema).map((p) => [p.path, p.message]));
}

const WHO: Record<string, string> = {
  action_selection: "an approver who did not start the run (separation of duties)",
};

export function GatePanel({ requestId, run, onConflict }: { requestId: string; run: RunDetail; onConflict(error: unknown): void }) {
  const found = useRequest(requestId);
  const { me } = useAuth();
  const queries = useQueryClient();
  const [rationale, setRationale] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (found.isPending) return <Loading what="the gate" />;
  if (!found.data) return <ErrorMessage error={found.error} />;
  const request = found.data;
  const verdict = mayDecide(me, request.gate, run.requested_by);

  async function decide(option: string, params: Record<string, unknown> = {}) {
    setBusy(true);
    setError(null);
    let unchanged = false;
    try {
      await ok(
        api.POST("/decisions/{request_id}", {
          params: { path: { request_id: request.id } },
          body: { option, params, rationale, gate: request.gate } as components["schemas"]["DecisionSubmit"],
        }),
      );
    } catch (failure) {
      unchanged = failure instanceof ApiError && failure.status === 422;
      // A 409 (decided by someone else first) outlives this panel, which the refresh below closes.
      if (failure instanceof ApiError && failure.status === 409) onConflict(failure);
      else setError(failure);
    } finally {
      setBusy(false);
      // After a decision (or a 409: someone else's), show what the server now holds.
      if (!unchanged) {
        await queries.invalidateQueries({ queryKey: ["run", run.id] });
        await queries.invalidateQueries({ queryKey: ["decisions"] });
      }
    }
  }

  const props: DecideProps = {
    request,
    run,
    verdict,
    busy,
    decide: (o, p) => void decide(o, p),
    option: (name) => request.options.find((o) => o.name === name),
  };
  // A stream's gates decide about a stream that goes on: their own evidence and options.
  const stream = request.context.stream === true;
  const body: Record<string, ReactNode> = {
    source_review: stream ? <StreamGate1 {...props} /> : <Gate1 {...props} />,
    quality_review: stream ? <StreamGate2 {...props} /> : <Gate2 {...props} />,
    analytics_review: <Gate3 {...props} />,
    insight_review: <Gate4 {...props} />,
    action_selection: <Gate5 {...props} />,
  };

  return (
    <section className="gate card" aria-labelledby="gate-title" data-testid={`gate-${request.gate}`}>
      <h2 id="gate-title">
        {gateLabel(request.gate)}: {request.title}
      </h2>
      <p className="muted">
        Open since {formatTime(request.created_at)}. Who may decide: {WHO[request.gate] ?? "an analyst or approver"} who may see the run.
      </p>
      {body[request.gate]}
      <div className="field">
        <label htmlFor="rationale">Rationale (kept with the decision)</label>
        <textarea id="rationale" rows={2} maxLength={2000} value={rationale} onChange={(e) => setRationale(e.target.value)} />
      </div>
      <div className="row">
        {stream && request.gate === "quality_review" ? (
          <ConfirmButton
            label="Stop the stream"
            title="Stop this stream?"
            body="The stream worker stops consuming the topic and the run ends; its windows and policies are kept."
            verdict={verdict}
            onConfirm={() => void decide("stop")}
          />
        ) : (
          <ConfirmButton
            label="Abort the run"
            title="Abort this run?"
            body="The run stops here for good; its results so far are kept."
            verdict={verdict}
            onConfirm={() => void decide("abort")}
          />
        )}
      </div>
      <ErrorMessage error={error} />
    </section>
  );
}

/** The decide button of one option: disabled with the role's reason, or with the form's problems. */
export function DecideButton({
  props,
  name,
  label,
  params,
  problems = {},
  primary,
}: {
  props: DecideProps;
  name: string;
  label: string;
  params?: Record<string, unknown>;
  problems?: Record<string, string>;
  primary?: boolean;
}) {
  const invalid = Object.keys(problems).length > 0;
  const verdict = props.verdict.allowed && invalid ? { allowed: false, reason: "Fix the marked fields first." } : props.verdict;
  return (
    <Button variant={primary ? "primary" : "secondary"} verdict={verdict} disabled={props.busy} onClick={() => props.decide(name, params)} data-decide={name}>
      {label}
    </Button>
  );
}
