import type { PastDecision } from "../api/queries";
import { formatTime, gateLabel } from "../lib/format";

/** The run's decisions, read-only: who, when, which option, with what parameters and why. */
export function PastDecisions({ decisions }: { decisions: PastDecision[] }) {
  if (!decisions.length) return null;
  return (
    <section aria-labelledby="past">
      <h2 id="past">Past decisions</h2>
      <table data-testid="past-decisions">
        <thead>
          <tr>
            <th scope="col">Gate</th>
            <th scope="col">Option</th>
            <th scope="col">Parameters</th>
            <th scope="col">Rationale</th>
            <th scope="col">Who</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody>
          {decisions.map((d) => (
            <tr key={d.request_id}>
              <td>{gateLabel(d.gate)}</td>
              <td>{d.option}</td>
              <td>
                <code className="params">{Object.keys(d.params).length ? JSON.stringify(d.params) : "–"}</code>
              </td>
              <td>{d.rationale || "–"}</td>
              <td>{d.decided_by}</td>
              <td>{formatTime(d.decided_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
