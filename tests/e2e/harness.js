// What every browser test needs: real server processes (started, killed and restarted on the
// same port), a company with an operator, headless Chromium, and waits that poll the page.
//
// Environment:
//   SWITCHBOARD_BIN        the server binary (default: target/debug/switchboard)
//   E2E_BACKEND            'embedded' (default: SQLite, in-process bus) or 'cluster'
//                          (PostgreSQL + Redis, two nodes: customer on A, operator on B)
//   TEST_DATABASE_URL, REDIS_URL  for 'cluster' (local defaults)
//   CHROMIUM_PATH          default /usr/bin/chromium
//   E2E_ARTIFACTS          where screenshots go (default tests/e2e/artifacts)

'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.SWITCHBOARD_BIN || path.join(ROOT, 'target', 'debug', 'switchboard');
const ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdef';
const BACKEND = process.env.E2E_BACKEND || 'embedded';
const ARTIFACTS = process.env.E2E_ARTIFACTS || path.join(__dirname, 'artifacts');
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/// One server process on a fixed port, which can be killed and started again there.
class Node {
  constructor(name, port, env) {
    this.name = name;
    this.port = port;
    this.env = env;
    this.url = `http://127.0.0.1:${port}`;
    this.child = null;
    this.log = [];
  }

  async start() {
    const env = { ...process.env, ...this.env, SWITCHBOARD_LISTEN: `127.0.0.1:${this.port}` };
    for (const key of Object.keys(env)) if (env[key] === null) delete env[key];
    this.child = spawn(BIN, ['serve'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk) => {
      this.log.push(chunk.toString());
      if (this.log.length > 400) this.log.shift();
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const ready = await fetch(`${this.url}/readyz`).then((r) => r.ok, () => false);
      if (ready) return this;
      const gone = await Promise.race([exited.then(() => true), sleep(100).then(() => false)]);
      if (gone) break;
    }
    throw new Error(`${this.name} did not start:\n${this.log.join('')}`);
  }

  /// Kill the process: SIGKILL is a crash, SIGTERM a graceful stop.
  async stop(signal = 'SIGKILL') {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill(signal);
    await exited;
    this.child = null;
  }
}

/// A loopback TCP proxy that can cut the network between a browser and a server: `cut()`
/// drops every connection through it and refuses new ones until `restore()`.
class Link {
  constructor(target) {
    this.target = target;
    this.sockets = new Set();
    this.open = true;
    this.server = net.createServer((client) => {
      if (!this.open) { client.destroy(); return; }
      const upstream = net.connect(target.port, '127.0.0.1');
      for (const [a, b] of [[client, upstream], [upstream, client]]) {
        this.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => { this.sockets.delete(a); b.destroy(); });
        a.pipe(b);
      }
    });
  }

  async listen() {
    this.port = await freePort();
    await new Promise((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  cut() {
    this.open = false;
    for (const socket of this.sockets) socket.destroy();
  }

  restore() { this.open = true; }

  async close() {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/// A deployment for one test file: one embedded node, or two clustered nodes.
async function startDeployment(extraEnv = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-e2e-'));
  const env = {
    SWITCHBOARD_DATA_DIR: dataDir,
    SWITCHBOARD_STATIC_DIR: path.join(ROOT, 'static'),
    SWITCHBOARD_ADMIN_TOKEN: ADMIN_TOKEN,
    SWITCHBOARD_DEMO: 'false',
    SWITCHBOARD_SHUTDOWN_DRAIN: '1s',
    RUST_LOG: 'warn',
    ...extraEnv,
  };
  // Leave the machine's own settings out: the deployment says exactly what it uses.
  for (const key of ['DATABASE_URL', 'REDIS_URL', 'AMQP_URL', 'SMTP_URL']) {
    if (!(key in extraEnv)) env[key] = null;
  }
  if (BACKEND === 'cluster') {
    const database = await freshPostgres();
    const prefix = `e2e${process.pid}${Date.now()}`;
    const shared = {
      ...env,
      DATABASE_URL: database,
      REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
      SWITCHBOARD_REDIS_PREFIX: prefix,
    };
    const a = await new Node('node A', await freePort(), shared).start();
    const b = await new Node('node B', await freePort(), shared).start();
    return { customerNode: a, operatorNode: b, nodes: [a, b], dataDir, database };
  }
  const node = await new Node('server', await freePort(), env).start();
  return { customerNode: node, operatorNode: node, nodes: [node], dataDir };
}

/// A new empty PostgreSQL database for this run.
async function freshPostgres() {
  const admin = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `switchboard_e2e_${process.pid}_${Date.now()}`;
  execFileSync('psql', [admin, '-q', '-c', `CREATE DATABASE ${name}`], { stdio: 'pipe' });
  return admin.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
}

async function stopDeployment(deployment) {
  for (const node of deployment.nodes) await node.stop('SIGTERM');
  fs.rmSync(deployment.dataDir, { recursive: true, force: true });
  if (deployment.database) {
    const name = new URL(deployment.database).pathname.slice(1);
    const admin = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
    execFileSync('psql', [admin, '-q', '-c', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { stdio: 'pipe' });
  }
}

async function adminPost(node, path_, body) {
  const response = await fetch(node.url + path_, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${path_}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/// A company in Novosibirsk with a branch in Moscow, and one operator for all of it.
async function seedCompany(node, name = 'Siberian Coffee') {
  const unique = `${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  const company = await adminPost(node, '/v1/admin/companies', {
    name, email: `owner${unique}@example.test`, city: 'Novosibirsk', timezone: 'Asia/Novosibirsk',
  });
  await adminPost(node, `/v1/admin/companies/${company.id}/branches`, {
    name: 'Moscow shop', city: 'Moscow', timezone: 'Europe/Moscow',
  });
  const email = `operator${unique}@example.test`;
  const password = 'correct horse battery staple';
  await adminPost(node, `/v1/admin/companies/${company.id}/operators`, {
    name: 'Olga', email, password,
  });
  return { companyId: company.id, name, email, password };
}

async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: CHROMIUM_FLAGS,
  });
}

/// Poll `fn` in the page until it returns a truthy value; the value, or an error with `what`.
async function waitInPage(page, fn, arg, what, timeoutMs = 20_000) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 100 });
    return handle.jsonValue();
  } catch (error) {
    throw new Error(`timed out waiting for ${what}: ${error.message.split('\n')[0]}`);
  }
}

async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

module.exports = {
  ROOT, BACKEND, ADMIN_TOKEN, Link, sleep, freePort, startDeployment, stopDeployment, seedCompany,
  launchBrowser, waitInPage, screenshot,
};
