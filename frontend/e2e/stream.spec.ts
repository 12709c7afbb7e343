/** A live stream in the browser: tests/e2e/test_stream_distributed.py runs it beside its producer.

The page opens on the windows closed so far, says so (LOCKFLOW_STREAM_READY, a file the test waits for),
and the window the producer then closes arrives over the event stream, without a reload. */
import { writeFileSync } from "node:fs";
import { expect, test } from "@playwright/test";
import { accessible, SHOTS, signIn } from "./helpers";

const STREAM_ID = process.env.LOCKFLOW_STREAM_ID ?? "";
const READY = process.env.LOCKFLOW_STREAM_READY ?? "";
// The start of the window the producer closes once the page is open, as the table shows it.
const NEXT_WINDOW = process.env.LOCKFLOW_STREAM_NEXT_WINDOW ?? "";

test("the live stream page shows each window as it closes", async ({ browser }) => {
  expect(STREAM_ID && READY && NEXT_WINDOW, "LOCKFLOW_STREAM_ID, _READY and _NEXT_WINDOW are set").toBeTruthy();
  const ana = await signIn(browser, "ana");
  await ana.goto(`/ui/streams/${encodeURIComponent(STREAM_ID)}`);
  const view = ana.getByTestId("stream-view");
  const rows = view.getByRole("table", { name: "Latest windows" }).locator("tbody tr");
  await expect(rows.first()).toBeVisible();
  await expect(view.getByLabel("Totals")).toContainText("records");
  await expect(view).toContainText("policy v1");
  await expect(rows.filter({ hasText: NEXT_WINDOW })).toHaveCount(0);
  const before = await rows.count();
  await accessible(ana, "the live stream");
  writeFileSync(READY, `${before}\n`);
  // The producer now closes one more window: its row comes over the event stream.
  await expect(rows.filter({ hasText: NEXT_WINDOW })).toHaveCount(1, { timeout: 90_000 });
  await expect(rows.first()).toContainText(NEXT_WINDOW); // the newest first
  await ana.screenshot({ path: `${SHOTS}/stream.png`, fullPage: true });
});
