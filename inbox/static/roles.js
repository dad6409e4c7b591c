// Roles on a channel, lowest first (README, "Roles"); admins can do everything.
const RANK = { viewer: 1, contributor: 2, supervisor: 3, admin: 4 };
export const GRANT_ROLES = ["viewer", "contributor", "supervisor"];

/** True when `role` is `least` or higher. */
export function atLeast(role, least) {
  return (RANK[role] ?? 0) >= RANK[least];
}
