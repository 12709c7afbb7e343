/** The sources, admin and monitoring pages as people use them, against a real `lockflow up`. */
import { expect, test } from "@playwright/test";
import { accessible, ADMIN_PASSWORD, SHOTS, signIn } from "./helpers";

const SOURCE_FILE = process.env.LOCKFLOW_SOURCE_FILE ?? "";
const SECRET = "tok-never-shown-4711";

test("an analyst adds a file source, tests and edits it, starts a run on it; an API source's token stays hidden", async ({ browser }) => {
  expect(SOURCE_FILE, "LOCKFLOW_SOURCE_FILE names a file in an allowed folder").not.toBe("");
  const ana = await signIn(browser, "ana");
  await ana.getByRole("link", { name: "Sources", exact: true }).click();
  await expect(ana.getByText("No sources registered yet.")).toBeVisible();
  await accessible(ana, "empty sources list");
  await ana.getByRole("button", { name: "Add a source" }).click();

  // The form is the file type's schema; a missing required field and a bad name are refused in the browser.
  await expect(ana.getByLabel("Type")).toHaveValue("file");
  await ana.getByLabel("Name").fill("bad name");
  await ana.getByRole("button", { name: "Add the source" }).click();
  await expect(ana.getByText(/Name must start with a letter/)).toBeVisible();
  await expect(ana.getByText("is required")).toBeVisible();
  await accessible(ana, "new source with problems");
  await ana.getByLabel("Name").fill("sales");
  await ana.getByLabel("Path").fill(SOURCE_FILE);
  await ana.getByLabel("Format").selectOption("csv");
  await ana.screenshot({ path: `${SHOTS}/source-new.png`, fullPage: true });
  await ana.getByRole("button", { name: "Add the source" }).click();
  await expect(ana.getByRole("heading", { name: /Source sales/ })).toBeVisible();

  // Test the connection: the ingest service's check, step by step.
  await ana.getByRole("button", { name: "Test the connection" }).click();
  await expect(ana.getByTestId("health")).toContainText("OK: reachable, authorised and readable", { timeout: 60_000 });
  await accessible(ana, "source with its test result");

  // Edit: a bad delimiter is refused in the browser, a good one saved and shown.
  await ana.getByRole("button", { name: "Edit" }).click();
  const edit = ana.getByRole("form", { name: "Edit the source" });
  await expect(edit.getByLabel("Path")).not.toHaveValue("");
  await edit.getByLabel("Delimiter").fill(";;");
  await expect(edit.getByText("must have at most 1 characters")).toBeVisible();
  await expect(edit.getByRole("button", { name: "Save the changes" })).toBeDisabled();
  await edit.getByLabel("Delimiter").fill(",");
  await accessible(ana, "editing a source");
  await ana.screenshot({ path: `${SHOTS}/source-edit.png`, fullPage: true });
  await edit.getByRole("button", { name: "Save the changes" }).click();
  await expect(edit).toHaveCount(0);
  await expect(ana.getByTestId("source-config")).toContainText("delimiter");
  await ana.getByRole("button", { name: "Test the connection" }).click();
  await expect(ana.getByTestId("health")).toContainText("OK", { timeout: 60_000 });

  // An API source with a bearer token: the token is sent once and never shown again, not even on edit.
  await ana.getByRole("link", { name: "All sources" }).click();
  await ana.getByRole("button", { name: "Add a source" }).click();
  await ana.getByLabel("Name").fill("crm-api");
  await ana.getByLabel("Type").selectOption("api");
  await ana.getByLabel("Url", { exact: true }).fill("ftp://crm.example.org/items");
  await ana.getByRole("button", { name: "Add the source" }).click();
  await expect(ana.locator("small.error", { hasText: "must be an http:// or https:// URL" })).toBeVisible(); // the server's 422, on its field
  await ana.getByLabel("Url", { exact: true }).fill("https://crm.example.org/items");
  await ana.getByLabel("Type", { exact: true }).nth(1).selectOption("bearer");
  await ana.getByLabel("Token").fill(SECRET);
  await expect(ana.getByLabel("Token")).toHaveAttribute("type", "password");
  await accessible(ana, "new API source");
  await ana.getByRole("button", { name: "Add the source" }).click();
  await expect(ana.getByRole("heading", { name: /Source crm-api/ })).toBeVisible();
  await expect(ana.getByText(/Secrets \(auth\.token\) are stored encrypted/)).toBeVisible();
  expect(await ana.content()).not.toContain(SECRET);
  await ana.getByRole("button", { name: "Edit" }).click();
  await expect(ana.getByLabel("Token")).toHaveValue("");
  await expect(ana.getByLabel("Token")).toHaveAttribute("placeholder", /stored; leave empty to keep/);
  await ana.getByRole("button", { name: "Cancel" }).click();

  // Delete behind a confirmation: Cancel keeps it, the dialog's button removes it.
  await ana.getByRole("button", { name: "Delete the source" }).click();
  await expect(ana.getByRole("dialog")).toContainText("Delete the source crm-api?");
  await accessible(ana, "delete confirmation");
  await ana.getByRole("button", { name: "Cancel" }).click();
  await expect(ana.getByRole("heading", { name: /Source crm-api/ })).toBeVisible();
  await ana.getByRole("button", { name: "Delete the source" }).click();
  await ana.getByRole("dialog").getByRole("button", { name: "Delete the source" }).click();
  await expect(ana).toHaveURL(/\/ui\/sources$/);
  const list = ana.getByTestId("sources");
  await expect(list).toContainText("sales");
  await expect(list).not.toContainText("crm-api");
  await expect(ana.getByText("Page 1 of 1 · 1 source")).toBeVisible();
  await accessible(ana, "sources list");
  await ana.screenshot({ path: `${SHOTS}/sources.png`, fullPage: true });

  // The monitoring page, open in a second session of the analyst before the run starts, shows it live.
  const watch = await signIn(browser, "ana");
  await watch.getByRole("link", { name: "Monitoring" }).click();
  await expect(watch.getByText("No run is active.")).toBeVisible();
  await accessible(watch, "monitoring, nothing active");

  // Start a run from the source, with a goal and a rule: gate 1 opens on it.
  await list.getByRole("link", { name: "sales" }).click();
  const start = ana.getByRole("form", { name: "Start a run on this source" });
  await start.getByLabel(/Goal: the column/).fill("revenue");
  await start.getByLabel("Run name (optional)").fill("sales from the registry");
  await start.getByLabel(/Data quality rules/).fill("rules:\n  - {column: revenue, not_null: true}\n");
  await start.getByRole("button", { name: "Start the run" }).click();
  await expect(ana).toHaveURL(/\/ui\/runs\/[0-9a-f-]+$/);
  const runUrl = ana.url();
  await expect(ana.getByTestId("gate-source_review")).toBeVisible({ timeout: 90_000 });

  // Without a reload: the run is active, its gate waits (with its age and deadline), ingest has a duration.
  await expect(watch.getByTestId("active-runs")).toContainText("sales from the registry", { timeout: 30_000 });
  const waiting = watch.getByTestId("open-decisions");
  await expect(waiting).toContainText("Gate 1");
  await expect(waiting).toContainText(/due in 23 h/);
  await expect(watch.getByTestId("runs-by-state")).toContainText(/waiting|running/);
  await expect(watch.getByTestId("stage-durations")).toContainText("ingest");
  await accessible(watch, "monitoring with a run");
  await watch.screenshot({ path: `${SHOTS}/monitoring.png`, fullPage: true });

  // The inbox shows the same gate with its deadline.
  await ana.getByRole("link", { name: /Inbox/ }).click();
  await expect(ana.getByTestId("inbox")).toContainText(/due in 23 h/);
  await accessible(ana, "inbox with a deadline");

  // Gate 1 approved: quality assesses the data; its score shows on the monitoring page, charted.
  await ana.goto(runUrl);
  await ana.getByTestId("gate-source_review").getByRole("button", { name: "Approve the source" }).click();
  await expect(ana.getByTestId("gate-quality_review")).toBeVisible({ timeout: 90_000 });
  await expect(watch.getByTestId("quality")).toContainText("sales from the registry", { timeout: 30_000 });
  await expect(watch.getByRole("figure", { name: "Quality score over runs" }).locator("svg").first()).toBeVisible({ timeout: 30_000 });
  await expect(watch.getByText("could not be drawn")).toHaveCount(0);
  await expect(watch.getByTestId("stage-durations")).toContainText("quality");
  await accessible(watch, "monitoring with a quality score");
  await watch.screenshot({ path: `${SHOTS}/monitoring-quality.png`, fullPage: true });
  // A narrow window: the page still fits (no wider than the window) and stays accessible.
  await watch.setViewportSize({ width: 400, height: 800 });
  await expect(watch.getByTestId("quality")).toBeVisible();
  expect(await watch.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(400);
  await accessible(watch, "monitoring, narrow");
  await watch.screenshot({ path: `${SHOTS}/monitoring-narrow.png`, fullPage: true });

  // A viewer sees the source but may not add, edit, test or delete one: each says why.
  const vic = await signIn(browser, "vic");
  await vic.goto("/ui/sources");
  await expect(vic.getByRole("button", { name: "Add a source" })).toBeDisabled();
  await expect(vic.getByText("Only an analyst or approver may start runs.")).toBeVisible();
});

test("an admin creates a user and changes their roles; a viewer sees why there is nothing to do", async ({ browser }) => {
  const admin = await signIn(browser, "admin", ADMIN_PASSWORD);
  await admin.getByRole("link", { name: "Admin", exact: true }).click();
  const users = admin.getByTestId("users");
  await expect(users).toContainText("ana");
  await accessible(admin, "users");

  // A new user: checked in the browser first, then created.
  const form = admin.getByRole("form", { name: "New user" });
  await form.getByLabel("Username").fill("dee");
  await form.getByLabel("Initial password").fill("short");
  await form.getByRole("button", { name: "Create the user" }).click();
  await expect(form.getByText("Password needs at least 12 characters.")).toBeVisible();
  await form.getByLabel("Initial password").fill("a long enough password");
  await form.getByLabel("analyst").check();
  await form.getByRole("button", { name: "Create the user" }).click();
  await expect(form.getByRole("status")).toHaveText("User dee created.");
  const dee = admin.getByTestId("user-dee");
  await expect(dee.getByLabel("analyst")).toBeChecked();
  await expect(dee.getByLabel("viewer")).toBeChecked();

  // Change the roles: add approver, drop viewer; the list (from the server) shows the new set.
  await dee.getByLabel("approver").check();
  await dee.getByLabel("viewer").uncheck();
  await dee.getByRole("button", { name: "Save roles of dee" }).click();
  await expect(dee.getByRole("button", { name: "Save roles of dee" })).toBeDisabled();
  await admin.reload();
  await expect(admin.getByTestId("user-dee").getByLabel("approver")).toBeChecked();
  await expect(admin.getByTestId("user-dee").getByLabel("viewer")).not.toBeChecked();
  await accessible(admin, "users after a change");
  await admin.screenshot({ path: `${SHOTS}/admin-users.png`, fullPage: true });

  // The new user signs in with their roles.
  const deeSession = await signIn(browser, "dee", "a long enough password");
  await expect(deeSession.getByTestId("whoami")).toContainText("analyst, approver");
  await deeSession.context().close();

  // Disable behind a confirmation; the admin may not disable themselves (the reason is shown).
  await expect(admin.getByTestId("user-admin").getByText("You cannot disable yourself.")).toBeVisible();
  await admin.getByTestId("user-dee").getByRole("button", { name: "Disable dee" }).click();
  await expect(admin.getByRole("dialog")).toContainText("Disable dee?");
  await accessible(admin, "disable confirmation");
  await admin.getByRole("dialog").getByRole("button", { name: "Disable dee" }).click();
  await expect(admin.getByTestId("user-dee")).toContainText("disabled");

  // The audit log has the changes, one click from the user's row.
  await admin.getByTestId("user-dee").getByRole("link", { name: "Their audit records" }).click();
  await expect(admin).toHaveURL(/\/ui\/admin\/audit\?actor=dee/);
  await admin.getByLabel("Actor").fill("admin");
  await expect(admin.getByRole("table")).toContainText("roles_changed");
  await expect(admin.getByRole("table")).toContainText("user_disabled");

  // A viewer opens the admin page: the reason, and no admin action at all.
  const vic = await signIn(browser, "vic");
  await vic.getByRole("link", { name: "Admin", exact: true }).click();
  await expect(vic.getByTestId("not-admin")).toContainText("Only an admin may manage users and roles");
  await expect(vic.getByRole("button", { name: /Create the user|Save roles|Disable/ })).toHaveCount(0);
  await expect(vic.getByRole("link", { name: "Audit" })).toHaveCount(0);
  await accessible(vic, "admin page as a viewer");
});
