import { error, fail } from '@sveltejs/kit';
import { bff } from '$lib/bff';
import { explain } from '$lib/errors';
import { adminUrl } from '$lib/server/bff';
import { mutate } from '$lib/server/mutate';
import { Account, BanUser, GrantCredits, RevokeSessions, UnbanUser } from '$lib/admin/documents';
import type { Actions, PageServerLoad } from './$types';

// One person's whole account, and what support does to it. Every action carries a reason,
// which bff keeps in the audit trail with who acted (each is one transaction with one row).
export const load: PageServerLoad = async ({ fetch, params }) => {
  const account = await bff(fetch, adminUrl(), Account, { id: params.id });
  if (account.errors.length > 0) error(503, account.errors.map(explain).join(' '));
  if (!account.data?.user) error(404, 'Nobody has that id');
  return { account: account.data.user };
};

/** The form's reason and fields, trimmed. */
async function fields(request: Request) {
  const data = await request.formData();
  const text = (name: string) => String(data.get(name) ?? '').trim();
  return { text, reason: text('reason') };
}

export const actions: Actions = {
  grant: async (event) => {
    const { text, reason } = await fields(event.request);
    const amount = text('amount');
    if (!/^-?\d+(\.\d{1,2})?$/.test(amount) || Number(amount) === 0) {
      return fail(400, { form: 'grant', message: 'A number of credits, like 5 or -2.50 to take some back.', field: 'amount', code: null });
    }
    const input = { userId: event.params.id, amount, reason };
    const result = await mutate(event, 'grant', GrantCredits, { input }, adminUrl());
    if (result.failure) return result.failure;
    return { form: 'grant', done: `${amount.startsWith('-') ? 'Took back' : 'Granted'} ${amount.replace('-', '')} credits: the balance is ${result.data.grantCredits.balance}.` };
  },
  ban: async (event) => {
    const { text, reason } = await fields(event.request);
    const until = text('expiresAt');
    const expiresAt = until ? new Date(until).toISOString() : null;
    const result = await mutate(event, 'ban', BanUser, { input: { userId: event.params.id, reason, expiresAt } }, adminUrl());
    if (result.failure) return result.failure;
    const revoked = result.data.banUser.sessionsRevoked;
    return { form: 'ban', done: `Banned, and signed out of ${revoked} ${revoked === 1 ? 'session' : 'sessions'}.` };
  },
  unban: async (event) => {
    const { reason } = await fields(event.request);
    const result = await mutate(event, 'unban', UnbanUser, { input: { userId: event.params.id, reason } }, adminUrl());
    if (result.failure) return result.failure;
    return { form: 'unban', done: 'The ban is lifted: they can sign in again.' };
  },
  revoke: async (event) => {
    const { reason } = await fields(event.request);
    const result = await mutate(event, 'revoke', RevokeSessions, { input: { userId: event.params.id, reason } }, adminUrl());
    if (result.failure) return result.failure;
    const revoked = result.data.revokeSessions.sessionsRevoked;
    return { form: 'revoke', done: `Signed out of ${revoked} ${revoked === 1 ? 'session' : 'sessions'}.` };
  },
};
