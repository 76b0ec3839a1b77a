import { fail, redirect } from '@sveltejs/kit';
import { bff } from '$lib/bff';
import { bffUrl } from '$lib/server/bff';
import { explain } from '$lib/errors';
import {
  CancelJob, CreateJob, CreditPacks, Dashboard, DeleteJob, PurchaseCredits, RenameJob, SubscribeToPlan,
} from '$lib/documents';
import type { Actions, PageServerLoad } from './$types';

const STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELED'] as const;
type Status = (typeof STATUSES)[number];
const PAGE = 10;

export const load: PageServerLoad = async ({ fetch, locals, url }) => {
  if (!locals.user) redirect(303, '/sign-in');
  const status = url.searchParams.get('status');
  const group = url.searchParams.get('group');
  const filter = {
    statuses: STATUSES.includes(status as Status) ? [status as Status] : null,
    groupName: group || null,
  };
  const [dashboard, packs] = await Promise.all([
    bff(fetch, bffUrl(), Dashboard, { first: PAGE, after: url.searchParams.get('after'), filter }),
    bff(fetch, bffUrl(), CreditPacks, {}),
  ]);
  return {
    viewer: dashboard.data?.viewer ?? null,
    errors: dashboard.errors.map(explain),
    packs: packs.data?.creditPacks ?? [],
    filter: { status: filter.statuses?.[0] ?? '', group: group ?? '' },
    statuses: STATUSES,
  };
};

/** Runs a mutation (handleFetch adds the browser's cookie); a failure becomes the form's error. */
async function mutate<T, V>(
  event: Parameters<Actions[string]>[0],
  form: string,
  document: Parameters<typeof bff<T, V>>[2],
  variables: V,
) {
  const result = await bff(event.fetch, bffUrl(), document, variables);
  if (result.errors.length > 0) {
    const error = result.errors[0];
    // bff names the input field a BAD_USER_INPUT is about (`extensions.field`).
    const field = error.extensions?.field ?? null;
    return { failure: fail(400, { form, message: explain(error), code: error.extensions?.code ?? null, field }) };
  }
  return { data: result.data as T };
}

export const actions: Actions = {
  create: async (event) => {
    const data = await event.request.formData();
    const prompt = String(data.get('prompt') ?? '').trim();
    // The photos were uploaded by the browser (see $lib/uploads); their ids come with the form.
    const uploadIds = data.getAll('uploadId').map(String);
    const groupName = String(data.get('groupName') ?? '').trim() || null;
    // Checked here first, next to the fields; bff checks again and has the last word.
    const fields: Record<string, string> = {};
    if (!prompt) fields.prompt = 'Describe what to do with the photos.';
    if (uploadIds.length === 0) fields.uploadIds = 'Choose at least one photo.';
    if (Object.keys(fields).length > 0) {
      return fail(400, { form: 'create', fields, prompt, groupName });
    }
    const result = await mutate(event, 'create', CreateJob, { input: { prompt, uploadIds, groupName } });
    return result.failure ?? { form: 'create', created: true };
  },
  rename: async (event) => {
    const data = await event.request.formData();
    const id = String(data.get('id'));
    const groupName = String(data.get('groupName') ?? '').trim() || null;
    const result = await mutate(event, 'rename', RenameJob, { input: { id, groupName } });
    return result.failure ?? { form: 'rename' };
  },
  cancel: async (event) => {
    const id = String((await event.request.formData()).get('id'));
    const result = await mutate(event, 'cancel', CancelJob, { id });
    return result.failure ?? { form: 'cancel' };
  },
  delete: async (event) => {
    const id = String((await event.request.formData()).get('id'));
    const result = await mutate(event, 'delete', DeleteJob, { id });
    return result.failure ?? { form: 'delete' };
  },
  buy: async (event) => {
    const pack = String((await event.request.formData()).get('pack'));
    const result = await mutate(event, 'billing', PurchaseCredits, { pack });
    if (result.failure) return result.failure;
    redirect(303, result.data!.purchaseCredits.url);
  },
  plan: async (event) => {
    const plan = String((await event.request.formData()).get('plan'));
    if (!['BASIC', 'PRO', 'ENTERPRISE'].includes(plan)) return fail(400, { form: 'billing', message: 'Choose a plan.' });
    const result = await mutate(event, 'billing', SubscribeToPlan, { plan: plan as 'BASIC' | 'PRO' | 'ENTERPRISE' });
    if (result.failure) return result.failure;
    const checkout = result.data!.subscribe.checkout;
    if (checkout) redirect(303, checkout.url);
    return { form: 'billing', message: `Now on ${result.data!.subscribe.subscription.plan}.` };
  },
};
