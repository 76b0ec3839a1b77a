// The /admin pages in headless Chromium, with Better Auth's admin plugin: hidden from people
// without a role (no link, and a 404), the first admin made with `bff admin grant-role`, a
// person found by the start of their email, credits granted with a reason (which their open
// dashboard shows live), a ban that drops their open page to the sign-in page at once and
// refuses their next sign-in, and the audit log of both actions. Run by bff's tests
// (tests/api/app.rs) with the environment described in support.mjs, plus BFF_BIN.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { APP_URL, DATABASE_URL, PASSWORD, axeViolations, launch, signUp, step } from './support.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test('an admin grants credits and bans a person, whose open page drops to sign-in', async () => {
  // The person, signed in, their dashboard open and live.
  const theirs = await browser.newContext();
  const person = await signUp(theirs, 'Mallory');
  const email = await person.getByTestId('signed-in-as').innerText();
  await person.locator('[data-testid="live-status"][data-status="live"]').waitFor();

  const ours = await browser.newContext();
  const page = await signUp(ours, 'Grace');
  const adminEmail = await page.getByTestId('signed-in-as').innerText();
  await step(page, 'admin-hidden', async () => {
    // No role: no link, and the pages do not exist.
    assert.equal(await page.getByRole('link', { name: 'Admin' }).count(), 0);
    const response = await page.goto(`${APP_URL}/admin`);
    assert.equal(response.status(), 404);
  });

  // The first admin, made with bff's command line (the audit trail names the CLI).
  execFileSync(process.env.BFF_BIN, ['admin', 'grant-role', adminEmail, 'admin'], {
    env: { ...process.env, DATABASE_URL },
    stdio: 'pipe',
  });

  await step(page, 'admin-search', async () => {
    await page.goto(`${APP_URL}/`, { waitUntil: 'networkidle' });
    await page.getByRole('link', { name: 'Admin' }).first().click();
    await page.waitForURL(`${APP_URL}/admin`);
    await page.getByTestId('stats').waitFor();
    assert.equal(await page.getByTestId('staff-role').innerText(), 'Admin');
    await page.getByLabel('Search people').fill(email.slice(0, email.indexOf('@')));
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/\/admin\?q=/);
    assert.equal(await page.getByTestId('people-count').innerText(), `1 person match “${email.slice(0, email.indexOf('@'))}”`);
    await page.getByTestId('person').filter({ hasText: email }).click();
    await page.waitForURL(/\/admin\/people\//);
    assert.equal(await page.getByTestId('person-email').innerText(), email);
  });

  await step(page, 'admin-grant', async () => {
    const grant = page.getByTestId('grant');
    await grant.getByLabel('Credits').fill('7.5');
    await grant.getByLabel('Reason').fill('Ticket 4121: blurry result');
    await grant.getByRole('button', { name: 'Grant credits' }).click();
    await page.getByTestId('admin-balance').getByText('7.50').waitFor();
    // More than the balance cannot be taken back: bff's error beside the form, nothing changed.
    await grant.getByLabel('Credits').fill('-100');
    await grant.getByLabel('Reason').fill('Mistake');
    await grant.getByRole('button', { name: 'Grant credits' }).click();
    await page.getByTestId('grant-error').getByText(/at most that can be taken back/).waitFor();
    assert.equal(await page.getByTestId('admin-balance').innerText(), '7.50');
  });
  await step(person, 'granted-live', async () => {
    // The person's open dashboard learns it from its live connection.
    await person.getByTestId('balance').getByText('7.50').waitFor();
  });

  await step(page, 'admin-ban', async () => {
    const ban = page.getByTestId('ban');
    await ban.getByLabel('Reason to ban').fill('Chargeback fraud');
    await ban.getByRole('button', { name: 'Ban' }).click();
    await page.getByTestId('banned').waitFor();
    await page.getByTestId('unban').waitFor();
  });
  await step(person, 'banned-drops-to-sign-in', async () => {
    // bff closed their socket (4403) when the ban was written; the page read its data again
    // and found nobody signed in.
    await person.waitForURL(`${APP_URL}/sign-in`, { timeout: 10_000 });
    await person.getByLabel('Email').fill(email);
    await person.getByLabel('Password').fill(PASSWORD);
    await person.getByRole('button', { name: 'Sign in', exact: true }).click();
    await person.getByRole('alert').getByText(/banned/i).waitFor();
  });

  await step(page, 'admin-audit', async () => {
    await page.getByRole('link', { name: 'Their audit log' }).click();
    await page.waitForURL(/\/admin\/audit\?target=/);
    const entries = page.getByTestId('audit').locator('li');
    await entries.first().waitFor();
    // Newest first; the refused take-back left no row.
    assert.deepEqual(await entries.evaluateAll((items) => items.map((li) => li.dataset.action)), ['BAN', 'GRANT_CREDITS']);
    assert.deepEqual(await page.getByTestId('audit-reason').allInnerTexts(), ['“Chargeback fraud”', '“Ticket 4121: blurry result”']);
    const problems = await axeViolations(page);
    await page.goBack({ waitUntil: 'networkidle' });
    problems.push(...(await axeViolations(page)));
    await page.goto(`${APP_URL}/admin`, { waitUntil: 'networkidle' });
    problems.push(...(await axeViolations(page)));
    assert.deepEqual(problems, []);
  });
  await theirs.close();
  await ours.close();
});
