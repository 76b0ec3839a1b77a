// GraphiQL, as `bff dev` serves it, runs a subscription over WebSocket: headless Chromium
// (Debian's package, driven by playwright-core; no browser download) opens /graphiql with the
// viewer's Authorization in the link's fragment, runs `photoJobUpdated`, and the job created
// meanwhile shows in the result pane. Run by tests/api/interop.rs, which starts bff in
// development mode and passes BFF_HTTP, GRAPHIQL, COOKIE, TOKEN and CHROMIUM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { createJob as create } from './support.mjs';

const { GRAPHIQL, TOKEN, CHROMIUM } = process.env;
const createJob = (groupName) => create(groupName, 'From GraphiQL');


test('GraphiQL runs a subscription over WebSocket', async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    const headers = encodeURIComponent(JSON.stringify({ Authorization: `Bearer ${TOKEN}` }));
    const query = encodeURIComponent('subscription Live { photoJobUpdated { id status groupName } }');
    await page.goto(`${GRAPHIQL}#headers=${headers}&query=${query}`);
    await page.locator('.graphiql-execute-button').click();
    // The subscription is running once GraphiQL shows it can be stopped; then change a job
    // until the result pane shows it (the first change may beat the subscription's start).
    const group = 'Seen in GraphiQL';
    const pane = page.locator('.result-window');
    let seen = false;
    for (let attempt = 0; attempt < 20 && !seen; attempt += 1) {
      await createJob(group);
      seen = await pane
        .getByText(group)
        .first()
        .waitFor({ timeout: 500 })
        .then(() => true, () => false);
    }
    const text = await pane.innerText();
    assert.ok(seen, `the result pane shows the event:\n${text}\n${errors.join('\n')}`);
    assert.match(text, /PENDING/);
  } finally {
    await browser.close();
  }
});

test('GraphiQL runs the query the editor shows, however fast Execute follows the edit', async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const headers = encodeURIComponent(JSON.stringify({ Authorization: `Bearer ${TOKEN}` }));
    await page.goto(`${GRAPHIQL}#headers=${headers}`);
    const editor = page.locator('.graphiql-query-editor .CodeMirror');
    await editor.getByText('query Dashboard').waitFor();
    // Replace the default `query Dashboard` with an anonymous query, as a paste does, and
    // press Ctrl-Enter at once: GraphiQL 3.8.3 updates `operationName` on a debounce, so
    // without bff's fetcher it would still send "Dashboard".
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText('{ viewer { email } }');
    await page.keyboard.press('Control+Enter');
    const pane = page.locator('.result-window');
    await pane.getByText('"email"').first().waitFor({ timeout: 10_000 }).catch(() => {});
    const text = await pane.innerText();
    assert.doesNotMatch(text, /Unknown operation/);
    assert.match(text, /"email": "/, text);

    // Two named operations: the one under the cursor runs (GraphiQL's own choice), also
    // right after an edit.
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText('query First { viewer { id } }\nquery Second { viewer { name } }');
    await page.keyboard.press('Control+Enter');
    await pane.getByText('"name"').first().waitFor({ timeout: 10_000 }).catch(() => {});
    const second = await pane.innerText();
    assert.match(second, /"name": /, second);
  } finally {
    await browser.close();
  }
});
