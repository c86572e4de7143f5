//! What the gate's tests share: the Python upstream and the gate binary as real processes on
//! free loopback ports (stopped when dropped, also when a test fails), a small HTTP/1.1
//! client, and the programs helper of the crate's own tests.

#![allow(dead_code)]

pub mod client;
pub mod procs;
#[path = "../../../tests/support/programs.rs"]
pub mod programs;
pub mod redis;
