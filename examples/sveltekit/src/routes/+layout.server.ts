import { bff } from '$lib/bff';
import { bffUrl } from '$lib/server/bff';
import { UnreadCount } from '$lib/documents';
import type { LayoutServerLoad } from './$types';

// The signed-in person and their unread notifications (the bell), read again with every page.
export const load: LayoutServerLoad = async ({ locals, fetch }) => {
  if (!locals.user) return { user: null, unread: 0 };
  const result = await bff(fetch, bffUrl(), UnreadCount, {});
  return { user: locals.user, unread: result.data?.viewer?.unreadNotificationCount ?? 0 };
};
