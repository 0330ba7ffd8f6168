// The transport library choosing for itself: a browser without EventSource and WebSocket
// ends up on long-poll, a WebSocket that a proxy drops falls back to SSE, and the widget
// embedded on another origin works over JSONP (IE6/7's way) and over CORS.

'use strict';

const assert = require('node:assert/strict');
const http = require('node:http');
const { describe, test, before, after } = require('node:test');
const h = require('./harness');
const p = require('./pages');

describe(`transport fallback and cross-origin embedding (${h.BACKEND})`, () => {
  let browser;
  let deployment;
  let seed;
  let operator;           // {token} for API calls as the company's operator
  let embedder;           // a second origin serving a page with the widget's script tag
  const contexts = [];

  before(async () => {
    embedder = await startEmbedder();
    deployment = await h.startDeployment({ SWITCHBOARD_CORS_ORIGINS: embedder.origin });
    embedder.api = deployment.customerNode.url;
    seed = await h.seedCompany(deployment.customerNode);
    operator = await api(deployment.operatorNode, 'POST', '/v1/operators/login',
      { email: seed.email, password: seed.password });
    browser = await h.launchBrowser();
  });
  after(async () => {
    for (const context of contexts) await context.close();
    if (browser) await browser.close();
    if (deployment) await h.stopDeployment(deployment);
    if (embedder) embedder.server.close();
  });

  async function newPage(viewport = { width: 420, height: 760 }) {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    const page = await context.newPage();
    page.on('dialog', (dialog) => dialog.dismiss());
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    return page;
  }

  /// The kinds of request (script, xhr, fetch, …) the page makes to the API, as it goes.
  function apiRequestKinds(page) {
    const kinds = new Set();
    page.on('request', (request) => {
      if (request.url().startsWith(`${deployment.customerNode.url}/v1/`)) kinds.add(request.resourceType());
    });
    return kinds;
  }

  /// The operator answers the newest conversation through the API; the page must show it.
  async function operatorAnswers(page, customerText, answer) {
    const { conversations } = await api(deployment.operatorNode, 'GET', '/v1/conversations', null, operator.token);
    const conversation = conversations.find((c) => c.last_message && c.last_message.excerpt === customerText);
    assert.ok(conversation, `the operator sees the conversation that starts with "${customerText}"`);
    await api(deployment.operatorNode, 'POST', `/v1/conversations/${conversation.id}/messages`,
      { text: answer, client_msg_id: `op-${Date.now()}` }, operator.token);
    await p.waitForConversation([page], [customerText, answer], [], 'the answer arrives');
    return conversation.id;
  }

  test('without EventSource and WebSocket the widget falls back to long-poll by itself', { timeout: 120_000 }, async () => {
    const page = await newPage();
    await page.addInitScript(() => { delete window.EventSource; delete window.WebSocket; });
    await p.customerStartsChat(page, `${deployment.customerNode.url}/`, {
      name: 'Ivan', city: 'Omsk', companyName: seed.name, text: 'asked from an old browser',
    });
    assert.equal(await page.evaluate(() => typeof window.WebSocket + typeof window.EventSource), 'undefinedundefined');
    await p.waitLive(page, 'long-poll');
    await operatorAnswers(page, 'asked from an old browser', 'answered over long-poll');
    await h.screenshot(page, `${h.BACKEND}-fallback-longpoll-customer`);
  });

  test('a WebSocket that is dropped as soon as it opens gives way to SSE', { timeout: 120_000 }, async () => {
    const page = await newPage();
    let dropped = 0;
    await page.routeWebSocket(/\/v1\/ws/, (socket) => { dropped += 1; socket.close(); });
    await p.customerStartsChat(page, `${deployment.customerNode.url}/`, {
      name: 'Petr', city: 'Tomsk', companyName: seed.name, text: 'asked behind a bad proxy',
    });
    await p.waitLive(page, 'SSE');
    assert.ok(dropped >= 2, `WebSocket was tried (${dropped} times) before giving up`);
    await operatorAnswers(page, 'asked behind a bad proxy', 'answered over SSE');
  });

  test('embedded on another origin, JSONP carries everything', { timeout: 120_000 }, async () => {
    const page = await newPage();
    const kinds = apiRequestKinds(page);
    await page.goto(`${embedder.origin}/shop.html?via=jsonp`);
    await page.click('text=Chat with us');
    await customerStartsInWidget(page, 'Nina', 'embedded over JSONP');
    await p.waitLive(page, 'JSONP');
    await operatorAnswers(page, 'embedded over JSONP', 'answered over JSONP');
    assert.deepEqual([...kinds], ['script'], 'every API call was a <script> request');
    await h.screenshot(page, `${h.BACKEND}-embedded-jsonp-customer`);
    // A parked JSONP poll must not keep the page "loading": reloaded, the shop's page finishes
    // loading at once, and the chat comes back live.
    await page.reload({ waitUntil: 'load', timeout: 10_000 });
    await page.click('text=Chat with us');
    await p.waitLive(page, 'JSONP');
    await h.sleep(1000);
    assert.equal(await page.evaluate(() => document.readyState), 'complete');
  });

  test('embedded on an allowed origin, the widget uses CORS and WebSocket', { timeout: 120_000 }, async () => {
    const page = await newPage({ width: 1000, height: 700 });
    const kinds = apiRequestKinds(page);
    await page.goto(`${embedder.origin}/shop.html`);
    await page.click('text=Chat with us');
    await customerStartsInWidget(page, 'Oleg', 'embedded over CORS');
    await p.waitLive(page, 'WebSocket');
    const conversation = await operatorAnswers(page, 'embedded over CORS', 'answered over WebSocket');
    assert.ok(!kinds.has('script'), `no JSONP was needed (${[...kinds]})`);
    await h.screenshot(page, `${h.BACKEND}-embedded-cors-customer`);

    // Folded away, the widget still receives but does not claim the customer read anything.
    const readUpTo = async () => (await api(deployment.operatorNode, 'GET', `/v1/conversations/${conversation}`,
      null, operator.token)).read_up_to.customer;
    await page.click('text=Close chat');
    const late = await api(deployment.operatorNode, 'POST', `/v1/conversations/${conversation}/messages`,
      { text: 'sent while the chat was folded', client_msg_id: `fold-${Date.now()}` }, operator.token);
    await p.waitForConversation([page], ['embedded over CORS', 'answered over WebSocket', 'sent while the chat was folded'],
      [], 'the message reaches the folded widget');
    await h.sleep(500);
    assert.ok(await readUpTo() < late.message.id, 'not read while folded');
    await page.click('text=Chat with us');
    for (let i = 0; i < 100 && await readUpTo() < late.message.id; i++) await h.sleep(100);
    assert.equal(await readUpTo(), late.message.id, 'read once the chat is open again');
  });

  test('an IE8/9-like browser on another origin talks through XDomainRequest', { timeout: 120_000 }, async () => {
    const page = await newPage();
    await page.addInitScript(emulateIE9);
    const seen = [];
    page.on('request', (request) => {
      if (request.url().startsWith(`${deployment.customerNode.url}/v1/`)) {
        seen.push({ kind: request.resourceType(), method: request.method(), url: request.url(),
          type: request.headers()['content-type'] || null, auth: request.headers().authorization || null });
      }
    });
    await page.goto(`${embedder.origin}/shop.html`);
    await page.click('text=Chat with us');
    await customerStartsInWidget(page, 'Lev', 'asked from IE9');
    await p.waitLive(page, 'long-poll');
    await operatorAnswers(page, 'asked from IE9', 'answered through XDomainRequest');
    const xdr = seen.filter((r) => r.kind !== 'script');
    assert.ok(xdr.length > 3, 'requests went through XDomainRequest');
    for (const request of xdr) {
      assert.equal(request.auth, null, 'XDomainRequest cannot send headers');
      if (!request.url.endsWith('/v1/customers')) assert.match(request.url, /access_token=/, 'the token rides in the query');
      if (request.method === 'POST') assert.match(request.type, /^text\/plain/, 'XDomainRequest bodies are text/plain');
    }
  });

  test('an IE6/7-like browser (no JSON, no CORS, no XDomainRequest) picks JSONP by itself', { timeout: 120_000 }, async () => {
    const page = await newPage();
    await page.addInitScript(emulateIE7);
    const kinds = apiRequestKinds(page);
    await page.goto(`${embedder.origin}/shop.html`);
    await page.click('text=Chat with us');
    await customerStartsInWidget(page, 'Mila', 'asked from IE7');
    assert.equal(await page.evaluate(() => typeof window.JSON), 'undefined');
    await p.waitLive(page, 'JSONP');
    await operatorAnswers(page, 'asked from IE7', 'answered with "quotes", \\ and ünïcödé ✓');
    assert.deepEqual([...kinds], ['script']);
    // A message too long for an address IE would keep is refused on the page, not retried forever.
    await p.say(page, 'длинное сообщение '.repeat(40));
    await h.waitInPage(page, () => {
      const failed = document.querySelector('.sb-failed .sb-meta');
      return failed && failed.textContent.indexOf('not sent: too long for this browser') === 0;
    }, null, 'the long message marked as not sent');
  });

  async function customerStartsInWidget(page, name, text) {
    await page.fill('input[name=name]', name);
    await page.press('input[name=name]', 'Enter');
    await page.click('text=New conversation');
    await page.locator('.sb-company', { hasText: seed.name }).locator('input[type=checkbox]').check();
    await page.fill('.sb-view-new textarea', text);
    await page.click('.sb-view-new button[type=submit]');
    await page.waitForSelector('.sb-thread .sb-input');
  }
});

/// What IE8/9 have for other origins: XDomainRequest (GET and POST only, no headers, bodies
/// sent as text/plain, no status on failure), and no CORS XHR, WebSocket or EventSource.
/// XDomainRequest is rebuilt on the real XMLHttpRequest with exactly those limits.
function emulateIE9() {
  const RealXHR = window.XMLHttpRequest;
  delete window.WebSocket;
  delete window.EventSource;
  // IE8/9's XMLHttpRequest has no withCredentials: it cannot go to another origin.
  window.XMLHttpRequest = function OldXMLHttpRequest() {
    return { open() { throw new Error('a cross-origin page in IE8/9 cannot use XMLHttpRequest'); } };
  };
  window.XDomainRequest = function XDomainRequest() { this.timeout = 0; this.responseText = ''; };
  window.XDomainRequest.prototype.open = function (method, url) {
    if (method !== 'GET' && method !== 'POST') throw new Error(`XDomainRequest cannot ${method}`);
    this.xhr = new RealXHR();
    this.xhr.open(method, url, true);
  };
  window.XDomainRequest.prototype.send = function (body) {
    const self = this;
    const xhr = this.xhr;
    if (this.timeout) xhr.timeout = this.timeout;
    xhr.setRequestHeader('Content-Type', 'text/plain');
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) { self.responseText = xhr.responseText; self.onload(); }
      else self.onerror();
    };
    xhr.onerror = () => self.onerror();
    xhr.ontimeout = () => self.ontimeout();
    xhr.send(body || null);
  };
  window.XDomainRequest.prototype.abort = function () { if (this.xhr) this.xhr.abort(); };
}

/// IE6/7: none of JSON, CORS XHR, XDomainRequest, WebSocket or EventSource. (Same-origin XHR
/// stays; a page on another origin has only script tags.)
function emulateIE7() {
  delete window.JSON;
  delete window.WebSocket;
  delete window.EventSource;
  const RealXHR = window.XMLHttpRequest;
  window.XMLHttpRequest = function OldXMLHttpRequest() {
    const xhr = new RealXHR();
    return { open: xhr.open.bind(xhr), send: xhr.send.bind(xhr) };
  };
}

/// A shop's site on another loopback port, with the widget's one script tag.
async function startEmbedder() {
  const port = await h.freePort();
  const embedder = { origin: `http://127.0.0.1:${port}`, api: null };
  embedder.server = http.createServer((request, response) => {
    const url = new URL(request.url, embedder.origin);
    if (url.pathname !== '/shop.html') {
      response.writeHead(404).end();
      return;
    }
    const transport = url.searchParams.get('via');
    const attribute = transport ? ` data-transport="${transport}"` : '';
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>A shop</title>
<link rel="icon" href="data:,"></head>
<body style="font-family: serif; background: #fdf6e3"><h1>Bob's coffee beans</h1>
<p>Questions? Use the chat in the corner.</p>
<script src="${embedder.api}/widget.js"${attribute} async></script></body></html>`);
  });
  await new Promise((resolve) => embedder.server.listen(port, '127.0.0.1', resolve));
  return embedder;
}

async function api(node, method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(node.url + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}
