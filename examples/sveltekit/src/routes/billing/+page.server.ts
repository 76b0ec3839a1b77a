import { fail, redirect } from '@sveltejs/kit';
import { bff } from '$lib/bff';
import { bffUrl } from '$lib/server/bff';
import { mutate } from '$lib/server/mutate';
import { explain } from '$lib/errors';
import { Billing, PurchaseCredits, SubscribeToPlan } from '$lib/documents';
import type { Actions, PageServerLoad } from './$types';

export const load: PageServerLoad = async ({ fetch, locals }) => {
  if (!locals.user) redirect(303, '/sign-in?redirectTo=/billing');
  const billing = await bff(fetch, bffUrl(), Billing, {});
  return {
    viewer: billing.data?.viewer ?? null,
    packs: billing.data?.creditPacks ?? [],
    errors: billing.errors.map(explain),
  };
};

export const actions: Actions = {
  // Both send the browser to Stripe Checkout (the URL bff returns); a plan change of an
  // existing subscription happens at once.
  buy: async (event) => {
    const pack = String((await event.request.formData()).get('pack'));
    const result = await mutate(event, 'buy', PurchaseCredits, { pack });
    if (result.failure) return result.failure;
    redirect(303, result.data.purchaseCredits.url);
  },
  plan: async (event) => {
    const plan = String((await event.request.formData()).get('plan'));
    if (!['BASIC', 'PRO', 'ENTERPRISE'].includes(plan)) return fail(400, { form: 'plan', message: 'Choose a plan.' });
    const result = await mutate(event, 'plan', SubscribeToPlan, { plan: plan as 'BASIC' | 'PRO' | 'ENTERPRISE' });
    if (result.failure) return result.failure;
    const checkout = result.data.subscribe.checkout;
    if (checkout) redirect(303, checkout.url);
    return { form: 'plan', done: `You are now on ${result.data.subscribe.subscription.plan.toLowerCase()}.` };
  },
};
