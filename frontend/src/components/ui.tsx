/** Small accessible building blocks: buttons that say why they are disabled, messages, confirmations. */
import * as Dialog from "@radix-ui/react-dialog";
import { useId, useState, type ButtonHTMLAttributes, type ReactNode } from "react";
import type { Verdict } from "../lib/roles";

type ButtonProps = ButtonHTMLAttributes<HTMLButtonElement> & {
  verdict?: Verdict;
  variant?: "primary" | "secondary" | "danger";
};

/** A button; when the role forbids it, disabled with the reason beside it (never a silent no-op). */
export function Button({ verdict, variant = "secondary", children, disabled, ...rest }: ButtonProps) {
  const reasonId = useId();
  const forbidden = verdict && !verdict.allowed;
  return (
    <span className="button-wrap">
      <button
        type="button"
        className={`btn btn-${variant}`}
        disabled={disabled || forbidden}
        aria-describedby={forbidden ? reasonId : undefined}
        {...rest}
      >
        {children}
      </button>
      {forbidden && (
        <span id={reasonId} className="reason">
          {verdict.reason}
        </span>
      )}
    </span>
  );
}

export function ErrorMessage({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof Error ? error.message : String(error);
  return (
    <p role="alert" className="error">
      {text}
    </p>
  );
}

/** A refresh that failed over data already shown: the data stays, with a note that it may be out of date. */
export function StaleNotice({ error, what }: { error: unknown; what: string }) {
  if (!error) return null;
  const text = error instanceof Error ? error.message : String(error);
  return (
    <p role="status" className="muted" data-testid="stale-notice">
      Could not refresh {what} ({text}); showing it as last loaded.
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" className="muted">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="muted empty">{children}</p>;
}

export function StatusBadge({ state }: { state: string }) {
  return <span className={`badge state-${state.replace(/\s+/g, "-")}`}>{state}</span>;
}

/** A destructive action behind a confirmation dialog (Radix: focus trapped, Escape closes). */
export function ConfirmButton({
  label,
  title,
  body,
  onConfirm,
  verdict,
}: {
  label: string;
  title: string;
  body: string;
  onConfirm(): void;
  verdict?: Verdict;
}) {
  const [open, setOpen] = useState(false);
  if (verdict && !verdict.allowed) return <Button verdict={verdict} variant="danger">{label}</Button>;
  return (
    <Dialog.Root open={open} onOpenChange={setOpen}>
      <Dialog.Trigger asChild>
        <button type="button" className="btn btn-danger">
          {label}
        </button>
      </Dialog.Trigger>
      <Dialog.Portal>
        <Dialog.Overlay className="overlay" />
        <Dialog.Content className="dialog">
          <Dialog.Title>{title}</Dialog.Title>
          <Dialog.Description>{body}</Dialog.Description>
          <div className="row">
            <Dialog.Close asChild>
              <button type="button" className="btn btn-secondary">
                Cancel
              </button>
            </Dialog.Close>
            <button
              type="button"
              className="btn btn-danger"
              onClick={() => {
                setOpen(false);
                onConfirm();
              }}
            >
              {label}
            </button>
          </div>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

export function Field({ label, hint, children, id }: { label: string; hint?: string; children: ReactNode; id: string }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && <small className="muted">{hint}</small>}
    </div>
  );
}

/** Previous / next over a paged list, with where we are and how many there are in all. */
export function Pager({ page, pages, total, noun, go }: { page: number; pages: number; total: number; noun: string; go: (page: number) => void }) {
  return (
    <nav className="row" aria-label="Pages">
      <button type="button" className="btn btn-secondary" disabled={page <= 1} onClick={() => go(page - 1)}>
        Previous
      </button>
      <span>
        Page {page} of {pages} · {total} {noun}
        {total === 1 ? "" : "s"}
      </span>
      <button type="button" className="btn btn-secondary" disabled={page >= pages} onClick={() => go(page + 1)}>
        Next
      </button>
    </nav>
  );
}

/** A table's header row: one column header per name. */
export function HeaderRow({ columns }: { columns: string[] }) {
  return (
    <tr>
      {columns.map((h) => (
        <th scope="col" key={h}>
          {h}
        </th>
      ))}
    </tr>
  );
}
