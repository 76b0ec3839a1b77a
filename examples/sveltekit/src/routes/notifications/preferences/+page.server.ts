import { redirect } from '@sveltejs/kit';
import { bff } from '$lib/bff';
import { bffUrl } from '$lib/server/bff';
import { mutate } from '$lib/server/mutate';
import { explain } from '$lib/errors';
import { NotificationSettings, UpdatePreferences } from '$lib/documents';
import { NOTIFICATION_KIND } from '$lib/format';
import type { VariablesOf } from '$lib/graphql';
import type { Actions, PageServerLoad } from './$types';

type Kind = VariablesOf<typeof UpdatePreferences>['input']['preferences'][number]['kind'];
const KINDS = Object.keys(NOTIFICATION_KIND) as Kind[];

export const load: PageServerLoad = async ({ fetch, locals }) => {
  if (!locals.user) redirect(303, '/sign-in?redirectTo=/notifications/preferences');
  const settings = await bff(fetch, bffUrl(), NotificationSettings, {});
  return { viewer: settings.data?.viewer ?? null, errors: settings.errors.map(explain) };
};

export const actions: Actions = {
  // Every kind the form showed (`kind`), each channel on when its box was ticked.
  save: async (event) => {
    const form = await event.request.formData();
    const kinds = form.getAll('kind').filter((kind): kind is Kind => KINDS.includes(kind as Kind));
    const preferences = kinds.map((kind) => ({
      kind,
      email: form.has(`${kind}.email`),
      push: form.has(`${kind}.push`),
    }));
    const result = await mutate(event, 'save', UpdatePreferences, { input: { preferences } });
    return result.failure ?? { form: 'save', done: 'Your notification settings are saved.' };
  },
};
