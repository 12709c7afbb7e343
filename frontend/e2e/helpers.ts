/** What the Playwright specs share: signing in, the axe-core check, where screenshots go. */
import { expect, type Browser, type Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { mkdirSync } from "node:fs";

export const PASSWORD = process.env.LOCKFLOW_PASSWORD ?? "correct horse battery staple";
export const ADMIN_PASSWORD = process.env.LOCKFLOW_ADMIN_PASSWORD ?? "";
export const SHOTS = "artifacts/screenshots";
mkdirSync(SHOTS, { recursive: true });

export async function signIn(browser: Browser, username: string, password = PASSWORD): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto("/ui/");
  await expect(page).toHaveURL(/\/ui\/login/);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("whoami")).toContainText(username);
  return page;
}

/** No WCAG 2.1 A/AA violation on the page as it stands. */
export async function accessible(page: Page, name: string): Promise<void> {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const found = result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  expect(found, `axe on ${name}`).toEqual([]);
}
