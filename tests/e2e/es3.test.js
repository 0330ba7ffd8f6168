// The web client must parse in IE6: every script the pages load is ES3. acorn in ES3 mode
// refuses let/const, arrow functions, getters and reserved words as property names; trailing
// commas (which IE6 rejects in objects and miscounts in arrays) are checked on the tokens.
// The pages must also never reach out to another host (fonts, CDNs).

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const acorn = require('acorn');
const { ROOT } = require('./harness');

const STATIC = path.join(ROOT, 'static');
// The service worker runs only in browsers that have service workers.
const MODERN_ONLY = new Set(['sw.js']);

const scripts = fs.readdirSync(STATIC).filter((f) => f.endsWith('.js') && !MODERN_ONLY.has(f));

test('there are scripts to check', () => {
  assert.ok(scripts.includes('switchboard.js') && scripts.includes('widget.js') && scripts.includes('console.js'));
});

for (const file of scripts) {
  test(`${file} parses as ES3 without trailing commas`, () => {
    const source = fs.readFileSync(path.join(STATIC, file), 'utf8');
    acorn.parse(source, { ecmaVersion: 3, allowReserved: 'never', sourceType: 'script', locations: true });
    const tokens = [...acorn.tokenizer(source, { ecmaVersion: 3, locations: true })];
    for (let i = 1; i < tokens.length; i++) {
      const closing = tokens[i].type === acorn.tokTypes.braceR || tokens[i].type === acorn.tokTypes.bracketR;
      if (closing && tokens[i - 1].type === acorn.tokTypes.comma) {
        assert.fail(`${file}:${tokens[i].loc.start.line}: trailing comma`);
      }
    }
    // APIs IE6-8 lack must stay behind a check or out entirely.
    for (const [pattern, why] of [
      [/\.forEach\(|\.map\(|\.filter\(|Array\.isArray|Object\.keys/, 'ES5 array/object helpers'],
      [/Date\.now\(/, 'Date.now'],
      [/\.bind\(/, 'Function.prototype.bind'],
      [/\.trim\(\)/, 'String.prototype.trim'],
      [/\bfetch\(|\bPromise\b/, 'fetch/Promise'],
      [/\.textContent\b/, 'textContent'],
    ]) {
      const line = source.split('\n').findIndex((l) => pattern.test(l));
      assert.equal(line, -1, `${file}:${line + 1} uses ${why}, which IE6-8 do not have`);
    }
  });
}

test('the trailing comma check catches one', () => {
  const tokens = [...acorn.tokenizer('var a = { b: 1, };', { ecmaVersion: 3 })];
  const found = tokens.some((t, i) => i > 0 && t.type === acorn.tokTypes.braceR && tokens[i - 1].type === acorn.tokTypes.comma);
  assert.ok(found);
  assert.throws(() => acorn.parse('var x = { default: 1 };', { ecmaVersion: 3, allowReserved: 'never' }));
  assert.throws(() => acorn.parse('x.catch(f);', { ecmaVersion: 3, allowReserved: 'never' }));
  assert.throws(() => acorn.parse('let x = 1;', { ecmaVersion: 3 }));
});

test('pages and styles load nothing from other hosts', () => {
  for (const file of fs.readdirSync(STATIC)) {
    let source = fs.readFileSync(path.join(STATIC, file), 'utf8');
    if (file.endsWith('.js')) source = withoutComments(source);
    const external = /(?:src|href)\s*=\s*["']?(?:https?:)?\/\/|url\(\s*["']?(?:https?:)?\/\/|@import/i.exec(source);
    assert.equal(external, null, `${file} refers to another host: ${external && external[0]}`);
  }
});

/// The source with its comments blanked (examples in comments are not requests).
function withoutComments(source) {
  const comments = [];
  acorn.parse(source, { ecmaVersion: 'latest', onComment: comments });
  let out = source;
  for (const c of comments.reverse()) out = out.slice(0, c.start) + ' '.repeat(c.end - c.start) + out.slice(c.end);
  return out;
}
