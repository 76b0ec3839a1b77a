// A form's round trip through `use:enhance`: which form is being submitted (its button spins),
// the result said in a toast, and the page's data read again. One per page or component.
import type { SubmitFunction } from '@sveltejs/kit';
import { toast } from './toast.svelte';

export class Busy {
  /** The form being submitted, if any. */
  key = $state<string | null>(null);
  /** Whether a failure is said in a toast (else the page shows the form's `message`). */
  toastFailures: boolean;

  constructor({ toastFailures = true } = {}) {
    this.toastFailures = toastFailures;
  }

  /** The `use:enhance` handler of the form `key`; `after` runs when it succeeded. */
  submit =
    (key: string, after?: () => void): SubmitFunction =>
    () => {
      this.key = key;
      return async ({ result, update }) => {
        // A redirect leaves the page (Stripe Checkout): the button spins until it has.
        if (result.type !== 'redirect') this.key = null;
        if (result.type === 'success') {
          after?.();
          const done = (result.data as { done?: string } | undefined)?.done;
          if (done) toast('success', done);
        } else if (result.type === 'failure' && this.toastFailures) {
          toast('error', 'That did not work', String(result.data?.message ?? ''));
        }
        await update({ reset: false });
      };
    };
}
