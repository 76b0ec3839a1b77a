// The example app end to end in headless Chromium (Debian's, driven by playwright-core):
// sign up, the dashboard, photos chosen, previewed and uploaded straight to storage, a job made
// of them and completed by the worker (which reads the photos, reports progress the card shows
// as a bar, and writes the result through the URLs bff gave it; seen live), the result
// downloaded, a job canceled and refunded, a second user who sees none of it, and sign-out
// after which bff refuses the old cookie. Run by bff's tests (tests/api/app.rs), which start
// bff, an S3-compatible store and the built app and pass APP_URL, BFF_URL, DATABASE_URL,
// WORKER_TOKEN, CHROMIUM, PHOTOS (a directory of demo photos and a result.zip) and
// SCREENSHOTS. A failing step leaves a screenshot in SCREENSHOTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { APP_URL, BFF_URL, DATABASE_URL, jobStatus, launch, photo, signUp, step, stripeEvent, worker, card, PASSWORD } from './support.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

/** Fills the new-job form with `prompt` and the photo files `names` (from PHOTOS), and submits. */
async function createJob(page, prompt, names) {
  const form = page.getByRole('region', { name: 'New job' });
  await form.getByLabel('Prompt').fill(prompt);
  await form.getByLabel('Photos', { exact: true }).setInputFiles(names.map(photo));
  await form.getByRole('button', { name: 'Create job' }).click();
}

const one = ['sunrise.jpg'];

test('a person signs up, runs photo jobs live through bff, and signs out', async () => {
  const context = await browser.newContext();
  const page = await signUp(context, 'Ada');

  await step(page, 'dashboard', async () => {
    await page.locator('[data-testid="plan"][data-plan="FREE"]').waitFor();
    assert.equal(await page.getByTestId('free-photos').innerText(), '3 free photos left');
    // A new account: the empty gallery asks for photos, and the live connection is up.
    await page.getByTestId('no-jobs').getByText('No photo jobs yet').waitFor();
    await page.locator('[data-testid="live-status"][data-status="live"]').waitFor();
    assert.equal(await page.getByTestId('balance').innerText(), '0.00');
  });

  await step(page, 'field-errors', async () => {
    await createJob(page, '   ', one);
    await page.getByTestId('prompt-error').waitFor();
    // bff's own checks, shown beside the photos: the FREE plan's photos per job, and a type
    // it does not take (the ZIP).
    await createJob(page, 'Too big for the plan', Array.from({ length: 11 }, () => 'sea.png'));
    const error = page.getByTestId('photos-error');
    await error.getByText(/at most 10 photos per job/).waitFor();
    await createJob(page, 'Not a photo', ['result.zip']);
    await error.getByText(/is not accepted/).waitFor();
  });

  await step(page, 'upload-and-create', async () => {
    const form = page.getByRole('region', { name: 'New job' });
    await form.getByLabel('Prompt').fill('Brighten the sunset');
    await form.getByLabel('Photos', { exact: true }).setInputFiles([photo('sunrise.jpg'), photo('sea.png')]);
    // Previews of the chosen files, before anything is sent.
    const previews = page.getByTestId('previews').locator('img');
    await previews.nth(1).waitFor();
    assert.equal(await previews.count(), 2);
    assert.ok(await previews.nth(0).evaluate((img) => img.complete && img.naturalWidth > 0), 'the preview shows');
    // The cost before confirming: the FREE plan's first photos are free.
    assert.match(await page.getByTestId('job-cost').innerText(), /2 photos · 2 free\s+0\.00 credits/);
    await form.getByRole('button', { name: 'Create job' }).click();
    await jobStatus(page, 'Brighten the sunset', 'PENDING');
    await page.getByTestId('toast').getByText('Job created').waitFor();
    await page.getByTestId('free-photos').getByText('1 free photos left').waitFor();
    // The job's photos, served from storage through URLs bff minted for this viewer.
    const thumbs = card(page, 'Brighten the sunset').getByTestId('photo');
    await thumbs.nth(1).waitFor();
    await page.waitForFunction(
      () => [...document.querySelectorAll('[data-testid="photo"]')].every((img) => img.complete && img.naturalWidth > 0),
    );
  });

  await step(page, 'live-completion', async () => {
    // A mark on this document: still there after the job completes, so nothing reloaded it.
    await page.evaluate(() => (window.__sameDocument = true));
    const claimed = await worker('mutation { claimPhotoJobs(limit: 1) { id prompt photos { url fileName } } }');
    const job = claimed.claimPhotoJobs[0];
    assert.equal(job.prompt, 'Brighten the sunset');
    // The worker reads the inputs through the URLs it was given...
    assert.deepEqual(job.photos.map((p) => p.fileName), ['sunrise.jpg', 'sea.png']);
    for (const [i, name] of ['sunrise.jpg', 'sea.png'].entries()) {
      const bytes = Buffer.from(await (await fetch(job.photos[i].url)).arrayBuffer());
      assert.ok(bytes.equals(readFileSync(photo(name))), `the worker reads ${name}`);
    }
    await jobStatus(page, 'Brighten the sunset', 'PROCESSING');
    // It reports progress with its heartbeat: a bar on the card, live.
    const beat = 'mutation($id: ID!, $done: Int!) { heartbeatPhotoJob(id: $id, progress: { done: $done, total: 2, stage: "Retouching" }) { id } }';
    await worker(beat, { id: job.id, done: 1 });
    const bar = card(page, 'Brighten the sunset').getByTestId('job-progress');
    await bar.and(page.locator('[data-done="1"][data-total="2"]')).waitFor();
    assert.equal(await bar.getByRole('progressbar').getAttribute('aria-valuetext'), '1 of 2 done, Retouching');
    await worker(beat, { id: job.id, done: 2 });
    await bar.and(page.locator('[data-done="2"]')).waitFor();
    // ...and writes the result through another.
    const zip = readFileSync(photo('result.zip'));
    const { createPhotoJobResultUpload: upload } = await worker(
      'mutation($id: ID!, $size: Int!) { createPhotoJobResultUpload(id: $id, input: { contentType: "application/zip", byteSize: $size }) { url headers { name value } } }',
      { id: job.id, size: zip.length },
    );
    const headers = Object.fromEntries(upload.headers.map((h) => [h.name, h.value]));
    const put = await fetch(upload.url, { method: 'PUT', headers, body: zip });
    assert.equal(put.status, 200);
    await worker('mutation($id: ID!) { completePhotoJob(id: $id) { id } }', { id: job.id });
    // No reload: the subscription brings the new state, with a download link minted for the viewer.
    await jobStatus(page, 'Brighten the sunset', 'COMPLETED');
    const download = page.waitForEvent('download');
    await card(page, 'Brighten the sunset').getByTestId('download').click();
    const file = await download;
    assert.equal(file.suggestedFilename(), `photo-job-${Buffer.from(job.id, 'base64url').toString().split(':')[1]}.zip`);
    assert.ok(readFileSync(await file.path()).equals(zip), 'the result downloads');
  });

  await step(page, 'notification', async () => {
    // The completion wrote a notification: the bell counts it and a toast says it, live.
    await page.getByTestId('unread-count').getByText('1', { exact: true }).waitFor();
    await page.getByTestId('toast').getByText('Your photos are ready').waitFor();
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload');
    await page.getByTestId('bell').click();
    await page.waitForURL(`${APP_URL}/notifications`);
    const item = page.getByTestId('notification');
    assert.equal(await item.count(), 1);
    assert.equal(await item.getAttribute('data-kind'), 'JOB_COMPLETED');
    assert.equal(await item.getAttribute('data-unread'), '');
    await item.getByRole('button', { name: 'Mark read: Your photos are ready' }).click();
    await page.locator('[data-testid="notification"]:not([data-unread])').waitFor();
    await page.getByTestId('unread-count').waitFor({ state: 'detached' });
    assert.equal(await page.getByTestId('inbox-unread').innerText(), '0 unread');
    // Its settings: email for finished jobs off, kept.
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL(`${APP_URL}/notifications/preferences`);
    const email = page.getByLabel('Job finished: email');
    assert.equal(await email.isChecked(), true, 'on by default');
    await email.uncheck();
    await page.getByTestId('save-preferences').click();
    await page.getByTestId('toast').getByText('Your notification settings are saved.').waitFor();
    await page.reload();
    assert.equal(await page.getByLabel('Job finished: email').isChecked(), false);
    assert.equal(await page.getByLabel('Job failed: email').isChecked(), true, 'the others unchanged');
    await page.getByRole('link', { name: 'Dashboard' }).first().click();
    await page.waitForURL(`${APP_URL}/`);
  });

  await step(page, 'insufficient-credits', async () => {
    await createJob(page, 'Too many', ['sunrise.jpg', 'forest.jpg', 'sea.png']);
    const error = page.getByTestId('create-error');
    await error.waitFor();
    assert.match(await error.innerText(), /Not enough credits/);
  });

  await step(page, 'cancel-refund', async () => {
    // Credits from the support desk (a grant, with its ledger row), then a paid job canceled.
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    const email = await page.getByTestId('signed-in-as').innerText();
    await client.query(
      `WITH u AS (SELECT id FROM "user" WHERE email = $1),
            a AS (INSERT INTO credit_accounts (user_id, balance_cents) SELECT id, 1000 FROM u
                  ON CONFLICT (user_id) DO UPDATE SET balance_cents = credit_accounts.balance_cents + 1000
                  RETURNING user_id, balance_cents)
       INSERT INTO credit_ledger (user_id, kind, amount_cents, balance_after_cents, description)
       SELECT user_id, 'GRANT', 1000, balance_cents, 'Welcome credits' FROM a`,
      [email],
    );
    await page.getByTestId('balance').getByText('10.00').waitFor(); // live: creditsChanged
    await createJob(page, 'Paid job', ['forest.jpg', 'studio.webp', 'sea.png']);
    await jobStatus(page, 'Paid job', 'PENDING');
    await card(page, 'Paid job').getByRole('button', { name: 'Cancel' }).click();
    await jobStatus(page, 'Paid job', 'CANCELED');
    await page.getByTestId('toast').getByText('Job canceled').waitFor();
    await page.getByTestId('balance').getByText('10.00').waitFor();
    // The ledger, one click from the balance; a live event while the page loads does not
    // cancel the click (SvelteKit lets an invalidation win over a navigation under way).
    await page.route('**/billing/__data.json*', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await route.continue();
    });
    await page.getByRole('link', { name: 'View ledger' }).click();
    await client.query(
      `UPDATE credit_accounts SET updated_at = now()
        WHERE user_id = (SELECT id FROM "user" WHERE email = $1)`,
      [email],
    );
    await client.end();
    await page.waitForURL(`${APP_URL}/billing#ledger`);
    await page.unroute('**/billing/__data.json*');
    await page.getByTestId('ledger').locator('[data-kind="JOB_REFUND"]').getByText('Job refund').waitFor();
  });

  await step(page, 'checkout', async () => {
    // Buying credits and changing plan send the browser to the Checkout page bff returns
    // (the fake Stripe's URL, answered here: there is no network).
    await page.route('https://checkout.stripe.test/**', (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>Stripe Checkout</h1>' }));
    for (const button of ['Buy 10 credits', 'Switch to Pro']) {
      await page.goto(`${APP_URL}/billing`, { waitUntil: 'networkidle' });
      await page.getByRole('button', { name: button }).click();
      await page.waitForURL(/^https:\/\/checkout\.stripe\.test\/c\/pay\/cs_/);
    }
    await page.goto(`${APP_URL}/billing`);
  });

  await step(page, 'paid-then-refunded', async () => {
    // Stripe completes the checkout the app started, then support refunds it: the purchase shows
    // each state, and the credits come and go (live, through creditsChanged).
    await page.getByTestId('purchases').getByText('Awaiting payment').first().waitFor();
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    const email = await page.getByTestId('signed-in-as').innerText();
    const { rows } = await client.query(
      `SELECT p.stripe_checkout_session_id AS session, p.user_id, p.pack, p.amount_cents
       FROM purchases p JOIN "user" u ON u.id = p.user_id
       WHERE u.email = $1 AND p.pack = 'SMALL' ORDER BY p.id DESC LIMIT 1`,
      [email],
    );
    await client.end();
    const { session, user_id: userId } = rows[0];
    const amount = Number(rows[0].amount_cents); // BIGINT arrives as a string
    const before = await page.getByTestId('balance').innerText();
    await stripeEvent('checkout.session.completed', {
      id: session, object: 'checkout.session', mode: 'payment', client_reference_id: userId,
      payment_status: 'paid', payment_intent: `pi_${session}`, amount_total: amount, currency: 'usd',
      metadata: { pack: 'SMALL', user_id: userId },
    });
    await page.getByTestId('purchases').getByText('Paid').first().waitFor();
    assert.notEqual(await page.getByTestId('balance').innerText(), before);
    await stripeEvent('charge.refunded', {
      id: `ch_${session}`, object: 'charge', payment_intent: `pi_${session}`, amount, amount_refunded: amount,
      currency: 'usd',
    });
    await page.getByTestId('purchases').getByText('Refunded').first().waitFor();
    await page.getByTestId('balance').getByText(before).waitFor();
    await page.getByTestId('ledger').locator('[data-kind="PURCHASE_REFUND"]').waitFor();
  });

  await step(page, 'second-user', async () => {
    const other = await browser.newContext();
    const second = await signUp(other, 'Grace');
    await second.locator('[data-testid="plan"][data-plan="FREE"]').waitFor();
    assert.equal(await second.getByTestId('job-count').innerText(), '0');
    assert.equal(await second.getByText('Brighten the sunset').count(), 0);
    await other.close();
  });

  await step(page, 'sign-out', async () => {
    const cookie = (await context.cookies()).find((c) => c.name === 'better-auth.session_token');
    assert.ok(cookie, 'Better Auth set its session cookie');
    const viewer = async () => {
      const response = await fetch(`${BFF_URL}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: `${cookie.name}=${cookie.value}` },
        body: JSON.stringify({ query: '{ viewer { id } }' }),
      });
      return (await response.json()).data.viewer;
    };
    assert.ok(await viewer(), 'bff accepts the cookie while signed in');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${APP_URL}/sign-in`);
    assert.equal(await viewer(), null, 'bff refuses the old cookie');
  });
  await context.close();
});

/** What bff says of `viewer` for a Better Auth session cookie. */
async function viewerFor(cookie) {
  const response = await fetch(`${BFF_URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: `${cookie.name}=${cookie.value}` },
    body: JSON.stringify({ query: '{ viewer { id } }' }),
  });
  return (await response.json()).data.viewer;
}

test('a person downloads their data, then deletes their account after signing in again', async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await signUp(context, 'Ada');
  const email = await page.getByTestId('signed-in-as').innerText();
  const sessionCookie = async () => (await context.cookies()).find((c) => c.name === 'better-auth.session_token');

  await step(page, 'download-my-data', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    await page.waitForURL(`${APP_URL}/account`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
    assert.match(download.suggestedFilename(), /^bff-export-\d{4}-\d{2}-\d{2}\.json$/);
    const doc = JSON.parse(readFileSync(await download.path(), 'utf8'));
    assert.equal(doc.format, 'bff-export/1');
    assert.equal(doc.user.email, email);
    assert.equal(doc.user.name, 'Ada');
    assert.deepEqual(doc.photoJobs, []);
    assert.equal(JSON.stringify(doc).includes((await sessionCookie()).value.split('.')[0]), false, 'no session token');
  });

  await step(page, 'stale-session-is-asked-to-sign-in-again', async () => {
    // Better Auth's freshAge: a session older than a day may not delete the account.
    const token = decodeURIComponent((await sessionCookie()).value).split('.')[0];
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`UPDATE session SET "createdAt" = now() - interval '2 days' WHERE token = $1`, [token]);
    await client.end();
    await page.getByLabel('Type your email to confirm').fill(email);
    await page.getByRole('button', { name: 'Delete my account' }).click();
    await page.getByTestId('delete-error').getByText('sign in again before deleting').waitFor();
    assert.ok(await viewerFor(await sessionCookie()), 'nothing was deleted');
  });

  await step(page, 'sign-in-again-and-delete', async () => {
    await page.getByRole('link', { name: 'Sign in again' }).click();
    await page.waitForURL(/\/sign-in\?redirectTo=/, { waitUntil: 'networkidle' });
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${APP_URL}/account`, { waitUntil: 'networkidle' });
    const cookie = await sessionCookie();
    assert.ok(await viewerFor(cookie), 'the new session signs in');
    await page.getByLabel('Type your email to confirm').fill(email.toUpperCase());
    await page.getByRole('button', { name: 'Delete my account' }).click();
    await page.waitForURL(`${APP_URL}/sign-in?deleted=1`);
    await page.getByTestId('deleted').waitFor();
    assert.equal(await viewerFor(cookie), null, "the deleted person's cookie answers viewer: null");
  });
  await context.close();
});
