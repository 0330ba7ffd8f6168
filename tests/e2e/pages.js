// Driving the two pages the way people use them: a customer in the widget, an operator in
// the console. Each helper waits for what a person would wait for.

'use strict';

const assert = require('node:assert/strict');
const { waitInPage } = require('./harness');

/// Open the widget, introduce ourselves and ask `companyName` a first question.
async function customerStartsChat(page, url, { name, city, companyName, text }) {
  await page.goto(url);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=city]', city);
  await page.press('input[name=city]', 'Enter');
  await page.click('text=New conversation');
  const company = page.locator('.sb-company', { hasText: companyName });
  await company.locator('input[type=checkbox]').check();
  await page.fill('.sb-view-new textarea', text);
  await page.click('.sb-view-new button[type=submit]');
  await page.waitForSelector('.sb-thread .sb-input');
}

/// Sign in to the console and open the conversation with `customerName`.
async function operatorOpensChat(page, url, { email, password, customerName }) {
  await page.goto(url);
  await page.fill('input[type=email]', email);
  await page.fill('input[type=password]', password);
  await page.click('button[type=submit]');
  const row = page.locator('.sb-row', { hasText: customerName });
  await row.first().click();
  await page.waitForSelector('.sb-thread .sb-input');
}

/// Type and send with the keyboard (Enter sends).
async function say(page, text) {
  await page.fill('.sb-composer textarea', text);
  await page.press('.sb-composer textarea', 'Enter');
}

/// Wait until the page's connection label reads live over `label`.
async function waitLive(page, label) {
  return waitInPage(page, (expected) => {
    const status = document.querySelector('.sb-status');
    return status && status.textContent === `Live · ${expected}` && status.textContent;
  }, label, `"Live · ${label}"`);
}

/// Stored messages (with ids) as the page shows them, in order.
async function storedMessages(page) {
  return page.$$eval('.sb-messages .sb-message', (items) => items.map((item) => ({
    id: item.getAttribute('data-id'),
    text: item.querySelector('.sb-text').textContent,
  })));
}

/**
 * Wait until every page shows exactly the messages in `expected` (any order between
 * authors, but each once and none pending), then check all pages show them in the same order
 * with ids ascending, and each author's messages in the order they were sent.
 */
async function waitForConversation(pages, expected, perAuthorOrder, what) {
  const want = [...expected].sort();
  for (const page of pages) {
    try {
      await page.waitForFunction((sortedWant) => {
        const items = Array.prototype.slice.call(document.querySelectorAll('.sb-messages .sb-message'));
        if (items.some((i) => !i.getAttribute('data-id'))) return false;
        const texts = items.map((i) => i.querySelector('.sb-text').textContent).sort();
        return texts.join("\u0000") === sortedWant.join("\u0000");
      }, want, { timeout: 45_000, polling: 100 });
    } catch (error) {
      const shown = await page.$$eval('.sb-messages .sb-message', (items) => items.map((i) => ({
        id: i.getAttribute('data-id'), text: i.querySelector('.sb-text').textContent,
      }))).catch(() => 'page gone');
      throw new Error(`${what}: expected each of ${JSON.stringify(want)} once; page shows ${JSON.stringify(shown)}`);
    }
  }
  const views = [];
  for (const page of pages) views.push(await storedMessages(page));
  for (const view of views) {
    assert.deepEqual(view, views[0], `${what}: both pages show the same messages in the same order`);
    const ids = view.map((m) => Number(m.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), `${what}: ids ascend`);
    for (const sequence of perAuthorOrder) {
      const positions = sequence.map((text) => view.findIndex((m) => m.text === text));
      assert.deepEqual(positions, [...positions].sort((a, b) => a - b),
        `${what}: ${JSON.stringify(sequence)} keep the order they were sent in`);
    }
  }
  return views[0];
}

module.exports = {
  customerStartsChat, operatorOpensChat, say, waitLive, storedMessages, waitForConversation,
};
