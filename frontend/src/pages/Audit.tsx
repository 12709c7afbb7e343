/** Admin: the audit log (filtered by actor and action) and the hash chain's verification. */
import { useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router-dom";
import { api, ok, page } from "../api/client";
import { useAuth } from "../auth";
import { Empty, ErrorMessage, Loading, HeaderRow } from "../components/ui";
import { formatTime } from "../lib/format";
import { isAdmin } from "../lib/roles";

interface AuditRecord {
  id: number;
  at: string;
  action: string;
  actor: string;
  subject: string | null;
  run_id: string | null;
  gate: string | null;
  choice: string | null;
  rationale: string | null;
}

export function AuditPage() {
  const { me } = useAuth();
  const [params, setParams] = useSearchParams();
  const actor = params.get("actor") ?? "";
  const action = params.get("action") ?? "";
  const records = useQuery({
    queryKey: ["audit"],
    enabled: isAdmin(me),
    queryFn: async () => page(api.GET("/audit", { params: { query: { limit: 1000 } } })),
  });
  const verify = useQuery({ queryKey: ["audit-verify"], enabled: isAdmin(me), queryFn: async () => ok(api.GET("/audit/verify")) });
  if (!isAdmin(me)) return <p role="alert">Only an admin may read the audit log.</p>;
  const rows = ((records.data?.rows ?? []) as unknown as AuditRecord[]).filter(
    (r) => (!actor || r.actor.includes(actor)) && (!action || r.action.includes(action)),
  );
  const chain = verify.data as { ok: boolean; rows: number; broken_at: number | null; reason: string | null } | undefined;
  const set = (key: string, value: string) => setParams(Object.fromEntries(Object.entries({ actor, action, [key]: value }).filter(([, v]) => v)));
  return (
    <section>
      <div className="row spread">
        <h1>Audit log</h1>
        <Link to="/admin">Users and roles</Link>
      </div>
      {chain && (
        <p role="status" className={chain.ok ? "ok" : "error"} data-testid="chain">
          {chain.ok ? `Hash chain verified: ${chain.rows} records intact.` : `Hash chain broken at record ${chain.broken_at}: ${chain.reason}`}
        </p>
      )}
      <div className="row">
        <label htmlFor="actor">Actor</label>
        <input id="actor" value={actor} onChange={(e) => set("actor", e.target.value)} />
        <label htmlFor="action">Action</label>
        <input id="action" value={action} onChange={(e) => set("action", e.target.value)} />
      </div>
      <ErrorMessage error={records.error ?? verify.error} />
      {records.isPending ? (
        <Loading what="the audit log" />
      ) : !rows.length ? (
        <Empty>No records match.</Empty>
      ) : (
        <table>
          <thead>
            <HeaderRow columns={["#", "When", "Actor", "Action", "Subject", "Gate", "Choice", "Rationale"]} />
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                <td>{r.id}</td>
                <td>{formatTime(r.at)}</td>
                <td>{r.actor}</td>
                <td>{r.action}</td>
                <td>{r.subject ?? r.run_id ?? "–"}</td>
                <td>{r.gate ?? "–"}</td>
                <td>{r.choice ?? "–"}</td>
                <td>{r.rationale ?? "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
