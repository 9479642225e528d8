// Serves the loaded component with `wassette serve --stdio` and speaks MCP to it: the tools it
// lists carry our WIT docs as descriptions, a tool call sends the exact request (path, key,
// revision) to a local server (tests/jco/server.mjs, in its own process), and with a base URL
// whose host was not granted, Wassette's allow-list stops the request (the env build's guard).
// usage: node check.mjs WASSETTE_BIN PLUGIN_DIR
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const [wassette, plugins] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const server = spawn(process.execPath, [path.join(here, '..', 'jco', 'server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const [chunk] = await once(server.stdout, 'data');
const port = String(chunk).trim();
const key = 'pk_wassette_test_0123456789';
let requests = 0;

// `wassette serve --stdio` with the component's settings; returns an MCP request function.
async function serve(baseUrl) {
  const host = spawn(wassette, [
    'serve', '--stdio', '--plugin-dir', plugins,
    '--env', `KLAVIYO_API_KEY=${key}`,
    '--env', 'KLAVIYO_COMPANY_ID=PubKey',
    '--env', `KLAVIYO_BASE_URL=${baseUrl}`,
  ], { stdio: ['pipe', 'pipe', 'ignore'] });
  const pending = new Map();
  readline.createInterface({ input: host.stdout }).on('line', (line) => {
    const msg = JSON.parse(line);
    if (pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
  });
  let next = 1;
  const rpc = (method, params) => new Promise((resolve) => {
    const id = next++;
    pending.set(id, resolve);
    host.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
  });
  await rpc('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'check', version: '1' } });
  host.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
  // Wassette loads components in the background after it starts: wait for ours.
  let tools = [];
  for (let i = 0; i < 100 && !tools.some((t) => t.name === 'get-lists'); i++) {
    if (i) await new Promise((r) => setTimeout(r, 100));
    tools = (await rpc('tools/list', {})).result.tools;
  }
  // Wassette wants every record field: absent options are null.
  const getList = async (id) => {
    const t = tools.find((t) => t.name === 'get-list');
    const params = Object.fromEntries(Object.keys(t.inputSchema.properties.params.properties).map((k) => [k, null]));
    Object.assign(params, { id, 'fields-list': ['name'] });
    requests++;
    const call = await rpc('tools/call', { name: 'get-list', arguments: { params } });
    return call.result?.content?.[0]?.text ?? JSON.stringify(call);
  };
  return { tools, getList, stop: () => host.kill() };
}

let passed = 0, failed = 0;
const check = (name, fn) => {
  try { fn(); passed++; console.log(`ok - ${name}`); }
  catch (e) { failed++; console.log(`not ok - ${name}\n${e.stack}`); }
};
try {
  const granted = await serve(`http://127.0.0.1:${port}`);
  const { tools } = granted;
  const ours = tools.filter((t) => !t.name.includes('component') && !t.name.includes('policy') && !t.name.includes('permission') && !t.name.includes('search') && !t.name.includes('secret'));
  const getLists = tools.find((t) => t.name === 'get-lists');
  console.log(`wassette lists ${tools.length} tools; get-lists: ${JSON.stringify(getLists?.description?.slice(0, 80))}`);
  check('every typed action is a tool', () => assert.ok(ours.length >= 351, `${ours.length} tools`));
  check('descriptions are our WIT docs', () => {
    assert.match(getLists.description, /^Get Lists\n\n`GET \/api\/lists` · access: read · scopes: lists:read · tool `get_lists`/);
    const described = ours.filter((t) => !t.description.startsWith('Auto-generated'));
    assert.ok(described.length >= 351, `${described.length} of ${ours.length} tools have our docs`);
  });
  const text = await granted.getList('$custom:::x y');
  granted.stop();
  check('a tool call sends the exact request', () => {
    // The WIT result<string, api-error> as Wassette renders it: {"ok": "<the answer>"}.
    const echo = JSON.parse(JSON.parse(text).ok).echo;
    assert.equal(echo.method, 'GET');
    assert.equal(echo.url, '/api/lists/%24custom%3A%3A%3Ax%20y?fields%5Blist%5D=name');
    assert.equal(echo.headers.authorization, `Klaviyo-API-Key ${key}`);
    assert.equal(echo.headers.revision, '2026-07-15');
  });

  // Same server, but named `localhost`: not a granted host, so Wassette refuses to connect.
  const ungranted = await serve(`http://localhost:${port}`);
  const refused = await ungranted.getList('L1');
  ungranted.stop();
  console.log(`ungranted host: ${refused.slice(0, 160)}`);
  check('a host that was not granted is refused by Wassette', () => {
    assert.match(refused, /HttpRequestDenied|denied|not allowed/i, refused);
    assert.doesNotMatch(refused, /echo/);
  });
} finally {
  server.kill();
}
console.log(`wassette: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
