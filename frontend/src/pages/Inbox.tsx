/** Every open gate the signed-in user may decide, across runs, oldest first, updated live. */
import { Link } from "react-router-dom";
import { useOpenRequests, useRuns } from "../api/queries";
import { useAuth } from "../auth";
import { Empty, ErrorMessage, Loading } from "../components/ui";
import { formatTime, gateLabel } from "../lib/format";
import { deadlineText } from "../lib/monitoring";
import { mayDecide } from "../lib/roles";

export function InboxPage() {
  const { me } = useAuth();
  const open = useOpenRequests();
  const runs = useRuns();
  const byId = new Map((runs.data?.rows ?? []).map((r) => [r.id, r]));
  const due = (deadline: string | null | undefined) => deadlineText(deadline, open.dataUpdatedAt || Date.now());
  const mine = (open.data?.rows ?? []).filter((r) => mayDecide(me, r.gate, byId.get(r.run_id)?.requested_by ?? "").allowed);
  return (
    <section>
      <h1>Decisions waiting for you</h1>
      <ErrorMessage error={open.error} />
      {open.isPending ? (
        <Loading what="the inbox" />
      ) : mine.length === 0 ? (
        <Empty>Nothing waits for you.</Empty>
      ) : (
        <table data-testid="inbox">
          <caption className="sr-only">Open gates, oldest first</caption>
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Gate</th>
              <th scope="col">Question</th>
              <th scope="col">Waiting since</th>
              <th scope="col">Deadline</th>
            </tr>
          </thead>
          <tbody>
            {mine.map((r) => (
              <tr key={r.id}>
                <td>
                  <Link to={`/runs/${r.run_id}`}>{byId.get(r.run_id)?.name ?? r.run_id}</Link>
                </td>
                <td>{gateLabel(r.gate)}</td>
                <td>{r.title}</td>
                <td>{formatTime(r.created_at)}</td>
                <td className={due(r.deadline_at).overdue ? "error" : ""}>
                  {r.deadline_at ? (
                    <>
                      {due(r.deadline_at).text} <small className="muted">({formatTime(r.deadline_at)})</small>
                    </>
                  ) : (
                    "none"
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
