import { env } from '$env/dynamic/private';

/**
 * Whether Better Auth's roles (`user.role`, comma-separated) make someone staff: one of
 * STAFF_ROLES (default `admin,support`, bff's BFF_ADMIN_ROLES and BFF_SUPPORT_ROLES defaults).
 * It only decides who sees the Admin link: the /admin pages ask bff, which has the last word.
 */
export function isStaff(role: string | null | undefined) {
  const staff = (env.STAFF_ROLES || 'admin,support').split(',').map((r) => r.trim());
  return (role ?? '').split(',').some((r) => staff.includes(r.trim()));
}
