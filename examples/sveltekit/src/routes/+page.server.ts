import { fail, redirect } from '@sveltejs/kit';
import { bff } from '$lib/bff';
import { bffUrl } from '$lib/server/bff';
import { mutate } from '$lib/server/mutate';
import { explain } from '$lib/errors';
import { CancelJob, CreateJob, Dashboard, DeleteJob, JobFields, RenameJob } from '$lib/documents';
import { readFragment } from '$lib/graphql';
import type { Actions, PageServerLoad } from './$types';

const STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELED'] as const;
type Status = (typeof STATUSES)[number];
const PAGE = 12;

export const load: PageServerLoad = async ({ fetch, locals, url }) => {
  if (!locals.user) redirect(303, '/sign-in');
  const status = url.searchParams.get('status');
  const group = url.searchParams.get('group');
  const filter = {
    statuses: STATUSES.includes(status as Status) ? [status as Status] : null,
    groupName: group || null,
  };
  const dashboard = await bff(fetch, bffUrl(), Dashboard, { first: PAGE, after: url.searchParams.get('after'), filter });
  return {
    viewer: dashboard.data?.viewer ?? null,
    errors: dashboard.errors.map(explain),
    filter: { status: filter.statuses?.[0] ?? '', group: group ?? '', paged: url.searchParams.has('after') },
    statuses: STATUSES,
  };
};

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
    if (result.failure) return result.failure;
    const job = readFragment(JobFields, result.data.createPhotoJob.photoJob);
    return { form: 'create', created: { prompt: job.prompt, photos: job.photoCount, cost: job.cost } };
  },
  rename: async (event) => {
    const data = await event.request.formData();
    const id = String(data.get('id'));
    const groupName = String(data.get('groupName') ?? '').trim() || null;
    const result = await mutate(event, 'rename', RenameJob, { input: { id, groupName } });
    return result.failure ?? { form: 'rename', done: groupName ? `Moved to “${groupName}”.` : 'Removed from its group.' };
  },
  cancel: async (event) => {
    const id = String((await event.request.formData()).get('id'));
    const result = await mutate(event, 'cancel', CancelJob, { id });
    return result.failure ?? { form: 'cancel', done: 'Job canceled: its credits are back in your balance.' };
  },
  delete: async (event) => {
    const id = String((await event.request.formData()).get('id'));
    const result = await mutate(event, 'delete', DeleteJob, { id });
    return result.failure ?? { form: 'delete', done: 'Job deleted, with its photos.' };
  },
};
