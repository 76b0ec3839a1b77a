import { error, redirect } from '@sveltejs/kit';
import { bff } from '$lib/bff';
import { explain } from '$lib/errors';
import { adminUrl } from '$lib/server/bff';
import { Me } from '$lib/admin/documents';
import type { LayoutServerLoad } from './$types';

// The administration, for the people bff lets into /admin/graphql. bff decides (its
// BFF_ADMIN_ROLES and BFF_SUPPORT_ROLES against Better Auth's `user.role`): to anyone else it
// answers 403, and these pages do not exist (404), as bff says nothing more.
export const load: LayoutServerLoad = async ({ fetch, locals, url }) => {
  if (!locals.user) redirect(303, `/sign-in?redirectTo=${encodeURIComponent(url.pathname + url.search)}`);
  const me = await bff(fetch, adminUrl(), Me, {});
  if (!me.data) {
    const failure = me.errors[0];
    if (!failure || failure.extensions?.code === 'FORBIDDEN') error(404, 'Not found');
    error(503, explain(failure));
  }
  return { me: me.data.me };
};
