// A customer (widget) and an operator (console) chat both ways on each transport, forced with
// ?transport=, while the server is killed and started again: every message arrives once, in
// order, on both pages. In the cluster run the customer is on node A and the operator on B.

'use strict';

const assert = require('node:assert/strict');
const { describe, test, before, after } = require('node:test');
const h = require('./harness');
const p = require('./pages');

const LABELS = { ws: 'WebSocket', sse: 'SSE', longpoll: 'long-poll', jsonp: 'JSONP' };
const XSS = '<img src=x onerror=alert(1)>';

describe(`chat on every transport (${h.BACKEND})`, () => {
  let browser;
  before(async () => { browser = await h.launchBrowser(); });
  after(async () => { await browser.close(); });

  for (const transport of Object.keys(LABELS)) {
    test(`${transport}: both ways, through a server kill, nothing lost or doubled`, { timeout: 240_000 }, async () => {
      const deployment = await h.startDeployment();
      const link = await new h.Link(deployment.customerNode).listen();
      const contexts = [];
      try {
        await chatThroughKills(browser, deployment, link, transport, contexts);
      } catch (error) {
        for (const node of deployment.nodes) {
          console.error(`--- ${node.name} log ---\n${node.log.slice(-40).join('')}`);
        }
        // What each page showed when it went wrong, next to the other screenshots.
        for (const [i, context] of contexts.entries()) {
          for (const page of context.pages()) {
            await h.screenshot(page, `${h.BACKEND}-${transport}-failed-${i}`).catch(() => {});
          }
        }
        throw error;
      } finally {
        for (const context of contexts) await context.close();
        await link.close();
        await h.stopDeployment(deployment);
      }
    });
  }
});

/// The customer reaches their node through `link`, a proxy whose network can be cut.
async function chatThroughKills(browser, deployment, link, transport, contexts) {
  const { customerNode, operatorNode } = deployment;
  const seed = await h.seedCompany(customerNode);
  const customerContext = await browser.newContext({ viewport: { width: 420, height: 760 } });
  const operatorContext = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  contexts.push(customerContext, operatorContext);
  const customer = await customerContext.newPage();
  const operator = await operatorContext.newPage();
  const trouble = watch([customer, operator], [link.url, operatorNode.url]);

  const c1 = `c1 hello ${XSS}`;
  await p.customerStartsChat(customer, `${link.url}/?transport=${transport}`, {
    name: 'Vera <b>V</b>', city: '<i>Kazan</i>', companyName: seed.name, text: c1,
  });
  await p.operatorOpensChat(operator, `${operatorNode.url}/console?transport=${transport}`, {
    email: seed.email, password: seed.password, customerName: 'Vera',
  });
  await p.waitLive(customer, LABELS[transport]);
  await p.waitLive(operator, LABELS[transport]);
  await p.waitForConversation([customer, operator], [c1], [], 'first message');

  // Names, cities and messages are text, never markup.
  for (const page of [customer, operator]) {
    assert.equal(await page.locator('.sb-messages img').count(), 0, 'no <img> was made from a message');
    assert.equal(await page.locator('.sb-messages b, .sb-row i, .sb-client i').count(), 0);
  }
  assert.equal(await operator.locator('.sb-client').textContent(),
    `Vera <b>V</b> (<i>Kazan</i>, ${await operator.evaluate(() => {
      const d = new Date();
      return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
    })})`, 'the client is shown with their city and local time (UTC here)');

  await p.say(operator, 'o1 how can I help?');
  await p.waitForConversation([customer, operator], [c1, 'o1 how can I help?'], [], 'operator reply');
  await p.say(customer, 'c2 do you have decaf?');
  await p.waitForConversation([customer, operator], [c1, 'o1 how can I help?', 'c2 do you have decaf?'],
    [], 'customer follow-up');
  // The operator has the chat open and visible, so the customer's messages show as read.
  await h.waitInPage(customer, () => document.querySelectorAll('.sb-mine .sb-tick.sb-read').length === 2,
    null, 'read ticks on both customer messages');

  // Cut: kill every server process. Both sides write while it is down.
  for (const node of deployment.nodes) await node.stop('SIGKILL');
  await p.say(customer, 'c3 still there?');
  await p.say(customer, 'c4 hello?');
  await p.say(operator, 'o2 yes, one moment');
  await h.waitInPage(customer, () => /Connecting|Offline/.test(document.querySelector('.sb-status').textContent),
    null, 'the customer page to notice the cut');
  assert.equal(await customer.locator('.sb-pending').count(), 2, 'unsent messages are shown as pending');
  await h.sleep(1500);
  for (const node of deployment.nodes) await node.start();

  const all = [c1, 'o1 how can I help?', 'c2 do you have decaf?', 'c3 still there?', 'c4 hello?',
    'o2 yes, one moment'];
  await p.waitForConversation([customer, operator], all,
    [[c1, 'c2 do you have decaf?', 'c3 still there?', 'c4 hello?'], ['o1 how can I help?', 'o2 yes, one moment']],
    'after the restart');
  await p.waitLive(customer, LABELS[transport]);
  await p.waitLive(operator, LABELS[transport]);

  // The customer's network is cut while both write; restored, it catches up from its cursor
  // and sends what waited.
  link.cut();
  await h.waitInPage(customer, () => /Connecting|Offline/.test(document.querySelector('.sb-status').textContent),
    null, 'the customer page to notice the cut');
  await p.say(operator, 'o3 written while the customer was cut off');
  await p.say(customer, 'c5 written while cut off');
  await h.sleep(1000);
  link.restore();
  await p.waitForConversation([customer, operator],
    [...all, 'o3 written while the customer was cut off', 'c5 written while cut off'], [], 'after the cut');
  await p.waitLive(customer, LABELS[transport]);

  await h.screenshot(customer, `${h.BACKEND}-${transport}-customer`);
  await h.screenshot(operator, `${h.BACKEND}-${transport}-operator`);
  trouble.check();
}

/// Fail on script errors, alert() calls and requests anywhere but our own servers.
function watch(pages, origins) {
  const problems = [];
  for (const page of pages) {
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('dialog', (dialog) => { problems.push(`dialog: ${dialog.message()}`); dialog.dismiss(); });
    page.on('request', (request) => {
      const url = request.url();
      if (!origins.some((origin) => url.startsWith(origin)) && !url.startsWith('data:')) {
        problems.push(`request outside the server: ${url}`);
      }
    });
  }
  return { check: () => assert.deepEqual(problems, [], 'no script errors, dialogs or outside requests') };
}
