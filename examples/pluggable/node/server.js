// A pluggable component in Node.js: a state store (dapr.proto.components.v1.StateStore, with
// etags) and a sequencer (pylotto.proto.components.v1.Sequencer), in memory, on a Unix socket.
//
//   npm ci && node server.js /tmp/dapr-components-sockets/nodestore.sock
//
// The sidecar then offers the types state.nodestore and sequencer.nodestore. The .proto files
// are pylotto's own (src/pylotto/proto/components), loaded at run time; Dapr's protos of the
// same package work too, so the same server also plugs into Dapr.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');

const PROTO_ROOT = process.env.PYLOTTO_PROTO_ROOT || path.resolve(__dirname, '../../../src');
const FILES = ['state.proto', 'sequencer.proto'].map((f) => `pylotto/proto/components/${f}`);

const definition = protoLoader.loadSync(FILES, {
  includeDirs: [PROTO_ROOT],
  keepCase: true, // field names as in the .proto (resource_id, content_type...)
  defaults: true,
  longs: Number,
  enums: String,
});
const loaded = grpc.loadPackageDefinition(definition);
const dapr = loaded.dapr.proto.components.v1;
const pylotto = loaded.pylotto.proto.components.v1;

// ---- state store: key -> {value: Buffer, version: number} --------------------------------
const items = new Map();
let versions = 0;

function fail(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

// Check one write's etag / first-write rule; returns an error or null.
function check(req) {
  const current = items.get(req.key);
  const etag = req.etag ? req.etag.value : '';
  if (etag) {
    if (!/^[0-9]+$/.test(etag)) return fail(grpc.status.INVALID_ARGUMENT, `invalid etag ${etag}`);
    if (!current || current.version !== Number(etag)) {
      return fail(grpc.status.FAILED_PRECONDITION, `etag mismatch on ${req.key}`);
    }
  } else if (req.options && req.options.concurrency === 'CONCURRENCY_FIRST_WRITE' && current) {
    return fail(grpc.status.FAILED_PRECONDITION, `${req.key} exists (first-write)`);
  }
  return null;
}

// Apply [{set}|{delete}] all-or-nothing.
function apply(ops, callback, response) {
  for (const op of ops) {
    const err = check(op.set || op.delete);
    if (err) return callback(err);
  }
  for (const op of ops) {
    if (op.set) items.set(op.set.key, { value: op.set.value, version: ++versions });
    else items.delete(op.delete.key);
  }
  return callback(null, response);
}

function found(key) {
  const item = items.get(key);
  return item ? { data: item.value, etag: { value: String(item.version) } } : {};
}

const stateStore = {
  Init: (call, cb) => cb(null, {}),
  Features: (call, cb) => cb(null, { features: ['ETAG'] }),
  Ping: (call, cb) => cb(null, {}),
  Get: (call, cb) => cb(null, found(call.request.key)),
  BulkGet: (call, cb) => cb(null, {
    items: call.request.items.map((get) => ({ key: get.key, ...found(get.key) })),
  }),
  Set: (call, cb) => apply([{ set: call.request }], cb, {}),
  Delete: (call, cb) => apply([{ delete: call.request }], cb, {}),
  BulkSet: (call, cb) => apply(call.request.items.map((set) => ({ set })), cb, {}),
  BulkDelete: (call, cb) => apply(call.request.items.map((del) => ({ delete: del })), cb, {}),
};

// ---- sequencer: key -> last id -------------------------------------------------------------
const counters = new Map();

const sequencer = {
  Init: (call, cb) => cb(null, {}),
  Features: (call, cb) => cb(null, { features: [] }),
  Ping: (call, cb) => cb(null, {}),
  NextId: (call, cb) => {
    const next = (counters.get(call.request.key) || 0) + 1;
    counters.set(call.request.key, next);
    cb(null, { next_id: next });
  },
  EnsureBiggerThan: (call, cb) => {
    const { key, floor } = call.request;
    counters.set(key, Math.max(counters.get(key) || 0, Number(floor)));
    cb(null, {});
  },
};

// ---- serve ------------------------------------------------------------------------------
const socket = process.argv[2] || '/tmp/dapr-components-sockets/nodestore.sock';
fs.mkdirSync(path.dirname(socket), { recursive: true });
fs.rmSync(socket, { force: true });

const server = new grpc.Server();
server.addService(dapr.StateStore.service, stateStore);
server.addService(pylotto.Sequencer.service, sequencer);
// Reflection lets the sidecar ask which services this socket serves.
new ReflectionService(definition, {
  services: ['dapr.proto.components.v1.StateStore', 'pylotto.proto.components.v1.Sequencer'],
}).addToServer(server);

server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`serving StateStore and Sequencer on ${socket}`);
});

function stop() {
  server.tryShutdown(() => {
    fs.rmSync(socket, { force: true });
    process.exit(0);
  });
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
