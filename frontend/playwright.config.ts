import { defineConfig } from "@playwright/test";

// Run by tests/e2e/test_ui.py against a real `lockflow up` it started (LOCKFLOW_URL); Debian's chromium,
// since no browser download works here. One worker: the machine has two cores.
export default defineConfig({
  testDir: "e2e",
  workers: 1,
  retries: 0,
  timeout: 420_000,
  expect: { timeout: 30_000 },
  outputDir: "artifacts/test-results",
  reporter: [["list"]],
  use: {
    baseURL: process.env.LOCKFLOW_URL ?? "http://127.0.0.1:8000",
    viewport: { width: 1280, height: 720 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    },
    trace: "retain-on-failure",
  },
});
