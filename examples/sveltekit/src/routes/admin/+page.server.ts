import { bff } from '$lib/bff';
import { explain } from '$lib/errors';
import { adminUrl } from '$lib/server/bff';
import { Overview } from '$lib/admin/documents';
import type { PageServerLoad } from './$types';

// The business at a glance, and people found by id, Stripe customer, or the start of an email
// or name (bff's `users(search)`), 20 at a time.
export const load: PageServerLoad = async ({ fetch, url }) => {
  const search = url.searchParams.get('q')?.trim() || null;
  const overview = await bff(fetch, adminUrl(), Overview, { search, after: url.searchParams.get('after') });
  return { search: search ?? '', stats: overview.data?.stats ?? null, users: overview.data?.users ?? null, errors: overview.errors.map(explain) };
};
