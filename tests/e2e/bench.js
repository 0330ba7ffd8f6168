// Delivery latency in a real browser, per transport, side by side in one run: an operator
// sends messages through the API and the customer's widget (forced to one transport) puts
// them on screen; the time from the send to the message's node appearing in the page is
// recorded. Not a test (nothing is asserted); it prints a table.
//
//   cd tests/e2e && npm run bench -- [messages per transport, default 200]
//
// Uses SWITCHBOARD_BIN (build with `cargo build --release` and point it at
// target/release/switchboard for figures worth comparing). With E2E_BACKEND=cluster the
// operator sends to node B and the customer's page is on node A (PostgreSQL + Redis).

'use strict';

const h = require('./harness');

const TRANSPORTS = ['ws', 'sse', 'longpoll', 'jsonp'];
const COUNT = Number(process.argv[2] || 200);
const GAP_MS = 20;

async function api(node, method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(node.url + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const deployment = await h.startDeployment();
  const node = deployment.customerNode;
  const browser = await h.launchBrowser();
  const rows = [];
  try {
    const seed = await h.seedCompany(node);
    const operator = await api(node, 'POST', '/v1/operators/login', { email: seed.email, password: seed.password });
    for (const transport of TRANSPORTS) {
      const customer = await api(node, 'POST', '/v1/customers', { name: `Bench ${transport}`, city: 'Omsk', timezone: 'Asia/Omsk' });
      const opened = await api(node, 'POST', '/v1/conversations',
        { company_id: seed.companyId, text: 'start', client_msg_id: `bench-${transport}` }, customer.token);
      const conversation = opened.conversation.id;
      const context = await browser.newContext();
      await context.addInitScript(([key, identity]) => {
        window.localStorage.setItem(key, identity);
        window.__seen = {};
        new MutationObserver((mutations) => {
          const at = performance.timeOrigin + performance.now();
          for (const m of mutations) {
            for (const added of m.addedNodes) {
              const text = added.querySelector && added.querySelector('.sb-text');
              if (text && !(text.textContent in window.__seen)) window.__seen[text.textContent] = at;
            }
          }
        }).observe(document, { childList: true, subtree: true });
      }, [`switchboard.customer:${node.url}`, JSON.stringify({ id: customer.id, token: customer.token, name: 'Bench' })]);
      const page = await context.newPage();
      await page.goto(`${node.url}/?transport=${transport}&conversation=${conversation}`);
      await page.waitForSelector('.sb-thread .sb-input');
      await h.waitInPage(page, (label) => document.querySelector('.sb-status').textContent.indexOf('Live') === 0 && label, transport, 'live');
      // Warm up one message, then measure.
      const sentAt = {};
      for (let i = 0; i <= COUNT; i++) {
        const text = `${transport} message ${i}`;
        sentAt[text] = Date.now();
        await api(deployment.operatorNode, 'POST', `/v1/conversations/${conversation}/messages`,
          { text, client_msg_id: `${transport}-${i}` }, operator.token);
        await h.sleep(GAP_MS);
      }
      // "start" from the history, the warm-up and the measured messages.
      await h.waitInPage(page, (n) => Object.keys(window.__seen).length >= n, COUNT + 2, "every message", 60_000);
      const seen = await page.evaluate(() => window.__seen);
      const latencies = [];
      for (let i = 1; i <= COUNT; i++) {
        const text = `${transport} message ${i}`;
        latencies.push(seen[text] - sentAt[text]);
      }
      latencies.sort((a, b) => a - b);
      rows.push({
        transport,
        messages: COUNT,
        p50: percentile(latencies, 50).toFixed(1),
        p95: percentile(latencies, 95).toFixed(1),
        p99: percentile(latencies, 99).toFixed(1),
        max: latencies[latencies.length - 1].toFixed(1),
      });
      await context.close();
    }
  } finally {
    await browser.close();
    await h.stopDeployment(deployment);
  }
  console.log(`send (API) → on screen in Chromium, ms; ${h.BACKEND}; ${COUNT} messages per transport, ${GAP_MS} ms apart`);
  console.log('| transport | messages | p50 | p95 | p99 | max |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.transport} | ${r.messages} | ${r.p50} | ${r.p95} | ${r.p99} | ${r.max} |`);
}

main().catch((error) => { console.error(error); process.exit(1); });
