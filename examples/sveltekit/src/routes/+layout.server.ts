import { bff } from '$lib/bff';
import { bffUrl } from '$lib/server/bff';
import { UnreadCount } from '$lib/documents';
import { isStaff } from '$lib/server/staff';
import type { LayoutServerLoad } from './$types';

// The signed-in person, whether they are staff (the Admin link), and their unread
// notifications (the bell). Read again on every
// navigation (it reads the URL) and whenever the page's data is (a live event, an action).
export const load: LayoutServerLoad = async ({ locals, fetch, url }) => {
  void url.pathname;
  if (!locals.user) return { user: null, staff: false, unread: 0 };
  const result = await bff(fetch, bffUrl(), UnreadCount, {});
  return { user: locals.user, staff: isStaff(locals.user.role), unread: result.data?.viewer?.unreadNotificationCount ?? 0 };
};
