// The forward function's future nests deeply (runtime, service, stream batch, forward, marks):
// 122 levels of the compiler's default 128 (measured 2026-12-04); room to grow.
#![recursion_limit = "256"]

use sendblue_webhooks::{forward, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    forward::run().await
}
