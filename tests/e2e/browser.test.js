// The demo page (/ and /app.js) in headless Chromium (Debian's, driven by playwright-core): two tabs chat and see each
// other online, one tab follows a user's notifications live while the test publishes over HTTP, with the page's CSP
// in force and no console error. The gateway runs with auth on: each tab is opened with its user's token in the URL
// (as scripts/run-local.sh prints them) and a publisher's token for the page's publish form.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { suite } = require('./harness');

const CHROMIUM = process.env.NOTIGATE_CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const s = suite({ auth: true });
let ctx = null,
  profile = null;

async function browser() {
  if (ctx) return ctx;
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (scripts/deps.sh test)`);
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'notigate-e2e-chromium.'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    timeout: 30000,
  });
  s.track(async () => {
    await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
    ctx = null;
  });
  return ctx;
}

// A new tab on the demo page, recording console errors, page errors, failed requests and CSP violations.
async function openPage(context, problems, name, query = '') {
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${name} console: ${m.text()} (${m.location().url || '?'})`);
  });
  page.on('pageerror', (e) => problems.push(`${name} page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`${name} request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${name} HTTP ${r.status()} for ${r.url()}`);
  });
  const res = await page.goto(s.sys.url + '/' + query, { waitUntil: 'load' });
  assert.equal(res.status(), 200);
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'connected', null, {
    timeout: 5000,
    polling: 50,
  });
  return page;
}

const text = (page, sel) => page.locator(sel).innerText();

s.test(
  "two tabs chat and see each other online; a notification published over HTTP shows up live in the user's tab",
  { timeout: 60000 },
  async () => {
    const context = await browser();
    const problems = [];
    const u = `webuser-${process.pid}`;
    const pub = s.sys.token('web-publisher', { scope: 'publish', ttl: 600 });
    const a = await openPage(context, problems, 'tab A', `?token=${s.sys.token(u)}`);
    const b = await openPage(context, problems, 'tab B', `?token=${s.sys.token(`webben-${process.pid}`)}&publish_token=${pub}`);
    assert.equal(await a.inputValue('#user-id'), u, "the token's user is filled in");
    const room = `web-${process.pid}`;

    // join with different names: each sees both online
    await a.fill('#username', 'Ann');
    await a.fill('#room', room);
    await a.click('#join');
    await a.waitForFunction(() => document.getElementById('online').textContent === 'Ann', null, {
      timeout: 5000,
      polling: 50,
    });
    await b.fill('#username', 'Ben');
    await b.fill('#room', room);
    await b.click('#join');
    for (const p of [a, b])
      await p.waitForFunction(
        () => ['Ann', 'Ben'].every((n) => document.getElementById('online').textContent.split(', ').includes(n)),
        null,
        { timeout: 5000, polling: 50 },
      );
    await a.locator('#messages li', { hasText: 'Ben joined' }).waitFor({ timeout: 5000 });

    // each one's message reaches both tabs
    await a.fill('#message', 'hello from Ann');
    await a.click('#send');
    await b.fill('#message', 'hi Ann, Ben here');
    await b.click('#send');
    for (const p of [a, b]) {
      await p.locator('#messages li', { hasText: 'Ann: hello from Ann' }).waitFor({ timeout: 5000 });
      await p.locator('#messages li', { hasText: 'Ben: hi Ann, Ben here' }).waitFor({ timeout: 5000 });
    }

    // tab A follows user U, its token's user (it reconnects with user_id and joins its room again)
    await a.fill('#user-id', u);
    await a.click('#connect');
    await a.waitForFunction((u) => document.getElementById('sid').textContent.includes(`user ${u}`), u, {
      timeout: 5000,
      polling: 50,
    });
    await a.waitForFunction(() => document.getElementById('status').textContent === 'connected', null, {
      timeout: 5000,
      polling: 50,
    });
    await a.waitForTimeout(100); // the session's baseline

    // published by the test over HTTP (like curl): live in A, then in A's merged list;
    // B follows no user and gets nothing
    const p1 = await s.sys.publish(u, 'Your order shipped', 'order');
    const live = a.locator('#live li', { hasText: 'Your order shipped' });
    await live.waitFor({ timeout: 3000 });
    assert.match(await live.innerText(), new RegExp(`#${p1.id} · order`));
    await a.locator('#merged li', { hasText: 'Your order shipped' }).waitFor({ timeout: 3000 });
    assert.match(await text(a, '#merged-meta'), /unread 1/);
    assert.equal(await b.locator('#live li').count(), 0);

    // published from tab B's own form (the page's fetch under connect-src 'self'), shown live in A
    await b.fill('#publish-user', u);
    await b.fill('#publish-message', 'sent from tab B');
    await b.click('#publish');
    await b.waitForFunction(
      () => /^published #\d+$/.test(document.getElementById('publish-result').textContent),
      null,
      { timeout: 5000, polling: 50 },
    );
    await a.locator('#live li', { hasText: 'sent from tab B' }).waitFor({ timeout: 3000 });
    await a.locator('#merged li', { hasText: 'sent from tab B' }).waitFor({ timeout: 3000 });
    assert.equal(await a.locator('#live li').count(), 2);

    // the chat still works after A's reconnect
    await b.fill('#message', 'still there?');
    await b.click('#send');
    await a.locator('#messages li', { hasText: 'Ben: still there?' }).waitFor({ timeout: 5000 });

    for (const [name, p] of [
      ['tab A', a],
      ['tab B', b],
    ]) {
      const csp = await p.evaluate(() => window.__csp);
      assert.deepEqual(csp, [], `${name}: CSP violations`);
    }
    assert.deepEqual(problems, [], 'no console error, page error, failed request or HTTP error');
  },
);
