;; A pylotto WebAssembly function in WebAssembly text: replies "hello, <body>" and logs the
;; call. pylotto loads .wat files directly (no build step). ABI: docs/wasm.md.
(module
  (import "pylotto" "log" (func $log (param i32 i32 i32)))
  (import "pylotto" "set_content_type" (func $set_content_type (param i32 i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "hello, ")            ;; 7 bytes at 0
  (data (i32.const 16) "text/plain")        ;; 10 bytes at 16
  (global $heap (mut i32) (i32.const 1024)) ;; bump allocator: free memory starts here

  ;; alloc(len) -> ptr: room for len bytes (grows memory when needed; traps when it cannot)
  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $len)))
    (block $ok
      (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (br_if $ok (i32.ge_s
        (memory.grow (i32.add (i32.shr_u (global.get $heap) (i32.const 16)) (i32.const 1)))
        (i32.const 0)))
      unreachable)
    (local.get $ptr))

  ;; handle(ptr, len) -> (reply_ptr << 32) | reply_len
  (func (export "handle") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (call $log (i32.const 1) (local.get $ptr) (local.get $len))
    (call $set_content_type (i32.const 16) (i32.const 10))
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 7))))
    (memory.copy (local.get $out) (i32.const 0) (i32.const 7))
    (memory.copy (i32.add (local.get $out) (i32.const 7)) (local.get $ptr) (local.get $len))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $len) (i32.const 7)))))
)
