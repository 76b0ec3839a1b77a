import { bff } from '$lib/bff';
import { explain } from '$lib/errors';
import { adminUrl } from '$lib/server/bff';
import { AuditLog } from '$lib/admin/documents';
import type { PageServerLoad } from './$types';

// The audit trail, newest first: everything, or what was done to one person (?target=).
export const load: PageServerLoad = async ({ fetch, url }) => {
  const targetId = url.searchParams.get('target') || null;
  const log = await bff(fetch, adminUrl(), AuditLog, { targetId, after: url.searchParams.get('after') });
  return { targetId, log: log.data?.auditLog ?? null, errors: log.errors.map(explain) };
};
