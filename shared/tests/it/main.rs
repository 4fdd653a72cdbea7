//! The receiver's integration tests, one binary: each module one topic. The tests that need
//! DynamoDB Local and moto are ignored by a plain `cargo test`, with the reason; the test
//! command, `scripts/test.sh`, starts the emulators and runs them all (`--include-ignored`).

mod concurrency;
mod door;
mod fixtures;
mod hostile_input;
mod layout;
mod limits;
mod reconcile;
mod reconcile_walk;
mod rig;
mod round_trips;
mod samples;
mod store_contract;
mod stream;
mod toolchain;
