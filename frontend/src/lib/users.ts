/** The admin page's checks, as the server's UserCreate and RolesSet schemas state them. */

export const ROLES = ["viewer", "analyst", "approver", "admin"] as const;
export type Role = (typeof ROLES)[number];

const USERNAME = /^[A-Za-z0-9_.@-]{1,64}$/;

/** What is wrong with a new user, by field (empty: fine to send). */
export function userProblems(user: { username: string; password: string; roles: string[] }): Record<string, string> {
  const found: Record<string, string> = {};
  if (!user.username) found.username = "is required";
  else if (!USERNAME.test(user.username)) found.username = "may use only letters, digits and _ . @ - (at most 64)";
  if (user.password.length < 12) found.password = "needs at least 12 characters";
  else if (user.password.length > 128) found.password = "may have at most 128 characters";
  if (!user.roles.length) found.roles = "choose at least one";
  return found;
}

/** Whether a user's roles were changed, and why the change cannot be sent. */
export function rolesChange(before: string[], after: string[]): { changed: boolean; problem: string } {
  const a = [...new Set(before)].sort().join();
  const b = [...new Set(after)].sort().join();
  return { changed: a !== b, problem: after.length ? "" : "A user needs at least one role." };
}
