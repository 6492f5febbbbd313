"""WAT test functions: a prelude (every ``pylotto`` import, memory, a bump ``alloc``) plus a
``handle`` body. Constant strings go in a data segment at offset 0 (< 4096)."""

from __future__ import annotations

PRELUDE = """
  (import "pylotto" "log" (func $log (param i32 i32 i32)))
  (import "pylotto" "method" (func $method (result i64)))
  (import "pylotto" "set_content_type" (func $set_content_type (param i32 i32)))
  (import "pylotto" "state_get" (func $state_get (param i32 i32 i32 i32) (result i64)))
  (import "pylotto" "state_set" (func $state_set (param i32 i32 i32 i32 i32 i32)))
  (import "pylotto" "publish" (func $publish (param i32 i32 i32 i32 i32 i32)))
  (import "pylotto" "invoke" (func $invoke (param i32 i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func $alloc (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (block $ok
      (br_if $ok (i32.le_u (global.get $heap)
                           (i32.mul (memory.size) (i32.const 65536))))
      (br_if $ok (i32.ge_s
        (memory.grow (i32.add (i32.shr_u (global.get $heap) (i32.const 16)) (i32.const 1)))
        (i32.const 0)))
      unreachable)
    (local.get $p))
  (func $pack (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))
"""


def module(handle_body: str, data: str = "") -> str:
    """A module whose ``handle(ptr, len) -> i64`` runs ``handle_body``."""
    segment = f'  (data (i32.const 0) "{data}")\n' if data else ""
    return (f"(module\n{PRELUDE}{segment}"
            f'  (func (export "handle") (param $ptr i32) (param $len i32) (result i64)\n'
            f"    {handle_body})\n)\n")


ECHO = module("(call $pack (local.get $ptr) (local.get $len))")
"""Replies with the request body."""
