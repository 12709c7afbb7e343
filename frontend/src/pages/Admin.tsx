/** Admin: users and their roles (paged, with the total), a new user, roles changed, a user disabled
(behind a confirmation); each user's records in the audit log one click away. Other roles read why not. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, ok, page } from "../api/client";
import { useAuth } from "../auth";
import { Button, ConfirmButton, Empty, ErrorMessage, Field, Loading, StatusBadge, Pager, HeaderRow } from "../components/ui";
import { pageCount, PAGE_SIZE } from "../lib/filters";
import { formatTime } from "../lib/format";
import { isAdmin } from "../lib/roles";
import { ROLES, rolesChange, userProblems, type Role } from "../lib/users";

interface User {
  id: string;
  username: string;
  roles: Role[];
  disabled: boolean;
  created_at: string;
}

function RolePicker({ id, legend, roles, onChange }: { id: string; legend: string; roles: Role[]; onChange(r: Role[]): void }) {
  return (
    <fieldset className="row roles">
      <legend>{legend}</legend>
      {ROLES.map((role) => (
        <span key={role}>
          <input
            id={`${id}-${role}`}
            type="checkbox"
            checked={roles.includes(role)}
            onChange={(e) => onChange(e.target.checked ? [...roles, role] : roles.filter((r) => r !== role))}
          />
          <label htmlFor={`${id}-${role}`}>{role}</label>
        </span>
      ))}
    </fieldset>
  );
}

function NewUser() {
  const client = useQueryClient();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [roles, setRoles] = useState<Role[]>(["viewer"]);
  const [touched, setTouched] = useState(false);
  const [done, setDone] = useState("");
  const problems = userProblems({ username, password, roles });
  const create = useMutation({
    mutationFn: async () => ok(api.POST("/auth/users", { body: { username, password, roles } })),
    onSuccess: async () => {
      setDone(`User ${username} created.`);
      setUsername("");
      setPassword("");
      setRoles(["viewer"]);
      setTouched(false);
      await client.invalidateQueries({ queryKey: ["users"] });
    },
  });
  function submit(event: FormEvent) {
    event.preventDefault();
    setTouched(true);
    setDone("");
    if (!Object.keys(problems).length) create.mutate();
  }
  const shown = touched ? problems : {};
  return (
    <form className="card" aria-label="New user" onSubmit={submit} noValidate>
      <h2>New user</h2>
      <Field id="new-username" label="Username">
        <input id="new-username" autoComplete="off" value={username} onChange={(e) => setUsername(e.target.value)} aria-invalid={!!shown.username} />
      </Field>
      {shown.username && <p className="error">Username {shown.username}.</p>}
      <Field id="new-password" label="Initial password" hint="12 to 128 characters; they change it after signing in.">
        <input id="new-password" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} aria-invalid={!!shown.password} />
      </Field>
      {shown.password && <p className="error">Password {shown.password}.</p>}
      <RolePicker id="new-role" legend="Roles" roles={roles} onChange={setRoles} />
      {shown.roles && <p className="error">Roles: {shown.roles}.</p>}
      <ErrorMessage error={create.error} />
      {done && (
        <p role="status" className="ok">
          {done}
        </p>
      )}
      <Button type="submit" variant="primary" disabled={create.isPending}>
        Create the user
      </Button>
    </form>
  );
}

function UserRow({ user, me }: { user: User; me: string }) {
  const client = useQueryClient();
  const [roles, setRoles] = useState<Role[]>(user.roles);
  const change = rolesChange(user.roles, roles);
  const refresh = () => client.invalidateQueries({ queryKey: ["users"] });
  const save = useMutation({
    mutationFn: async () => ok(api.PUT("/auth/users/{username}/roles", { params: { path: { username: user.username } }, body: { roles } })),
    onSuccess: refresh,
  });
  const disable = useMutation({
    mutationFn: async () => ok(api.POST("/auth/users/{username}/disable", { params: { path: { username: user.username } } })),
    onSuccess: refresh,
  });
  const self = user.username === me;
  return (
    <tr data-testid={`user-${user.username}`}>
      <td>
        {user.username}
        {self && <small className="muted"> (you)</small>}
      </td>
      <td>{user.disabled ? <StatusBadge state="disabled" /> : <StatusBadge state="active" />}</td>
      <td>
        <RolePicker id={`roles-${user.username}`} legend={`Roles of ${user.username}`} roles={roles} onChange={setRoles} />
        {change.problem && <small className="error">{change.problem}</small>}
        <ErrorMessage error={save.error ?? disable.error} />
      </td>
      <td>{formatTime(user.created_at)}</td>
      <td>
        <div className="row">
          <Button
            onClick={() => save.mutate()}
            disabled={!change.changed || !!change.problem || save.isPending || user.disabled}
            aria-label={`Save roles of ${user.username}`}
          >
            Save roles
          </Button>
          {user.disabled ? (
            <span className="muted">disabled</span>
          ) : (
            <ConfirmButton
              label={`Disable ${user.username}`}
              title={`Disable ${user.username}?`}
              body="They can no longer sign in; every session and token of theirs ends at once. This cannot be undone here."
              onConfirm={() => disable.mutate()}
              verdict={self ? { allowed: false, reason: "You cannot disable yourself." } : undefined}
            />
          )}
          <Link to={`/admin/audit?actor=${encodeURIComponent(user.username)}`}>Their audit records</Link>
        </div>
      </td>
    </tr>
  );
}

export function AdminPage() {
  const { me } = useAuth();
  const admin = isAdmin(me);
  const [params, setParams] = useSearchParams();
  const current = Math.max(1, Number(params.get("page") ?? "1") || 1);
  const users = useQuery({
    queryKey: ["users", current],
    enabled: admin,
    placeholderData: (previous) => previous,
    queryFn: async () => {
      const found = await page(api.GET("/auth/users", { params: { query: { limit: PAGE_SIZE, offset: (current - 1) * PAGE_SIZE } } }));
      return { rows: found.rows as unknown as User[], total: found.total };
    },
  });
  if (!admin) {
    return (
      <section>
        <h1>Users and roles</h1>
        <p role="alert" data-testid="not-admin">
          Only an admin may manage users and roles or read the audit log; you are {me?.roles.join(", ")}. Ask an admin to change your roles.
        </p>
      </section>
    );
  }
  const total = users.data?.total ?? 0;
  const pages = pageCount(total);
  const go = (n: number) => setParams(n > 1 ? { page: String(n) } : {});
  return (
    <section>
      <div className="row spread">
        <h1>Users and roles</h1>
        <Link to="/admin/audit">The audit log</Link>
      </div>
      <p className="muted">A change of roles, or disabling a user, takes effect at once: their earlier tokens are refused.</p>
      <ErrorMessage error={users.error} />
      {users.isPending ? (
        <Loading what="the users" />
      ) : !total ? (
        <Empty>No users.</Empty>
      ) : (
        <>
          <table data-testid="users">
            <caption className="sr-only">Users by name</caption>
            <thead>
              <HeaderRow columns={["User", "State", "Roles", "Created", "Actions"]} />
            </thead>
            <tbody>
              {(users.data?.rows ?? []).map((u) => (
                <UserRow key={`${u.id}-${u.roles.join()}-${u.disabled}`} user={u} me={me?.username ?? ""} />
              ))}
            </tbody>
          </table>
          <Pager page={current} pages={pages} total={total} noun="user" go={go} />
        </>
      )}
      <NewUser />
    </section>
  );
}
