// What the browser tests share: the environment bff's test passes (tests/api/app.rs), a
// browser, steps that leave a screenshot when they fail, bff's worker and Stripe's webhooks,
// signing up, and checks that run inside the page (axe-core).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import axe from 'axe-core';
import { chromium } from 'playwright-core';

export const { APP_URL, BFF_URL, DATABASE_URL, WORKER_TOKEN, CHROMIUM, SCREENSHOTS, PHOTOS, WEBHOOK_SECRET, DEMO_EMAIL } =
  process.env;
export const photo = (name) => `${PHOTOS}/${name}`;

export async function launch() {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** Runs `body`; on failure, a screenshot of `page` named after the step. */
export async function step(page, name, body) {
  try {
    await body();
  } catch (error) {
    const file = `${SCREENSHOTS}/${name.replace(/\W+/g, '-')}.png`;
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    error.message += `\n(screenshot: ${file})`;
    throw error;
  }
}

/** Delivers a Stripe event to bff signed as Stripe signs it. */
export async function stripeEvent(type, object) {
  const payload = JSON.stringify({ id: `evt_${type}_${Date.now()}`, type, created: Math.floor(Date.now() / 1000), data: { object } });
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${payload}`).digest('hex');
  const response = await fetch(`${BFF_URL}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${v1}` },
    body: payload,
  });
  const body = await response.json();
  assert.equal(body.outcome, 'applied', JSON.stringify(body));
}

/** A GraphQL call as the photo worker (its service token). */
export async function worker(query, variables) {
  const response = await fetch(`${BFF_URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${WORKER_TOKEN}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body));
  return body.data;
}

export const PASSWORD = 'correct horse battery';

/** Signs a new person up through the app; their page, on the dashboard. */
export async function signUp(context, name) {
  const page = await context.newPage();
  await step(page, `sign up ${name}`, async () => {
    // Wait for the app's scripts (hydration may reset fields filled before it on a busy machine,
    // and `required` then stops the submit).
    await page.goto(`${APP_URL}/sign-up`, { waitUntil: 'networkidle' });
    const fields = [
      ['Name', name],
      ['Email', `${name.toLowerCase()}-${Date.now()}@example.com`],
      ['Password', PASSWORD],
    ];
    for (const [label, value] of fields) await page.getByLabel(label).fill(value);
    for (const [label, value] of fields) {
      if ((await page.getByLabel(label).inputValue()) !== value) await page.getByLabel(label).fill(value);
    }
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.waitForURL(`${APP_URL}/`);
  });
  return page;
}

/** Signs in as the demo account `bff dev` seeds, with the sign-in page's one button. */
export async function signInAsDemo(context) {
  const page = await context.newPage();
  await step(page, 'demo sign-in', async () => {
    await page.goto(`${APP_URL}/sign-in`, { waitUntil: 'networkidle' });
    await page.getByRole('button', { name: 'Sign in as the demo user' }).click();
    await page.waitForURL(`${APP_URL}/`);
  });
  return page;
}

/** A job's card on the dashboard. */
export const card = (page, prompt) => page.getByTestId('job').filter({ hasText: prompt });

/** Waits until the card of `prompt` shows `status` (bff's PhotoJobStatus). */
export const jobStatus = (page, prompt, status) =>
  card(page, prompt).locator(`[data-testid="job-status"][data-status="${status}"]`).waitFor();

/** The axe-core rules' violations on the page as it is now that are serious or critical. */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: axe.source });
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } }),
  );
  assert.ok(result.passes.length > 0, 'axe-core ran its rules');
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}

/** Presses Tab until the focused element matches `selector`; fails after `max` presses. */
export async function tabTo(page, selector, max = 40) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
  }
  const at = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120));
  assert.fail(`${max} presses of Tab did not reach ${selector} (focus is on ${at})`);
}
