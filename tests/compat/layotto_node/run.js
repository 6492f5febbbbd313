// Drives the real Layotto Node.js SDK (npm `layotto` 1.18.0) through every client API it has,
// against a pylotto sidecar started by test_layotto_node.py. Usage:
//   node run.js <sidecarPort> <appCallbackPort> <httpBindingPort>
// It serves the AppCallback (the SDK's own Server) and the HTTP binding's target first, then
// waits for the sidecar. Each check prints one JSON line {"check", "ok", "error"?}; the last line
// is {"done": true}. The exit code is 0 even when checks fail: the pytest module asserts on them.
'use strict';
const assert = require('node:assert/strict');
const http = require('node:http');
const { Client, Server, utils } = require('layotto');

const [sidecarPort, appPort, httpPort] = process.argv.slice(2);
const run = `${process.pid}-${Date.now()}`;
const STATE = 'state_demo';
const CONFIG = 'config_demo';

function report(check, error) {
  const line = { check, ok: !error };
  if (error) line.error = String(error && error.stack || error);
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function check(name, fn) {
  try {
    await fn();
    report(name);
  } catch (err) {
    report(name, err);
  }
}

function text(bytes) {
  return Buffer.from(bytes).toString();
}

async function main() {
  // The HTTP binding's target.
  const target = http.createServer((req, res) => {
    let body = '';
    req.on('data', chunk => { body += chunk; });
    req.on('end', () => { res.statusCode = 200; res.end(`got ${req.method} ${body}`); });
  });
  await new Promise(resolve => target.listen(Number(httpPort), '127.0.0.1', resolve));

  // The AppCallback app: the SDK's own Server.
  const received = [];
  const server = new Server(appPort);
  // As the SDK's own tests do: addPubSubSubscription lists the topic (ListTopicSubscriptions),
  // subscribe registers its handler.
  server.pubsub.addPubSubSubscription('pub_subs_demo', `orders-${run}`);
  server.pubsub.subscribe('pub_subs_demo', `orders-${run}`, async (data, request) => {
    received.push({ data, request }); // data: the event's data, JSON-decoded by the SDK
  });
  await server.start();

  const client = new Client(sidecarPort, '127.0.0.1');
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      await client.hello.sayHello();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await utils.sleep(200);
    }
  }

  await check('hello', async () => {
    assert.equal(await client.hello.sayHello({ serviceName: 'helloworld', name: 'js' }), 'greeting, js');
  });

  await check('state: save with the default etag "0", get, versions from 1', async () => {
    const key = `one-${run}`;
    await client.state.save({ storeName: STATE, states: { key, value: 'v1' } });
    const item = await client.state.get({ storeName: STATE, key });
    assert.equal(text(item.value), 'v1');
    assert.equal(item.etag, '1');
    await client.state.save({ storeName: STATE, states: { key, value: 'v2' } });
    assert.equal((await client.state.get({ storeName: STATE, key })).etag, '2');
  });

  await check('state: an empty value', async () => {
    const key = `empty-${run}`;
    await client.state.save({ storeName: STATE, states: { key, value: '' } });
    const item = await client.state.get({ storeName: STATE, key });
    assert.equal(item.value.length, 0);
  });

  await check('state: a missing key', async () => {
    const item = await client.state.get({ storeName: STATE, key: `missing-${run}` });
    assert.ok(item === null || item.value.length === 0);
  });

  await check('state: a wrong etag is refused', async () => {
    const key = `etag-${run}`;
    await client.state.save({ storeName: STATE, states: { key, value: 'v' } });
    await assert.rejects(
      client.state.save({ storeName: STATE, states: { key, value: 'w', etag: '999' } }));
    await client.state.save({ storeName: STATE, states: { key, value: 'w', etag: '1' } });
    assert.equal(text((await client.state.get({ storeName: STATE, key })).value), 'w');
  });

  await check('state: bulk save, getBulk, delete, deleteBulk', async () => {
    const keys = [ 0, 1, 2 ].map(n => `bulk${n}-${run}`);
    await client.state.save({ storeName: STATE, states: keys.map(key => ({ key, value: `v-${key}` })) });
    const items = await client.state.getBulk({ storeName: STATE, keys });
    assert.deepEqual(items.map(i => [ i.key, text(i.value) ]), keys.map(k => [ k, `v-${k}` ]));
    await client.state.delete({ storeName: STATE, key: keys[0] });
    await client.state.deleteBulk({ storeName: STATE, states: keys.slice(1).map(key => ({ key })) });
    for (const key of keys) {
      const item = await client.state.get({ storeName: STATE, key });
      assert.ok(item === null || item.value.length === 0, `${key} still there`);
    }
  });

  await check('state: transaction upsert then delete', async () => {
    const keys = [ `tx0-${run}`, `tx1-${run}` ];
    await client.state.executeTransaction({
      storeName: STATE,
      operations: keys.map(key => ({ operationType: 'upsert', request: { key, value: `t-${key}` } })),
    });
    const items = await client.state.getBulk({ storeName: STATE, keys });
    assert.deepEqual(items.map(i => text(i.value)), keys.map(k => `t-${k}`));
    await client.state.executeTransaction({
      storeName: STATE,
      operations: keys.map(key => ({ operationType: 'delete', request: { key } })),
    });
    for (const key of keys) {
      const item = await client.state.get({ storeName: STATE, key });
      assert.ok(item === null || item.value.length === 0, `${key} still there`);
    }
  });

  const appId = `node-${run}`;
  const [ key1, key2 ] = [ `c1-${run}`, `c2-${run}` ];
  await check('configuration: save, get, delete', async () => {
    assert.equal((await client.configuration.get({ storeName: CONFIG, appId, keys: [ key1, key2 ] })).length, 0);
    await client.configuration.save({ storeName: CONFIG, appId, items: [
      { key: key1, content: 'one 😄' }, { key: key2, content: 'two' } ] });
    const items = await client.configuration.get({ storeName: CONFIG, appId, keys: [ key1, key2 ] });
    assert.deepEqual(items.map(i => [ i.key, i.content ]), [ [ key1, 'one 😄' ], [ key2, 'two' ] ]);
    await client.configuration.delete({ storeName: CONFIG, appId, keys: [ key1, key2 ] });
    assert.equal((await client.configuration.get({ storeName: CONFIG, appId, keys: [ key1, key2 ] })).length, 0);
  });

  await check('configuration: subscribe, then end() ends the stream', async () => {
    const last = {};
    let closed = null;
    const call = client.configuration.subscribe({
      storeName: CONFIG, appId, keys: [ key1, key2 ],
      onData(items) { for (const item of items) last[item.key] = item.content; },
      onClose(err) { closed = { err: err ? String(err) : null }; },
    });
    await utils.sleep(500);
    await client.configuration.save({ storeName: CONFIG, appId, items: [
      { key: key1, content: 'updated1' }, { key: key2, content: 'updated2' } ] });
    for (let i = 0; i < 50 && last[key2] !== 'updated2'; i++) await utils.sleep(100);
    assert.deepEqual(last, { [key1]: 'updated1', [key2]: 'updated2' });
    call.end(); // half-close: the sidecar ends the stream as Layotto does (UNKNOWN "EOF")
    for (let i = 0; i < 50 && closed === null; i++) await utils.sleep(100);
    assert.notEqual(closed, null, 'the stream did not end after end()');
    assert.match(closed.err, /EOF/);
    await client.configuration.delete({ storeName: CONFIG, appId, keys: [ key1, key2 ] });
  });

  await check('lock: tryLock, a second owner refused, unLock', async () => {
    const resourceId = `res-${run}`;
    const owner = client.lock.uuid();
    assert.equal(await client.lock.tryLock({ storeName: 'lock_demo', resourceId, lockOwner: owner, expire: 10 }), true);
    assert.equal(await client.lock.tryLock({ storeName: 'lock_demo', resourceId, lockOwner: 'other', expire: 10 }), false);
    assert.equal((await client.lock.unLock({ storeName: 'lock_demo', resourceId, lockOwner: 'other' })).status, 2); // LOCK_BELONG_TO_OTHERS
    assert.equal((await client.lock.unLock({ storeName: 'lock_demo', resourceId, lockOwner: owner })).status, 0);
    assert.equal((await client.lock.unLock({ storeName: 'lock_demo', resourceId, lockOwner: owner })).status, 1);
  });

  await check('sequencer: getNextId increases', async () => {
    const key = `seq-${run}`;
    const first = BigInt(await client.sequencer.getNextId({ storeName: 'sequencer_demo', key }));
    const second = BigInt(await client.sequencer.getNextId({ storeName: 'sequencer_demo', key }));
    assert.equal(first, 1n);
    assert.ok(second > first);
  });

  await check('pubsub: publish, delivered to the SDK Server', async () => {
    const topic = `orders-${run}`;
    await client.pubsub.publish({ pubsubName: 'pub_subs_demo', topic, data: { n: 1 } });
    for (let i = 0; i < 100 && received.length === 0; i++) await utils.sleep(100);
    assert.equal(received.length, 1, 'no delivery within 10 s');
    const { data, request } = received[0];
    assert.equal(request.topic, topic);
    assert.equal(request.pubsubName, 'pub_subs_demo');
    assert.deepEqual(data, { n: 1 });
  });

  await check('binding: invoke the http binding', async () => {
    const res = await client.binding.invoke({ name: 'http', operation: 'post', data: 'ping', metadata: {} });
    assert.equal(text(res.data), 'got POST ping');
    assert.equal(res.metadata.statusCode, '200');
  });

  await server.close();
  await new Promise(resolve => target.close(resolve));
  process.stdout.write(JSON.stringify({ done: true }) + '\n');
  process.exit(0);
}

main().catch(err => {
  process.stdout.write(JSON.stringify({ check: 'setup', ok: false, error: String(err && err.stack || err) }) + '\n');
  process.exit(1);
});
