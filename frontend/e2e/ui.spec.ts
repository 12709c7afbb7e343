/** The whole run in the browser against a real `lockflow up`: five gates, two people, roles, live updates. */
import { expect, test, type Page } from "@playwright/test";
import { mkdirSync, writeFileSync } from "node:fs";
import { ADMIN_PASSWORD, PASSWORD, accessible, signIn } from "./helpers";

const SAMPLE = process.env.LOCKFLOW_SAMPLE ?? "";
// A run against the distributed services keeps its pictures and figures apart (LOCKFLOW_SHOTS_PREFIX).
const PREFIX = process.env.LOCKFLOW_SHOTS_PREFIX ?? "";
const SHOTS = `artifacts/screenshots${PREFIX ? `/${PREFIX.replace(/-$/, "")}` : ""}`;
mkdirSync(SHOTS, { recursive: true });
const metrics: Record<string, number> = {};

const started = Date.now();
function mark(what: string): void {
  console.log(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
}

async function gate(page: Page, name: string) {
  mark(`waiting for ${name}`);
  const panel = page.getByTestId(`gate-${name}`);
  await expect(panel).toBeVisible({ timeout: 90_000 });
  return panel;
}

test("an analyst takes a run through five gates, an approver chooses the plan, the report opens", async ({ browser }) => {
  expect(SAMPLE, "LOCKFLOW_SAMPLE names the file to upload").not.toBe("");
  const analystSince = Date.now();
  const analyst = await signIn(browser, "ana");
  await accessible(analyst, "runs list");
  // The approver watches the inbox from the start: gate 5 must show up there without a reload.
  const approver = await signIn(browser, "apo");
  await approver.getByRole("link", { name: /Inbox/ }).click();
  await expect(approver.getByText("Nothing waits for you.")).toBeVisible();
  await accessible(approver, "empty inbox");

  // Start a run by upload.
  await analyst.getByRole("button", { name: "Start a run" }).click();
  await expect(analyst.getByText(/At most 200 MiB/)).toBeVisible();
  await accessible(analyst, "new run");
  await analyst.getByLabel(/Data file/).setInputFiles(SAMPLE);
  await analyst.getByLabel(/Goal: the column/).fill("revenue");
  await analyst.getByRole("button", { name: "Upload and start" }).click();
  await expect(analyst).toHaveURL(/\/ui\/runs\/[0-9a-f-]+$/);
  const runUrl = analyst.url();

  // Gate 1: the inferred schema; approve. The run view's time to interactive is measured on a fresh load.
  await gate(analyst, "source_review");
  await analyst.goto(runUrl);
  const panel1 = await gate(analyst, "source_review");
  metrics.run_view_tti_ms = await analyst.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming | undefined;
    return Math.round(performance.now() - (nav?.startTime ?? 0));
  });
  metrics.run_view_dom_interactive_ms = await analyst.evaluate(() => Math.round((performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).domInteractive));
  await expect(panel1.getByRole("table", { name: "Inferred schema" })).toContainText("revenue");
  await accessible(analyst, "gate 1");
  await analyst.screenshot({ path: `${SHOTS}/gate1.png`, fullPage: true });
  await panel1.getByRole("button", { name: "Approve the source" }).click();

  // Gate 2: pick the first resolution of two findings, preview, then apply.
  const panel2 = await gate(analyst, "quality_review");
  const selects = panel2.getByRole("combobox", { name: /Resolution for/ });
  for (const index of [0, 1]) {
    const select = selects.nth(index);
    const first = await select.locator("option").nth(1).getAttribute("value");
    await select.selectOption(first ?? "");
  }
  await panel2.getByTestId("preview").click();
  const preview = analyst.getByTestId("preview-result");
  await expect(preview).toContainText("nothing is applied yet");
  await expect(preview.getByRole("table", { name: "Statistics before and after" })).toBeVisible();
  // The quality stage's own charts (GET /runs/{id}/charts) and the preview's before/after histograms
  // (its answer's `charts`) are drawn as SVG from their Vega-Lite specs.
  await expect(panel2.getByRole("region", { name: "Charts" }).locator("figure svg").first()).toBeVisible({ timeout: 30_000 });
  await expect(preview.getByRole("region", { name: "Before and after" }).locator("figure svg").first()).toBeVisible({ timeout: 30_000 });
  await expect(analyst.getByText("could not be drawn")).toHaveCount(0);
  await accessible(analyst, "gate 2 with preview");
  await analyst.screenshot({ path: `${SHOTS}/gate2-preview.png`, fullPage: true });
  await preview.scrollIntoViewIfNeeded();
  await analyst.screenshot({ path: `${SHOTS}/gate2-preview-viewport.png` });
  await panel2.getByRole("button", { name: "Apply the chosen fixes" }).click();

  // Gate 3: a bad value is refused in the browser; then modify (a loop back to analytics), then accept.
  let panel3 = await gate(analyst, "analytics_review");
  await expect(panel3.getByRole("region", { name: "Charts" }).locator("figure svg").first()).toBeVisible({ timeout: 30_000 });
  await accessible(analyst, "gate 3");
  await analyst.screenshot({ path: `${SHOTS}/gate3.png`, fullPage: true });
  await panel3.locator("summary", { hasText: "Modify and run again" }).click();
  await panel3.getByLabel("N Clusters").fill("1");
  await expect(panel3.getByText("must be at least 2")).toBeVisible();
  await expect(panel3.getByRole("button", { name: "Modify and run again" })).toBeDisabled();
  await panel3.getByLabel("N Clusters").fill("4");
  await panel3.getByRole("button", { name: "Modify and run again" }).click();
  await expect(analyst.getByTestId("past-decisions")).toContainText("modify", { timeout: 60_000 });
  panel3 = await gate(analyst, "analytics_review");
  const compare = panel3.getByTestId("analytics-compare");
  await expect(compare).toContainText("Clusters (k)");
  await expect(compare.locator("tr", { hasText: "Clusters (k)" }).locator("td").nth(2)).toHaveText("4");
  await accessible(analyst, "gate 3 after the loop-back");
  await analyst.screenshot({ path: `${SHOTS}/gate3-after-modify.png`, fullPage: true });
  await panel3.getByRole("button", { name: "Accept the analytics" }).click();

  // Gate 4: ranked insights; accept.
  const panel4 = await gate(analyst, "insight_review");
  await expect(panel4.getByRole("table", { name: "Insights, ranked" })).toBeVisible();
  await accessible(analyst, "gate 4");
  await analyst.screenshot({ path: `${SHOTS}/gate4.png`, fullPage: true });
  await panel4.getByRole("button", { name: "Accept the insights" }).click();

  // Gate 5: the analyst may not choose (the reason is shown), and shares the run with the approvers.
  const panel5 = await gate(analyst, "action_selection");
  const choose = panel5.getByRole("button", { name: /^Choose \d+ action/ });
  await expect(choose).toBeDisabled();
  await expect(panel5.getByText(/Only approver may decide this gate/).first()).toBeVisible();
  for (const name of ["apo", "apo2", "vic"]) {
    await analyst.getByLabel("Share this run with").fill(name);
    await analyst.getByRole("button", { name: "Share", exact: true }).click();
    await expect(analyst.getByText(`Shared with ${name}.`)).toBeVisible();
  }

  // The approver's inbox shows the gate without a reload; the header badge counts it.
  await expect(approver.getByTestId("inbox")).toContainText("Gate 5", { timeout: 30_000 });
  await expect(approver.getByTestId("inbox-count")).toHaveText("1");

  // A viewer sees the gate but no enabled decide button.
  const viewer = await signIn(browser, "vic");
  await viewer.goto(runUrl);
  const viewerPanel = await gate(viewer, "action_selection");
  const buttons = viewerPanel.getByRole("button", { name: /Choose|Abort/ });
  expect(await buttons.count()).toBeGreaterThan(0);
  for (const button of await buttons.all()) await expect(button).toBeDisabled();
  await expect(viewerPanel.getByText(/you are viewer/).first()).toBeVisible();

  // Two approvers decide the same gate: the second gets a clear 409.
  const second = await signIn(browser, "apo2");
  await second.goto(runUrl);
  const secondPanel = await gate(second, "action_selection");
  // The second approver's view goes stale (no live updates reach it), as on a slow network: its click
  // then meets a gate already decided.
  await second.route(/\/runs\/[^/]+\/events|\/decisions\?|\/runs\/[^/?]+$/, (route) => route.abort());
  await approver.getByTestId("inbox").getByRole("link").first().click();
  const approverPanel = await gate(approver, "action_selection");
  await accessible(approver, "gate 5");
  const firstAction = approverPanel.getByRole("checkbox").first();
  await firstAction.check();
  await approverPanel.getByRole("button", { name: "Move act-2 up" }).click(); // keyboard-reachable reorder
  // Drag the last action (by its handle) onto the one above it, then take it back down with an arrow key.
  const items = approverPanel.getByRole("list", { name: "Recommended actions, in plan order" }).getByRole("listitem");
  const before = await items.evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-testid") ?? ""));
  expect(before.length).toBeGreaterThan(2);
  const last = before[before.length - 1] ?? "";
  const handle = approverPanel.getByTestId(last).getByRole("button", { name: /^Reorder / });
  await handle.dragTo(items.nth(before.length - 2));
  await expect(items.nth(before.length - 2)).toHaveAttribute("data-testid", last);
  await expect(approverPanel.getByTestId("reorder-said")).toHaveText(`${last.replace("action-", "")} moved to position ${before.length - 1} of ${before.length}.`);
  await handle.focus();
  await handle.press("ArrowDown");
  await expect(handle).toBeFocused();
  await expect(approverPanel.getByTestId("reorder-said")).toHaveText(`${last.replace("action-", "")} moved to position ${before.length} of ${before.length}.`);
  expect(await items.evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-testid") ?? ""))).toEqual(before);
  await approverPanel.getByRole("checkbox").nth(0).check();
  await approver.screenshot({ path: `${SHOTS}/gate5.png`, fullPage: true });
  await secondPanel.getByRole("checkbox").first().check();
  await approverPanel.getByLabel(/Rationale/).fill("the two strongest levers");
  await approverPanel.getByRole("button", { name: /^Choose \d+ action/ }).click();
  await expect(approver.getByTestId("past-decisions")).toContainText("the two strongest levers", { timeout: 60_000 });
  // A refresh that fails (its network gone) keeps what the stale page shows, saying so, choices included.
  await expect(async () => {
    await second.evaluate(() => window.dispatchEvent(new Event("visibilitychange")));
    await expect(second.getByTestId("stale-notice")).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(second.getByTestId("stale-notice")).toContainText("Could not refresh this run");
  await expect(secondPanel.getByRole("checkbox").first()).toBeChecked();
  await secondPanel.getByRole("button", { name: /^Choose \d+ action/ }).click();
  await expect(second.getByRole("alert").filter({ hasText: "Someone changed this first" })).toBeVisible();

  // The report opens for the analyst once the run completes (the live view moves by itself).
  await expect(analyst.getByRole("link", { name: "Open the report" })).toBeVisible({ timeout: 90_000 });
  await analyst.getByRole("link", { name: "Open the report" }).click();
  await expect(analyst.getByTestId("report")).toBeVisible();
  // Both chosen actions, in the order the approver set (act-2 moved above act-1).
  await expect(analyst.getByTestId("plan").locator("tbody tr")).toHaveCount(2);
  await expect(analyst.getByTestId("plan")).toContainText("marketing_spend");
  await accessible(analyst, "report");
  await analyst.screenshot({ path: `${SHOTS}/report.png`, fullPage: true });

  await analyst.goto(runUrl);
  await expect(analyst.getByTestId("past-decisions")).toContainText("apo");
  await accessible(analyst, "completed run");
  await analyst.getByRole("button", { name: /Switch to dark theme/ }).click();
  await accessible(analyst, "completed run, dark theme");
  await analyst.screenshot({ path: `${SHOTS}/run-dark.png`, fullPage: true });

  // The admin's audit page: the chain verifies and the decisions are in it.
  const admin = await signIn(browser, "admin", ADMIN_PASSWORD);
  await admin.getByRole("link", { name: "Audit" }).click();
  await expect(admin.getByTestId("chain")).toContainText("verified");
  await accessible(admin, "audit");
  // With short-lived tokens (LOCKFLOW_TOKEN_SECONDS), the analyst's session outlived its first access
  // token without signing in again: the silent refresh kept it (and the live view followed the run).
  const lifetime = Number(process.env.LOCKFLOW_TOKEN_SECONDS ?? "0");
  if (lifetime) expect(Date.now() - analystSince).toBeGreaterThan(lifetime * 1000);
  metrics.analyst_session_s = Math.round((Date.now() - analystSince) / 1000);
  writeFileSync(`artifacts/${PREFIX}metrics.json`, JSON.stringify(metrics, null, 2));
});

test("errors are clear messages: a wrong password, an unknown run, a deep link before sign-in", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto("/ui/runs/no-such-run");
  await expect(page).toHaveURL(/\/ui\/login/);
  await page.getByLabel("Username").fill("ana");
  await page.getByLabel("Password").fill("wrong password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("sign in again");
  await accessible(page, "login with an error");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  // The deep link is kept through sign-in; the unknown run is a 404 said plainly.
  await expect(page).toHaveURL(/\/ui\/runs\/no-such-run/);
  await expect(page.getByRole("alert")).toContainText("Not found");
  // A narrow window: the list still fits and stays accessible; the first Tab reaches the skip link.
  await page.setViewportSize({ width: 400, height: 800 });
  await page.goto("/ui/?status=completed");
  await expect(page.getByRole("button", { name: "Completed", exact: true })).toHaveAttribute("aria-pressed", "true");
  await accessible(page, "runs list, narrow, filtered");
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.screenshot({ path: `${SHOTS}/runs-narrow.png`, fullPage: true });
});
