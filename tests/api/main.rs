//! Integration tests: the real server on port 0, driving the real Docker
//! engine with real images. They fail, never skip, when Docker is missing.

mod abuse;
mod binary;
mod catalogue;
mod checkers;
mod clients;
mod faults;
mod front;
mod fuzz;
mod gvisor;
mod helpers;
mod hidden;
mod isolation;
mod judge0;
mod judge0_api;
mod judging;
mod limits;
mod names;
mod options_builds_keys;
mod outputs;
mod piston;
mod playground;
mod pool;
mod prestart;
mod redteam;
mod reload;
mod requests;
mod run;
mod sandbox;
mod service;
mod stages;
mod streaming;
mod supervisor;
mod tenants;
