import { describe, expect, it } from "vitest";
import { rolesChange, userProblems } from "./users";

describe("a new user", () => {
  it("is checked as the server's schema says", () => {
    expect(userProblems({ username: "", password: "", roles: [] })).toEqual({
      username: "is required",
      password: "needs at least 12 characters",
      roles: "choose at least one",
    });
    expect(userProblems({ username: "has space", password: "x".repeat(129), roles: ["viewer"] })).toEqual({
      username: "may use only letters, digits and _ . @ - (at most 64)",
      password: "may have at most 128 characters",
    });
    expect(userProblems({ username: "dee@example.org", password: "twelve chars", roles: ["analyst"] })).toEqual({});
  });
});

describe("a change of roles", () => {
  it("is a change only when the set differs, and never to no role", () => {
    expect(rolesChange(["analyst"], ["analyst"])).toEqual({ changed: false, problem: "" });
    expect(rolesChange(["analyst", "viewer"], ["viewer", "analyst"]).changed).toBe(false);
    expect(rolesChange(["analyst"], ["analyst", "approver"])).toEqual({ changed: true, problem: "" });
    expect(rolesChange(["analyst"], []).problem).toBe("A user needs at least one role.");
  });
});
