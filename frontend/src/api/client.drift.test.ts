import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// tests/api/test_ui_client.py checks openapi.json against the app; this checks the client against it.
describe("the generated client", () => {
  it("is what openapi-typescript makes of the committed openapi.json (run `make client`)", () => {
    const out = join(mkdtempSync(join(tmpdir(), "client-")), "schema.d.ts");
    execFileSync("node", ["node_modules/openapi-typescript/bin/cli.js", "openapi.json", "-o", out], { stdio: "pipe" });
    expect(readFileSync("src/api/schema.d.ts", "utf8")).toBe(readFileSync(out, "utf8"));
  });
});
