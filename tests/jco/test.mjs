// Runs the env build of the connector in Node through jco's transpilation and the
// @bytecodealliance/preview2-shim WASI implementation — a host we did not write — and checks
// the requests a tool call and a typed call make against a local server, and their results.
// usage: node test.mjs TRANSPILED_DIR
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const server = spawn(process.execPath, [path.join(here, 'server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const [chunk] = await once(server.stdout, 'data');
const port = String(chunk).trim();
const key = 'pk_jco_test_0123456789';
let passed = 0, failed = 0;
const check = (name, fn) => {
  try { fn(); passed++; console.log(`ok - ${name}`); }
  catch (e) { failed++; console.log(`not ok - ${name}\n${e.stack}`); }
};
try {
  // The WIT docs travel in the binary: jco's decoder shows them on the component's own world.
  const wit = readFileSync(path.join(process.argv[2], 'component.wit'), 'utf8');
  check('the binary carries the WIT docs', () => {
    assert.match(wit, /\/\/\/ Every Klaviyo action as a typed function/);
    assert.match(wit, /\/\/\/ Get Profiles\n(\s*\/\/\/.*\n)*\s*export get-profiles: func/);
    assert.match(wit, /\/\/\/ `POST \/api\/lists` · access: write · scopes: lists:write · tool `create_list`/);
  });

  // The shim reads the environment when it is first imported.
  Object.assign(process.env, {
    KLAVIYO_API_KEY: key,
    KLAVIYO_BASE_URL: `http://127.0.0.1:${port}`,
    KLAVIYO_COMPANY_ID: 'PubKey',
  });
  const c = await import(pathToFileURL(path.join(process.argv[2], 'klaviyo_connector_env.js')).href);

  // The tools interface.
  const tools = c.tools.listTools();
  check('lists every tool', () => assert.equal(tools.length, 351));
  const echo1 = JSON.parse(c.tools.callTool('Get Lists', JSON.stringify({ fields_list: ['name'] }))).echo;
  check('tool call sends the exact request', () => {
    assert.equal(echo1.method, 'GET');
    assert.equal(echo1.url, '/api/lists?fields%5Blist%5D=name');
    assert.equal(echo1.headers.authorization, `Klaviyo-API-Key ${key}`);
    assert.equal(echo1.headers.revision, '2026-07-15');
    assert.equal(echo1.headers.accept, 'application/vnd.api+json');
  });

  // A typed export: get-list with an id that needs escaping and a sparse fieldset.
  const r2 = JSON.parse(c.getList({ id: '$custom:::x y', fieldsList: ['name'], fieldsFlow: undefined, fieldsTag: undefined, include: undefined, additionalFieldsList: undefined }));
  check('typed call keeps the id in its segment', () => {
    assert.equal(r2.echo.method, 'GET');
    assert.equal(r2.echo.url, '/api/lists/%24custom%3A%3A%3Ax%20y?fields%5Blist%5D=name');
    assert.equal(r2.data[0].id, 'L1');
  });
  // An id that would leave its segment is refused before any request, naming the field.
  check('an id that would change the path is a typed error', () => {
    try {
      c.getList({ id: 'a/../b', fieldsList: undefined, fieldsFlow: undefined, fieldsTag: undefined, include: undefined, additionalFieldsList: undefined });
      assert.fail('expected an error');
    } catch (e) {
      assert.equal(e.payload.tag, 'invalid-input');
      assert.equal(e.payload.val.field, 'id');
    }
  });

  // A write through a typed export: the envelope is completed, the body is JSON:API.
  const r3 = JSON.parse(c.createList({ body: JSON.stringify({ name: 'VIP' }) }));
  check('typed write completes the JSON:API envelope', () => {
    assert.equal(r3.echo.method, 'POST');
    assert.equal(r3.echo.headers['content-type'], 'application/vnd.api+json');
    assert.deepEqual(JSON.parse(r3.echo.body), { data: { type: 'list', attributes: { name: 'VIP' } } });
  });

  // Bad input is refused before any request, with the field named (a WIT error variant).
  check('bad input is a typed error naming the field', () => {
    try {
      c.tools.callTool('get_profiles', JSON.stringify({ page_size: 1000 }));
      assert.fail('expected an error');
    } catch (e) {
      assert.equal(e.payload.tag, 'invalid-input');
      assert.equal(e.payload.val.field, 'page_size');
    }
  });
} finally {
  server.kill();
}
console.log(`jco: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
