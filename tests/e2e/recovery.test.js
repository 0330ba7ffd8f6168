// The server restored from a backup: every open page holds a cursor its inbox never reached
// (the events after the backup are gone). The pages must notice (400 bad_cursor), start over
// from the inbox's head, show what the restored server holds, and go on receiving.

'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, test, before, after } = require('node:test');
const h = require('./harness');
const p = require('./pages');

describe(`recovery from a backup (${h.BACKEND})`, () => {
  let browser;
  before(async () => { browser = await h.launchBrowser(); });
  after(async () => { await browser.close(); });

  for (const transport of ['ws', 'longpoll']) {
    test(`${transport}: pages start over when the server goes back in time`, { timeout: 180_000 }, async (t) => {
      if (h.BACKEND !== 'embedded') {
        t.skip('the backup here is a copy of the SQLite data directory');
        return;
      }
      const deployment = await h.startDeployment();
      const backup = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-backup-'));
      const contexts = [];
      try {
        const node = deployment.customerNode;
        const seed = await h.seedCompany(node);
        for (let i = 0; i < 2; i++) contexts.push(await browser.newContext({ viewport: { width: 900, height: 700 } }));
        const customer = await contexts[0].newPage();
        const operator = await contexts[1].newPage();
        await p.customerStartsChat(customer, `${node.url}/?transport=${transport}`, {
          name: 'Zoya', city: 'Perm', companyName: seed.name, text: 'before the backup',
        });
        await p.operatorOpensChat(operator, `${node.url}/console?transport=${transport}`, {
          email: seed.email, password: seed.password, customerName: 'Zoya',
        });
        await p.waitForConversation([customer, operator], ['before the backup'], [], 'first message');

        // The backup: a clean stop, a copy of the data directory, a start.
        await node.stop('SIGTERM');
        fs.cpSync(deployment.dataDir, backup, { recursive: true });
        await node.start();
        await p.waitLive(customer, transport === 'ws' ? 'WebSocket' : 'long-poll');
        await p.say(customer, 'after the backup');
        await p.say(operator, 'answered after the backup');
        await p.waitForConversation([customer, operator],
          ['before the backup', 'after the backup', 'answered after the backup'], [], 'before the restore');

        // The restore: the server comes back with only what the backup held.
        await node.stop('SIGKILL');
        fs.rmSync(deployment.dataDir, { recursive: true, force: true });
        fs.cpSync(backup, deployment.dataDir, { recursive: true });
        await node.start();
        await p.waitForConversation([customer, operator], ['before the backup'], [], 'the restored history');

        // And both go on from there.
        await p.say(operator, 'after the restore');
        await p.say(customer, 'customer after the restore');
        await p.waitForConversation([customer, operator],
          ['before the backup', 'after the restore', 'customer after the restore'], [], 'after the restore');
      } finally {
        for (const context of contexts) await context.close();
        await h.stopDeployment(deployment);
        fs.rmSync(backup, { recursive: true, force: true });
      }
    });
  }
});
