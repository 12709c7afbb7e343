import { describe, expect, it } from "vitest";
import { between, formatBytes, formatDuration, formatEstimate, formatNumber, formatShare, gateLabel, runState } from "./format";
import { messageFor } from "../api/errors";
import { retryDelay } from "../api/events";
import { refreshDelay } from "../api/session";

describe("formatters", () => {
  it("formats durations from ms to hours", () => {
    expect(formatDuration(250)).toBe("250 ms");
    expect(formatDuration(2500)).toBe("2.5 s");
    expect(formatDuration(42_000)).toBe("42 s");
    expect(formatDuration(125_000)).toBe("2 min 5 s");
    expect(formatDuration(3_720_000)).toBe("1 h 2 min");
    expect(formatDuration(null)).toBe("–");
    expect(formatDuration(-1)).toBe("–");
  });
  it("reads the server's zone-less times as UTC", () => {
    expect(between("2026-12-01T20:47:16.637", "2026-12-01T20:47:16.806")).toBe(169);
    expect(between("2026-12-01T20:00:00+00:00", "2026-12-01T20:00:01Z")).toBe(1000);
    expect(between(null, "2026-12-01T20:00:01Z")).toBeNull();
  });
  it("formats sizes, shares and numbers", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(200 * 1024 * 1024)).toBe("200 MiB");
    expect(formatShare(0.003229)).toBe("0.32%");
    expect(formatShare(0.25)).toBe("25.0%");
    expect(formatNumber(4025)).toBe("4,025");
    expect(formatNumber(0.81226)).toBe("0.812");
    expect(formatNumber(1.39e-153)).toBe("1.39e-153");
    expect(formatNumber(null)).toBe("–");
  });
  it("names states as people say them", () => {
    expect(runState({ status: "running", open_gate: "quality_review" })).toBe("waiting for a decision");
    expect(runState({ status: "waiting", open_gate: "source_review" })).toBe("waiting for a decision");
    expect(runState({ status: "decided", open_gate: null })).toBe("decided, being applied");
    expect(runState({ status: "running", open_gate: null })).toBe("running");
    expect(gateLabel("action_selection")).toBe("Gate 5 · Action selection");
  });
});

describe("error messages", () => {
  it("gives each status a clear sentence", () => {
    expect(messageFor(401, "")).toMatch(/sign in again/);
    expect(messageFor(403, "approver only")).toMatch(/role does not allow this: approver only/);
    expect(messageFor(404, "no run x")).toMatch(/Not found/);
    expect(messageFor(409, "gate already decided")).toMatch(/changed this first: gate already decided/);
    expect(messageFor(422, "params.top_n: too big")).toMatch(/check the input: params.top_n/);
    expect(messageFor(429, "", "7")).toBe("Too many requests; try again in 7 s");
    expect(messageFor(500, "")).toMatch(/server failed \(500\)/);
  });
  it("refreshes tokens before they lapse", () => {
    expect(refreshDelay(900)).toBe(870_000);
    expect(refreshDelay(30)).toBe(15_000);
    expect(refreshDelay(6)).toBe(5_000);
  });
  it("backs off reconnecting a dropped event stream: 1 s, doubling, at most 30 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 40].map(retryDelay)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });
});

describe("formatEstimate", () => {
  it("shows an exact count as it is", () => {
    expect(formatEstimate(1234, 0, true)).toBe("1,234");
  });
  it("shows an estimate with its margin", () => {
    expect(formatEstimate(1234, 56, false)).toBe("≈ 1,234 ± 56");
  });
  it("falls back to the figure when no margin came", () => {
    expect(formatEstimate(7, undefined, false)).toBe("7");
  });
});
