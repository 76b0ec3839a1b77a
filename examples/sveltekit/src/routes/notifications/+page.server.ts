import { redirect } from '@sveltejs/kit';
import { bff } from '$lib/bff';
import { bffUrl } from '$lib/server/bff';
import { mutate } from '$lib/server/mutate';
import { explain } from '$lib/errors';
import { Inbox, MarkRead } from '$lib/documents';
import type { Actions, PageServerLoad } from './$types';

const PAGE = 20;

export const load: PageServerLoad = async ({ fetch, locals, url }) => {
  if (!locals.user) redirect(303, '/sign-in?redirectTo=/notifications');
  const unreadOnly = url.searchParams.get('show') === 'unread';
  const inbox = await bff(fetch, bffUrl(), Inbox, { first: PAGE, after: url.searchParams.get('after'), unreadOnly });
  return {
    viewer: inbox.data?.viewer ?? null,
    errors: inbox.errors.map(explain),
    unreadOnly,
    paged: url.searchParams.has('after'),
  };
};

export const actions: Actions = {
  // One notification (the `id` field), or every unread one.
  read: async (event) => {
    const id = String((await event.request.formData()).get('id') ?? '');
    const result = await mutate(event, 'read', MarkRead, { input: { ids: [id] } });
    return result.failure ?? { form: 'read' };
  },
  readAll: async (event) => {
    const result = await mutate(event, 'read', MarkRead, { input: { all: true } });
    if (result.failure) return result.failure;
    const marked = result.data.markNotificationsRead.notifications.length;
    return { form: 'read', done: marked ? `${marked} marked read.` : 'Nothing was unread.' };
  },
};
