// A pylotto WebAssembly function in AssemblyScript: greets the name in the request body,
// counts visits per name in the state store, publishes a "greetings" event and logs.
// ABI: docs/wasm.md. Build: `npm ci && npm run build` -> build/greeter.wasm

@external("pylotto", "log")
declare function host_log(level: i32, ptr: usize, len: i32): void;
@external("pylotto", "method")
declare function host_method(): i64;
@external("pylotto", "set_content_type")
declare function host_set_content_type(ptr: usize, len: i32): void;
@external("pylotto", "state_get")
declare function host_state_get(store: usize, storeLen: i32, key: usize, keyLen: i32): i64;
@external("pylotto", "state_set")
declare function host_state_set(store: usize, storeLen: i32, key: usize, keyLen: i32,
                                value: usize, valueLen: i32): void;
@external("pylotto", "publish")
declare function host_publish(pubsub: usize, pubsubLen: i32, topic: usize, topicLen: i32,
                              data: usize, dataLen: i32): void;

// ---- ABI plumbing -------------------------------------------------------------------------

/** The host asks for room before it writes the request (or a host call's answer). */
export function alloc(len: i32): usize {
  return heap.alloc(<usize>len);
}

function pack(ptr: usize, len: i32): i64 {
  return (<i64>ptr << 32) | <i64>(<u32>len);
}

function unpackString(packed: i64): string {
  const ptr = <usize>(packed >>> 32);
  const len = <i32>(packed & 0xffffffff);
  return len == 0 ? "" : String.UTF8.decodeUnsafe(ptr, len);
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

function log(text: string): void {
  const b = utf8(text);
  host_log(1, changetype<usize>(b), b.byteLength);
}

function stateGet(key: string): string {
  const store = utf8(""); // "": the store named in wasm.state_store
  const k = utf8(key);
  return unpackString(host_state_get(changetype<usize>(store), 0,
                                     changetype<usize>(k), k.byteLength));
}

function stateSet(key: string, value: string): void {
  const k = utf8(key);
  const v = utf8(value);
  host_state_set(0, 0, changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}

function publish(topic: string, data: string): void {
  const t = utf8(topic);
  const d = utf8(data);
  host_publish(0, 0, changetype<usize>(t), t.byteLength, changetype<usize>(d), d.byteLength);
}

function reply(text: string): i64 {
  const ct = utf8("text/plain; charset=utf-8");
  host_set_content_type(changetype<usize>(ct), ct.byteLength);
  const b = utf8(text);
  return pack(changetype<usize>(b), b.byteLength);
}

// ---- the function -----------------------------------------------------------------------

export function handle(ptr: usize, len: i32): i64 {
  const name = len == 0 ? "world" : String.UTF8.decodeUnsafe(ptr, len);
  const method = unpackString(host_method());
  const key = "greetings/" + name;
  const before = stateGet(key);
  const count = (before.length == 0 ? 0 : I32.parseInt(before)) + 1;
  if (method == "count") {
    return reply((count - 1).toString());
  }
  stateSet(key, count.toString());
  publish("greetings", '{"name":"' + name + '","count":' + count.toString() + "}");
  log("greeted " + name + " (" + count.toString() + ")");
  return reply("Hello, " + name + "! (visit " + count.toString() + ")");
}
