/** Registered sources: the list (paged, with the total), add and edit (the config form built from the type's
JSON Schema the gateway publishes; secrets masked, never echoed back), test the connection, delete (with a
confirmation), and start a run on one with a goal and rules. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { api, ok, page } from "../api/client";
import { ApiError } from "../api/errors";
import { useAuth } from "../auth";
import { Button, ConfirmButton, Empty, ErrorMessage, Field, Loading, Pager, HeaderRow, StaleNotice } from "../components/ui";
import { SchemaForm, type Texts } from "../gates/SchemaForm";
import { pageCount, PAGE_SIZE } from "../lib/filters";
import { formatTime } from "../lib/format";
import { mayManageSource, mayStartRuns } from "../lib/roles";
import {
  configChanges,
  configFromTexts,
  configProblems,
  healthSummary,
  nameProblem,
  secretPlaceholder,
  serverProblems,
  sourceTypes,
  textsFromConfig,
  type SourceHealth,
  type SourceType,
  type SourceView,
} from "../lib/sources";

/** Each source type's config schema, read from the gateway's OpenAPI (the server checks with the same). */
function useSourceTypes() {
  return useQuery({
    queryKey: ["openapi", "source-types"],
    staleTime: Infinity,
    queryFn: async () => {
      const answer = await fetch("/openapi.json");
      if (!answer.ok) throw new ApiError(answer.status, "the API description could not be read");
      return sourceTypes(await answer.json());
    },
  });
}

function useSource(ref: string) {
  return useQuery({
    queryKey: ["source", ref],
    queryFn: async () => (await ok(api.GET("/sources/{ref}", { params: { path: { ref } } }))) as unknown as SourceView,
  });
}

export function SourcesPage() {
  const { me } = useAuth();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const current = Math.max(1, Number(params.get("page") ?? "1") || 1);
  const sources = useQuery({
    queryKey: ["sources", current],
    placeholderData: (previous) => previous,
    queryFn: async () => {
      const found = await page(api.GET("/sources", { params: { query: { limit: PAGE_SIZE, offset: (current - 1) * PAGE_SIZE } } }));
      return { rows: found.rows as unknown as SourceView[], total: found.total };
    },
  });
  const total = sources.data?.total ?? 0;
  const pages = pageCount(total);
  const go = (n: number) => setParams(n > 1 ? { page: String(n) } : {});
  return (
    <section>
      <div className="row spread">
        <h1>Sources</h1>
        <Button variant="primary" verdict={mayStartRuns(me)} onClick={() => navigate("/sources/new")}>
          Add a source
        </Button>
      </div>
      <ErrorMessage error={sources.error} />
      {sources.isPending ? (
        <Loading what="sources" />
      ) : total === 0 ? (
        <Empty>No sources registered yet.</Empty>
      ) : (
        <>
          <table className="nowrap" data-testid="sources">
            <caption className="sr-only">Registered sources</caption>
            <thead>
              <HeaderRow columns={["Name", "Type", "Owner", "Last test", "Updated"]} />
            </thead>
            <tbody>
              {(sources.data?.rows ?? []).map((s) => (
                <tr key={s.id}>
                  <td>
                    <Link to={`/sources/${s.id}`}>{s.name}</Link>
                  </td>
                  <td>{s.type}</td>
                  <td>{s.created_by}</td>
                  <td className={s.last_health ? (s.last_health.ok ? "ok" : "error") : "muted"}>{healthSummary(s.last_health)}</td>
                  <td>{formatTime(s.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager page={current} pages={pages} total={total} noun="source" go={go} />
        </>
      )}
    </section>
  );
}

/** The config fields of one type, checked as they are typed; the server's 422 fields shown beside them. */
function ConfigFields({
  kind,
  texts,
  setTexts,
  problems,
  stored,
}: {
  kind: SourceType;
  texts: Texts;
  setTexts(t: Texts): void;
  problems: Record<string, string>;
  stored?: SourceView;
}) {
  return (
    <fieldset>
      <legend>{kind.type} settings</legend>
      {kind.description && <p className="muted">{kind.description}</p>}
      <SchemaForm
        schema={kind.schema}
        texts={texts}
        onChange={setTexts}
        problems={problems}
        blank="(default)"
        secretHint={(path) => (stored?.secret_fields.includes(path) ? secretPlaceholder(stored.config, path) : "secret: stored encrypted, never shown again")}
      />
    </fieldset>
  );
}

export function NewSourcePage() {
  const { me } = useAuth();
  const navigate = useNavigate();
  const client = useQueryClient();
  const types = useSourceTypes();
  const [name, setName] = useState("");
  const [kind, setKind] = useState("file");
  const [texts, setTexts] = useState<Texts>({});
  const [server, setServer] = useState<Record<string, string>>({});
  const [touched, setTouched] = useState(false);
  const chosen = types.data?.find((t) => t.type === kind);
  const config = chosen ? configFromTexts(texts, chosen.schema) : {};
  const problems = { ...(chosen ? configProblems(config, chosen.schema) : {}), ...server };
  const badName = nameProblem(name);
  const create = useMutation({
    mutationFn: async () => (await ok(api.POST("/sources", { body: { name, type: kind as "file", config: config as { path: string } } }))) as unknown as SourceView,
    onSuccess: async (view) => {
      await client.invalidateQueries({ queryKey: ["sources"] });
      navigate(`/sources/${view.id}`);
    },
    onError: (error) => error instanceof ApiError && setServer(serverProblems(error.body)),
  });
  function submit(event: FormEvent) {
    event.preventDefault();
    setTouched(true);
    if (!badName && !Object.keys(problems).length) create.mutate();
  }
  if (types.isPending) return <Loading what="the source types" />;
  return (
    <section>
      <h1>Add a source</h1>
      <ErrorMessage error={types.error} />
      <form className="card" onSubmit={submit} noValidate>
        <Field id="source-name" label="Name" hint="Letters, digits, _ . - (used in links and the CLI).">
          <input id="source-name" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={touched && !!badName} required />
        </Field>
        {touched && badName && <p className="error">Name {badName}.</p>}
        <Field id="source-type" label="Type">
          <select
            id="source-type"
            value={kind}
            onChange={(e) => {
              setKind(e.target.value);
              setTexts({});
              setServer({});
            }}
          >
            {(types.data ?? []).map((t) => (
              <option key={t.type} value={t.type}>
                {t.type}
              </option>
            ))}
          </select>
        </Field>
        {chosen && (
          <ConfigFields
            kind={chosen}
            texts={texts}
            setTexts={(t) => {
              setTexts(t);
              setServer({});
            }}
            problems={touched ? problems : {}}
          />
        )}
        <ErrorMessage error={create.error} />
        <Button type="submit" variant="primary" verdict={mayStartRuns(me)} disabled={create.isPending || (touched && (!!badName || !!Object.keys(problems).length))}>
          Add the source
        </Button>
      </form>
    </section>
  );
}

function HealthResult({ health }: { health: SourceHealth }) {
  const step = (label: string, passed: boolean) => (
    <li className={passed ? "ok" : "error"}>
      {label}: {passed ? "yes" : "no"}
    </li>
  );
  return (
    <div role="status" data-testid="health" className={health.ok ? "ok" : "error"}>
      <p>
        <strong>{healthSummary(health)}</strong>
      </p>
      <ul>
        {step("Reachable", health.reachable)}
        {step("Authorised", health.authorised)}
        {step("Readable", health.readable)}
      </ul>
      {health.checked_at && <small className="muted">Checked {formatTime(health.checked_at)}</small>}
    </div>
  );
}

function EditSource({ source, kind, onDone }: { source: SourceView; kind: SourceType; onDone(): void }) {
  const client = useQueryClient();
  const [before] = useState<Texts>(() => textsFromConfig(source.config, kind.schema));
  const [texts, setTexts] = useState<Texts>(before);
  const [name, setName] = useState(source.name);
  const [server, setServer] = useState<Record<string, string>>({});
  const changes = configChanges(before, texts, kind.schema);
  const problems = { ...configProblems(changes, kind.schema, true), ...server };
  const badName = nameProblem(name);
  const save = useMutation({
    mutationFn: async () =>
      (await ok(
        api.PATCH("/sources/{ref}", { params: { path: { ref: source.id } }, body: { config: changes, ...(name !== source.name ? { name } : {}) } }),
      )) as unknown as SourceView,
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ["source", source.id] });
      await client.invalidateQueries({ queryKey: ["sources"] });
      onDone();
    },
    onError: (error) => error instanceof ApiError && setServer(serverProblems(error.body)),
  });
  return (
    <form
      className="card"
      aria-label="Edit the source"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (!badName && !Object.keys(problems).length) save.mutate();
      }}
    >
      <h2>Edit</h2>
      <Field id="edit-name" label="Name">
        <input id="edit-name" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={!!badName} />
      </Field>
      {badName && <p className="error">Name {badName}.</p>}
      <ConfigFields
        kind={kind}
        texts={texts}
        setTexts={(t) => {
          setTexts(t);
          setServer({});
        }}
        problems={problems}
        stored={source}
      />
      <ErrorMessage error={save.error} />
      <div className="row">
        <Button type="submit" variant="primary" disabled={save.isPending || !!badName || !!Object.keys(problems).length}>
          Save the changes
        </Button>
        <Button onClick={onDone}>Cancel</Button>
      </div>
    </form>
  );
}

function StartRun({ source }: { source: SourceView }) {
  const { me } = useAuth();
  const navigate = useNavigate();
  const start = useMutation({
    mutationFn: async (form: FormData) => {
      const text = (key: string) => String(form.get(key) ?? "").trim();
      const body = {
        goal: { target: text("target") || null, direction: text("direction") === "decrease" ? ("decrease" as const) : ("increase" as const), description: text("description") },
        name: text("run-name") || null,
        rules: text("rules") || null,
      };
      return (await ok(api.POST("/sources/{ref}/runs", { params: { path: { ref: source.id } }, body }))) as { id: string };
    },
    // A stream source starts a stream: a long-lived run with its own live page.
    onSuccess: (created) => navigate(source.type === "stream" ? `/streams/${created.id}` : `/runs/${created.id}`),
  });
  return (
    <form
      className="card"
      aria-label="Start a run on this source"
      onSubmit={(e) => {
        e.preventDefault();
        start.mutate(new FormData(e.currentTarget));
      }}
    >
      <h2>Start a run</h2>
      <Field id="target" label="Goal: the column to move" hint="Leave empty and lockflow picks one (and says why).">
        <input id="target" name="target" />
      </Field>
      <Field id="direction" label="Direction that is good">
        <select id="direction" name="direction" defaultValue="increase">
          <option value="increase">increase</option>
          <option value="decrease">decrease</option>
        </select>
      </Field>
      <Field id="description" label="What the goal means (optional)">
        <input id="description" name="description" maxLength={500} />
      </Field>
      <Field id="run-name" label="Run name (optional)">
        <input id="run-name" name="run-name" maxLength={200} />
      </Field>
      <Field id="rules" label="Data quality rules (optional, YAML)">
        <textarea id="rules" name="rules" rows={3} />
      </Field>
      <ErrorMessage error={start.error} />
      <Button type="submit" variant="primary" verdict={mayStartRuns(me)} disabled={start.isPending}>
        Start the run
      </Button>
    </form>
  );
}

export function SourcePage() {
  const { ref = "" } = useParams();
  const { me } = useAuth();
  const navigate = useNavigate();
  const client = useQueryClient();
  const source = useSource(ref);
  const types = useSourceTypes();
  const [editing, setEditing] = useState(false);
  const test = useMutation({
    mutationFn: async () => (await ok(api.POST("/sources/{ref}/test", { params: { path: { ref } } }))) as unknown as SourceHealth,
    onSuccess: () => void client.invalidateQueries({ queryKey: ["sources"] }),
  });
  const remove = useMutation({
    mutationFn: async () => ok(api.DELETE("/sources/{ref}", { params: { path: { ref } } })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ["sources"] });
      navigate("/sources");
    },
  });
  if (source.isPending) return <Loading what="the source" />;
  if (!source.data) return <ErrorMessage error={source.error} />;
  const view = source.data;
  const kind = types.data?.find((t) => t.type === view.type);
  const manage = mayManageSource(me, view.created_by);
  const health = test.data ?? view.last_health;
  return (
    <section>
      <p>
        <Link to="/sources">All sources</Link>
      </p>
      <h1>
        Source {view.name} <small className="muted">({view.type})</small>
      </h1>
      <StaleNotice error={source.error} what="this source" />
      <dl className="kv" data-testid="source-config">
        <div>
          <dt>Owner</dt>
          <dd>{view.created_by}</dd>
        </div>
        <div>
          <dt>Updated</dt>
          <dd>{formatTime(view.updated_at)}</dd>
        </div>
        {Object.entries(view.config)
          .filter(([, v]) => v !== null && v !== "" && !(typeof v === "object" && !Object.keys(v as object).length))
          .map(([k, v]) => (
            <div key={k}>
              <dt>{k.replace(/_/g, " ")}</dt>
              <dd>{typeof v === "object" ? JSON.stringify(v) : String(v)}</dd>
            </div>
          ))}
        <div>
          <dt>Approved contract</dt>
          <dd>{view.contract ? `${view.contract.columns.length} columns, by ${view.contract.approved_by}` : "none yet (gate 1 approves one)"}</dd>
        </div>
      </dl>
      {view.secret_fields.length > 0 && <p className="muted">Secrets ({view.secret_fields.join(", ")}) are stored encrypted and never shown.</p>}
      <div className="row">
        <Button verdict={mayStartRuns(me)} onClick={() => test.mutate()} disabled={test.isPending}>
          {test.isPending ? "Testing…" : "Test the connection"}
        </Button>
        <Button verdict={manage} onClick={() => setEditing(true)} disabled={editing || !kind}>
          Edit
        </Button>
        <ConfirmButton
          label="Delete the source"
          title={`Delete the source ${view.name}?`}
          body="Its settings, secrets and approved contract are removed. Runs already made from it stay."
          onConfirm={() => remove.mutate()}
          verdict={manage}
        />
      </div>
      <ErrorMessage error={test.error ?? remove.error ?? types.error} />
      {health && <HealthResult health={health} />}
      {editing && kind && <EditSource source={view} kind={kind} onDone={() => setEditing(false)} />}
      <StartRun source={view} />
    </section>
  );
}
