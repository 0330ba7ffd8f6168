// What the widget and the console offer beyond sending and receiving: branches and the
// branch filter, the console's order (oldest unanswered first) with unread counts, waiting
// times and the client's city and local time, typing both ways, a notification and a tab
// title count while the page is hidden, asking several companies at once, deep links.

'use strict';

const assert = require('node:assert/strict');
const { describe, test, before, after } = require('node:test');
const h = require('./harness');
const p = require('./pages');

/// Lets a test hide the page (document.hidden) and records the system notifications shown.
function hideableWithNotificationSpy() {
  window.__hidden = false;
  window.__shown = [];
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => window.__hidden });
  Object.defineProperty(document, 'visibilityState', {
    configurable: true, get: () => (window.__hidden ? 'hidden' : 'visible'),
  });
  const Real = window.Notification;
  if (Real) {
    const Spy = function (title, options) {
      window.__shown.push({ title, body: options && options.body });
      return new Real(title, options);
    };
    Object.defineProperty(Spy, 'permission', { get: () => Real.permission });
    Spy.requestPermission = Real.requestPermission.bind(Real);
    window.Notification = Spy;
  }
}

/// HH:MM in `timeZone` now and a minute ago (a clock read may straddle a minute).
async function clock(page, timeZone) {
  return page.evaluate((zone) => {
    const at = (ms) => new Date(ms).toLocaleTimeString('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    return { now: at(Date.now()), previous: at(Date.now() - 60_000) };
  }, timeZone);
}

async function setHidden(page, hidden) {
  await page.evaluate((value) => {
    window.__hidden = value;
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

describe(`widget and console features (${h.BACKEND})`, () => {
  let browser;
  let deployment;
  let seed;
  let branchId;
  const contexts = [];

  before(async () => {
    deployment = await h.startDeployment();
    seed = await h.seedCompany(deployment.customerNode);
    const company = await (await fetch(`${deployment.customerNode.url}/v1/companies/${seed.companyId}`)).json();
    branchId = company.branches[0].id;
    browser = await h.launchBrowser();
  });
  after(async () => {
    for (const context of contexts) await context.close();
    if (browser) await browser.close();
    if (deployment) await h.stopDeployment(deployment);
  });

  async function newPage(options) {
    const context = await browser.newContext({ viewport: { width: 420, height: 760 }, ...options });
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (error) => { throw error; });
    return page;
  }

  test('console: order, unread, waiting, city and local time, branch filter, typing, hidden-tab cues', { timeout: 180_000 }, async () => {
    const customerUrl = deployment.customerNode.url;
    // Anna in Moscow writes to the Moscow branch first; Boris in Kazan to the company after.
    const anna = await newPage({ timezoneId: 'Europe/Moscow' });
    await anna.context().grantPermissions(['notifications'], { origin: customerUrl });
    await anna.addInitScript(hideableWithNotificationSpy);
    await anna.goto(`${customerUrl}/`);
    await anna.fill('input[name=name]', 'Anna');
    await anna.fill('input[name=city]', 'Moscow');
    await anna.press('input[name=city]', 'Enter');
    await anna.click('text=New conversation');
    const card = anna.locator('.sb-company', { hasText: seed.name });
    await card.locator('input[type=checkbox]').check();
    await card.locator('select').selectOption(String(branchId));
    await anna.fill('.sb-view-new textarea', 'Is the Moscow shop open on Sunday?');
    await anna.click('.sb-view-new button[type=submit]');
    await anna.waitForSelector('.sb-thread .sb-input');
    assert.match(await anna.locator('.sb-title').textContent(), /Moscow shop/);
    assert.match(await anna.locator('.sb-chat-place').textContent(), /Local time there: Moscow, \d\d:\d\d/);

    await h.sleep(1100);
    const boris = await newPage({ timezoneId: 'Europe/Samara' });
    await p.customerStartsChat(boris, `${customerUrl}/`, {
      name: 'Boris', city: 'Kazan', companyName: seed.name, text: 'Do you deliver to Kazan?',
    });

    const operator = await newPage({ viewport: { width: 1100, height: 720 } });
    await operator.addInitScript(hideableWithNotificationSpy);
    await operator.goto(`${deployment.operatorNode.url}/console`);
    await operator.fill('input[type=email]', seed.email);
    await operator.fill('input[type=password]', seed.password);
    await operator.press('input[type=password]', 'Enter');
    await operator.waitForSelector('.sb-row');

    const rows = await operator.$$eval('.sb-row', (items) => items.map((i) => ({
      title: i.querySelector('.sb-row-title').textContent,
      unread: i.querySelector('.sb-badge') && i.querySelector('.sb-badge').textContent,
      meta: i.querySelector('.sb-row-meta') && i.querySelector('.sb-row-meta').textContent,
    })));
    const moscow = await clock(operator, 'Europe/Moscow');
    const samara = await clock(operator, 'Europe/Samara');
    const normalise = (row) => ({ ...row, title: row.title.replace(moscow.previous, moscow.now).replace(samara.previous, samara.now) });
    assert.deepEqual(rows.map(normalise), [
      { title: `Anna (Moscow, ${moscow.now})`, unread: '1', meta: 'Moscow shop · waiting 0 min' },
      { title: `Boris (Kazan, ${samara.now})`, unread: '1', meta: 'waiting 0 min' },
    ], 'oldest unanswered first, with the client\'s city and local time');

    // The branch filter shows only that branch's chats.
    await operator.selectOption('.sb-filter select', String(branchId));
    await h.waitInPage(operator, () => document.querySelectorAll('.sb-row').length === 1 &&
      document.querySelector('.sb-row-title').textContent.indexOf('Anna') === 0, null, 'only the branch chat');
    await operator.selectOption('.sb-filter select', '');
    await h.waitInPage(operator, () => document.querySelectorAll('.sb-row').length === 2, null, 'both chats again');

    // Opening a chat reads it: the badge goes and Anna sees her message read.
    await operator.locator('.sb-row', { hasText: 'Anna' }).click();
    await operator.waitForSelector('.sb-thread .sb-input');
    assert.match(await operator.locator('.sb-client').textContent(),
      new RegExp(`^Anna \\(Moscow, (${moscow.previous}|${moscow.now}|${(await clock(operator, 'Europe/Moscow')).now})\\)$`));
    await h.waitInPage(operator, () => {
      const row = Array.prototype.find.call(document.querySelectorAll('.sb-row'), (r) => r.textContent.indexOf('Anna') === 0);
      return row && !row.querySelector('.sb-badge');
    }, null, 'Anna\'s unread badge to go');
    await h.waitInPage(anna, () => document.querySelectorAll('.sb-tick.sb-read').length === 1, null, 'Anna\'s read tick');

    // Typing, both ways.
    await operator.type('.sb-composer textarea', 'Yes');
    await h.waitInPage(anna, (name) => document.querySelector('.sb-typing').textContent === `${name} is typing…`,
      seed.name, 'the typing indicator on Anna\'s page');
    await anna.type('.sb-composer textarea', 'Thanks');
    await h.waitInPage(operator, () => document.querySelector('.sb-typing').textContent === 'Anna is typing…',
      null, 'the typing indicator in the console');
    await anna.fill('.sb-composer textarea', '');

    // Anna's tab is hidden: the answer brings a system notification and a count in the title.
    await setHidden(anna, true);
    await operator.fill('.sb-composer textarea', 'Yes, 10:00 to 18:00.');
    await operator.press('.sb-composer textarea', 'Enter');
    await h.waitInPage(anna, () => window.__shown.length > 0 && window.__shown, null, 'a system notification');
    const shown = await anna.evaluate(() => window.__shown);
    assert.deepEqual(shown[0], { title: 'New message from Olga', body: 'Yes, 10:00 to 18:00.' });
    assert.match(await anna.title(), /^\(1\) /);
    assert.equal(await anna.locator('.sb-tick.sb-read').count(), 1, 'hidden, Anna has not read the answer');
    await setHidden(anna, false);
    assert.doesNotMatch(await anna.title(), /^\(/);

    // The console, hidden, counts new client messages in its title.
    await setHidden(operator, true);
    await p.say(boris, 'Hello? Anyone?');
    await h.waitInPage(operator, () => /^\(1\) /.test(document.title), null, 'the console\'s title count');
    await setHidden(operator, false);

    await h.screenshot(anna, `${h.BACKEND}-features-customer`);
    await h.screenshot(operator, `${h.BACKEND}-features-operator`);
  });

  test('ask several companies at once, then open a chat from a deep link', { timeout: 120_000 }, async () => {
    const tea = await h.seedCompany(deployment.customerNode, 'Tea House');
    const page = await newPage();
    await page.goto(`${deployment.customerNode.url}/`);
    await page.fill('input[name=name]', 'Gleb');
    await page.press('input[name=name]', 'Enter');
    await page.click('text=New conversation');
    for (const name of [seed.name, tea.name]) {
      await page.locator('.sb-company', { hasText: name }).locator('input[type=checkbox]').check();
    }
    await page.fill('.sb-view-new textarea', 'Who has oat milk?');
    await h.screenshot(page, `${h.BACKEND}-features-new-conversation`);
    await page.click('.sb-view-new button[type=submit]');
    await h.waitInPage(page, () => document.querySelectorAll('.sb-view-home .sb-row').length === 2, null,
      'two conversations on the home list');
    const titles = await page.$$eval('.sb-row-title', (items) => items.map((i) => i.textContent).sort());
    assert.deepEqual(titles, [seed.name, tea.name].sort());
    // The widget remembers its customer on this device.
    await page.reload();
    await h.waitInPage(page, () => document.querySelectorAll('.sb-view-home .sb-row').length === 2, null,
      'the same two conversations after a reload');
    assert.equal(await page.locator('input[name=name]').count(), 0, 'no second introduction');
    await h.screenshot(page, `${h.BACKEND}-features-customer-home`);
    // The link in the customer's e-mails opens the chat itself.
    const mine = await page.evaluate(() => document.querySelector('.sb-widget').switchboard.token);
    const own = await (await fetch(`${deployment.customerNode.url}/v1/conversations`, {
      headers: { authorization: `Bearer ${mine}` },
    })).json();
    await page.goto(`${deployment.customerNode.url}/?conversation=${own.conversations[0].id}`);
    await p.waitForConversation([page], ['Who has oat milk?'], [], 'the chat from the e-mail link');

    // The Tea House operator follows the e-mail link straight into the chat.
    const login = await (await fetch(`${deployment.operatorNode.url}/v1/operators/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: tea.email, password: tea.password }),
    })).json();
    const list = await (await fetch(`${deployment.operatorNode.url}/v1/conversations`, {
      headers: { authorization: `Bearer ${login.token}` },
    })).json();
    assert.equal(list.conversations.length, 1);
    const operator = await newPage({ viewport: { width: 1100, height: 720 } });
    await operator.goto(`${deployment.operatorNode.url}/console?conversation=${list.conversations[0].id}`);
    await operator.fill('input[type=email]', tea.email);
    await operator.fill('input[type=password]', tea.password);
    await operator.press('input[type=password]', 'Enter');
    await p.waitForConversation([operator], ['Who has oat milk?'], [], 'the deep-linked chat');
    assert.match(await operator.locator('.sb-client').textContent(), /^Gleb/);
  });

  test('the console works from the keyboard alone', { timeout: 120_000 }, async () => {
    const page = await newPage({ viewport: { width: 1100, height: 720 } });
    await page.goto(`${deployment.operatorNode.url}/console`);
    // The e-mail field has the focus; Tab moves on, Enter submits.
    await page.keyboard.type(seed.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(seed.password);
    await page.keyboard.press('Enter');
    await page.waitForSelector('.sb-row');
    // Tab through the page until a conversation row has the focus, then open it.
    for (let i = 0; i < 10; i++) {
      const onRow = await page.evaluate(() => document.activeElement.className.indexOf('sb-row') !== -1);
      if (onRow) break;
      await page.keyboard.press('Tab');
    }
    const focused = await page.evaluate(() => document.activeElement.className);
    assert.match(focused, /sb-row/, 'a conversation row can take the focus');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.sb-thread .sb-input');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'sb-input', 'the reply box has the focus');
    await page.keyboard.type('Typed without a mouse');
    await page.keyboard.press('Enter');
    await h.waitInPage(page, () => Array.prototype.some.call(document.querySelectorAll('.sb-message[data-id] .sb-text'),
      (t) => t.textContent === 'Typed without a mouse'), null, 'the keyboard reply stored');

    // The same console on a phone-sized screen.
    const phone = await newPage({ viewport: { width: 390, height: 800 } });
    await phone.goto(`${deployment.operatorNode.url}/console`);
    await phone.fill('input[type=email]', seed.email);
    await phone.fill('input[type=password]', seed.password);
    await phone.press('input[type=password]', 'Enter');
    await phone.locator('.sb-row').first().click();
    await phone.waitForSelector('.sb-thread .sb-input');
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `nothing sticks out sideways on a phone (${width}px wide)`);
    await h.screenshot(phone, `${h.BACKEND}-features-operator-phone`);
  });

  test('Web Push: the offer registers the service worker and reports what the browser allowed', { timeout: 120_000 }, async () => {
    const url = deployment.customerNode.url;
    const page = await newPage();
    await page.context().grantPermissions(['notifications'], { origin: url });
    await page.goto(`${url}/`);
    await page.fill('input[name=name]', 'Pavel');
    await page.press('input[name=name]', 'Enter');
    await page.click('text=Notify me on this device');
    // This machine's Chromium cannot reach a push service, so subscribing fails; the page
    // must say so rather than claim notifications are on.
    const outcome = await h.waitInPage(page, () => {
      const offer = document.querySelector('.sb-quiet');
      return offer && /^(Notifications are on|Could not turn notifications on)$/.test(offer.textContent) && offer.textContent;
    }, null, 'the outcome of the push subscription', 30_000);
    const scope = await page.evaluate(async () => {
      const registration = await navigator.serviceWorker.getRegistration();
      return registration && registration.scope;
    });
    assert.equal(scope, `${url}/`, 'sw.js registered for the whole site');
    assert.ok(outcome);
  });

  test('history comes in pages: the newest first, earlier ones on request, in order', { timeout: 120_000 }, async () => {
    const url = deployment.customerNode.url;
    const post = async (path, body, token) => {
      const response = await fetch(url + path, {
        method: 'POST', body: JSON.stringify(body),
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      });
      return response.json();
    };
    const customer = await post('/v1/customers', { name: 'Hanna', city: 'Sochi', timezone: 'Europe/Moscow' });
    const opened = await post('/v1/conversations', { company_id: seed.companyId, text: 'history 1' }, customer.token);
    const conversation = opened.conversation.id;
    const texts = ['history 1'];
    for (let i = 2; i <= 120; i++) {
      texts.push(`history ${i}`);
      await post(`/v1/conversations/${conversation}/messages`, { text: `history ${i}`, client_msg_id: `h${i}` }, customer.token);
    }
    const page = await newPage();
    await page.addInitScript(([key, identity]) => window.localStorage.setItem(key, identity),
      [`switchboard.customer:${url}`, JSON.stringify({ id: customer.id, token: customer.token, name: 'Hanna' })]);
    await page.goto(`${url}/?conversation=${conversation}`);
    await p.waitForConversation([page], texts.slice(70), [], 'the newest page');
    await page.click('text=Earlier messages');
    await p.waitForConversation([page], texts.slice(20), [], 'two pages');
    await page.click('text=Earlier messages');
    await p.waitForConversation([page], texts, [texts], 'the whole history');
    assert.equal(await page.locator('.sb-earlier').isVisible(), false, 'nothing earlier to offer');
  });
});
