// The example as a product, in headless Chromium: the demo account one click away (its live
// indicator going offline and back, the dashboard resuming from its cursor), the main flows
// with the keyboard alone, every page at phone and desktop widths in light and dark (axe-core
// inside the page finds no serious or critical violation; each is saved as a screenshot), the
// empty states, and Lighthouse's scores for the dashboard. Run by bff's tests
// (tests/api/app.rs) with the environment described in support.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import {
  APP_URL, CHROMIUM, DATABASE_URL, DEMO_EMAIL, PASSWORD, SCREENSHOTS, axeViolations, card, jobStatus, launch, photo,
  signInAsDemo, signUp, step, tabTo,
} from './support.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

async function sql(text, params = []) {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    return (await client.query(text, params)).rows;
  } finally {
    await client.end();
  }
}

test('the demo account is one click from the sign-in page, with its jobs, photos and purchases', async () => {
  const context = await browser.newContext();
  // The page's WebSockets, so that the test can drop them as a lost network does.
  await context.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__sockets.push(this);
      }
    };
  });
  const page = await signInAsDemo(context);
  await step(page, 'demo-dashboard', async () => {
    assert.equal(await page.getByTestId('signed-in-as').innerText(), DEMO_EMAIL);
    await page.locator('[data-testid="plan"][data-plan="PRO"]').waitFor();
    const [{ jobs }] = await sql(`SELECT count(*)::int AS jobs FROM photo_jobs WHERE user_id = (SELECT id FROM "user" WHERE email = $1)`, [DEMO_EMAIL]);
    assert.ok(jobs > 12, `the demo account has its seeded jobs (${jobs})`);
    assert.equal(await page.getByTestId('job-count').innerText(), String(jobs));
    assert.equal(await page.getByTestId('job').count(), 12, 'a first page of 12 cards');
    // The newest jobs' photos, served from storage.
    const first = page.getByTestId('job').first().getByTestId('photo').first();
    await first.waitFor();
    await page.waitForFunction(() => {
      const img = document.querySelector('[data-testid="photo"]');
      return img && img.complete && img.naturalWidth > 0;
    });
    assert.ok((await page.getByTestId('download').count()) > 0, 'completed jobs offer their result');
    // Its notifications: two unread on the bell, about the newest finished jobs.
    assert.equal(await page.getByTestId('unread-count').innerText(), '2');
  });
  await step(page, 'demo-offline', async () => {
    // The live connection's indicator follows the browser: offline, then live again.
    const status = (state) => page.locator(`[data-testid="live-status"][data-status="${state}"]`);
    await status('live').waitFor();
    await context.setOffline(true);
    await status('offline').waitFor();
    assert.equal((await page.getByTestId('live-status').innerText()).trim(), 'Offline');
    // The connection drops with the network (closed here: an emulated offline may keep it).
    await page.evaluate(() => window.__sockets.forEach((socket) => socket.close(3000, 'network lost')));
    // While it is away, the newest job is moved to another group (by SQL: whoever writes).
    const [job] = await sql(
      `SELECT id, prompt FROM photo_jobs WHERE user_id = (SELECT id FROM "user" WHERE email = $1) ORDER BY created_at DESC, id DESC LIMIT 1`,
      [DEMO_EMAIL],
    );
    await sql(`UPDATE photo_jobs SET group_name = 'Renamed while away' WHERE id = $1`, [job.id]);
    const reads = [];
    page.on('request', (request) => request.url().includes('__data.json') && reads.push(request.url()));
    await context.setOffline(false);
    await status('live').waitFor();
    // Back: what changed since the page's cursor is applied; the page is not read again.
    await card(page, job.prompt).getByText('Renamed while away').waitFor();
    await page.waitForTimeout(500);
    assert.deepEqual(reads, [], 'the dashboard resumed from its cursor without reading the page again');
  });
  await step(page, 'demo-billing', async () => {
    await page.getByRole('link', { name: 'Billing' }).first().click();
    await page.waitForURL(`${APP_URL}/billing`);
    // The seeded purchases and the ledger.
    await page.getByTestId('purchases').locator('li').first().waitFor();
    await page.getByTestId('ledger').locator('li').first().waitFor();
  });
  await context.close();
});

test('sign-in and a new job work with the keyboard alone', async () => {
  const context = await browser.newContext();
  const setup = await signUp(context, 'Keys');
  const email = await setup.getByTestId('signed-in-as').innerText();
  await setup.getByRole('button', { name: 'Sign out' }).click();
  await setup.waitForURL(`${APP_URL}/sign-in`);
  await setup.close();

  const page = await context.newPage();
  await step(page, 'keyboard-sign-in', async () => {
    await page.goto(`${APP_URL}/sign-in`, { waitUntil: 'networkidle' });
    await tabTo(page, 'input[name="email"]');
    await page.keyboard.type(email);
    await tabTo(page, 'input[name="password"]');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${APP_URL}/`, { waitUntil: 'networkidle' });
  });
  await step(page, 'keyboard-new-job', async () => {
    // The focus is visible where the keyboard is.
    await tabTo(page, 'textarea[name="prompt"]');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'a focus ring on the prompt');
    await page.keyboard.type('Typed, not clicked');
    await tabTo(page, 'input[type="file"]', 2);
    const chooser = page.waitForEvent('filechooser');
    await page.keyboard.press('Space');
    await (await chooser).setFiles([photo('sunrise.jpg')]);
    await page.getByTestId('previews').locator('img').first().waitFor();
    await tabTo(page, 'button[type="submit"]:not([aria-label])', 6);
    assert.equal((await page.evaluate(() => document.activeElement.textContent)).trim(), 'Create job');
    await page.keyboard.press('Enter');
    await jobStatus(page, 'Typed, not clicked', 'PENDING');
  });
  await context.close();
});

// Every page, as people see it: phone and desktop, light and dark.
const WIDTHS = [
  ['phone', { width: 390, height: 844 }],
  ['desktop', { width: 1280, height: 800 }],
];
const SCHEMES = ['light', 'dark'];

/** Loads `path` in each width and scheme: axe-core's serious and critical findings, and a screenshot. */
async function audit(cookies, name, path, problems, prepare = async () => {}) {
  mkdirSync(`${SCREENSHOTS}/pages`, { recursive: true });
  for (const [width, viewport] of WIDTHS) {
    for (const colorScheme of SCHEMES) {
      const context = await browser.newContext({ viewport, colorScheme });
      await context.addCookies(cookies);
      const page = await context.newPage();
      await step(page, `${name}-${width}-${colorScheme}`, async () => {
        await page.goto(`${APP_URL}${path}`, { waitUntil: 'networkidle' });
        await prepare(page);
        // Lazy images below the fold, loaded for the full-page picture.
        await page.evaluate(async () => {
          for (const img of document.images) img.loading = 'eager';
          await Promise.all([...document.images].map((img) => img.decode().catch(() => {})));
        });
        const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
        if (scrollWidth > viewport.width) problems.push(`${name} ${width}: the page is ${scrollWidth} px wide, wider than the screen`);
        for (const v of await axeViolations(page)) problems.push(`${name} ${width} ${colorScheme}: ${v}`);
        await page.screenshot({ path: `${SCREENSHOTS}/pages/${name}-${width}-${colorScheme}.png`, fullPage: true });
        await page.screenshot({ path: `${SCREENSHOTS}/pages/${name}-${width}-${colorScheme}-top.png` });
      });
      await context.close();
    }
  }
}

test('every page passes axe-core at phone and desktop widths, light and dark, and is saved as a screenshot', async () => {
  const problems = [];
  await audit([], 'sign-in', '/sign-in', problems);
  await audit([], 'sign-up', '/sign-up', problems);

  const demo = await browser.newContext();
  await signInAsDemo(demo);
  const demoCookies = await demo.cookies();
  await demo.close();
  await audit(demoCookies, 'dashboard', '/', problems);
  await audit(demoCookies, 'billing', '/billing', problems);
  await audit(demoCookies, 'account', '/account', problems);
  await audit(demoCookies, 'notifications', '/notifications', problems, async (page) => {
    await page.locator('[data-testid="notification"][data-unread]').first().waitFor();
  });
  await audit(demoCookies, 'notification-settings', '/notifications/preferences', problems, async (page) => {
    await page.getByLabel('Job finished: email').waitFor();
  });
  // The confirmation a deletion asks for.
  await audit(demoCookies, 'delete-dialog', '/', problems, async (page) => {
    await page.getByTestId('job').first().getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('alertdialog').waitFor();
  });

  // A new account: no jobs yet, and (with the packs' Stripe prices taken away) no packs on sale.
  const fresh = await browser.newContext();
  await signUp(fresh, 'Newcomer');
  const freshCookies = await fresh.cookies();
  await fresh.close();
  await audit(freshCookies, 'dashboard-empty', '/', problems, async (page) => {
    await page.getByTestId('no-jobs').getByText('No photo jobs yet').waitFor();
  });
  await audit(freshCookies, 'notifications-empty', '/notifications', problems, async (page) => {
    await page.getByTestId('empty-inbox').getByText('No notifications yet.').waitFor();
  });
  const prices = await sql('SELECT code, stripe_price_id FROM credit_packs');
  await sql('UPDATE credit_packs SET stripe_price_id = NULL');
  try {
    await audit(freshCookies, 'billing-no-payments', '/billing', problems, async (page) => {
      await page.getByTestId('payments-not-configured').getByText('Payments are not configured').waitFor();
      await page.getByTestId('payments-not-configured').getByText('STRIPE_SECRET_KEY').waitFor();
      await page.getByTestId('no-purchases').waitFor();
    });
  } finally {
    for (const { code, stripe_price_id: price } of prices) {
      await sql('UPDATE credit_packs SET stripe_price_id = $2 WHERE code = $1', [code, price]);
    }
  }
  console.log(`axe-core: ${problems.length} serious or critical violations over 12 pages × 2 widths × 2 schemes (screenshots in ${SCREENSHOTS}/pages)`);
  assert.deepEqual(problems, []);
});

test('Lighthouse scores the dashboard (printed; accessibility and best practices at 90 or more)', async () => {
  const { default: lighthouse } = await import('lighthouse');
  const chromeLauncher = await import('chrome-launcher');
  const demo = await browser.newContext();
  await signInAsDemo(demo);
  const cookie = (await demo.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  await demo.close();
  const chrome = await chromeLauncher.launch({ chromePath: CHROMIUM, chromeFlags: ['--headless=new', '--no-sandbox'] });
  const scores = {};
  try {
    for (const [name, path] of [['dashboard', '/'], ['sign-in', '/sign-in']]) {
      const result = await lighthouse(`${APP_URL}${path}`, {
        port: chrome.port,
        logLevel: 'error',
        onlyCategories: ['performance', 'accessibility', 'best-practices'],
        extraHeaders: name === 'dashboard' ? { Cookie: cookie } : {},
      });
      const { categories, audits } = result.lhr;
      if (process.env.LIGHTHOUSE_DETAIL) {
        for (const id of ['bootup-time', 'long-tasks', 'mainthread-work-breakdown', 'network-requests']) {
          console.log(id, JSON.stringify(audits[id]?.details?.items?.slice(0, 12)?.map((i) => [i.url ?? i.groupLabel, Math.round(i.total ?? i.duration ?? i.scripting ?? 0), i.transferSize, i.startTime && Math.round(i.startTime)])));
        }
      }
      scores[name] = Object.fromEntries(Object.entries(categories).map(([key, c]) => [key, Math.round(c.score * 100)]));
      const failed = Object.values(categories)
        .filter((c) => c.id !== 'performance')
        .flatMap((c) => c.auditRefs.filter((r) => r.weight > 0 && audits[r.id].score !== null && audits[r.id].score < 1).map((r) => `${c.id}: ${r.id}`));
      console.log(
        `Lighthouse ${name} (mobile, simulated throttling): performance ${scores[name].performance}, accessibility ${scores[name].accessibility}, ` +
          `best practices ${scores[name]['best-practices']}; LCP ${audits['largest-contentful-paint'].displayValue} ` +
          `(${audits['largest-contentful-paint-element']?.details?.items?.[0]?.items?.[0]?.node?.nodeLabel ?? '?'}), ` +
          `FCP ${audits['first-contentful-paint'].displayValue}, SI ${audits['speed-index'].displayValue}, ` +
          `TBT ${audits['total-blocking-time'].displayValue}, CLS ${audits['cumulative-layout-shift'].displayValue}` +
          (failed.length ? `; not passed: ${failed.join(', ')}` : ''),
      );
    }
  } finally {
    await chrome.kill();
  }
  // Performance depends on how busy the machine is (it is printed, not asserted); the others do not.
  for (const [name, s] of Object.entries(scores)) {
    assert.ok(s.accessibility >= 90, `${name}: accessibility ${s.accessibility}`);
    assert.ok(s['best-practices'] >= 90, `${name}: best practices ${s['best-practices']}`);
  }
});
