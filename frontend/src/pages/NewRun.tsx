/** Start a run by upload: the size limit shown up front, a progress bar while the bytes go up. */
import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { accessToken } from "../api/session";
import { ApiError, detailOf } from "../api/errors";
import { useAuth } from "../auth";
import { Button, ErrorMessage, Field } from "../components/ui";
import { formatBytes } from "../lib/format";
import { mayStartRuns } from "../lib/roles";

interface UiConfig {
  max_upload_bytes: number;
}

/** POST the form with XMLHttpRequest: fetch cannot report upload progress. */
function upload(form: FormData, onProgress: (share: number) => void): Promise<{ id: string; target_picked: string | null }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/runs/upload");
    xhr.setRequestHeader("Authorization", `Bearer ${accessToken() ?? ""}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body: unknown = xhr.responseText;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON: keep the text */
      }
      if (xhr.status === 201) resolve(body as { id: string; target_picked: string | null });
      else reject(new ApiError(xhr.status, detailOf(body), xhr.getResponseHeader("Retry-After")));
    };
    xhr.onerror = () => reject(new Error("The upload could not reach the server."));
    xhr.send(form);
  });
}

export function NewRunPage() {
  const { me } = useAuth();
  const navigate = useNavigate();
  const config = useQuery({ queryKey: ["ui-config"], queryFn: async () => (await (await fetch("/ui/config.json")).json()) as UiConfig });
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const limit = config.data?.max_upload_bytes;

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const file = form.get("file");
    if (!(file instanceof File) || !file.size) return setError(new Error("Choose a file to upload."));
    if (limit && file.size > limit) return setError(new Error(`The file is ${formatBytes(file.size)}; the limit is ${formatBytes(limit)}.`));
    for (const key of ["target", "name", "rules"]) if (!String(form.get(key) ?? "").trim()) form.delete(key);
    setError(null);
    setProgress(0);
    try {
      const created = await upload(form, setProgress);
      navigate(`/runs/${created.id}`);
    } catch (failure) {
      setError(failure);
      setProgress(null);
    }
  }

  return (
    <section>
      <h1>Start a run</h1>
      <p>
        Upload a file below, or <Link to="/sources">start from a registered source</Link> (a file, an API, a database or S3).
      </p>
      <form className="card" onSubmit={(e) => void submit(e)}>
        <Field id="file" label="Data file (CSV, JSON lines, Parquet)" hint={limit ? `At most ${formatBytes(limit)}.` : undefined}>
          <input id="file" name="file" type="file" accept=".csv,.jsonl,.json,.parquet,.xlsx" required />
        </Field>
        <Field id="target" label="Goal: the column to move" hint="Leave empty and lockflow picks one (and says why).">
          <input id="target" name="target" />
        </Field>
        <Field id="direction" label="Direction that is good">
          <select id="direction" name="direction" defaultValue="increase">
            <option value="increase">increase</option>
            <option value="decrease">decrease</option>
          </select>
        </Field>
        <Field id="name" label="Run name (optional)">
          <input id="name" name="name" maxLength={200} />
        </Field>
        <Field id="rules" label="Data quality rules (optional, YAML)">
          <textarea id="rules" name="rules" rows={3} />
        </Field>
        {progress !== null && (
          <div>
            <label htmlFor="progress">Uploading</label>
            <progress id="progress" max={1} value={progress} aria-valuetext={`${Math.round(progress * 100)}%`} />
          </div>
        )}
        <ErrorMessage error={error} />
        <Button type="submit" variant="primary" verdict={mayStartRuns(me)} disabled={progress !== null}>
          Upload and start
        </Button>
      </form>
    </section>
  );
}
