import { useState, type FormEvent } from "react";
import { useAuth } from "../auth";
import { ErrorMessage, Field } from "../components/ui";

export function LoginPage() {
  const { signIn } = useAuth();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setBusy(true);
    setError(null);
    try {
      await signIn(String(form.get("username")), String(form.get("password")));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main" className="login">
      <h1>Sign in to lockflow</h1>
      <form onSubmit={(e) => void submit(e)} className="card">
        <Field id="username" label="Username">
          <input id="username" name="username" autoComplete="username" required />
        </Field>
        <Field id="password" label="Password">
          <input id="password" name="password" type="password" autoComplete="current-password" required />
        </Field>
        <ErrorMessage error={error} />
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
